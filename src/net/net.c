/*
 * Event loops, connections, framing, in-order responses and backpressure (see
 * net.h).
 *
 * Each loop thread owns its listening socket (SO_REUSEPORT spreads accepts
 * over the loops), its connections and everything in them. Other threads only
 * touch a loop through its completion queue (mutex + eventfd). A connection is
 * freed when it is closed and no request of it is still outstanding (refs).
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

#define RBUF_MIN 65536
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
    uint8_t *rbuf;
    size_t rlen, rcap;
    /* A frame larger than the read buffer is read straight into its own
     * buffer (handed to the request as is), so its bytes are never copied or
     * moved in user space: fbuf holds fgot of its fsize bytes. */
    uint8_t *fbuf;
    size_t fgot, fsize;
    pending_t *head, *tail;
    int npending;
    size_t queued_bytes;
    uint64_t next_seq;
    bool in_armed, out_armed;
    bool closed;
    bool in_dispatch;
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
    bool global_paused; /* some connection waits for the global in-flight bound */
};

struct net_server {
    net_opts_t o;
    int port;
    int nloops;
    loop_t *loops;
    atomic_bool stopping;
    atomic_size_t inflight_bytes;
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
}

/* ---------------------------------------------------------------- epoll */

static void arm(net_conn_t *c) {
    struct epoll_event ev = {0};
    ev.events = (c->in_armed ? EPOLLIN : 0) | (c->out_armed ? EPOLLOUT : 0) | EPOLLRDHUP;
    ev.data.ptr = c;
    epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev);
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
    free(c->rbuf);
    free(c->fbuf);
    free(c);
}

static void pending_free(pending_t *p) {
    release_segments(p, p->seg_idx);
    free(p->req.frame);
    free(p);
}

