/*
 * Replica fetchers and the ISR upkeep (see replica.h).
 *
 * A fetcher is a thread that copies partitions from one leader broker: it
 * sends that broker Fetch requests with this broker's replica id (Fetch v15+
 * ReplicaState; one request for all its partitions, long-polling
 * replica.fetch.wait.max.ms) over one connection, in a fetch session (KIP-227,
 * fetch_session_handler.h: after the first full request, only partitions
 * whose fetch state changed are named), and hands each partition's answer to
 * replica.c (append, truncate, restart). num.replica.fetchers
 * fetchers per leader share its partitions by partition hash. Fetchers are
 * created on first use and live until the broker stops; an empty one waits.
 *
 * States of a fetcher: idle (no partitions) -> disconnected (connects to the
 * leader's inter-broker endpoint from the image; on failure waits
 * replica.fetch.backoff.ms) -> fetching (one request at a time; an I/O error
 * closes the connection and backs off). A partition leaves a fetcher when its
 * leader changes (replica.c calls broker_replicas_follow); an answer for a
 * partition that no longer follows that leader is dropped.
 *
 * Follower throttle (KIP-73): a partition that is follower-throttled here
 * (follower.replication.throttled.replicas) and not in sync is left out of the
 * request (and so of the fetch session: forgotten, named again later) while follower.replication.throttled.rate is exceeded; the bytes
 * fetched for such partitions count against it. A round with every partition
 * left out waits as an idle one does.
 *
 * The ticker thread runs the leaders' ISR upkeep (broker_replica_tick) every
 * replica.lag.time.max.ms / 2 (at most every second).
 *
 * Locks: f->mu (the fetcher list and each fetcher's partitions) is taken
 * after a partition's mu or alone; a fetcher calls into replica.c (which
 * takes partitions' mu) and reads the image without holding it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "broker/delayed.h"
#include "broker/fetch_session_handler.h"
#include "broker/replica.h"
#include "client/kclient.h"
#include "protocol/errors.h"
#include "protocol/gen/api.h"
#include "protocol/gen/fetch_request.h"
#include "protocol/gen/fetch_response.h"

#define FETCH_MOD "replica"
#define FETCH_VERSION 17

typedef struct fetcher fetcher_t;

struct fetcher {
    struct broker_replicas *owner;
    int32_t leader;
    int slot; /* which of num.replica.fetchers */
    pthread_t thread;
    broker_partition_t **parts; /* referenced; under owner->mu */
    int n, cap;
    fetcher_t *next;
};

struct broker_replicas {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    fetcher_t *fetchers;
    pthread_t ticker;
    bool ticker_started;
};

static void wait_ms(struct broker_replicas *r, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->mu);
    if (!r->stopping) pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    pthread_mutex_unlock(&r->mu);
}

/* The leader's endpoint for broker-to-broker traffic: the listener named by
 * inter.broker.listener.name, else PLAINTEXT, else its first. */
static bool leader_endpoint(broker_t *b, int32_t leader, char *out, size_t cap) {
    const char *want = sm_config_str(b->cfg, "inter.broker.listener.name");
    bool ok = false;
    meta_image_rdlock(&b->image);
    const meta_broker_t *bk = meta_image_broker(&b->image, leader);
    if (bk && bk->n_endpoints > 0) {
        const meta_endpoint_t *e = &bk->endpoints[0];
        for (int i = 0; i < bk->n_endpoints; i++)
            if (strcmp(bk->endpoints[i].name, want && *want ? want : "PLAINTEXT") == 0)
                e = &bk->endpoints[i];
        snprintf(out, cap, "%s:%d", e->host, e->port);
        ok = true;
    }
    meta_image_unlock(&b->image);
    return ok;
}

