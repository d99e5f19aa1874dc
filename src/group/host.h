/*
 * What a coordinator needs from the broker, and nothing more: append a batch
 * to a partition of its internal topic, learn when a written offset is
 * durable, read a partition back at start, look a topic up. The group coordinator uses it; the
 * transaction coordinator and share groups are meant to take the same shape.
 * The broker implements it (broker/group_host.c); tests wrap it to inject
 * failed appends and slow flushes.
 */
#ifndef GROUP_HOST_H
#define GROUP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/* status: SM_OK when durable, else an SM_ERR_* status (the coordinator maps
 * it to the Kafka error it answers with). */
typedef void (*group_durable_fn)(void *arg, int status);
/* What read_all calls: each record (value.len < 0: a tombstone; txn_pid >= 0:
 * in a transactional batch of that producer) and each transaction marker. */
typedef struct group_reader {
    void (*record)(void *arg, sm_bytes_t key, sm_bytes_t value, int64_t txn_pid);
    void (*marker)(void *arg, int64_t producer_id, bool commit);
    void *arg;
} group_reader_t;

typedef struct group_host {
    void *ctx;
    /* Appends one record batch to partition p (the host may rewrite its
     * offsets in place; a transactional batch joins its producer's open
     * transaction); *end is the log end after it.
     * Returns SM_OK, SM_ERR_NOTFOUND when p does not exist, SM_ERR_AGAIN when
     * this broker no longer leads it, or the append's
     * failure (SM_ERR_IO, ...; nothing was appended then). Any thread; takes
     * only the host's own locks. Statuses, not Kafka errors, as every
     * internal interface (STYLE.md): the coordinator picks the answer. */
    int (*append)(void *ctx, int32_t p, uint8_t *batch, size_t len, int64_t *end);
    /* Calls done(arg, err) exactly once when every offset of p below end is
     * as durable as the broker acknowledges writes (fsynced with
     * fsync-before-ack): at once on this thread when it already is, else
     * later from another thread holding no lock of the caller's. */
    void (*when_durable)(void *ctx, int32_t p, int64_t end, group_durable_fn done, void *arg);
    /* Reads every record of p from its start, in log order. */
    int (*read_all)(void *ctx, int32_t p, const group_reader_t *reader);
    /* A topic's id and partition count; returns false when there is no such
     * topic (consumer groups' assignors read the metadata through this). */
    bool (*topic)(void *ctx, sm_str_t name, sm_uuid_t *id, int32_t *partitions);
    /* The name of a topic id into name[cap]; false when no topic has it. */
    bool (*topic_name)(void *ctx, const sm_uuid_t *id, char *name, size_t cap);
    /* Calls fn with the name of every topic that is not internal. */
    void (*for_each_topic)(void *ctx, void (*fn)(void *arg, sm_str_t name), void *arg);
    /* Calls fn(arg, partition, rack) for the rack of every replica of every
     * partition of a topic that has one (the replicas' brokers' broker.rack;
     * on a single node, this broker's for every partition). Nothing when the
     * topic is unknown or no replica has a rack. fn must not call the host.
     * NULL: no rack is known. */
    void (*partition_racks)(void *ctx, const sm_uuid_t *topic,
                            void (*fn)(void *arg, int32_t partition, sm_str_t rack), void *arg);
    /* A group's dynamic config (IncrementalAlterConfigs on its GROUP
     * resource) into out[cap]; false when the group does not set it. NULL:
     * groups have no dynamic configs. */
    bool (*group_config)(void *ctx, sm_str_t group, const char *name, char *out, size_t cap);
} group_host_t;

#endif