static void conn_close(net_conn_t *c, const char *why) {
    if (c->closed) return;
    loop_t *l = c->loop;
    if (why) sm_debug("net", "closing connection from %s: %s", c->peer, why);
    if (l->srv->o.on_close) l->srv->o.on_close(c, l->srv->o.arg);
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->closed = true;
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

static bool over_limits(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    return c->npending >= s->o.max_inflight_per_conn ||
           c->queued_bytes >= s->o.max_queued_bytes_per_conn ||
           atomic_load(&s->inflight_bytes) >= s->o.max_inflight_bytes;
}

static void dispatch(net_conn_t *c, uint8_t *frame, size_t len) {
    net_server_t *s = c->loop->srv;
    pending_t *p = calloc(1, sizeof(*p));
    if (!p) {
        free(frame);
        conn_close(c, "out of memory");
        return;
    }
    p->req.conn = c;
    p->req.frame = frame;
    p->req.len = len;
    p->req.seq = c->next_seq++;
    p->frame_bytes = len;
    atomic_fetch_add(&s->inflight_bytes, len);
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

/* Writes what can be written, in request order. */
static void conn_flush(net_conn_t *c);

/* Marks p complete; on the loop thread. */
static void complete_on_loop(pending_t *p) {
    net_conn_t *c = p->req.conn;
    net_server_t *s = c->loop->srv;
    p->done = true;
    size_t prev = atomic_fetch_sub(&s->inflight_bytes, p->frame_bytes);
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
    if (!c->in_dispatch) conn_flush(c);
    /* A global bound may have held other connections of this loop. */
    if (prev >= s->o.max_inflight_bytes &&
        atomic_load(&s->inflight_bytes) < s->o.max_inflight_bytes) {
        for (int i = 0; i < s->nloops; i++) {
            uint64_t one = 1;
            if (&s->loops[i] != c->loop && write(s->loops[i].evfd, &one, 8) < 0) {
            }
        }
    }
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

static void process_frames(net_conn_t *c) {
    net_server_t *s = c->loop->srv;
    size_t off = 0;
    c->in_dispatch = true;
    if (c->fbuf && c->fgot == c->fsize) {
        uint8_t *frame = c->fbuf;
        c->fbuf = NULL;
        dispatch(c, frame, c->fsize);
    }
    while (!c->closed && !c->fbuf && c->rlen - off >= 4) {
        if (over_limits(c)) break;
        const uint8_t *q = c->rbuf + off;
        int32_t size =
            (int32_t)((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]);
        if (size <= 0 || size > s->o.max_request_bytes) {
            sm_warn("net", "closing connection from %s: frame size %d outside 1..%d", c->peer, size,
                    s->o.max_request_bytes);
            c->in_dispatch = false;
            conn_close(c, NULL);
            return;
        }
        if (c->rlen - off - 4 < (size_t)size) {
            /* Incomplete. One that does not fit the read buffer continues in
             * a buffer of its own: the bytes so far move there once. */
            if ((size_t)size + 4 > c->rcap) {
                uint8_t *f = malloc((size_t)size);
                if (!f) {
                    c->in_dispatch = false;
                    conn_close(c, "out of memory");
                    return;
                }
                c->fgot = c->rlen - off - 4;
                memcpy(f, q + 4, c->fgot);
                c->fbuf = f;
                c->fsize = (size_t)size;
                off = c->rlen;
            }
            break;
        }
        uint8_t *frame = malloc((size_t)size);
        if (!frame) {
            c->in_dispatch = false;
            conn_close(c, "out of memory");
            return;
        }
        memcpy(frame, q + 4, (size_t)size);
        off += 4 + (size_t)size;
        dispatch(c, frame, (size_t)size);
    }
    c->in_dispatch = false;
    if (c->closed) return;
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    /* Shrink a buffer grown for one large frame, unless the partial frame
     * waiting in it still needs the room. */
    size_t need = 0;
    if (c->rlen >= 4)
        need = 4 + ((uint32_t)c->rbuf[0] << 24 | (uint32_t)c->rbuf[1] << 16 |
                    (uint32_t)c->rbuf[2] << 8 | c->rbuf[3]);
    if (c->rcap > RBUF_MIN && c->rlen <= RBUF_MIN && need <= RBUF_MIN) {
        uint8_t *n = realloc(c->rbuf, RBUF_MIN);
        if (n) {
            c->rbuf = n;
            c->rcap = RBUF_MIN;
        }
    }
    if (over_limits(c)) {
        set_in(c, false);
        if (atomic_load(&s->inflight_bytes) >= s->o.max_inflight_bytes)
            c->loop->global_paused = true;
    } else {
        set_in(c, true);
    }
    conn_flush(c);
}

static void conn_read(net_conn_t *c) {
    for (;;) {
        if (c->closed || over_limits(c)) break;
        if (!c->fbuf && c->rlen == c->rcap) {
            process_frames(c);
            if (c->closed || (!c->fbuf && c->rlen == c->rcap)) break;
            continue;
        }
        /* Into the large frame being read, else into the read buffer. */
        uint8_t *dst = c->fbuf ? c->fbuf + c->fgot : c->rbuf + c->rlen;
        size_t room = c->fbuf ? c->fsize - c->fgot : c->rcap - c->rlen;
        ssize_t n = read(c->fd, dst, room);
        if (n > 0) {
            c->last_active = mono_ms();
            if (c->fbuf) {
                c->fgot += (size_t)n;
                if (c->fgot == c->fsize) process_frames(c);
            } else {
                c->rlen += (size_t)n;
                if (c->rlen == c->rcap || (size_t)n < 4096) process_frames(c);
            }
            continue;
        }
        if (n == 0) {
            process_frames(c);
            conn_close(c, "peer closed");
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        conn_close(c, strerror(errno));
        return;
    }
    if (!c->closed) process_frames(c);
}

/* ---------------------------------------------------------------- writing */

static void conn_flush(net_conn_t *c) {
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
    /* Resume reading once below the limits, starting with buffered frames. */
    if (!c->in_armed && !over_limits(c) && !c->in_dispatch) {
        set_in(c, true);
        if (c->rlen >= 4) process_frames(c);
    }
}

/* ---------------------------------------------------------------- loops */

static void accept_all(loop_t *l) {
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) sm_warn("net", "accept: %s", strerror(errno));
            return;
        }
        if (atomic_load(&l->srv->stopping)) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        net_conn_t *c = calloc(1, sizeof(*c));
        uint8_t *rbuf = malloc(RBUF_MIN);
        if (!c || !rbuf) {
            free(c);
            free(rbuf);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->loop = l;
        c->rbuf = rbuf;
        c->rcap = RBUF_MIN;
        c->refs = 1;
        c->in_armed = true;
        c->last_active = mono_ms();
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
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            close(fd);
            free(rbuf);
            free(c);
            continue;
        }
        c->next = l->conns;
        if (l->conns) l->conns->prev = c;
        l->conns = c;
        l->nconns++;
        atomic_fetch_add(&l->srv->accepted, 1);
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
    if (l->global_paused) {
        l->global_paused = false;
        for (net_conn_t *c = l->conns, *n; c; c = n) {
            n = c->next;
            if (!c->in_armed && !over_limits(c)) {
                set_in(c, true);
                process_frames(c);
            }
        }
    }
}

static void idle_sweep(loop_t *l, int64_t now) {
    int64_t idle = l->srv->o.idle_ms;
    if (idle <= 0) return;
    for (net_conn_t *c = l->conns, *n; c; c = n) {
        n = c->next;
        if (c->npending == 0 && now - c->last_active > idle) conn_close(c, "idle timeout");
    }
}

static void *loop_main(void *arg) {
    loop_t *l = arg;
    net_server_t *s = l->srv;
    current_loop = l;
    struct epoll_event evs[128];
    int64_t next_sweep = mono_ms() + 1000;
    int64_t sweep_every = s->o.idle_ms > 0 && s->o.idle_ms < 1000 ? s->o.idle_ms / 4 + 1 : 1000;
    for (;;) {
        bool stopping = atomic_load(&s->stopping);
        if (stopping) {
            if (l->listen_fd >= 0) {
                epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL);
                close(l->listen_fd);
                l->listen_fd = -1;
            }
            bool busy = false;
            for (net_conn_t *c = l->conns; c; c = c->next)
                if (c->head) busy = true;
            if (!busy || mono_ms() >= s->stop_deadline) break;
        }
        int64_t now = mono_ms();
        int timeout = (int)(next_sweep > now ? next_sweep - now : 0);
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
            }
        }
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr != &l->listen_fd && ptr != &l->evfd) conn_unref(ptr);
        }
        now = mono_ms();
        if (now >= next_sweep) {
            idle_sweep(l, now);
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
static int listen_socket(const char *host, int port, bool probe, int *bound_port) {
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
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && (probe || listen(fd, 1024) == 0)) {
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

int net_server_start(const net_opts_t *o, net_server_t **out) {
    net_server_t *s = calloc(1, sizeof(*s));
    if (!s) return SM_ERR_NOMEM;
    s->o = *o;
    if (s->o.max_inflight_per_conn <= 0) s->o.max_inflight_per_conn = 100;
    if (!s->o.max_queued_bytes_per_conn) s->o.max_queued_bytes_per_conn = 64u << 20;
    if (!s->o.max_inflight_bytes) s->o.max_inflight_bytes = 512u << 20;
    int n = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    s->nloops = n;
    s->loops = calloc((size_t)n, sizeof(loop_t));
    if (!s->loops) {
        free(s);
        return SM_ERR_NOMEM;
    }
    int port = o->port;
    int rc = SM_OK;
    if (port > 0) {
        int unused;
        int probe = listen_socket(o->host, port, true, &unused);
        if (probe < 0) {
            sm_error("net", "cannot listen on %s:%d: %s", o->host && *o->host ? o->host : "*", port,
                     strerror(errno));
            free(s->loops);
            free(s);
            return SM_ERR_IO;
        }
        close(probe);
    }
    for (int i = 0; i < n; i++) {
        loop_t *l = &s->loops[i];
        l->srv = s;
        l->epfd = l->evfd = l->listen_fd = -1;
        pthread_mutex_init(&l->cq_mu, NULL);
        int bound = 0;
        l->listen_fd = listen_socket(o->host, port, false, &bound);
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
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev);
        struct epoll_event ev2 = {.events = EPOLLIN, .data.ptr = &l->evfd};
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev2);
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
            pthread_mutex_destroy(&l->cq_mu);
        }
        free(s->loops);
        free(s);
        return rc;
    }
    *out = s;
    return SM_OK;
}

int net_server_port(const net_server_t *s) { return s->port; }

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
        pthread_mutex_destroy(&l->cq_mu);
    }
    free(s->loops);
    free(s);
}

const char *net_conn_peer(const net_conn_t *c) { return c->peer; }
void *net_conn_user(const net_conn_t *c) { return c->user; }
void net_conn_set_user(net_conn_t *c, void *user) { c->user = user; }

void net_server_stats(net_server_t *s, net_stats_t *out) {
    out->accepted = atomic_load(&s->accepted);
    out->closed = atomic_load(&s->closed);
    out->requests = atomic_load(&s->requests);
    out->inflight_bytes = atomic_load(&s->inflight_bytes);
}