/* The partitions to fetch now, referenced (released by the caller). */
static int snapshot_parts(fetcher_t *f, broker_partition_t ***out) {
    struct broker_replicas *r = f->owner;
    pthread_mutex_lock(&r->mu);
    while (f->n == 0 && !r->stopping)
        pthread_cond_wait(&r->cv, &r->mu);
    int n = r->stopping ? 0 : f->n;
    broker_partition_t **v = n ? calloc((size_t)n, sizeof(*v)) : NULL;
    if (!v) n = 0;
    for (int i = 0; i < n; i++) {
        v[i] = f->parts[i];
        atomic_fetch_add(&v[i]->refs, 1);
    }
    pthread_mutex_unlock(&r->mu);
    *out = v;
    return n;
}

/* One partition's answer. */
static void handle_part(fetcher_t *f, broker_partition_t *p, const replica_fetch_pos_t *pos,
                        const proto_fetch_response_partition_data_t *d) {
    int rc = SM_OK;
    if (d->error_code == PROTO_ERR_NONE && pos->throttled && d->records.len > 0)
        repl_quota_record(&f->owner->b->follower_quota, d->records.len, broker_mono_ms());
    switch (d->error_code) {
    case PROTO_ERR_NONE:
        if (d->diverging_epoch && d->diverging_epoch->end_offset >= -1 &&
            (d->diverging_epoch->epoch >= 0 || d->diverging_epoch->end_offset >= 0))
            rc = broker_replica_diverged(p, f->leader, d->diverging_epoch->epoch,
                                         d->diverging_epoch->end_offset);
        else
            rc = broker_replica_follower_append(p, f->leader, pos->fetch_offset,
                                                (const uint8_t *)d->records.ptr,
                                                d->records.len > 0 ? (size_t)d->records.len : 0,
                                                d->high_watermark, d->log_start_offset);
        break;
    case PROTO_ERR_OFFSET_OUT_OF_RANGE:
        rc = broker_replica_out_of_range(p, f->leader, pos->fetch_offset, d->log_start_offset,
                                         d->high_watermark);
        break;
    default:
        /* NOT_LEADER_OR_FOLLOWER, FENCED / UNKNOWN_LEADER_EPOCH, unknown
         * topic: the metadata will say where it went. */
        sm_debug(FETCH_MOD, "%s-%d: fetch from %d: %s", p->topic, p->index, f->leader,
                 proto_error_name(d->error_code));
        break;
    }
    if (rc != SM_OK)
        sm_warn(FETCH_MOD, "%s-%d: fetched data from %d not applied: %s", p->topic, p->index,
                f->leader, sm_strerror(rc));
}

/* Appends one partition (topic id, index) to a request's topic list, one topic entry per
 * partition. */
static void add_fetch_part(proto_fetch_request_fetch_topic_t *t,
                           proto_fetch_request_fetch_partition_t *fp, const fsh_part_t *w) {
    t->topic = sm_str_from("");
    t->topic_id = w->topic_id;
    t->partitions = (proto_fetch_request_fetch_partition_array_t){1, fp};
    fp->partition = w->partition;
    fp->current_leader_epoch = w->current_leader_epoch;
    fp->fetch_offset = w->fetch_offset;
    fp->last_fetched_epoch = w->last_fetched_epoch;
    fp->log_start_offset = w->log_start;
    fp->partition_max_bytes = w->max_bytes;
    fp->replica_directory_id = (sm_uuid_t){{0}};
    fp->high_watermark = INT64_MAX;
}

/* One Fetch round in the fetcher's session h (full or incremental: only partitions whose
 * fetch state changed are named, those that left are forgotten; the answer may still carry
 * any partition of the session); returns SM_OK, or an error after which the fetcher backs
 * off (and reconnects when the connection failed: *broken). */
