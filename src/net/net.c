/*
 * Event loops, connections, framing, in-order responses and backpressure (see
 * net.h).
 *
 * Each loop thread owns its listening socket (SO_REUSEPORT spreads accepts
 * over the loops), its connections and everything in them. Other threads only
 * touch a loop through its completion queue (mutex + eventfd). A connection is
 * freed when it is closed and no request of it is still outstanding (refs).
 *
 * The request budget (queued.max.request.bytes). A connection's reading is
 * in one of three states: reading; paused at its own limits (requests in
 * flight, queued response bytes, a full socket); or waiting for the budget
 * (budget_paused, with the bytes it needs). Invariants:
 * - inflight_bytes is the sum of every frame buffer's capacity, every stash
 *   and every dispatched frame not yet completed; it passes the budget only
 *   for a frame that holds everything held, for bytes already read (stash),
 *   or for the first waiter's step past its wait (so by about one frame).
 * - At most one connection holds the reservation (resv_conn): a waiter, or
 *   the first waiter still receiving the frame it waited for; it is dropped
 *   when that frame is whole, when it waited only for a frame's start and
 *   read on, and when the connection closes. Others take only what leaves
 *   its resv_need free.
 * - While anyone waits, frames slow on the client's side are closed
 *   (reclaim), and loops with waiters look at the budget every
 *   BUDGET_CHECK_MS, so no waiter depends on a give that may not come.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/map.h"

#define RBUF_MIN 65536
#define FRAME_MIN 4096 /* first allocation for a frame not yet at hand */
#define SLOW_FRAME_MS 1000
#define FIRST_WAIT_MAX_MS 2000 /* the first waiter's wait before it goes past the budget */
#define BUDGET_CHECK_MS 100    /* how often loops with waiters look at the budget */
#define IOV_MAX_BATCH 64

typedef struct loop loop_t;

typedef struct pending {
    net_request_t req;       /* first: net_request_t* converts to pending_t* */
    struct pending *next;    /* FIFO of the connection */
    struct pending *cq_next; /* completion queue */
    bool done;
    bool no_response;
    bool close_conn;
    net_segment_t *segs;
    int nsegs;
    int seg_idx;
    size_t seg_off;
    size_t resp_bytes;
    size_t frame_bytes;
} pending_t;

struct net_conn {
    int fd;
    loop_t *loop;
    char peer[64];
    void *user;
    char ip[INET6_ADDRSTRLEN]; /* counted in the server's per-address table */
    /* Receiving: the size prefix (hgot of 4 bytes), then the frame in a
     * buffer of its own (handed to the request as is): fbuf holds fgot of its
     * fsize bytes in fcap allocated. Bytes read but not yet framed while the
     * connection is paused wait in stash (from soff to slen). fcap and slen
     * are charged to the server's budget. */
    uint8_t hdr[4];
    uint8_t hgot;
    uint8_t *fbuf;
    size_t fcap, fgot, fsize;
    uint8_t *stash;
    size_t slen, soff;
    size_t need;        /* budget bytes waited for while budget_paused */
    int64_t frame_t0;   /* when the frame being received started */
    int64_t paused_ms;  /* of that, time spent waiting for the budget (not the client's fault) */
    int64_t paused_at;  /* when budget_paused was set */
    int64_t wait_key;   /* place among the waiters (budget_key): lower goes first */
    bool budget_paused; /* reading stopped until the budget has room */
    bool forced;        /* the first waiter, past its wait: its next take ignores the budget */
    pending_t *head, *tail;
    int npending;
    size_t queued_bytes;
    uint64_t next_seq;
    bool in_armed, out_armed;
    bool closed;
    bool in_read; /* inside conn_read: completions do not flush */
    int refs; /* 1 while open + one per request not yet completed; loop thread only */
    int64_t last_active;
    net_conn_t *prev, *next; /* loop's connection list */
};

struct loop {
    net_server_t *srv;
    int epfd;
    int evfd;
    int listen_fd;
    pthread_t thread;
    pthread_mutex_t cq_mu;
    pending_t *cq_head;
    net_conn_t *conns;
    int nconns;
    int nbudget_paused; /* connections of this loop waiting for the budget */
    bool listening;     /* listen() done and the socket polled (see net_opts_t.start_closed) */
    bool listen_off;    /* listener unpolled after running out of descriptors */
    int64_t listen_resume;
    int spare_fd;       /* kept to accept-and-close at the descriptor limit */
    uint8_t scratch[RBUF_MIN]; /* read buffer shared by the loop's connections */
};

struct net_server {
    net_opts_t o;
    int port;
    int nloops;
    loop_t *loops;
    atomic_bool stopping;
    atomic_bool open; /* accepting connections: at start, or from net_server_open */
    /* Bytes of request frames held: dispatched, being received, stashed. */
    atomic_size_t inflight_bytes;
    atomic_bool budget_wait; /* some connection waits for inflight_bytes to drop */
    atomic_size_t reclaim;   /* bytes waited for: slow frames are closed to free them */
    /* The first of the connections waiting for the budget (lowest wait_key)
     * has resv_need bytes of it reserved: others take only what leaves them
     * free. resv_conn is 0 when nobody waits; written under resv_mu. */
    pthread_mutex_t resv_mu;
    atomic_uintptr_t resv_conn;
    atomic_size_t resv_need;
    int64_t resv_key;
    atomic_int nconns;
    pthread_mutex_t ip_mu;
    sm_map_t per_ip;      /* address -> connections (intptr_t) */
    sm_map_t ip_override; /* address -> limit (intptr_t), max.connections.per.ip.overrides */
    atomic_uint_fast64_t refused, slow_closed;
    atomic_int_fast64_t last_refusal_log;
    atomic_uint_fast64_t accepted, closed, requests;
    int64_t stop_deadline;
};

static __thread loop_t *current_loop;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void net_opts_default(net_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->port = 9092;
    o->threads = 0;
    o->max_request_bytes = 104857600;
    o->idle_ms = 600000;
    o->max_inflight_per_conn = 100;
    o->max_queued_bytes_per_conn = 64u << 20;
    o->max_inflight_bytes = 512u << 20;
    o->max_connections = INT32_MAX;
    o->max_connections_per_ip = INT32_MAX;
}

/* ---------------------------------------------------------------- epoll */

