/*
 * kclient: blocking request/response over the Kafka protocol for the admin
 * commands (see kclient.h). Sockets are non-blocking and every wait goes
 * through poll() with the request's deadline, so an unreachable or silent
 * broker costs at most the timeout.
 */
#include "client/kclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/request.h"

#define KC_MAX_FRAME (64 * 1024 * 1024)

static void kc_fail(kc_client_t *kc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kc_fail(kc_client_t *kc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kc->err, sizeof(kc->err), fmt, ap);
    va_end(ap);
}

int64_t kc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_reset(kc_conn_t *c, int32_t node_id) {
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->node_id = node_id;
    c->next_correlation = 1;
    for (int i = 0; i < KC_MAX_API; i++)
        c->api_max[i] = -1;
}

static void conn_close(kc_conn_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(kc_client_t *kc, kc_conn_t *c, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - kc_now_ms();
        if (left <= 0) {
            kc_fail(kc, "%s: no answer within %d ms", c->addr, kc->timeout_ms);
            return SM_ERR_IO;
        }
        struct pollfd p = {.fd = c->fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            kc_fail(kc, "%s: poll: %s", c->addr, strerror(errno));
            return SM_ERR_IO;
        }
        if (n > 0) return SM_OK;
    }
}

/* Opens a TCP connection to host:port within the deadline. */
static int conn_connect(kc_client_t *kc, kc_conn_t *c, const char *host, int port,
                        int64_t deadline) {
    snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        kc_fail(kc, "%s: cannot resolve host: %s", c->addr, gai_strerror(gai));
        return SM_ERR_IO;
    }
    int rc = SM_ERR_IO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            kc_fail(kc, "%s: socket: %s", c->addr, strerror(errno));
            continue;
        }
        c->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                kc_fail(kc, "cannot connect to %s: %s", c->addr, strerror(errno));
                conn_close(c);
                continue;
            }
            if (wait_fd(kc, c, POLLOUT, deadline) != SM_OK) {
                kc_fail(kc, "cannot connect to %s: no answer within %d ms", c->addr,
                        (int)(KC_CONNECT_TIMEOUT_MS < kc->timeout_ms ? KC_CONNECT_TIMEOUT_MS
                                                                      : kc->timeout_ms));
                conn_close(c);
                continue;
            }
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
            if (soerr != 0) {
                kc_fail(kc, "cannot connect to %s: %s", c->addr, strerror(soerr));
                conn_close(c);
                continue;
            }
        }
        rc = SM_OK;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(kc_client_t *kc, kc_conn_t *c, const uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(kc, c, POLLOUT, deadline) != SM_OK) return SM_ERR_IO;
            continue;
        }
        if (w < 0) {
            kc_fail(kc, "%s: send: %s", c->addr, strerror(errno));
            return SM_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return SM_OK;
}

static int recv_all(kc_client_t *kc, kc_conn_t *c, uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(kc, c, POLLIN, deadline) != SM_OK) return SM_ERR_IO;
            continue;
        }
        if (r < 0) {
            kc_fail(kc, "%s: receive: %s", c->addr, strerror(errno));
            return SM_ERR_IO;
        }
        if (r == 0) {
            kc_fail(kc, "%s: the broker closed the connection", c->addr);
            return SM_ERR_IO;
        }
        p += r;
        n -= (size_t)r;
    }
    return SM_OK;
}

/* What a peer that is not a Kafka broker seems to speak, from the first four
 * bytes it answered with ("" when they say nothing). */
static void describe_peer(const uint8_t b[4], char *out, size_t cap) {
    out[0] = 0;
    if (b[0] == 0x15 || b[0] == 0x16) {
        if (b[1] == 3) snprintf(out, cap, "TLS; is it an SSL listener?");
        return;
    }
    for (int i = 0; i < 4; i++)
        if (b[i] < 0x20 || b[i] > 0x7e) return;
    if (memcmp(b, "HTTP", 4) == 0)
        snprintf(out, cap, "HTTP");
    else if (memcmp(b, "SSH-", 4) == 0)
        snprintf(out, cap, "SSH");
    else
        snprintf(out, cap, "text starting \"%.4s\"", (const char *)b);
}

/* One exchange on c at an explicit version; the connection is closed on any
 * I/O or framing failure so the next call starts clean. */
