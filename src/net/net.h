/*
 * The network layer: epoll event-loop threads that accept connections, cut
 * size-prefixed frames, hand each whole frame to a request callback, and write
 * responses back in request order per connection, even when requests complete
 * out of order or from other threads. It knows nothing of request bodies.
 *
 * A response is a chain of segments: memory (sent with writev) and file ranges
 * (sent with sendfile), each with an optional release callback run once it has
 * been sent or the connection is gone.
 *
 * Threads: each connection belongs to one loop thread; the request callback
 * runs on that thread. net_request_respond / _none / _close may be called from
 * any thread, exactly once per request.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_server net_server_t;
typedef struct net_conn net_conn_t;
typedef struct net_request net_request_t;

typedef struct net_segment {
    const uint8_t *data; /* memory segment when fd < 0 */
    size_t len;
    int fd;              /* file segment when >= 0 */
    int64_t file_pos;
    void (*release)(void *arg); /* called once after sending or on close; may be NULL */
    void *release_arg;
} net_segment_t;

struct net_request {
    net_conn_t *conn;
    uint8_t *frame; /* the frame after its size prefix; owned by the request */
    size_t len;
    uint64_t seq;   /* per-connection sequence number */
    void *user;     /* free for the request handler */
};

typedef struct net_opts {
    const char *host; /* NULL or "" = all interfaces */
    int port;         /* 0 = ephemeral (see net_server_port) */
    int threads;      /* event loops; <= 0: number of cores */
    int32_t max_request_bytes;     /* socket.request.max.bytes */
    int64_t idle_ms;               /* connections.max.idle.ms; <= 0: never */
    int max_inflight_per_conn;     /* stop reading a connection with this many pending */
    size_t max_queued_bytes_per_conn; /* ... or this many bytes of unsent responses */
    /* queued.max.request.bytes: all request frame bytes held, whole or still
     * arriving; reading pauses rather than allocate beyond it. */
    size_t max_inflight_bytes;
    int32_t max_connections;        /* max.connections: beyond it, accept and close */
    int32_t max_connections_per_ip; /* max.connections.per.ip */
    const char *ip_overrides;       /* max.connections.per.ip.overrides ("ip:n,ip:n") */
    /* The sockets are bound (the port is taken and known) but not listening, so connections
     * are refused, until net_server_open(): a cluster broker opens its client listeners only
     * once it has caught up with the metadata log and is unfenced, as Kafka's starts its
     * acceptors. */
    bool start_closed;
    void (*on_request)(net_request_t *req, void *arg);
    void (*on_close)(net_conn_t *c, void *arg); /* connection gone (user data cleanup) */
    void *arg;
} net_opts_t;

void net_opts_default(net_opts_t *o);

int net_server_start(const net_opts_t *o, net_server_t **out);
/* The bound port (after an ephemeral bind). */
int net_server_port(const net_server_t *s);
/* Starts accepting connections on a server started with start_closed (any thread; at most
 * once takes effect; not after net_server_stop). */
void net_server_open(net_server_t *s);
/* Stops accepting, gives in-flight responses up to grace_ms to finish, closes
 * every connection and joins the threads. Frees the server. */
void net_server_stop(net_server_t *s, int64_t grace_ms);

/*
 * Completes req with a response made of nsegs segments (the array is copied;
 * the data must stay valid until each segment's release callback runs). The
 * request frame is freed here: anything borrowed from it must already be
 * encoded into the segments.
 */
void net_request_respond(net_request_t *req, const net_segment_t *segs, int nsegs);
/* Completes req without a response (Produce with acks=0). */
void net_request_respond_none(net_request_t *req);
/* Completes req by closing the connection once earlier responses are sent. */
void net_request_close(net_request_t *req);

const char *net_conn_peer(const net_conn_t *c);
void *net_conn_user(const net_conn_t *c);
void net_conn_set_user(net_conn_t *c, void *user);

/* Counters for tests and metrics. */
typedef struct net_stats {
    uint64_t accepted;
    uint64_t closed;
    uint64_t requests;
    uint64_t inflight_bytes; /* request frame bytes held (the budget in use) */
    uint64_t refused;        /* connections refused: limits, out of descriptors */
    uint64_t slow_closed;    /* closed for a frame arriving too slowly when the budget ran out */
} net_stats_t;
void net_server_stats(net_server_t *s, net_stats_t *out);

#endif