static void arm(net_conn_t *c) {
    struct epoll_event ev = {0};
    ev.events = (c->in_armed ? EPOLLIN : 0) | (c->out_armed ? EPOLLOUT : 0) | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) return;
    /* What is polled cannot change (ENOMEM): the connection is shut down, and
     * the hangup it then reports (polled whatever the mask) closes it on this
     * loop. shutdown's result is ignorable: a peer already gone hangs up too. */
    sm_error("net", "%s: epoll_ctl: %s; closing the connection", c->peer, strerror(errno));
    (void)shutdown(c->fd, SHUT_RDWR);
}

static void set_in(net_conn_t *c, bool on) {
    if (c->in_armed == on || c->closed) return;
    c->in_armed = on;
    arm(c);
}

static void set_out(net_conn_t *c, bool on) {
    if (c->out_armed == on || c->closed) return;
    c->out_armed = on;
    arm(c);
}

/* ---------------------------------------------------------------- requests */

static void release_segments(pending_t *p, int from) {
    for (int i = from; i < p->nsegs; i++)
        if (p->segs[i].release) p->segs[i].release(p->segs[i].release_arg);
    free(p->segs);
    p->segs = NULL;
    p->nsegs = 0;
}

static void conn_unref(net_conn_t *c) {
    if (--c->refs > 0) return;
    free(c);
}

static void pending_free(pending_t *p) {
    release_segments(p, p->seg_idx);
    free(p->req.frame);
    free(p);
}

static void rx_release(net_conn_t *c);
static void ip_count(net_server_t *s, const char *ip, int delta);
static void reclaim_sub(net_server_t *s, size_t n);
static void resv_drop(net_conn_t *c);

static void conn_close(net_conn_t *c, const char *why) {
    if (c->closed) return;
    loop_t *l = c->loop;
    if (why) sm_debug("net", "closing connection from %s: %s", c->peer, why);
    if (l->srv->o.on_close) l->srv->o.on_close(c, l->srv->o.arg);
    /* Ignorable: closing the (never duplicated) descriptor removes it from
     * the epoll set anyway; the DEL only makes it explicit. */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->closed = true;
    rx_release(c);
    if (c->budget_paused) {
        l->nbudget_paused--;
        reclaim_sub(l->srv, c->need);
    }
    c->budget_paused = false;
    resv_drop(c);
    ip_count(l->srv, c->ip, -1);
    atomic_fetch_sub(&l->srv->nconns, 1);
    atomic_fetch_add(&l->srv->closed, 1);
    /* Completed requests go now; outstanding ones are freed on completion. */
    pending_t *p = c->head, *keep = NULL, *keep_tail = NULL;
    while (p) {
        pending_t *next = p->next;
        if (p->done) {
            pending_free(p);
            c->refs--; /* cannot reach 0: the open reference is still held */
        } else {
            p->next = NULL;
            if (keep_tail)
                keep_tail->next = p;
            else
                keep = p;
            keep_tail = p;
        }
        p = next;
    }
    c->head = keep;
    c->tail = keep_tail;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    l->nconns--;
    conn_unref(c);
}

/* The connection's own limits: requests in flight, bytes of responses not
 * yet sent, and a socket that does not take more (a client that does not
 * read its responses gets no more requests read). The server-wide budget is
 * checked where frame bytes are taken from it. */
static bool over_limits(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    return c->npending >= s->o.max_inflight_per_conn ||
           c->queued_bytes >= s->o.max_queued_bytes_per_conn || c->out_armed;
}

static void budget_give(net_server_t *s, size_t n);

static void dispatch(net_conn_t *c, uint8_t *frame, size_t len) {
    net_server_t *s = c->loop->srv;
    pending_t *p = calloc(1, sizeof(*p));
    if (!p) {
        free(frame);
        budget_give(s, len);
        conn_close(c, "out of memory");
        return;
    }
    p->req.conn = c;
    p->req.frame = frame;
    p->req.len = len;
    p->req.seq = c->next_seq++;
    p->frame_bytes = len; /* taken from the budget as the frame arrived */
    atomic_fetch_add(&s->requests, 1);
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
    c->refs++;
    s->o.on_request(&p->req, s->o.arg);
}

/* Writes what can be written, in request order, and resumes reading a
 * connection that has come back below its limits. */
static void conn_flush(net_conn_t *c);

/* Marks p complete; on the loop thread. */
static void complete_on_loop(pending_t *p) {
    net_conn_t *c = p->req.conn;
    net_server_t *s = c->loop->srv;
    p->done = true;
    budget_give(s, p->frame_bytes);
    p->frame_bytes = 0;
    if (c->closed) {
        /* The connection went away while this request was out. */
        if (c->head == p)
            c->head = p->next;
        else
            for (pending_t *q = c->head; q; q = q->next)
                if (q->next == p) {
                    q->next = p->next;
                    if (c->tail == p) c->tail = q;
                    break;
                }
        if (c->tail == p && c->head == NULL) c->tail = NULL;
        pending_free(p);
        conn_unref(c);
        return;
    }
    c->queued_bytes += p->resp_bytes;
    if (c->in_read) return;
    /* The write may free p (and its reference to c) and then close c: c
     * must outlive the flush. */
    c->refs++;
    conn_flush(c);
    conn_unref(c);
}

static void complete(pending_t *p) {
    loop_t *l = p->req.conn->loop;
    if (current_loop == l) {
        complete_on_loop(p);
        return;
    }
    pthread_mutex_lock(&l->cq_mu);
    p->cq_next = l->cq_head;
    l->cq_head = p;
    pthread_mutex_unlock(&l->cq_mu);
    uint64_t one = 1;
    if (write(l->evfd, &one, sizeof(one)) < 0) {
        /* eventfd counter overflow cannot happen with 1-increments in practice */
    }
}

void net_request_respond(net_request_t *req, const net_segment_t *segs, int nsegs) {
    pending_t *p = (pending_t *)req;
    free(req->frame);
    req->frame = NULL;
    if (nsegs > 0) {
        p->segs = malloc(sizeof(*segs) * (size_t)nsegs);
        if (!p->segs) {
            for (int i = 0; i < nsegs; i++)
                if (segs[i].release) segs[i].release(segs[i].release_arg);
            p->close_conn = true;
        } else {
            memcpy(p->segs, segs, sizeof(*segs) * (size_t)nsegs);
            p->nsegs = nsegs;
            for (int i = 0; i < nsegs; i++)
                p->resp_bytes += segs[i].len;
        }
    }
    complete(p);
}