static int conn_exchange(kc_client_t *kc, kc_conn_t *c, const proto_api_desc_t *api,
                         int16_t version, const void *req, void *resp, sm_arena_t *a) {
    int64_t deadline = kc_now_ms() + kc->timeout_ms;
    int hv = proto_request_header_version(api->api_key, version);
    int rhv = proto_response_header_version(api->api_key, version);
    if (hv < 0 || rhv < 0) {
        kc_fail(kc, "%s v%d: no header version", api->name, version);
        return SM_ERR_VERSION;
    }
    proto_request_header_t h;
    proto_request_header_init(&h);
    h.request_api_key = api->api_key;
    h.request_api_version = version;
    h.correlation_id = c->next_correlation++;
    h.client_id = sm_str_from(kc->client_id[0] ? kc->client_id : "samsa-cli");
    size_t hlen = proto_request_header_size((int16_t)hv, &h);
    size_t blen = api->request->size(version, req);
    size_t total = 4 + hlen + blen;
    uint8_t *out = sm_arena_alloc(a, total);
    if (!out) {
        kc_fail(kc, "out of memory encoding %s", api->name);
        return SM_ERR_NOMEM;
    }
    sm_writer_t w = sm_writer_make(out, total);
    int rc = sm_wr_i32(&w, (int32_t)(hlen + blen));
    if (rc == SM_OK) rc = proto_request_header_encode(&w, (int16_t)hv, &h);
    if (rc == SM_OK) rc = api->request->encode(&w, version, req);
    if (rc != SM_OK) {
        kc_fail(kc, "encoding %s v%d: %s", api->name, version, sm_strerror(rc));
        return rc;
    }
    rc = send_all(kc, c, out, total, deadline);
    if (rc != SM_OK) goto fail;
    uint8_t szb[4];
    rc = recv_all(kc, c, szb, 4, deadline);
    if (rc != SM_OK) goto fail;
    int32_t size =
        (int32_t)((uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3]);
    if (size < 4 || size > KC_MAX_FRAME) {
        char what[64];
        describe_peer(szb, what, sizeof(what));
        if (what[0])
            kc_fail(kc, "%s: not a Kafka broker (it answered %s)", c->addr, what);
        else
            kc_fail(kc, "%s: bad response size %d to %s", c->addr, size, api->name);
        rc = SM_ERR_PARSE;
        goto fail;
    }
    uint8_t *frame = sm_arena_alloc(a, (size_t)size);
    if (!frame) {
        kc_fail(kc, "out of memory reading %s", api->name);
        rc = SM_ERR_NOMEM;
        goto fail;
    }
    rc = recv_all(kc, c, frame, (size_t)size, deadline);
    if (rc != SM_OK) goto fail;
    sm_reader_t r = sm_reader_make(frame, (size_t)size);
    proto_response_header_t rh;
    rc = proto_response_header_decode(&r, a, (int16_t)rhv, &rh);
    if (rc == SM_OK && rh.correlation_id != h.correlation_id) {
        kc_fail(kc, "%s: response to %s has correlation id %d, expected %d", c->addr, api->name,
                rh.correlation_id, h.correlation_id);
        rc = SM_ERR_PARSE;
        goto fail;
    }
    if (rc == SM_OK) rc = api->response->decode(&r, a, version, resp);
    if (rc != SM_OK) {
        kc_fail(kc, "%s: cannot decode the %s v%d response: %s", c->addr, api->name, version,
                sm_strerror(rc));
        goto fail;
    }
    return SM_OK;
fail:
    conn_close(c);
    return rc;
}

/* ApiVersions: v3 first; a broker that does not know v3 answers in v0 with
 * UNSUPPORTED_VERSION, so retry at v0 on a fresh connection. */
static int conn_negotiate(kc_client_t *kc, kc_conn_t *c, const char *host, int port) {
    const proto_api_desc_t *api = proto_api_lookup(PROTO_API_VERSIONS_REQUEST_API_KEY);
    int16_t versions[2] = {3, 0};
    for (int i = 0; i < 2; i++) {
        sm_arena_t a;
        sm_arena_init(&a, 0);
        int connect_ms =
            kc->timeout_ms < KC_CONNECT_TIMEOUT_MS ? kc->timeout_ms : KC_CONNECT_TIMEOUT_MS;
        if (c->fd < 0 && conn_connect(kc, c, host, port, kc_now_ms() + connect_ms) != SM_OK) {
            sm_arena_free(&a);
            return SM_ERR_IO;
        }
        proto_api_versions_request_t req;
        proto_api_versions_request_init(&req);
        req.client_software_name = SM_STR_LIT("samsa-cli");
        req.client_software_version = SM_STR_LIT("1");
        proto_api_versions_response_t resp;
        int rc = conn_exchange(kc, c, api, versions[i], &req, &resp, &a);
        if (rc == SM_OK && resp.error_code == PROTO_ERR_NONE) {
            for (int32_t k = 0; k < resp.api_keys.n; k++) {
                const proto_api_versions_response_api_version_t *v = &resp.api_keys.v[k];
                if (v->api_key < 0 || v->api_key >= KC_MAX_API) continue;
                c->api_min[v->api_key] = v->min_version;
                c->api_max[v->api_key] = v->max_version;
            }
            sm_arena_free(&a);
            return SM_OK;
        }
        sm_arena_free(&a);
        if (rc == SM_OK && resp.error_code != PROTO_ERR_UNSUPPORTED_VERSION) {
            kc_fail(kc, "%s: ApiVersions: %s", c->addr, proto_error_name(resp.error_code));
            conn_close(c);
            return SM_ERR;
        }
        if (rc != SM_OK) return rc; /* not an old broker: a dead or foreign peer */
        conn_close(c);
    }
    return SM_ERR;
}

