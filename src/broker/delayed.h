/*
 * Requests that wait: long-poll Fetch (parked until data arrives on one of its
 * partitions, min bytes are reached, or max wait passes) and Produce with
 * fsync-before-ack (queued for the flusher thread, which fsyncs each log once
 * for everything queued so far: group commit). Parked requests are woken by
 * appends, never by polling.
 *
 * Threads: one delayed thread re-evaluates woken or expired fetches; one
 * flusher thread runs fsyncs. Both complete requests through
 * broker_req_finish from their own thread.
 */
#ifndef BROKER_DELAYED_H
#define BROKER_DELAYED_H

#include "broker/broker.h"
#include "broker/partition.h"

/* Re-evaluates a parked request. final: the deadline passed or the broker is
 * stopping: the function must respond. Returns true when it responded. */
typedef bool (*broker_retry_fn)(broker_req_t *r, bool final);

int broker_delayed_start(broker_t *b);
/* Completes everything parked (final evaluation) and joins the threads. From
 * then on broker_park and broker_flush_then_finish complete requests on the
 * caller's thread, so the event loops may keep dispatching until they stop. */
void broker_delayed_stop(broker_t *b);
/* Frees the module; after broker_delayed_stop and after the event loops
 * stopped (nothing may call into it any more). */
void broker_delayed_free(broker_t *b);

/* Parks r until an append to one of parts (references are taken), or
 * deadline_ms (monotonic). retry is called on the delayed thread. */
void broker_park(broker_t *b, broker_req_t *r, broker_partition_t **parts, int nparts,
                 int64_t deadline_ms, broker_retry_fn retry);
/* A waiter that is not a request (the coordinators' writes waiting for the
 * replicas): fn(arg, final) is evaluated like a parked request's retry (true
 * when done; final: the deadline passed or the broker stops, it must finish).
 * Woken by broker_wake(p). */
typedef bool (*broker_wait_fn)(void *arg, bool final);
void broker_park_wait(broker_t *b, broker_partition_t *p, int64_t deadline_ms, broker_wait_fn fn,
                      void *arg);
/* Called after appending to p: wakes the fetches parked on it. */
void broker_wake(broker_t *b, broker_partition_t *p);

/* Queues r to be finished once every log in logs is flushed up to its end
 * (references to the partitions are taken and released). */
void broker_flush_then_finish(broker_t *b, broker_req_t *r, broker_partition_t **parts, int n);

/* Requests parked on p now (tests). */
int broker_parked_on(broker_partition_t *p);

int64_t broker_mono_ms(void);

/* Produce: marks the partition p in r's response as not durable
 * (KAFKA_STORAGE_ERROR) after its fsync failed. In handlers/produce.c. */
void broker_produce_unflushed(broker_req_t *r, broker_partition_t *p);

#endif