void net_request_respond_none(net_request_t *req) {
    pending_t *p = (pending_t *)req;
    free(req->frame);
    req->frame = NULL;
    p->no_response = true;
    complete(p);
}

void net_request_close(net_request_t *req) {
    pending_t *p = (pending_t *)req;
    free(req->frame);
    req->frame = NULL;
    p->close_conn = true;
    complete(p);
}

/* ---------------------------------------------------------------- reading */

/* Bytes of the budget the connection itself holds (its frame's buffer and
 * its stash). */
static size_t conn_held(const net_conn_t *c) {
    return (c->fbuf ? c->fcap : 0) + (c->stash ? c->slen : 0);
}

/* Whether c may take n more bytes when cur are held in all. Yes when:
 * - nothing but its own bytes is held (a frame larger than the whole
 *   budget still passes);
 * - it is the first waiter and has waited its turn (c->forced, see
 *   budget_resume): it goes past the budget, as Kafka's request pool lets
 *   one request past its limit, so frames waiting for each other's bytes
 *   cannot wait forever;
 * - the bytes fit, leaving the first waiter's reservation free (unless c is
 *   that waiter). */
static bool budget_allows(net_server_t *s, const net_conn_t *c, size_t cur, size_t n) {
    if (cur <= conn_held(c) || c->forced) return true;
    uintptr_t first = atomic_load(&s->resv_conn);
    size_t max = s->o.max_inflight_bytes;
    size_t reserved = first && first != (uintptr_t)c ? atomic_load(&s->resv_need) : 0;
    return cur < max && n <= max - cur && reserved <= max - cur - n;
}

/* Takes n bytes of the in-flight budget (queued.max.request.bytes) for c, if
 * budget_allows; force takes them anyway (bytes already read that must be
 * kept). */
static bool budget_take(net_conn_t *c, size_t n, bool force) {
    net_server_t *s = c->loop->srv;
    size_t cur = atomic_load(&s->inflight_bytes);
    do {
        if (!force && !budget_allows(s, c, cur, n)) return false;
    } while (!atomic_compare_exchange_weak(&s->inflight_bytes, &cur, cur + n));
    if (!force) c->forced = false;
    return true;
}

static bool budget_fits(const net_conn_t *c, size_t n) {
    net_server_t *s = c->loop->srv;
    return budget_allows(s, c, atomic_load(&s->inflight_bytes), n);
}

/* How much of want the budget has room for now. Reads into the scratch
 * buffer are cut to it, so bytes that must be stashed fit the budget too
 * (loops racing for the same room can pass it by a read each). */
static size_t budget_room(const net_conn_t *c, size_t want) {
    net_server_t *s = c->loop->srv;
    size_t cur = atomic_load(&s->inflight_bytes);
    if (budget_allows(s, c, cur, want)) return want;
    uintptr_t first = atomic_load(&s->resv_conn);
    size_t reserved = first && first != (uintptr_t)c ? atomic_load(&s->resv_need) : 0;
    size_t max = s->o.max_inflight_bytes;
    if (cur >= max || reserved >= max - cur) return 0;
    return max - cur - reserved < want ? max - cur - reserved : want;
}

