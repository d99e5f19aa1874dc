/*
 * kclient: a small blocking Kafka client for the admin commands, the
 * broker's replica fetchers and the transaction coordinator's requests to
 * other brokers (txn/coordinator_remote.c), built on Samsa's generated codec. One request at a time per connection, every I/O
 * bounded by the client's timeout, connections to other brokers opened on
 * demand from the Metadata broker list. Not for producing or consuming, and
 * not thread-safe (one client per thread).
 */
#ifndef SAMSA_CLIENT_KCLIENT_H
#define SAMSA_CLIENT_KCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "protocol/errors.h"
#include "protocol/gen/api.h"

#define KC_MAX_API 128 /* api keys tracked per connection */
#define KC_MAX_CONNS 16
#define KC_CONNECT_TIMEOUT_MS 1000 /* each connect attempt, at most the client timeout */

typedef struct kc_conn {
    int fd;          /* -1: not connected */
    int32_t node_id; /* -1: the bootstrap connection */
    char addr[280];  /* host:port, for messages */
    int16_t api_min[KC_MAX_API];
    int16_t api_max[KC_MAX_API]; /* -1: the broker lacks the api */
    int32_t next_correlation;
} kc_conn_t;

typedef struct kc_broker {
    int32_t node_id;
    char host[256];
    int32_t port;
} kc_broker_t;

typedef struct kc_client {
    int timeout_ms;
    kc_conn_t boot;                /* the first bootstrap server that answered */
    kc_conn_t conns[KC_MAX_CONNS]; /* other brokers, by node id */
    size_t nconns;
    kc_broker_t *brokers; /* from the last Metadata answer */
    size_t nbrokers;
    char err[512]; /* the last failure, one line */
    char client_id[64]; /* "" : samsa-cli */
} kc_client_t;

/*
 * Connects to the first server of the comma-separated bootstrap list that
 * accepts within timeout_ms and negotiates versions with ApiVersions (v3,
 * falling back to v0). On failure kc->err says why (every server tried).
 */
int kc_open(kc_client_t *kc, const char *bootstrap, int timeout_ms);
void kc_close(kc_client_t *kc);

/*
 * Sends one request and reads its response. node: -1 for the bootstrap
 * connection, else a broker id from the Metadata broker list (connected on
 * first use). The version is the highest both sides support, at most
 * max_version; *version (may be NULL) gets it. resp is initialised and
 * decoded into arena a (strings borrow a's copy of the frame). Returns SM_OK,
 * SM_ERR_VERSION when the broker lacks the api (kc->err says so), or another
 * status with kc->err set.
 */
int kc_call(kc_client_t *kc, int32_t node, int16_t api_key, int16_t max_version, const void *req,
            void *resp, sm_arena_t *a, int16_t *version);

/* The highest version of api_key the bootstrap broker supports, or -1. */
int16_t kc_api_max(const kc_client_t *kc, int16_t api_key);
int16_t kc_api_min(const kc_client_t *kc, int16_t api_key);

/*
 * Metadata for the named topics (NULL names: all topics; ntopics 0 with
 * names non-NULL: none, brokers only). Refreshes kc's broker list.
 */
int kc_metadata(kc_client_t *kc, const char *const *names, size_t ntopics, sm_arena_t *a,
                proto_metadata_response_t *out);

/* The group coordinator's node id for group, via FindCoordinator. On a Kafka
 * error sets *kerr and returns SM_OK with *node = -1. */
int kc_find_coordinator(kc_client_t *kc, const char *group, sm_arena_t *a, int32_t *node,
                        int16_t *kerr, sm_str_t *kmsg);

/* Milliseconds since the epoch, and a monotonic clock. */
int64_t kc_now_ms(void);

#endif