static int fetch_round(fetcher_t *f, kc_client_t *kc, fsh_t *h, broker_partition_t **parts,
                       int n, sm_arena_t *a, bool *broken, bool *idle) {
    broker_t *b = f->owner->b;
    *broken = false;
    *idle = true;
    replica_fetch_pos_t *pos = sm_arena_calloc(a, (size_t)n + 1, sizeof(*pos));
    proto_fetch_request_t req;
    proto_fetch_request_init(&req);
    req.replica_id = b->s.node_id;
    proto_fetch_request_replica_state_t *rs = sm_arena_calloc(a, 1, sizeof(*rs));
    fsh_part_t *want = sm_arena_calloc(a, (size_t)n + 1, sizeof(*want));
    int *which = sm_arena_calloc(a, (size_t)n + 1, sizeof(int));
    int *send = sm_arena_calloc(a, (size_t)n + 1, sizeof(int));
    fsh_part_t *forget = sm_arena_calloc(a, (size_t)h->n + 1, sizeof(*forget));
    if (!pos || !rs || !want || !which || !send || !forget) return SM_ERR_NOMEM;
    rs->replica_id = b->s.node_id;
    rs->replica_epoch = -1;
    meta_image_rdlock(&b->image);
    const meta_broker_t *self = meta_image_broker(&b->image, b->s.node_id);
    if (self) rs->replica_epoch = self->epoch;
    meta_image_unlock(&b->image);
    req.replica_state = rs;
    req.max_wait_ms = b->s.replica_fetch_wait_max_ms;
    req.min_bytes = b->s.replica_fetch_min_bytes;
    req.max_bytes = b->s.replica_fetch_response_max_bytes;
    req.isolation_level = 0;
    int nw = 0;
    int over = -1; /* the follower quota, looked at once per round when needed */
    for (int i = 0; i < n; i++) {
        if (!broker_replica_fetch_pos(parts[i], f->leader, &pos[i])) continue;
        /* Left out of the request, so out of the session (forgotten), as Kafka's
         * follower leaves a throttled partition out of its fetch builder. */
        if (pos[i].throttled && !pos[i].in_sync) {
            if (over < 0) over = repl_quota_exceeded(&b->follower_quota, broker_mono_ms());
            if (over) continue;
        }
        want[nw] = (fsh_part_t){parts[i]->topic_id,
                                parts[i]->index,
                                pos[i].fetch_offset,
                                pos[i].log_start,
                                pos[i].current_leader_epoch,
                                pos[i].last_fetched_epoch,
                                b->s.replica_fetch_max_bytes};
        which[nw++] = i;
    }
    if (nw == 0) return SM_OK;
    *idle = false;
    bool full;
    int nsend, nforget;
    int rc = fsh_build(h, want, nw, &full, send, &nsend, forget, &nforget);
    if (rc != SM_OK) return rc;
    req.session_id = h->session_id;
    req.session_epoch = h->epoch;
    proto_fetch_request_fetch_topic_t *topics =
        sm_arena_calloc(a, (size_t)nsend + 1, sizeof(*topics));
    proto_fetch_request_fetch_partition_t *fps =
        sm_arena_calloc(a, (size_t)nsend + 1, sizeof(*fps));
    proto_fetch_request_forgotten_topic_t *gone =
        sm_arena_calloc(a, (size_t)nforget + 1, sizeof(*gone));
    int32_t *gone_parts = sm_arena_calloc(a, (size_t)nforget + 1, sizeof(int32_t));
    if (!topics || !fps || !gone || !gone_parts) {
        fsh_failed(h);
        return SM_ERR_NOMEM;
    }
    for (int k = 0; k < nsend; k++)
        add_fetch_part(&topics[k], &fps[k], &want[send[k]]);
    for (int k = 0; k < nforget; k++) {
        gone_parts[k] = forget[k].partition;
        gone[k].topic = sm_str_from("");
        gone[k].topic_id = forget[k].topic_id;
        gone[k].partitions = (sm_i32_array_t){1, &gone_parts[k]};
    }
    req.topics = (proto_fetch_request_fetch_topic_array_t){nsend, topics};
    req.forgotten_topics_data = (proto_fetch_request_forgotten_topic_array_t){nforget, gone};
    req.rack_id = sm_str_from("");
    proto_fetch_response_t resp;
    rc = kc_call(kc, -1, PROTO_FETCH_REQUEST_API_KEY, FETCH_VERSION, &req, &resp, a, NULL);
    if (rc != SM_OK) {
        fsh_failed(h);
        *broken = true;
        sm_debug(FETCH_MOD, "fetch from %d failed: %s", f->leader, kc->err);
        return rc;
    }
    int32_t had = h->session_id;
    if (!fsh_response(h, resp.error_code, resp.session_id)) {
        sm_debug(FETCH_MOD, "fetch from %d: %s", f->leader, proto_error_name(resp.error_code));
        /* A session error: the next request is full, at once. */
        return resp.error_code == PROTO_ERR_FETCH_SESSION_ID_NOT_FOUND ||
                       resp.error_code == PROTO_ERR_INVALID_FETCH_SESSION_EPOCH
                   ? SM_OK
                   : SM_ERR_AGAIN;
    }
    if (full && h->session_id != 0 && h->session_id != had)
        sm_info(FETCH_MOD, "replica fetcher %d-%d: fetch session %d opened with leader %d (%d "
                           "partitions)",
                b->s.node_id, f->slot, h->session_id, f->leader, nw);
    bool any_error = false;
    for (int32_t i = 0; i < resp.responses.n; i++) {
        const proto_fetch_response_fetchable_topic_response_t *tr = &resp.responses.v[i];
        for (int32_t k = 0; k < tr->partitions.n; k++) {
            const proto_fetch_response_partition_data_t *d = &tr->partitions.v[k];
            int at = fsh_find(h, &tr->topic_id, d->partition_index);
            if (at < 0) continue;
            handle_part(f, parts[which[at]], &pos[which[at]], d);
            if (d->error_code != PROTO_ERR_NONE && d->error_code != PROTO_ERR_OFFSET_OUT_OF_RANGE)
                any_error = true;
        }
    }
    return any_error ? SM_ERR_AGAIN : SM_OK;
}