static void poke(loop_t *l) {
    uint64_t one = 1;
    if (write(l->evfd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow with 1-increments in practice */
    }
}

static void budget_give(net_server_t *s, size_t n) {
    if (!n) return;
    atomic_fetch_sub(&s->inflight_bytes, n);
    /* Connections waiting for the budget retry on their loops. */
    if (atomic_load(&s->budget_wait) && atomic_exchange(&s->budget_wait, false))
        for (int i = 0; i < s->nloops; i++)
            poke(&s->loops[i]);
}

/* The order of the waiters: when the wait began, plus 100 ms per MiB of
 * the frame still to come. A request sent at the speed of its link is not
 * kept behind huge frames that arrived first, and those still get their
 * turn (a 100 MiB frame counts as ten seconds younger). */
static int64_t budget_key(const net_conn_t *c) {
    size_t left = 0;
    if (c->fbuf)
        left = c->fsize - c->fgot;
    else if (c->hgot == 4)
        left = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 |
               c->hdr[3];
    return c->paused_at + (int64_t)(left / 10486);
}

/* What the first waiter keeps reserved: the rest of its frame (it keeps
 * the reservation until the frame is whole), else what it waits for. */
static size_t resv_left(const net_conn_t *c) {
    if (c->fbuf) return c->fsize - c->fcap;
    if (c->hgot == 4)
        return (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 |
               c->hdr[3];
    return c->need;
}

/* c (waiting) takes the reservation when nobody has it or it comes first. */
static void resv_offer(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    pthread_mutex_lock(&s->resv_mu);
    uintptr_t first = atomic_load(&s->resv_conn);
    if (!first || first == (uintptr_t)c || c->wait_key < s->resv_key) {
        s->resv_key = c->wait_key;
        atomic_store(&s->resv_need, resv_left(c));
        atomic_store(&s->resv_conn, (uintptr_t)c);
    }
    pthread_mutex_unlock(&s->resv_mu);
}

/* The reservation follows what its holder still needs as its frame grows. */
static void resv_update(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    pthread_mutex_lock(&s->resv_mu);
    if (atomic_load(&s->resv_conn) == (uintptr_t)c) atomic_store(&s->resv_need, resv_left(c));
    pthread_mutex_unlock(&s->resv_mu);
}

/* c's frame is whole, or c is closed: if it held the reservation, the
 * waiters (woken on every loop) offer again. */
static void resv_drop(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    c->forced = false;
    if (atomic_load(&s->resv_conn) != (uintptr_t)c) return;
    pthread_mutex_lock(&s->resv_mu);
    bool had = atomic_load(&s->resv_conn) == (uintptr_t)c;
    if (had) {
        atomic_store(&s->resv_conn, 0);
        atomic_store(&s->resv_need, 0);
    }
    pthread_mutex_unlock(&s->resv_mu);
    if (had)
        for (int i = 0; i < s->nloops; i++)
            poke(&s->loops[i]);
}

/* Stops reading c until need bytes of the budget are free. */
static void wait_budget(net_conn_t *c, size_t need) {
    loop_t *l = c->loop;
    net_server_t *s = l->srv;
    c->need = need;
    set_in(c, false);
    atomic_store(&s->budget_wait, true);
    if (!c->budget_paused) {
        l->nbudget_paused++;
        c->budget_paused = true;
        c->paused_at = mono_ms();
        c->wait_key = budget_key(c);
        resv_offer(c);
        /* Every loop looks for slow frames to close (reclaim_slow_frames). */
        atomic_fetch_add(&s->reclaim, need);
        for (int i = 0; i < s->nloops; i++)
            poke(&s->loops[i]);
    } else {
        resv_offer(c);
        /* Bytes given back between the failed take and the flag. */
        if (budget_fits(c, need)) poke(l);
    }
}

static void reclaim_sub(net_server_t *s, size_t n) {
    size_t cur = atomic_load(&s->reclaim);
    while (cur && !atomic_compare_exchange_weak(&s->reclaim, &cur, cur > n ? cur - n : 0)) {
    }
}

/* Slowloris defence: while connections wait for the budget, frames that
 * have been arriving for more than SLOW_FRAME_MS lose their connection, until
 * the bytes waited for are freed. A client sending at the speed of its link
 * completes a frame long before; one that trickles a huge frame holds the
 * budget hostage and is the one to go. */
/* How long the client has taken over its frame, leaving out the time the
 * broker made it wait for the budget. */
static int64_t frame_slowness(const net_conn_t *c, int64_t now) {
    return now - c->frame_t0 - c->paused_ms - (c->budget_paused ? now - c->paused_at : 0);
}

static __thread int64_t reclaim_now; /* for by_slowness (qsort has no context) */
static int by_slowness(const void *a, const void *b) {
    int64_t x = frame_slowness(*(net_conn_t *const *)a, reclaim_now);
    int64_t y = frame_slowness(*(net_conn_t *const *)b, reclaim_now);
    return x > y ? -1 : x < y;
}

static void reclaim_slow_frames(loop_t *l, int64_t now) {
    net_server_t *s = l->srv;
    /* Slowest first, counting only the time the client itself took: a
     * frame held up by the budget is waiting its turn, not trickling. */
    net_conn_t **v = malloc(sizeof(*v) * (size_t)(l->nconns + 1));
    if (!v) return;
    int n = 0;
    for (net_conn_t *c = l->conns; c; c = c->next)
        if (c->fbuf && frame_slowness(c, now) >= SLOW_FRAME_MS) v[n++] = c;
    reclaim_now = now;
    qsort(v, (size_t)n, sizeof(*v), by_slowness);
    for (int i = 0; i < n && atomic_load(&s->reclaim) > 0; i++) {
        net_conn_t *c = v[i];
        size_t held = c->fcap;
        sm_debug("net", "closing %s: frame of %zu bytes still arriving after %lld ms while the "
                        "request budget is exhausted", c->peer, c->fsize, (long long)(now - c->frame_t0));
        atomic_fetch_add(&s->slow_closed, 1);
        conn_close(c, NULL);
        reclaim_sub(s, held);
    }
    free(v);
}

/* Frees what the connection holds of frames not yet dispatched. */
static void rx_release(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    size_t held = (c->fbuf ? c->fcap : 0) + (c->stash ? c->slen : 0);
    free(c->fbuf);
    free(c->stash);
    c->fbuf = c->stash = NULL;
    c->fcap = c->fgot = c->fsize = c->slen = c->soff = 0;
    budget_give(s, held);
}

/* Grows the frame buffer to hold at least want bytes: doubling, so a frame
 * sent slowly holds at most twice what has arrived. Returns false when the
 * connection must wait (budget) or was closed. */
static bool frame_grow(net_conn_t *c, size_t want) {
    net_server_t *s = c->loop->srv;
    /* Past its wait (c->forced), a frame arriving at the speed of its link
     * takes all it still needs at once; one that trickles, a doubling. */
    size_t cap = c->forced && frame_slowness(c, mono_ms()) < SLOW_FRAME_MS ? c->fsize : c->fcap * 2;
    if (cap < want) cap = want;
    if (cap > c->fsize) cap = c->fsize;
    if (!budget_take(c, cap - c->fcap, false)) {
        wait_budget(c, cap - c->fcap);
        return false;
    }
    uint8_t *n = realloc(c->fbuf, cap);
    if (!n) {
        budget_give(s, cap - c->fcap);
        conn_close(c, "out of memory");
        return false;
    }
    c->fbuf = n;
    c->fcap = cap;
    if (atomic_load(&s->resv_conn) == (uintptr_t)c) resv_update(c);
    return true;
}

/* Starts the frame whose size prefix is in c->hdr, with room for avail
 * bytes (what is already at hand) or at least FRAME_MIN. */
static bool frame_start(net_conn_t *c, size_t avail) {
    net_server_t *s = c->loop->srv;
    int32_t size = (int32_t)((uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                             (uint32_t)c->hdr[2] << 8 | c->hdr[3]);
    if (size <= 0 || size > s->o.max_request_bytes) {
        sm_warn("net", "closing connection from %s: frame size %d outside 1..%d", c->peer, size,
                s->o.max_request_bytes);
        conn_close(c, NULL);
        return false;
    }
    size_t cap = avail > FRAME_MIN ? avail : FRAME_MIN;
    if (cap > (size_t)size) cap = (size_t)size;
    if (!budget_take(c, cap, false)) {
        wait_budget(c, cap);
        return false;
    }
    c->fbuf = malloc(cap);
    if (!c->fbuf) {
        budget_give(s, cap);
        conn_close(c, "out of memory");
        return false;
    }
    c->fcap = cap;
    c->fsize = (size_t)size;
    c->frame_t0 = mono_ms();
    c->paused_ms = 0;
    c->fgot = 0;
    if (atomic_load(&s->resv_conn) == (uintptr_t)c) resv_update(c);
    return true;
}

static void frame_done(net_conn_t *c) {
    uint8_t *frame = c->fbuf;
    size_t len = c->fsize;
    c->fbuf = NULL;
    c->fcap = c->fgot = c->fsize = 0;
    c->hgot = 0;
    resv_drop(c);
    dispatch(c, frame, len);
}

/* Cuts frames out of n bytes just read; returns how many it consumed. It
 * stops early when the connection reaches its limits, must wait for the
 * budget or is closed. */
static size_t feed(net_conn_t *c, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (!c->closed) {
        if (!c->fbuf) {
            if (c->hgot < 4) {
                if (off == n) break;
                size_t want = 4 - (size_t)c->hgot;
                size_t k = want < n - off ? want : n - off;
                memcpy(c->hdr + c->hgot, p + off, k);
                c->hgot += (uint8_t)k;
                off += k;
                continue;
            }
            /* A bad size closes the connection as soon as it is known. */
            if (c->budget_paused || over_limits(c) || !frame_start(c, n - off)) break;
        }
        if (off == n) break;
        size_t take = c->fsize - c->fgot < n - off ? c->fsize - c->fgot : n - off;
        if (c->fgot + take > c->fcap && !frame_grow(c, c->fgot + take)) break;
        memcpy(c->fbuf + c->fgot, p + off, take);
        c->fgot += take;
        off += take;
        if (c->fgot == c->fsize) frame_done(c);
    }
    return off;
}

/* Keeps bytes read but not yet framed while the connection is paused. */
static void stash_keep(net_conn_t *c, const uint8_t *p, size_t n) {
    c->stash = malloc(n);
    if (!c->stash) {
        conn_close(c, "out of memory");
        return;
    }
    memcpy(c->stash, p, n);
    c->slen = n;
    c->soff = 0;
    budget_take(c, n, true);
}

/* Frames what was stashed; true when the stash is used up. */
static bool stash_feed(net_conn_t *c) {
    c->soff += feed(c, c->stash + c->soff, c->slen - c->soff);
    if (c->closed || c->soff < c->slen) return false;
    size_t n = c->slen;
    free(c->stash);
    c->stash = NULL;
    c->slen = c->soff = 0;
    budget_give(c->loop->srv, n);
    return true;
}

/* Writes what can be written; does not resume reading. */
static void conn_write(net_conn_t *c);

/* Reads and frames until the socket is drained or the connection reaches a
 * limit (then reading is paused); answers already complete are written on
 * the way. */
static void conn_read_some(net_conn_t *c) {
    loop_t *l = c->loop;
    c->in_read = true;
    while (!c->closed) {
        if (c->stash && !stash_feed(c)) {
            /* Writing answers may bring the connection back below its
             * limits; then the stash goes on. */
            conn_write(c);
            if (c->closed || c->budget_paused) break;
            if (over_limits(c)) {
                set_in(c, false);
                break;
            }
            continue;
        }
        if (c->budget_paused) break;
        if (over_limits(c)) {
            set_in(c, false);
            break;
        }
        /* The body of a frame goes straight into its buffer; anything else
         * (size prefixes, small frames) into the loop's scratch buffer. */
        if (c->fbuf && c->fgot == c->fcap && !frame_grow(c, c->fcap + 1)) break;
        bool direct = c->fbuf != NULL;
        uint8_t *dst = direct ? c->fbuf + c->fgot : l->scratch;
        size_t room = direct ? c->fcap - c->fgot : budget_room(c, sizeof(l->scratch));
        if (room == 0) {
            /* What a read brings may have to be kept: wait for room. */
            wait_budget(c, 1);
            break;
        }
        ssize_t n = read(c->fd, dst, room);
        if (n > 0) {
            c->last_active = mono_ms();
            if (direct) {
                c->fgot += (size_t)n;
                if (c->fgot == c->fsize) frame_done(c);
            } else {
                size_t used = feed(c, l->scratch, (size_t)n);
                if (used < (size_t)n && !c->closed) stash_keep(c, l->scratch + used, (size_t)n - used);
            }
            conn_write(c);
            continue;
        }
        if (n == 0) {
            c->in_read = false;
            conn_close(c, "peer closed");
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        c->in_read = false;
        conn_close(c, strerror(errno));
        return;
    }
    c->in_read = false;
}

static void conn_read(net_conn_t *c) {
    for (;;) {
        conn_read_some(c);
        if (c->closed) return;
        conn_write(c);
        /* Reading paused at a limit that this last write lifted (the client
         * drained its socket meanwhile, taking the rest of an answer whose
         * write had waited for room): no event would come to resume it,
         * neither writable (nothing left to write) nor readable (not polled),
         * and the connection would hang with a request unread. Go on. */
        if (c->closed || c->in_armed || c->budget_paused || over_limits(c)) return;
        set_in(c, true);
    }
}

/* ---------------------------------------------------------------- writing */

static void conn_write(net_conn_t *c) {
    while (!c->closed && c->head && c->head->done) {
        pending_t *p = c->head;
        if (p->close_conn) {
            conn_close(c, "closed by the request handler");
            return;
        }
        while (p->seg_idx < p->nsegs) {
            net_segment_t *sg = &p->segs[p->seg_idx];
            ssize_t n;
            if (sg->fd >= 0) {
                off_t off = (off_t)(sg->file_pos + (int64_t)p->seg_off);
                n = sendfile(c->fd, sg->fd, &off, sg->len - p->seg_off);
                if (n == 0 && sg->len > p->seg_off) {
                    /* The file is shorter than promised (truncated): give up. */
                    conn_close(c, "file range shorter than expected");
                    return;
                }
            } else {
                struct iovec iov[IOV_MAX_BATCH];
                int k = 0;
                for (int i = p->seg_idx; i < p->nsegs && k < IOV_MAX_BATCH && p->segs[i].fd < 0;
                     i++) {
                    size_t skip = i == p->seg_idx ? p->seg_off : 0;
                    iov[k].iov_base = (void *)(p->segs[i].data + skip);
                    iov[k].iov_len = p->segs[i].len - skip;
                    k++;
                }
                n = writev(c->fd, iov, k);
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) {
                    set_out(c, true);
                    return;
                }
                conn_close(c, strerror(errno));
                return;
            }
            c->queued_bytes -= (size_t)n < c->queued_bytes ? (size_t)n : c->queued_bytes;
            size_t left = (size_t)n;
            /* Advance over what was written. */
            while (left && p->seg_idx < p->nsegs) {
                net_segment_t *cur = &p->segs[p->seg_idx];
                size_t rest = cur->len - p->seg_off;
                if (left >= rest) {
                    left -= rest;
                    if (cur->release) cur->release(cur->release_arg);
                    cur->release = NULL;
                    p->seg_idx++;
                    p->seg_off = 0;
                } else {
                    p->seg_off += left;
                    left = 0;
                }
            }
            /* Skip empty segments. */
            while (p->seg_idx < p->nsegs && p->segs[p->seg_idx].len == 0) {
                if (p->segs[p->seg_idx].release)
                    p->segs[p->seg_idx].release(p->segs[p->seg_idx].release_arg);
                p->segs[p->seg_idx].release = NULL;
                p->seg_idx++;
            }
        }
        c->head = p->next;
        if (!c->head) c->tail = NULL;
        c->npending--;
        pending_free(p);
        c->refs--;
        c->last_active = mono_ms();
    }
    if (c->closed) return;
    if (!c->head || !c->head->done) set_out(c, false);
}

static void conn_flush(net_conn_t *c) {
    conn_write(c);
    /* Resume reading once below the limits, starting with stashed bytes. */
    if (!c->closed && !c->in_armed && !c->budget_paused && !over_limits(c) && !c->in_read) {
        set_in(c, true);
        conn_read(c);
    }
}

/* ---------------------------------------------------------------- loops */

/* Adds delta to the connections counted for ip; with delta > 0, refuses
 * (returns false, counts nothing) when the address is at its limit. */
static bool ip_admit(net_server_t *s, const char *ip) {
    size_t kl = strlen(ip);
    pthread_mutex_lock(&s->ip_mu);
    intptr_t have = (intptr_t)sm_map_get(&s->per_ip, ip, kl);
    void *ov = sm_map_get(&s->ip_override, ip, kl);
    intptr_t limit = ov ? (intptr_t)ov - 1 : s->o.max_connections_per_ip;
    bool ok = have < limit && sm_map_put(&s->per_ip, ip, kl, (void *)(have + 1)) == SM_OK;
    pthread_mutex_unlock(&s->ip_mu);
    return ok;
}

static void ip_count(net_server_t *s, const char *ip, int delta) {
    size_t kl = strlen(ip);
    pthread_mutex_lock(&s->ip_mu);
    intptr_t have = (intptr_t)sm_map_get(&s->per_ip, ip, kl) + delta;
    if (have <= 0)
        sm_map_del(&s->per_ip, ip, kl);
    else
        sm_map_put(&s->per_ip, ip, kl, (void *)have); /* replacing never allocates */
    pthread_mutex_unlock(&s->ip_mu);
}

/* Logs a refused connection at most once per second per server, with the
 * number refused since the last line. */
static void log_refusal(net_server_t *s, const char *what, const char *peer) {
    uint64_t n = atomic_fetch_add(&s->refused, 1) + 1;
    int64_t now = mono_ms(), last = atomic_load(&s->last_refusal_log);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&s->last_refusal_log, &last, now))
        return;
    sm_warn("net", "refusing connections: %s (latest from %s; %llu refused so far)", what, peer,
            (unsigned long long)n);
}

/* Out of descriptors: the pending connection is accepted with the spare
 * descriptor and closed at once, so the listener does not stay readable and
 * spin the loop; without a spare, the listener is left alone for a second. */
static void accept_at_fd_limit(loop_t *l, int err) {
    net_server_t *s = l->srv;
    log_refusal(s, strerror(err), "?");
    if (l->spare_fd >= 0) {
        close(l->spare_fd);
        l->spare_fd = -1;
        int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) close(fd);
        l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && l->spare_fd >= 0) return;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL))
        sm_error("net", "epoll_ctl: cannot stop polling the listener: %s", strerror(errno));
    l->listen_off = true;
    l->listen_resume = mono_ms() + 1000;
}

