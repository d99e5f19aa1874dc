/*
 * The APIs this broker serves: for each api key the version range it
 * advertises in ApiVersions and the handler that answers it. The ranges are
 * those a Kafka 4.4 broker advertises (its schemas' valid versions, except
 * the unstable latest ones), clipped to what the handlers implement.
 */
#ifndef BROKER_APIS_H
#define BROKER_APIS_H

#include <stddef.h>
#include <stdint.h>

typedef struct broker_req broker_req_t;

/* What a handler did with its request. */
enum broker_outcome {
    BROKER_RESPOND = 0,      /* response body filled: encode and send it now */
    BROKER_PARKED = 1,       /* the handler keeps the request and finishes it later */
    BROKER_NO_RESPONSE = 2,  /* no response is sent (Produce with acks=0) */
    BROKER_CLOSE = 3,        /* the request is unacceptable: close the connection */
};

typedef int (*broker_handler_fn)(broker_req_t *r);

typedef struct broker_api {
    int16_t api_key;
    /* Advertised range. Below the schema's own minimum (Produce v0-v2, kept
     * for old librdkafka's feature checks as Kafka 4.4 does) a request
     * cannot be decoded and closes the connection, as in Kafka. */
    int16_t min_version;
    int16_t max_version;
    broker_handler_fn handler;
} broker_api_t;

/* NULL when the api key is not served. */
const broker_api_t *broker_api_find(int16_t api_key);
/* The served APIs, in api-key order. */
const broker_api_t *broker_apis(size_t *count);

#endif
