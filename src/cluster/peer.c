/*
 * Connections from this node to the other voters' controller listeners, owned by the quorum
 * thread: non-blocking connect, request frames written in order, response frames matched to
 * their requests by correlation id.
 *
 * Peers are made on first use, two per node: its address comes from controller.quorum.voters,
 * or in a dynamic quorum (KIP-853) from the voter set in the log, a leader's endpoint learned
 * from a Fetch answer, or controller.quorum.bootstrap.servers for a bootstrap Fetch (the
 * negative ids RAFT_BOOTSTRAP_NODE(k)); a peer whose voter moved is redialled.
 *
 * States of a peer: down (fd -1, retry_at says when to dial again) -> connecting -> up.
 * Invariants: every request on a connection is in `pending` until its response arrives or
 * the connection drops; on a drop each pending request is failed exactly once (Raft requests
 * are forgotten: Raft retries; relays go back to waiting for a controller; registration and
 * heartbeats are marked not in flight; an AlterPartition is answered NOT_CONTROLLER). A
 * relay that gives up an attempt still in `pending` clears its fwd: the late answer is read
 * and dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "cluster/cluster_impl.h"
#include "protocol/request.h"
#include "raft/raft_codec.h"
#include "raft/raft_voters.h"

#define RECONNECT_MS 200
#define MAX_FRAME (256u << 20)

static void peer_down(cluster_t *cl, cl_peer_t *p, const char *why);

void cl_peers_init(cluster_t *cl) { cl->n_peers = 0; }

/* Where node id's controller listener is (this node too when it is a voter: its broker
 * half registers with its own controller over the wire like any other broker). */
static bool peer_address(cluster_t *cl, int32_t id, const char **host, int32_t *port) {
    if (id < 0) {
        int k = RAFT_BOOTSTRAP_INDEX(id);
        if (k < 0 || k >= cl->o.n_bootstrap) return false;
        *host = cl->o.bootstrap[k].host;
        *port = cl->o.bootstrap[k].port;
        return true;
    }
    for (int i = 0; i < cl->o.n_voters; i++)
        if (cl->o.voters[i].id == id) {
            *host = cl->o.voters[i].host;
            *port = cl->o.voters[i].port;
            return true;
        }
    const raft_voter_set_t *vs = cl->raft ? raft_voters(cl->raft) : NULL;
    int i = vs ? raft_voters_find(vs, id) : -1;
    if (i >= 0 && vs->v[i].host[0]) {
        *host = vs->v[i].host;
        *port = vs->v[i].port;
        return true;
    }
    for (int k = 0; k < cl->n_learned; k++)
        if (cl->learned[k].id == id) {
            *host = cl->learned[k].host;
            *port = cl->learned[k].port;
            return true;
        }
    return false;
}

void cl_peer_learn(cluster_t *cl, int32_t id, const char *host, int32_t port) {
    int k = 0;
    while (k < cl->n_learned && cl->learned[k].id != id)
        k++;
    if (k == cl->n_learned) {
        if (k == RAFT_MAX_VOTERS) k = 0; /* forget the oldest */
        else cl->n_learned++;
    }
    cl->learned[k].id = id;
    snprintf(cl->learned[k].host, sizeof(cl->learned[k].host), "%s", host);
    cl->learned[k].port = port;
}

cl_peer_t *cl_peer(cluster_t *cl, int32_t id, bool control) {
    const char *host = "";
    int32_t port = 0;
    bool known = peer_address(cl, id, &host, &port);
    for (int i = 0; i < cl->n_peers; i++) {
        cl_peer_t *p = &cl->peers[i];
        if (p->id != id || p->control != control) continue;
        if (known && (p->port != port || strcmp(p->host, host) != 0)) { /* the voter moved */
            peer_down(cl, p, "its endpoint changed");
            snprintf(p->host, sizeof(p->host), "%s", host);
            p->port = port;
            p->retry_at = 0;
        }
        return p;
    }
    if (!known || cl->n_peers == CL_MAX_PEERS) return NULL;
    cl_peer_t *p = &cl->peers[cl->n_peers++];
    memset(p, 0, sizeof(*p));
    p->control = control;
    p->id = id;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    p->fd = -1;
    p->next_corr = 1;
    return p;
}

static void fail_pending(cluster_t *cl, cl_peer_t *p) {
    cl_out_t *o = p->pending;
    p->pending = NULL;
    while (o) {
        cl_out_t *next = o->next;
        if (o->kind == CL_OUT_FORWARD) {
            if (o->fwd) cl_fwd_abandon(o->fwd); /* waits for a controller again (sweep) */
        } else if (o->kind == CL_OUT_REGISTER || o->kind == CL_OUT_HEARTBEAT ||
                   o->kind == CL_OUT_ALTER) {
            cl_agent_failed(cl, o);
        }
        free(o);
        o = next;
    }
}