static void listen_resume(loop_t *l, int64_t now) {
    if (!l->listen_off || now < l->listen_resume) return;
    if (l->spare_fd < 0) l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev) == 0) l->listen_off = false;
}

static void accept_all(loop_t *l) {
    net_server_t *s = l->srv;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                accept_at_fd_limit(l, errno);
                if (l->listen_off) return;
                continue;
            }
            if (errno != EAGAIN) log_refusal(s, strerror(errno), "?");
            return;
        }
        if (atomic_load(&s->stopping)) {
            close(fd);
            continue;
        }
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        char peer[64];
        snprintf(peer, sizeof(peer), "%s:%d", host, port);
        /* max.connections, then max.connections.per.ip (and its overrides). */
        if (atomic_fetch_add(&s->nconns, 1) >= s->o.max_connections) {
            atomic_fetch_sub(&s->nconns, 1);
            log_refusal(s, "max.connections reached", peer);
            close(fd);
            continue;
        }
        if (!ip_admit(s, host)) {
            atomic_fetch_sub(&s->nconns, 1);
            log_refusal(s, "max.connections.per.ip reached", peer);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        net_conn_t *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (!c || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            ip_count(s, host, -1);
            atomic_fetch_sub(&s->nconns, 1);
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->loop = l;
        c->refs = 1;
        c->in_armed = true;
        c->last_active = mono_ms();
        memcpy(c->ip, host, sizeof(c->ip));
        memcpy(c->peer, peer, sizeof(c->peer));
        c->next = l->conns;
        if (l->conns) l->conns->prev = c;
        l->conns = c;
        l->nconns++;
        atomic_fetch_add(&s->accepted, 1);
    }
}