static void *fetcher_main(void *arg) {
    fetcher_t *f = arg;
    struct broker_replicas *r = f->owner;
    broker_t *b = r->b;
    kc_client_t kc;
    bool connected = false;
    fsh_t session;
    fsh_init(&session);
    int64_t last_complaint = 0;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    for (;;) {
        broker_partition_t **parts;
        int n = snapshot_parts(f, &parts);
        if (n == 0) {
            free(parts);
            break; /* stopping */
        }
        int rc = SM_OK;
        bool broken = false, idle = false;
        if (!connected) {
            char addr[300];
            if (!leader_endpoint(b, f->leader, addr, sizeof(addr))) {
                rc = SM_ERR_NOTFOUND;
            } else if ((rc = kc_open(&kc, addr, b->s.replica_socket_timeout_ms)) != SM_OK) {
                int64_t now = broker_mono_ms();
                if (now - last_complaint > 30000) {
                    sm_warn(FETCH_MOD, "cannot reach leader %d at %s: %s", f->leader, addr, kc.err);
                    last_complaint = now;
                }
                kc_close(&kc);
            } else {
                snprintf(kc.client_id, sizeof(kc.client_id), "replica-fetcher-%d-%d", b->s.node_id,
                         f->slot);
                connected = true;
            }
        }
        if (connected) rc = fetch_round(f, &kc, &session, parts, n, &a, &broken, &idle);
        sm_arena_reset(&a);
        for (int i = 0; i < n; i++)
            broker_partition_put(parts[i]);
        free(parts);
        if (broken && connected) {
            kc_close(&kc);
            connected = false;
        }
        /* Nothing to fetch (every partition moved) or an error: wait a little. */
        if (rc != SM_OK || idle) wait_ms(r, rc != SM_OK ? b->s.replica_fetch_backoff_ms : 100);
    }
    if (connected) kc_close(&kc);
    fsh_free(&session);
    sm_arena_free(&a);
    return NULL;
}