/* Splits "host:port" or "[v6]:port"; host gets at most hostcap-1 bytes. */
static int split_hostport(const char *s, size_t n, char *host, size_t hostcap, int *port) {
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':') colon = s + i;
    if (!colon || colon == s || colon == s + n - 1) return SM_ERR_PARSE;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostcap) return SM_ERR_PARSE;
    memcpy(host, h, hl);
    host[hl] = '\0';
    long p = 0;
    for (const char *q = colon + 1; q < s + n; q++) {
        if (*q < '0' || *q > '9') return SM_ERR_PARSE;
        p = p * 10 + (*q - '0');
        if (p > 65535) return SM_ERR_PARSE;
    }
    if (p == 0) return SM_ERR_PARSE;
    *port = (int)p;
    return SM_OK;
}

int kc_open(kc_client_t *kc, const char *bootstrap, int timeout_ms) {
    memset(kc, 0, sizeof(*kc));
    kc->timeout_ms = timeout_ms;
    conn_reset(&kc->boot, -1);
    char errs[sizeof(kc->err)] = "";
    const char *p = bootstrap;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char host[256];
        int port;
        if (split_hostport(p, n, host, sizeof(host), &port) != SM_OK) {
            kc_fail(kc, "--bootstrap-server: '%.*s' is not host:port", (int)n, p);
            return SM_ERR_PARSE;
        }
        conn_reset(&kc->boot, -1);
        if (conn_negotiate(kc, &kc->boot, host, port) == SM_OK) return SM_OK;
        size_t used = strlen(errs);
        if (used && used + 2 < sizeof(errs)) {
            memcpy(errs + used, "; ", 3);
            used += 2;
        }
        size_t n_err = strlen(kc->err);
        if (n_err > sizeof(errs) - 1 - used) n_err = sizeof(errs) - 1 - used;
        memcpy(errs + used, kc->err, n_err);
        errs[used + n_err] = '\0';
        p = end ? end + 1 : p + n;
    }
    if (!errs[0]) {
        kc_fail(kc, "--bootstrap-server: no servers given");
        return SM_ERR_PARSE;
    }
    kc_fail(kc, "%s", errs);
    return SM_ERR_IO;
}

void kc_close(kc_client_t *kc) {
    conn_close(&kc->boot);
    for (size_t i = 0; i < kc->nconns; i++)
        conn_close(&kc->conns[i]);
    free(kc->brokers);
    kc->brokers = NULL;
    kc->nbrokers = 0;
    kc->nconns = 0;
}

int16_t kc_api_max(const kc_client_t *kc, int16_t api_key) {
    if (api_key < 0 || api_key >= KC_MAX_API) return -1;
    return kc->boot.api_max[api_key];
}

int16_t kc_api_min(const kc_client_t *kc, int16_t api_key) {
    if (api_key < 0 || api_key >= KC_MAX_API) return -1;
    return kc->boot.api_min[api_key];
}

/* The connection for node (-1: bootstrap), connected and negotiated. */
static int conn_for(kc_client_t *kc, int32_t node, kc_conn_t **out) {
    if (node < 0) {
        *out = &kc->boot;
        if (kc->boot.fd >= 0) return SM_OK;
        kc_fail(kc, "the connection to %s was lost", kc->boot.addr);
        return SM_ERR_IO;
    }
    for (size_t i = 0; i < kc->nconns; i++)
        if (kc->conns[i].node_id == node && kc->conns[i].fd >= 0) {
            *out = &kc->conns[i];
            return SM_OK;
        }
    const kc_broker_t *b = NULL;
    for (size_t i = 0; i < kc->nbrokers; i++)
        if (kc->brokers[i].node_id == node) b = &kc->brokers[i];
    if (!b) {
        kc_fail(kc, "broker %d is not in the cluster's metadata", node);
        return SM_ERR_NOTFOUND;
    }
    kc_conn_t *c = NULL;
    for (size_t i = 0; i < kc->nconns; i++)
        if (kc->conns[i].node_id == node) c = &kc->conns[i];
    if (!c) {
        if (kc->nconns == KC_MAX_CONNS) {
            kc_fail(kc, "too many brokers to connect to");
            return SM_ERR_NOMEM;
        }
        c = &kc->conns[kc->nconns++];
    }
    conn_reset(c, node);
    int rc = conn_negotiate(kc, c, b->host, b->port);
    if (rc != SM_OK) return rc;
    *out = c;
    return SM_OK;
}