/* Connections that waited for the budget read again where it now has room. */
static void budget_resume(loop_t *l) {
    net_server_t *s = l->srv;
    int64_t now = mono_ms();
    for (net_conn_t *c = l->conns, *n; c && l->nbudget_paused > 0; c = n) {
        n = c->next;
        if (!c->budget_paused) continue;
        if (!budget_fits(c, c->need)) {
            resv_offer(c);
            if (atomic_load(&s->resv_conn) == (uintptr_t)c &&
                now - c->paused_at >= FIRST_WAIT_MAX_MS) {
                /* The first waiter has waited long enough: what holds the
                 * budget may be frames that each wait for the others' bytes
                 * (none of them slow), or its frame is larger than the whole
                 * budget. It takes one step past the budget. */
                sm_debug("net", "%s: %zu bytes past the request budget after %lld ms of waiting",
                         c->peer, c->need, (long long)(now - c->paused_at));
                c->forced = true;
            } else {
                /* Still waiting (others took what was given back): the next
                 * give wakes this loop, and slow frames are asked for again. */
                atomic_store(&s->budget_wait, true);
                size_t none = 0;
                atomic_compare_exchange_strong(&s->reclaim, &none, c->need);
                continue;
            }
        }
        c->budget_paused = false;
        c->paused_ms += mono_ms() - c->paused_at;
        reclaim_sub(s, c->need);
        c->need = 0;
        l->nbudget_paused--;
        c->refs++; /* n stays valid: only c can be closed by reading it */
        if (!over_limits(c)) {
            set_in(c, true);
            conn_read(c);
        }
        /* Waiting for the start of a frame, not its rest: the place goes. */
        if (!c->closed && !c->budget_paused && !c->fbuf) resv_drop(c);
        conn_unref(c);
    }
}