static void *ticker_main(void *arg) {
    struct broker_replicas *r = arg;
    broker_t *b = r->b;
    int64_t every = b->s.replica_lag_time_max_ms / 2;
    if (every > 1000) every = 1000;
    if (every < 10) every = 10;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        /* The led partitions, referenced, then each ticked without the map's lock. */
        pthread_mutex_lock(&b->partitions_mu);
        size_t cap = sm_map_size(&b->partitions), n = 0, it = 0;
        broker_partition_t **v = calloc(cap + 1, sizeof(*v));
        void *val;
        while (v && sm_map_next(&b->partitions, &it, NULL, NULL, &val)) {
            broker_partition_t *p = val;
            if (!p->replicated || !atomic_load(&p->leader)) continue;
            atomic_fetch_add(&p->refs, 1);
            v[n++] = p;
        }
        pthread_mutex_unlock(&b->partitions_mu);
        int64_t now = broker_mono_ms();
        for (size_t i = 0; i < n; i++) {
            broker_replica_tick(v[i], now);
            broker_partition_put(v[i]);
        }
        free(v);
        wait_ms(r, every);
    }
    return NULL;
}

int broker_replicas_start(broker_t *b) {
    struct broker_replicas *r = calloc(1, sizeof(*r));
    if (!r) return SM_ERR_NOMEM;
    r->b = b;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->ticker, NULL, ticker_main, r)) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return SM_ERR_IO;
    }
    r->ticker_started = true;
    b->replicas = r;
    return SM_OK;
}

void broker_replicas_stop(broker_t *b) {
    struct broker_replicas *r = b->replicas;
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    bool was = r->stopping;
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (was) return;
    if (r->ticker_started) pthread_join(r->ticker, NULL);
    for (fetcher_t *f = r->fetchers; f; f = f->next)
        pthread_join(f->thread, NULL);
}

void broker_replicas_free(broker_t *b) {
    struct broker_replicas *r = b->replicas;
    if (!r) return;
    broker_replicas_stop(b);
    while (r->fetchers) {
        fetcher_t *f = r->fetchers;
        r->fetchers = f->next;
        for (int i = 0; i < f->n; i++)
            broker_partition_put(f->parts[i]);
        free(f->parts);
        free(f);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
    b->replicas = NULL;
}

/* Under r->mu: removes p from whichever fetcher has it. */
static void unfollow(struct broker_replicas *r, broker_partition_t *p) {
    for (fetcher_t *f = r->fetchers; f; f = f->next)
        for (int i = 0; i < f->n; i++)
            if (f->parts[i] == p) {
                f->parts[i] = f->parts[--f->n];
                broker_partition_put(p);
                return;
            }
}

void broker_replicas_follow(broker_t *b, broker_partition_t *p, int32_t leader) {
    struct broker_replicas *r = b->replicas;
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    if (r->stopping) goto out;
    unfollow(r, p);
    if (leader < 0) goto out;
    int nf = b->s.num_replica_fetchers > 0 ? b->s.num_replica_fetchers : 1;
    int slot = (int)(((uint32_t)p->index * 31u + (uint32_t)p->topic_id.b[0]) % (uint32_t)nf);
    fetcher_t *f = r->fetchers;
    while (f && !(f->leader == leader && f->slot == slot))
        f = f->next;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f) goto out;
        f->owner = r;
        f->leader = leader;
        f->slot = slot;
        if (pthread_create(&f->thread, NULL, fetcher_main, f)) {
            sm_error(FETCH_MOD, "cannot start a replica fetcher for broker %d", leader);
            free(f);
            goto out;
        }
        f->next = r->fetchers;
        r->fetchers = f;
    }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        broker_partition_t **v = realloc(f->parts, (size_t)cap * sizeof(*v));
        if (!v) goto out;
        f->parts = v;
        f->cap = cap;
    }
    atomic_fetch_add(&p->refs, 1);
    f->parts[f->n++] = p;
    pthread_cond_broadcast(&r->cv);
out:
    pthread_mutex_unlock(&r->mu);
}
