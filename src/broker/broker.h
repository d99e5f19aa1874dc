/*
 * The broker: ties the network layer, the request codecs, the metadata image,
 * the controller and the partition logs together. One broker_t per process.
 * Handlers (broker/handlers/<api>.c) receive a broker_req_t holding the
 * decoded request and an initialised response body; they fill the response
 * and return a broker_outcome (apis.h).
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "broker/apis.h"
#include "metadata/image.h"
#include "protocol/request.h"

typedef struct broker broker_t;

/* One request in flight. Lives in its own arena, freed after the response is
 * written (or dropped). */
struct broker_req {
    broker_t *b;
    sm_arena_t arena;
    proto_request_t req;  /* header and decoded body */
    int16_t version;      /* == req.header.request_api_version */
    void *resp;           /* response body (api's response type), initialised */
    void *conn;           /* network connection (net layer's handle) */
    void *net_req;        /* network request handle, to complete */
    int64_t received_ms;  /* monotonic receive time */
};

static inline void *broker_body(broker_req_t *r) { return r->req.body; }

#endif