int kc_call(kc_client_t *kc, int32_t node, int16_t api_key, int16_t max_version, const void *req,
            void *resp, sm_arena_t *a, int16_t *version) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    if (!api || !api->name) {
        kc_fail(kc, "unknown api key %d", api_key);
        return SM_ERR_VERSION;
    }
    kc_conn_t *c;
    int rc = conn_for(kc, node, &c);
    if (rc != SM_OK) return rc;
    int16_t bmax = api_key < KC_MAX_API ? c->api_max[api_key] : -1;
    int16_t bmin = api_key < KC_MAX_API ? c->api_min[api_key] : -1;
    int16_t v = max_version < bmax ? max_version : bmax;
    if (v > api->request->max_version) v = api->request->max_version;
    if (bmax < 0 || v < bmin || v < api->request->min_version) {
        kc_fail(kc, "the broker at %s does not support %s", c->addr, api->name);
        return SM_ERR_VERSION;
    }
    if (version) *version = v;
    return conn_exchange(kc, c, api, v, req, resp, a);
}

int kc_metadata(kc_client_t *kc, const char *const *names, size_t ntopics, sm_arena_t *a,
                proto_metadata_response_t *out) {
    proto_metadata_request_t req;
    proto_metadata_request_init(&req);
    if (names) {
        req.topics.n = (int32_t)ntopics;
        req.topics.v = sm_arena_calloc(a, ntopics ? ntopics : 1, sizeof(*req.topics.v));
        if (!req.topics.v) return SM_ERR_NOMEM;
        for (size_t i = 0; i < ntopics; i++)
            req.topics.v[i].name = sm_arena_str(a, names[i]);
    } else {
        req.topics.n = -1;
    }
    req.allow_auto_topic_creation = false;
    int rc = kc_call(kc, -1, PROTO_METADATA_REQUEST_API_KEY, 12, &req, out, a, NULL);
    if (rc != SM_OK) return rc;
    kc_broker_t *bs = calloc(out->brokers.n > 0 ? (size_t)out->brokers.n : 1, sizeof(*bs));
    if (!bs) return SM_ERR_NOMEM;
    size_t nb = 0;
    for (int32_t i = 0; i < out->brokers.n; i++) {
        const proto_metadata_response_metadata_response_broker_t *b = &out->brokers.v[i];
        if (b->host.len < 0 || (size_t)b->host.len >= sizeof(bs[nb].host)) continue;
        bs[nb].node_id = b->node_id;
        memcpy(bs[nb].host, b->host.ptr, (size_t)b->host.len);
        bs[nb].host[b->host.len] = '\0';
        bs[nb].port = b->port;
        nb++;
    }
    free(kc->brokers);
    kc->brokers = bs;
    kc->nbrokers = nb;
    return SM_OK;
}

int kc_find_coordinator(kc_client_t *kc, const char *group, sm_arena_t *a, int32_t *node,
                        int16_t *kerr, sm_str_t *kmsg) {
    if (!kc->brokers) {
        static const char *const none[1] = {NULL};
        proto_metadata_response_t md;
        int rc = kc_metadata(kc, none, 0, a, &md);
        if (rc != SM_OK) return rc;
    }
    proto_find_coordinator_request_t req;
    proto_find_coordinator_request_init(&req);
    req.key = sm_arena_str(a, group);
    req.key_type = 0;
    req.coordinator_keys.n = 1;
    req.coordinator_keys.v = &req.key;
    proto_find_coordinator_response_t resp;
    int16_t v;
    int rc = kc_call(kc, -1, PROTO_FIND_COORDINATOR_REQUEST_API_KEY, 4, &req, &resp, a, &v);
    if (rc != SM_OK) return rc;
    *node = -1;
    *kerr = PROTO_ERR_NONE;
    *kmsg = SM_STR_NULL;
    if (v >= 4) {
        if (resp.coordinators.n < 1) {
            kc_fail(kc, "FindCoordinator: the answer has no coordinator");
            return SM_ERR_PARSE;
        }
        *kerr = resp.coordinators.v[0].error_code;
        *kmsg = resp.coordinators.v[0].error_message;
        if (*kerr == PROTO_ERR_NONE) *node = resp.coordinators.v[0].node_id;
    } else {
        *kerr = resp.error_code;
        *kmsg = resp.error_message;
        if (*kerr == PROTO_ERR_NONE) *node = resp.node_id;
    }
    return SM_OK;
}