static void drain_completions(loop_t *l) {
    uint64_t v;
    if (read(l->evfd, &v, sizeof(v)) < 0) {
        /* nothing pending */
    }
    pthread_mutex_lock(&l->cq_mu);
    pending_t *p = l->cq_head;
    l->cq_head = NULL;
    pthread_mutex_unlock(&l->cq_mu);
    /* The queue is LIFO; order does not matter: the FIFO orders responses. */
    while (p) {
        pending_t *next = p->cq_next;
        complete_on_loop(p);
        p = next;
    }
    if (atomic_load(&l->srv->reclaim) > 0) reclaim_slow_frames(l, mono_ms());
    if (l->nbudget_paused > 0) budget_resume(l);
}

static void idle_sweep(loop_t *l, int64_t now) {
    int64_t idle = l->srv->o.idle_ms;
    if (idle <= 0) return;
    for (net_conn_t *c = l->conns, *n; c; c = n) {
        n = c->next;
        if (c->npending == 0 && now - c->last_active > idle) conn_close(c, "idle timeout");
    }
}

/* The loop's socket starts listening and is polled (loop thread). */
static int loop_listen(loop_t *l) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
    if (listen(l->listen_fd, 1024) || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev)) {
        sm_error("net", "cannot listen on port %d: %s", l->srv->port, strerror(errno));
        return SM_ERR_IO;
    }
    l->listening = true;
    return SM_OK;
}

static void *loop_main(void *arg) {
    loop_t *l = arg;
    net_server_t *s = l->srv;
    current_loop = l;
    struct epoll_event evs[128];
    int64_t next_sweep = mono_ms() + 1000;
    int64_t next_budget_check = 0;
    int64_t sweep_every = s->o.idle_ms > 0 && s->o.idle_ms < 1000 ? s->o.idle_ms / 4 + 1 : 1000;
    for (;;) {
        bool stopping = atomic_load(&s->stopping);
        if (stopping) {
            if (l->listen_fd >= 0) {
                (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL); /* as in conn_close */
                close(l->listen_fd);
                l->listen_fd = -1;
            }
            bool busy = false;
            for (net_conn_t *c = l->conns; c; c = c->next)
                if (c->head) busy = true;
            if (!busy || mono_ms() >= s->stop_deadline) break;
        }
        /* net_server_open: each loop starts listening on its own thread (it owns the
         * socket); a failure leaves the other loops' sockets serving the port. */
        if (!stopping && !l->listening && l->listen_fd >= 0 && atomic_load(&s->open) &&
            loop_listen(l) != SM_OK) {
            close(l->listen_fd);
            l->listen_fd = -1;
        }
        int64_t now = mono_ms();
        int64_t wake = l->listen_off && l->listen_resume < next_sweep ? l->listen_resume : next_sweep;
        if (l->nbudget_paused > 0 && next_budget_check < wake) wake = next_budget_check;
        int timeout = (int)(wake > now ? wake - now : 0);
        if (stopping && timeout > 50) timeout = 50;
        int n = epoll_wait(l->epfd, evs, 128, timeout);
        if (n < 0 && errno != EINTR) {
            sm_error("net", "epoll_wait: %s", strerror(errno));
            break;
        }
        /* Every connection with an event in this batch stays allocated until
         * the batch is done, even if handling an earlier event closes it. */
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr != &l->listen_fd && ptr != &l->evfd) ((net_conn_t *)ptr)->refs++;
        }
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &l->listen_fd) {
                accept_all(l);
            } else if (ptr == &l->evfd) {
                drain_completions(l);
            } else {
                net_conn_t *c = ptr;
                if (c->closed) continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    conn_close(c, "socket error");
                    continue;
                }
                if (evs[i].events & EPOLLOUT) conn_flush(c);
                if (!c->closed && (evs[i].events & (EPOLLIN | EPOLLRDHUP)) && c->in_armed)
                    conn_read(c);
                else if (!c->closed && (evs[i].events & EPOLLRDHUP))
                    /* The peer is gone while reading is paused: close now,
                     * as a read would (and level-triggered RDHUP would
                     * otherwise keep waking the loop). */
                    conn_close(c, "peer closed");
            }
        }
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr != &l->listen_fd && ptr != &l->evfd) conn_unref(ptr);
        }
        now = mono_ms();
        listen_resume(l, now);
        /* Waiters look again now and then: the first one may be past its wait. */
        if (l->nbudget_paused > 0 && now >= next_budget_check) {
            budget_resume(l);
            next_budget_check = now + BUDGET_CHECK_MS;
        }
        if (now >= next_sweep) {
            idle_sweep(l, now);
            if (atomic_load(&s->reclaim) > 0) reclaim_slow_frames(l, now);
            next_sweep = now + sweep_every;
        }
    }
    while (l->conns)
        conn_close(l->conns, "server stopping");
    return NULL;
}

/* Binds (and, unless probe, listens on) host:port. The loops' sockets share
 * the port with SO_REUSEPORT; a probe binds without it first, so a port that
 * another process already listens on is refused instead of silently shared. */
/* A socket bound to host:port, not listening yet (connections to it are refused; loop_listen).
 * probe: plain, so binding fails when any other socket holds the port; else with SO_REUSEPORT,
 * as every loop binds the port. */
static int bind_socket(const char *host, int port, bool probe, int *bound_port) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host && *host ? host : NULL, ps, &hints, &res)) return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (!probe) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void server_free(net_server_t *s) {
    sm_map_free(&s->per_ip);
    sm_map_free(&s->ip_override);
    pthread_mutex_destroy(&s->ip_mu);
    pthread_mutex_destroy(&s->resv_mu);
    free(s->loops);
    free(s);
}

/* max.connections.per.ip.overrides: "address:limit" pairs separated by
 * commas (Kafka also takes host names; Samsa takes addresses only). */