static void peer_down(cluster_t *cl, cl_peer_t *p, const char *why) {
    if (p->fd >= 0) {
        epoll_ctl(cl->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
    }
    if (!p->logged_down && why && !p->control)
        sm_info(CL_MOD, "connection to node %d (%s:%d) lost: %s", p->id, p->host, p->port, why);
    p->logged_down = true;
    p->fd = -1;
    p->connecting = false;
    p->wbuf.len = p->wbuf.off = 0;
    p->rbuf.len = p->rbuf.off = 0;
    p->retry_at = cl_now() + RECONNECT_MS;
    fail_pending(cl, p);
    /* A leader whose process died resets or refuses its connections at once. */
    if (!p->control && p->id == atomic_load(&cl->leader_id) && p->id != cl->o.node_id)
        raft_leader_unreachable(cl->raft, cl_now());
}

void cl_peers_close(cluster_t *cl) {
    for (int i = 0; i < cl->n_peers; i++) {
        cl_peer_t *p = &cl->peers[i];
        if (p->fd >= 0) close(p->fd);
        p->fd = -1;
        fail_pending(cl, p);
        cl_buf_free(&p->wbuf);
        cl_buf_free(&p->rbuf);
    }
}

static int dial(cl_peer_t *p) {
    char port[16];
    snprintf(port, sizeof(port), "%d", p->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(p->host, port, &hints, &res) || !res) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, res->ai_addr, res->ai_addrlen) && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* True when p can take a request now (dialling it when it is down and due). */
bool cl_peer_ready(cluster_t *cl, cl_peer_t *p, int64_t now) {
    if (p->fd >= 0) return true;
    if (now < p->retry_at) return false;
    p->fd = dial(p);
    if (p->fd < 0) {
        p->retry_at = now + RECONNECT_MS;
        return false;
    }
    p->connecting = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = p};
    if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, p->fd, &ev)) {
        close(p->fd);
        p->fd = -1;
        p->retry_at = now + RECONNECT_MS;
        return false;
    }
    return true;
}

int cl_peer_send(cluster_t *cl, cl_peer_t *p, uint8_t *frame, size_t len, cl_out_t *out) {
    out->corr = p->next_corr++;
    if (p->next_corr == INT32_MAX) p->next_corr = 1;
    /* correlation id: after size (4), api key (2), version (2) */
    frame[8] = (uint8_t)((uint32_t)out->corr >> 24);
    frame[9] = (uint8_t)((uint32_t)out->corr >> 16);
    frame[10] = (uint8_t)((uint32_t)out->corr >> 8);
    frame[11] = (uint8_t)out->corr;
    int rc = cl_buf_reserve(&p->wbuf, len);
    if (rc == SM_OK) {
        memcpy(p->wbuf.p + p->wbuf.len, frame, len);
        p->wbuf.len += len;
        out->next = p->pending;
        p->pending = out;
    } else {
        free(out);
    }
    free(frame);
    (void)cl;
    return rc;
}

static cl_out_t *take_pending(cl_peer_t *p, int32_t corr) {
    cl_out_t **pp = &p->pending;
    while (*pp && (*pp)->corr != corr)
        pp = &(*pp)->next;
    cl_out_t *o = *pp;
    if (o) *pp = o->next;
    return o;
}

