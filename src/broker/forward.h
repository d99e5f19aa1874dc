/*
 * The broker's half of forwarding admin requests to the active controller (the relay itself
 * is cluster_forward, src/cluster): what a controller's answer says about whether it still is
 * the controller, and the error answer of a request that could not be forwarded in time.
 * Pure functions of bytes; they run on the quorum thread and never block.
 */
#ifndef BROKER_FORWARD_H
#define BROKER_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

/* True when resp (a response frame without its size prefix: header, body) to api_key at
 * version says the node that answered is not the active controller: NOT_CONTROLLER in any
 * of its error codes (NOT_LEADER_OR_FOLLOWER for DescribeQuorum), as Kafka's controller
 * turns such an answer into an envelope error its brokers retry. An undecodable answer is
 * not stale (it is relayed as it is). */
bool broker_forward_stale(const uint8_t *resp, size_t len, int16_t api_key, int16_t version);

/* The answer to the request frame req_frame (no size prefix) with error in every result it
 * asks for: a malloc'ed response frame, size prefix included, in *out. SM_ERR_PARSE when
 * the request cannot be decoded. */
int broker_forward_error_frame(const uint8_t *req_frame, size_t req_len, int16_t error,
                               uint8_t **out, size_t *out_len);
/* Answers nreq (a client's forwarded request) with error in every result it asked for, as
 * Kafka's getErrorResponse does when its forwarding times out (REQUEST_TIMED_OUT); closes
 * the connection when the request cannot be decoded or answered. */
void broker_forward_fail(void *ctx, net_request_t *nreq, int16_t error);

#endif