static int ip_overrides_parse(net_server_t *s, const char *spec) {
    if (!spec) return SM_OK;
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (p[i] == ':') colon = p + i; /* the last one: IPv6 addresses hold colons */
        char ip[INET6_ADDRSTRLEN];
        size_t il = colon ? (size_t)(colon - p) : 0;
        char *num_end;
        long limit = colon ? strtol(colon + 1, &num_end, 10) : -1;
        if (!colon || il == 0 || il >= sizeof(ip) || limit < 0 || limit > INT32_MAX ||
            num_end != p + len) {
            sm_error("net", "max.connections.per.ip.overrides: cannot read \"%.*s\"", (int)len, p);
            return SM_ERR_PARSE;
        }
        memcpy(ip, p, il);
        ip[il] = 0;
        if (sm_map_put(&s->ip_override, ip, il, (void *)(intptr_t)(limit + 1))) return SM_ERR_NOMEM;
        p += len;
    }
    return SM_OK;
}

int net_server_start(const net_opts_t *o, net_server_t **out) {
    net_server_t *s = calloc(1, sizeof(*s));
    if (!s) return SM_ERR_NOMEM;
    s->o = *o;
    if (s->o.max_inflight_per_conn <= 0) s->o.max_inflight_per_conn = 100;
    if (!s->o.max_queued_bytes_per_conn) s->o.max_queued_bytes_per_conn = 64u << 20;
    if (!s->o.max_inflight_bytes) s->o.max_inflight_bytes = 512u << 20;
    if (s->o.max_connections < 0) s->o.max_connections = INT32_MAX;
    if (s->o.max_connections_per_ip < 0) s->o.max_connections_per_ip = INT32_MAX;
    s->o.ip_overrides = NULL; /* parsed below; the caller's string is not kept */
    atomic_store(&s->open, !o->start_closed);
    pthread_mutex_init(&s->ip_mu, NULL);
    pthread_mutex_init(&s->resv_mu, NULL);
    sm_map_init(&s->per_ip);
    sm_map_init(&s->ip_override);
    if (ip_overrides_parse(s, o->ip_overrides)) {
        server_free(s);
        return SM_ERR_PARSE;
    }
    int n = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    s->nloops = n;
    s->loops = calloc((size_t)n, sizeof(loop_t));
    if (!s->loops) {
        server_free(s);
        return SM_ERR_NOMEM;
    }
    int port = o->port;
    int rc = SM_OK;
    if (port > 0) {
        int unused;
        int probe = bind_socket(o->host, port, true, &unused);
        if (probe < 0) {
            sm_error("net", "cannot listen on %s:%d: %s", o->host && *o->host ? o->host : "*", port,
                     strerror(errno));
            server_free(s);
            return SM_ERR_IO;
        }
        close(probe);
    }
    for (int i = 0; i < n; i++) {
        loop_t *l = &s->loops[i];
        l->srv = s;
        l->epfd = l->evfd = l->listen_fd = -1;
        l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pthread_mutex_init(&l->cq_mu, NULL);
        int bound = 0;
        l->listen_fd = bind_socket(o->host, port, false, &bound);
        if (l->listen_fd < 0) {
            sm_error("net", "cannot listen on %s:%d: %s", o->host && *o->host ? o->host : "*", port,
                     strerror(errno));
            rc = SM_ERR_IO;
            break;
        }
        if (i == 0) port = s->port = bound; /* later loops share the (ephemeral) port */
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->epfd < 0 || l->evfd < 0) {
            rc = SM_ERR_IO;
            break;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->evfd};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev)) {
            sm_error("net", "epoll_ctl: %s", strerror(errno));
            rc = SM_ERR_IO;
            break;
        }
        if (!o->start_closed && (rc = loop_listen(l))) break;
    }
    int started = 0;
    if (rc == SM_OK) {
        for (int i = 0; i < n; i++) {
            if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i])) {
                rc = SM_ERR;
                break;
            }
            started++;
        }
    }
    if (rc) {
        atomic_store(&s->stopping, true);
        for (int i = 0; i < started; i++) {
            uint64_t one = 1;
            if (write(s->loops[i].evfd, &one, 8) < 0) {
            }
            pthread_join(s->loops[i].thread, NULL);
        }
        for (int i = 0; i < n; i++) {
            loop_t *l = &s->loops[i];
            if (l->listen_fd >= 0) close(l->listen_fd);
            if (l->epfd >= 0) close(l->epfd);
            if (l->evfd >= 0) close(l->evfd);
            if (l->spare_fd >= 0) close(l->spare_fd);
            pthread_mutex_destroy(&l->cq_mu);
        }
        server_free(s);
        return rc;
    }
    *out = s;
    return SM_OK;
}

int net_server_port(const net_server_t *s) { return s->port; }

void net_server_open(net_server_t *s) {
    if (atomic_exchange(&s->open, true)) return;
    for (int i = 0; i < s->nloops; i++) {
        uint64_t one = 1;
        if (write(s->loops[i].evfd, &one, 8) < 0)
            sm_warn("net", "cannot wake a network loop: %s", strerror(errno));
    }
}

void net_server_stop(net_server_t *s, int64_t grace_ms) {
    s->stop_deadline = mono_ms() + grace_ms;
    atomic_store(&s->stopping, true);
    for (int i = 0; i < s->nloops; i++) {
        uint64_t one = 1;
        if (write(s->loops[i].evfd, &one, 8) < 0) {
        }
    }
    for (int i = 0; i < s->nloops; i++)
        pthread_join(s->loops[i].thread, NULL);
    for (int i = 0; i < s->nloops; i++) {
        loop_t *l = &s->loops[i];
        /* Completions that arrived after the loop ended. */
        pending_t *p = l->cq_head;
        while (p) {
            pending_t *next = p->cq_next;
            net_conn_t *c = p->req.conn;
            pending_free(p);
            conn_unref(c);
            p = next;
        }
        if (l->listen_fd >= 0) close(l->listen_fd);
        close(l->epfd);
        close(l->evfd);
        if (l->spare_fd >= 0) close(l->spare_fd);
        pthread_mutex_destroy(&l->cq_mu);
    }
    server_free(s);
}

const char *net_conn_peer(const net_conn_t *c) { return c->peer; }
void *net_conn_user(const net_conn_t *c) { return c->user; }
void net_conn_set_user(net_conn_t *c, void *user) { c->user = user; }

void net_server_stats(net_server_t *s, net_stats_t *out) {
    out->accepted = atomic_load(&s->accepted);
    out->closed = atomic_load(&s->closed);
    out->requests = atomic_load(&s->requests);
    out->inflight_bytes = atomic_load(&s->inflight_bytes);
    out->refused = atomic_load(&s->refused);
    out->slow_closed = atomic_load(&s->slow_closed);
}