/* One response frame (size prefix stripped). */
static void on_response(cluster_t *cl, cl_peer_t *p, const uint8_t *frame, size_t len) {
    if (len < 4) return;
    int32_t corr = (int32_t)((uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 |
                             (uint32_t)frame[2] << 8 | frame[3]);
    cl_out_t *o = take_pending(p, corr);
    if (!o) return;
    if (o->kind == CL_OUT_FORWARD) {
        cl_fwd_t *f = o->fwd;
        if (f) cl_fwd_abandon(f); /* this attempt is over, answered */
        free(o);
        if (f) cl_fwd_answer(cl, f, frame, len, cl_now());
        return;
    }
    sm_arena_t a;
    sm_arena_init(&a, 0);
    sm_reader_t r = sm_reader_make(frame, len);
    proto_response_header_t rh;
    int hv = proto_response_header_version(o->api_key, o->version);
    if (proto_response_header_decode(&r, &a, (int16_t)hv, &rh) != SM_OK) {
        if (o->kind != CL_OUT_RAFT) cl_agent_failed(cl, o);
    } else if (o->kind == CL_OUT_RAFT) {
        raft_msg_t m;
        if (raft_codec_decode(o->resp_kind, &r, &a, o->version, p->id, cl->o.node_id, &m) ==
            SM_OK) {
            m.corr = o->raft_corr;
            if (m.kind == RAFT_MSG_VOTE_RESP) m.u.vote_resp.pre_vote = o->pre_vote;
            if (m.leader_host[0] && m.leader_id >= 0)
                cl_peer_learn(cl, m.leader_id, m.leader_host, m.leader_port);
            raft_step(cl->raft, cl_now(), &m);
        } else {
            sm_warn(CL_MOD, "undecodable %s from node %d dropped",
                    raft_msg_kind_name(o->resp_kind), p->id);
        }
    } else {
        cl_agent_response(cl, o, &r, &a);
    }
    sm_arena_free(&a);
    free(o);
}

static void do_read(cluster_t *cl, cl_peer_t *p) {
    for (;;) {
        if (cl_buf_reserve(&p->rbuf, 65536) != SM_OK) {
            peer_down(cl, p, "out of memory");
            return;
        }
        ssize_t n = read(p->fd, p->rbuf.p + p->rbuf.len, p->rbuf.cap - p->rbuf.len);
        if (n == 0) {
            peer_down(cl, p, "closed by peer");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            peer_down(cl, p, strerror(errno));
            return;
        }
        p->rbuf.len += (size_t)n;
        while (p->rbuf.len - p->rbuf.off >= 4) {
            const uint8_t *f = p->rbuf.p + p->rbuf.off;
            uint32_t size = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
            if (size > MAX_FRAME) {
                peer_down(cl, p, "oversized response");
                return;
            }
            if (p->rbuf.len - p->rbuf.off < 4 + (size_t)size) {
                if (cl_buf_reserve(&p->rbuf, 4 + (size_t)size) != SM_OK) {
                    peer_down(cl, p, "out of memory");
                    return;
                }
                break;
            }
            p->rbuf.off += 4 + (size_t)size;
            on_response(cl, p, f + 4, size);
            if (p->fd < 0) return; /* on_response may have dropped it */
        }
        if (p->rbuf.off == p->rbuf.len) p->rbuf.off = p->rbuf.len = 0;
    }
}

static void do_write(cluster_t *cl, cl_peer_t *p) {
    while (p->wbuf.off < p->wbuf.len) {
        ssize_t n = write(p->fd, p->wbuf.p + p->wbuf.off, p->wbuf.len - p->wbuf.off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            peer_down(cl, p, strerror(errno));
            return;
        }
        p->wbuf.off += (size_t)n;
    }
    p->wbuf.off = p->wbuf.len = 0;
}

void cl_peer_event(cluster_t *cl, cl_peer_t *p, uint32_t events) {
    if (p->fd < 0) return;
    if (p->connecting) {
        int err = 0;
        socklen_t el = sizeof(err);
        if ((events & (EPOLLERR | EPOLLHUP)) ||
            getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
            peer_down(cl, p, err ? strerror(err) : "connect failed");
            return;
        }
        if (!(events & EPOLLOUT)) return;
        p->connecting = false;
        if (p->logged_down && !p->control)
            sm_info(CL_MOD, "connected to node %d (%s:%d)", p->id, p->host, p->port);
        p->logged_down = false;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) do_read(cl, p);
    if (p->fd >= 0 && (events & EPOLLOUT)) do_write(cl, p);
}

/* Write interest only while bytes wait; an established connection's queued bytes go at once. */
void cl_peers_arm(cluster_t *cl) {
    for (int i = 0; i < cl->n_peers; i++) {
        cl_peer_t *p = &cl->peers[i];
        if (p->fd < 0) continue;
        if (!p->connecting && p->wbuf.off < p->wbuf.len) do_write(cl, p);
        if (p->fd < 0) continue;
        struct epoll_event ev = {
            .events = EPOLLIN | (p->connecting || p->wbuf.off < p->wbuf.len ? EPOLLOUT : 0),
            .data.ptr = p};
        epoll_ctl(cl->epfd, EPOLL_CTL_MOD, p->fd, &ev);
    }
}

void cl_fwd_abandon(cl_fwd_t *f) {
    if (f->out) f->out->fwd = NULL;
    f->out = NULL;
    f->sent = false;
}

bool cl_fwd_try(cluster_t *cl, cl_fwd_t *f, int64_t now) {
    if (f->sent) return true;
    int32_t leader = atomic_load(&cl->leader_id);
    if (leader < 0 || now < f->retry_at) return false;
    if (leader == cl->o.node_id) {
        if (!atomic_load(&cl->active)) return false;
        if (!f->nreq) {
            /* an internal call on the controller itself: the caller's meta_* path already
             * tried locally; answer "no" so it reports NOT_CONTROLLER and retries later */
            cl_fwd_finish(cl, f, NULL, 0);
            return true;
        }
        /* A client's request goes to this node's own controller listener, as any other
         * broker's does (Kafka's combined nodes forward the same way): its answer is read,
         * and the request sent again, by the same rules. */
    }
    cl_peer_t *p = cl_peer(cl, leader, true);
    if (!p || !cl_peer_ready(cl, p, now)) return false;
    const uint8_t *src = f->nreq ? f->nreq->frame : f->frame;
    size_t len = f->nreq ? f->nreq->len : f->len;
    uint8_t *frame = malloc(len + 4);
    cl_out_t *o = calloc(1, sizeof(*o));
    if (!frame || !o) {
        free(frame);
        free(o);
        return false;
    }
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    memcpy(frame + 4, src, len);
    o->kind = CL_OUT_FORWARD;
    o->fwd = f;
    o->api_key = f->api_key;
    if (cl_peer_send(cl, p, frame, len + 4, o) != SM_OK) return false;
    f->sent = true;
    f->out = o;
    f->sent_to = leader;
    f->sent_at = now;
    f->attempts++;
    return true;
}
