/*
 * The quorum thread: drives the Raft state machine (src/raft) with real time, sockets and
 * the metadata log on disk, and applies what commits to the metadata image.
 *
 * States of this node's view (shared with other threads through atomics):
 *   leader_id   the Raft leader it knows (-1 none)
 *   active      leader_id is this node and the LeaderChange entry that opened its epoch is
 *               applied: every earlier committed record is in the image, so the controller
 *               may validate against it and propose
 *   applied     last offset applied to the image
 *
 * Invariants:
 *   1. Only committed entries (below Raft's high watermark) reach the image, in offset order,
 *      each exactly once per process life (apply_next only grows).
 *   2. The records of one controller operation apply atomically: more than one record is
 *      proposed between BeginTransactionRecord and EndTransactionRecord and applied at the
 *      End; a LeaderChange or AbortTransactionRecord inside drops the open transaction.
 *   3. A waiter (a controller operation blocked in cluster_append) is completed exactly once:
 *      OK when the applier passes its last offset, SM_ERR_AGAIN when this node stops being
 *      the active controller or the cluster stops.
 *   4. Raft's outbox is executed in order; a Fetch offset Raft counts is durable (the log is
 *      fsynced before raft_log_flushed reports it).
 */
#include "cluster/cluster_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/errors.h"
#include "protocol/gen/begin_transaction_record.h"
#include "protocol/gen/end_transaction_record.h"
#include "protocol/records.h"
#include "protocol/request.h"
#include "metadata/snapshot.h"
#include "raft/quorum_file.h"
#include "raft/raft_codec.h"
#include "raft/raft_records.h"
#include "raft/raft_voters.h"

enum { REC_BEGIN_TXN = 23, REC_END_TXN = 24, REC_ABORT_TXN = 25 };

int64_t cl_now(void) { return sm_mono_ms(); }

int cl_buf_reserve(cl_buf_t *b, size_t more) {
    if (b->len + more <= b->cap) return SM_OK;
    if (b->off > 0) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return SM_OK;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return SM_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return SM_OK;
}

void cl_buf_free(cl_buf_t *b) {
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void cl_wake(cluster_t *cl) {
    uint64_t one = 1;
    if (write(cl->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        sm_warn(CL_MOD, "waking the quorum thread failed: %s", strerror(errno));
}

void cl_push(cluster_t *cl, cl_in_t *in) {
    pthread_mutex_lock(&cl->mu);
    in->next = NULL;
    if (cl->inbox_tail)
        cl->inbox_tail->next = in;
    else
        cl->inbox = in;
    cl->inbox_tail = in;
    pthread_mutex_unlock(&cl->mu);
    cl_wake(cl);
}

/* ---- frames ---- */

int cl_encode_frame(const proto_msg_desc_t *desc, int16_t api_key, int16_t version,
                    int32_t corr, bool response, const void *body, const char *client_id,
                    uint8_t **out, size_t *len) {
    int hv = response ? (api_key == CL_API_API_VERSIONS
                             ? 0
                             : proto_response_header_version(api_key, version))
                      : proto_request_header_version(api_key, version);
    if (hv < 0) return SM_ERR_VERSION;
    proto_request_header_t h;
    size_t hlen;
    if (response) {
        hlen = proto_resp_header_len(hv);
    } else {
        proto_request_header_init(&h);
        h.request_api_key = api_key;
        h.request_api_version = version;
        h.correlation_id = corr;
        h.client_id = sm_str_from(client_id);
        hlen = proto_request_header_size((int16_t)hv, &h);
    }
    size_t blen = desc->size(version, body);
    size_t total = 4 + hlen + blen;
    uint8_t *buf = malloc(total);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, total);
    int rc = sm_wr_i32(&w, (int32_t)(total - 4));
    if (rc == SM_OK)
        rc = response ? proto_resp_header_write(&w, hv, corr)
                      : proto_request_header_encode(&w, (int16_t)hv, &h);
    if (rc == SM_OK) rc = desc->encode(&w, version, body);
    if (rc != SM_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = total;
    return SM_OK;
}

static void free_seg(void *p) { free(p); }

void cl_respond_raw(net_request_t *nreq, uint8_t *frame, size_t len) {
    net_segment_t seg = {frame, len, -1, 0, free_seg, frame};
    net_request_respond(nreq, &seg, 1);
}

void cl_respond(net_request_t *nreq, int16_t api_key, int16_t version, int32_t corr,
                const void *body) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    uint8_t *frame;
    size_t len;
    if (!api || cl_encode_frame(api->response, api_key, version, corr, true, body, NULL, &frame,
                                &len) != SM_OK) {
        sm_error(CL_MOD, "cannot encode the response to api %d v%d", api_key, version);
        net_request_close(nreq);
        return;
    }
    cl_respond_raw(nreq, frame, len);
}

/* Encodes a Raft message (request or response) into a frame; the body may be large (a
 * Fetch answer), so it is encoded into a growing buffer. */
static int encode_raft_frame(const raft_msg_t *m, int16_t api_key, int16_t version,
                             int32_t corr, bool response, int32_t node_id, uint8_t **out,
                             size_t *len) {
    char client[32];
    snprintf(client, sizeof(client), "samsa-raft-%d", node_id);
    int hv = response ? proto_response_header_version(api_key, version)
                      : proto_request_header_version(api_key, version);
    if (hv < 0) return SM_ERR_VERSION;
    for (size_t cap = 64 << 10; cap <= (256u << 20); cap *= 4) {
        uint8_t *buf = malloc(cap);
        if (!buf) return SM_ERR_NOMEM;
        sm_arena_t a;
        sm_arena_init(&a, 0);
        sm_writer_t w = sm_writer_make(buf, cap);
        int rc = sm_wr_i32(&w, 0);
        if (response) {
            if (rc == SM_OK) rc = proto_resp_header_write(&w, hv, corr);
        } else {
            proto_request_header_t h;
            proto_request_header_init(&h);
            h.request_api_key = api_key;
            h.request_api_version = version;
            h.correlation_id = corr;
            h.client_id = sm_str_from(client);
            if (rc == SM_OK) rc = proto_request_header_encode(&w, (int16_t)hv, &h);
        }
        if (rc == SM_OK) rc = raft_codec_encode(m, &a, version, &w);
        sm_arena_free(&a);
        if (rc == SM_OK) {
            size_t total = (size_t)(w.p - buf);
            buf[0] = (uint8_t)((total - 4) >> 24);
            buf[1] = (uint8_t)((total - 4) >> 16);
            buf[2] = (uint8_t)((total - 4) >> 8);
            buf[3] = (uint8_t)(total - 4);
            *out = buf;
            *len = total;
            return SM_OK;
        }
        free(buf);
        if (rc != SM_ERR_SPACE) return rc;
    }
    return SM_ERR_SPACE;
}

static int16_t raft_api_of(raft_msg_kind_t k) {
    switch (k) {
    case RAFT_MSG_VOTE_REQ:
    case RAFT_MSG_VOTE_RESP: return CL_API_VOTE;
    case RAFT_MSG_BEGIN_EPOCH_REQ:
    case RAFT_MSG_BEGIN_EPOCH_RESP: return CL_API_BEGIN_EPOCH;
    case RAFT_MSG_END_EPOCH_REQ:
    case RAFT_MSG_END_EPOCH_RESP: return CL_API_END_EPOCH;
    case RAFT_MSG_FETCH_REQ:
    case RAFT_MSG_FETCH_RESP: return CL_API_FETCH;
    default: return CL_API_FETCH_SNAPSHOT;
    }
}

static int16_t raft_version_of(int16_t api) {
    switch (api) {
    case CL_API_VOTE: return CL_V_VOTE;
    case CL_API_BEGIN_EPOCH: return CL_V_BEGIN_EPOCH;
    case CL_API_END_EPOCH: return CL_V_END_EPOCH;
    case CL_API_FETCH: return CL_V_FETCH;
    default: return CL_V_FETCH_SNAPSHOT;
    }
}

void cl_send_raft(cluster_t *cl, const raft_msg_t *m) {
    cl_peer_t *p = cl_peer(cl, m->to, false);
    if (!p || !cl_peer_ready(cl, p, cl_now())) return; /* dropped: Raft retries */
    int16_t api = raft_api_of(m->kind), v = raft_version_of(api);
    cl_out_t *o = calloc(1, sizeof(*o));
    if (!o) return;
    o->kind = CL_OUT_RAFT;
    o->api_key = api;
    o->version = v;
    o->resp_kind = (raft_msg_kind_t)(m->kind + 1);
    o->raft_corr = m->corr;
    o->pre_vote = m->kind == RAFT_MSG_VOTE_REQ && m->u.vote_req.pre_vote;
    uint8_t *frame;
    size_t len;
    if (encode_raft_frame(m, api, v, 0, false, cl->o.node_id, &frame, &len) != SM_OK) {
        sm_error(CL_MOD, "cannot encode %s to node %d", raft_msg_kind_name(m->kind), m->to);
        free(o);
        return;
    }
    cl_peer_send(cl, p, frame, len, o);
}

/* A Raft response to an inbound request (matched by the corr Raft echoes). */
static void answer_inbound(cluster_t *cl, const raft_msg_t *m) {
    cl_inbound_t **pp = &cl->inbound;
    while (*pp && (*pp)->raft_corr != m->corr)
        pp = &(*pp)->next;
    cl_inbound_t *ib = *pp;
    if (!ib) return; /* already answered or swept */
    *pp = ib->next;
    uint8_t *frame;
    size_t len;
    if (encode_raft_frame(m, ib->api_key, ib->version, ib->corr, true, cl->o.node_id, &frame,
                          &len) != SM_OK) {
        sm_error(CL_MOD, "cannot encode %s v%d", raft_msg_kind_name(m->kind), ib->version);
        net_request_close(ib->nreq);
    } else {
        cl_respond_raw(ib->nreq, frame, len);
    }
    free(ib);
}

/* ---- the metadata log on disk ---- */

static int persist_state(cluster_t *cl, const raft_quorum_state_t *st) {
    char text[1024];
    size_t len;
    int rc = raft_quorum_file_format(st, cl->voter_ids, cl->o.dynamic ? -1 : cl->o.n_voters, text,
                                     sizeof(text), &len);
    if (rc == SM_OK) rc = fio_write_file(cl->quorum_state_path, text, len, true);
    if (rc != SM_OK)
        sm_error(CL_MOD, "%s: cannot write the quorum state: %s", cl->quorum_state_path,
                 sm_strerror(rc));
    return rc;
}

/* Appends entries at offset, one batch per run of one epoch and kind. */
static int append_entries(cluster_t *cl, int64_t offset, const raft_entry_t *e, int n) {
    int64_t end = log_end_offset(cl->log);
    int rc;
    if (end > offset && (rc = log_truncate_to(cl->log, offset)) != SM_OK) return rc;
    if (log_end_offset(cl->log) != offset) {
        sm_error(CL_MOD, "metadata log ends at %lld, Raft appends at %lld",
                 (long long)log_end_offset(cl->log), (long long)offset);
        return SM_ERR_RANGE;
    }
    size_t cap = raft_records_bound(e, n), len;
    uint8_t *buf = malloc(cap);
    if (!buf) return SM_ERR_NOMEM;
    /* a LeaderChange record names the voters in force */
    int32_t ids[RAFT_MAX_VOTERS];
    const raft_voter_set_t *vs = raft_voters(cl->raft);
    for (int i = 0; i < vs->n; i++)
        ids[i] = vs->v[i].id;
    rc = raft_records_encode(e, n, offset, sm_time_ms(), ids, vs->n, buf, cap, &len);
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, buf, len);
    const uint8_t *batch;
    size_t blen;
    proto_batch_header_t h;
    while (rc == SM_OK && proto_batch_iter_next(&it, &batch, &blen, &h) == 1) {
        int64_t first, last;
        rc = log_append(cl->log, (uint8_t *)batch, blen, h.partition_leader_epoch, &first, &last);
    }
    free(buf);
    cl->need_flush = true;
    return rc;
}

typedef struct restore_ctx {
    sm_arena_t *a;
    int64_t from; /* entries below (covered by the snapshot) are skipped */
    raft_entry_t *v;
    int n, cap;
} restore_ctx_t;

static int restore_batch(void *arg, const uint8_t *batch, size_t len,
                         const proto_batch_header_t *h) {
    (void)h;
    restore_ctx_t *rc = arg;
    uint8_t *copy = sm_arena_alloc(rc->a, len);
    if (!copy) return SM_ERR_NOMEM;
    memcpy(copy, batch, len);
    raft_entry_t *e;
    int n;
    int64_t base;
    int st = raft_records_decode(copy, len, rc->a, &e, &n, &base);
    if (st != SM_OK) return st;
    if (base < rc->from) { /* a batch across the snapshot's end */
        int64_t skip = rc->from - base;
        if (skip >= n) return SM_OK;
        e += skip;
        n -= (int)skip;
    }
    if (rc->n + n > rc->cap) {
        int cap = rc->cap ? rc->cap * 2 : 1024;
        while (cap < rc->n + n)
            cap *= 2;
        raft_entry_t *v = realloc(rc->v, sizeof(*v) * (size_t)cap);
        if (!v) return SM_ERR_NOMEM;
        rc->v = v;
        rc->cap = cap;
    }
    memcpy(rc->v + rc->n, e, sizeof(*e) * (size_t)n);
    rc->n += n;
    return SM_OK;
}

/* ---- applying committed entries ---- */

/* The record type of a framed metadata record (frame version, type: unsigned varints). */
static int record_type(const raft_entry_t *e) {
    sm_reader_t r = sm_reader_make(e->data, e->len);
    uint32_t fv, type;
    if (sm_rd_uvarint(&r, &fv) || sm_rd_uvarint(&r, &type)) return -1;
    return (int)type;
}

static void txn_reset(cluster_t *cl) {
    for (int i = 0; i < cl->txn_n; i++)
        free((void *)cl->txn_vals[i].ptr);
    cl->txn_n = 0;
    cl->in_txn = false;
}

static int txn_add(cluster_t *cl, const raft_entry_t *e, int64_t off) {
    if (cl->txn_n == cl->txn_cap) {
        int cap = cl->txn_cap ? cl->txn_cap * 2 : 64;
        sm_bytes_t *v = realloc(cl->txn_vals, sizeof(*v) * (size_t)cap);
        if (!v) return SM_ERR_NOMEM;
        cl->txn_vals = v;
        int64_t *o = realloc(cl->txn_offs, sizeof(*o) * (size_t)cap);
        if (!o) return SM_ERR_NOMEM;
        cl->txn_offs = o;
        cl->txn_cap = cap;
    }
    uint8_t *copy = malloc(e->len ? e->len : 1);
    if (!copy) return SM_ERR_NOMEM;
    memcpy(copy, e->data, e->len);
    cl->txn_vals[cl->txn_n] = (sm_bytes_t){copy, (int32_t)e->len};
    cl->txn_offs[cl->txn_n++] = off;
    return SM_OK;
}

static void complete_waiters(cluster_t *cl, bool all, int status) {
    pthread_mutex_lock(&cl->mu);
    cl_waiter_t **pp = &cl->waiters;
    bool any = false;
    while (*pp) {
        cl_waiter_t *w = *pp;
        if (all || w->last < cl->apply_next) {
            *pp = w->next;
            w->status = all ? status : SM_OK;
            w->done = true;
            any = true;
        } else {
            pp = &w->next;
        }
    }
    if (any) pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

static void apply_to(cluster_t *cl, int64_t hw) {
    meta_controller_t *c = cl->o.controller;
    while (cl->apply_next < hw) {
        int64_t off = cl->apply_next;
        const raft_entry_t *e = raft_entry_at(cl->raft, off);
        if (!e) break;
        if (e->control) {
            if (cl->in_txn)
                sm_warn(CL_MOD, "metadata transaction left open by an old leader dropped at %lld",
                        (long long)off);
            txn_reset(cl);
        } else {
            int type = record_type(e);
            if (type == REC_BEGIN_TXN) {
                txn_reset(cl);
                cl->in_txn = true;
            } else if (type == REC_END_TXN) {
                if (cl->in_txn && cl->txn_n > 0)
                    meta_controller_apply_change(c, cl->txn_vals, cl->txn_n, cl->txn_offs);
                txn_reset(cl);
            } else if (type == REC_ABORT_TXN) {
                txn_reset(cl);
            } else if (cl->in_txn) {
                if (txn_add(cl, e, off) != SM_OK) {
                    sm_error(CL_MOD, "out of memory applying the metadata log; stopping here");
                    return;
                }
            } else {
                sm_bytes_t v = {e->data, (int32_t)e->len};
                meta_controller_apply_change(c, &v, 1, &off);
            }
        }
        cl->apply_next = off + 1;
        atomic_store(&cl->applied, off);
    }
    /* Registrations and AlterPartitions answered once their records are applied. */
    cl_inbound_t **pp = &cl->after;
    while (*pp) {
        cl_inbound_t *ib = *pp;
        if (ib->offset < cl->apply_next) {
            *pp = ib->next;
            if (ib->frame) {
                cl_respond_raw(ib->nreq, ib->frame, ib->frame_len);
            } else {
                proto_broker_registration_response_t resp;
                proto_broker_registration_response_init(&resp);
                resp.broker_epoch = ib->broker_epoch;
                cl_respond(ib->nreq, ib->api_key, ib->version, ib->corr, &resp);
            }
            free(ib);
        } else {
            pp = &ib->next;
        }
    }
    complete_waiters(cl, false, SM_OK);
}

/* Leadership and activity after the outbox ran. */
static void update_view(cluster_t *cl, int64_t now) {
    raft_quorum_state_t qs = raft_quorum_state(cl->raft);
    int32_t before = atomic_load(&cl->leader_id);
    atomic_store(&cl->leader_id, qs.leader_id);
    bool leader = raft_state(cl->raft) == RAFT_LEADER;
    if (leader && cl->leader_epoch != qs.epoch) {
        /* The LeaderChange entry that opened this epoch: the last of its kind in the log. */
        cl->epoch_start = -1;
        for (int64_t off = raft_log_end(cl->raft) - 1; off >= raft_log_start(cl->raft); off--) {
            const raft_entry_t *e = raft_entry_at(cl->raft, off);
            if (e && e->control && e->epoch == qs.epoch) {
                cl->epoch_start = off;
                break;
            }
            if (e && e->epoch < qs.epoch) break;
        }
        cl->leader_epoch = qs.epoch;
    }
    bool was = atomic_load(&cl->active);
    bool active = leader && cl->epoch_start >= 0 && cl->apply_next > cl->epoch_start;
    if (!leader) cl->leader_epoch = -1;
    atomic_store(&cl->active, active);
    if (active && !was) {
        sm_info(CL_MOD, "node %d is the active controller (epoch %d, metadata offset %lld)",
                cl->o.node_id, qs.epoch, (long long)cl->apply_next - 1);
        cl_ctrl_became_active(cl, now);
    }
    if (was && !active) {
        sm_info(CL_MOD, "node %d is no longer the active controller", cl->o.node_id);
        complete_waiters(cl, true, SM_ERR_AGAIN);
        /* AlterPartitions waiting for their change: it may never commit; the leaders see the
         * connection close and ask the next controller. */
        cl_inbound_t **pp = &cl->after;
        while (*pp) {
            cl_inbound_t *ib = *pp;
            if (ib->frame) {
                *pp = ib->next;
                net_request_close(ib->nreq);
                free(ib->frame);
                free(ib);
            } else {
                pp = &ib->next;
            }
        }
    }
    if (before != qs.leader_id && qs.leader_id >= 0 && qs.leader_id != cl->o.node_id)
        sm_info(CL_MOD, "controller is node %d (epoch %d)", qs.leader_id, qs.epoch);
    const raft_voter_set_t *vs = raft_voters(cl->raft);
    pthread_mutex_lock(&cl->mu);
    if (memcmp(&cl->voters_view, vs, sizeof(*vs)) != 0) {
        cl->voters_view = *vs;
        sm_info(CL_MOD, "node %d: %d voters in force%s", cl->o.node_id, vs->n,
                raft_is_voter(cl->raft) ? ", this node one of them" : "");
    }
    pthread_mutex_unlock(&cl->mu);
}

/* ---- snapshots ---- */

#define SNAPSHOTS_KEPT 2

/* Tells the broker about every topic of an image that replaced the last one: topics gone
 * are deleted, the others' partitions created (or re-epoched) here. */
static void notify_replaced(cluster_t *cl, meta_image_t *old) {
    const meta_listener_t *l = &cl->o.controller->listener;
    size_t it = 0;
    void *v;
    meta_image_rdlock(cl->o.image);
    while (old && sm_map_next(&old->topics_by_id, &it, NULL, NULL, &v)) {
        meta_topic_t *t = v;
        if (!meta_image_topic_by_id(cl->o.image, &t->id) && l->topic_deleted)
            l->topic_deleted(l->ctx, t);
    }
    it = 0;
    while (sm_map_next(&cl->o.image->topics_by_name, &it, NULL, NULL, &v)) {
        if (l->partitions_changed)
            l->partitions_changed(l->ctx, v);
        else if (l->topic_created)
            l->topic_created(l->ctx, v, 0);
    }
    if (l->configs_changed) l->configs_changed(l->ctx, NULL);
    meta_image_unlock(cl->o.image);
}

/* RAFT_ACT_SNAPSHOT_REQUEST: the image as of exactly id.offset, unless a metadata
 * transaction is open there (its first records are not in the image): then this one is
 * skipped and Raft asks again later. */
static void take_snapshot(cluster_t *cl, raft_offset_epoch_t id, const raft_voter_set_t *voters) {
    int64_t now = cl_now();
    if (cl->in_txn || cl->apply_next != id.offset) {
        raft_snapshot_created(cl->raft, now, (raft_offset_epoch_t){0, 0}); /* declined */
        return;
    }
    meta_snapshot_opts_t so = {.node_id = cl->o.node_id, .voters = voters};
    meta_image_rdlock(cl->o.image);
    int rc = meta_snapshot_write(cl->o.image, cl->o.metadata_dir, id, sm_time_ms(), &so);
    meta_image_unlock(cl->o.image);
    if (rc != SM_OK) {
        sm_error(CL_MOD, "metadata snapshot at %lld cannot be written: %s", (long long)id.offset,
                 sm_strerror(rc));
        raft_snapshot_created(cl->raft, now, (raft_offset_epoch_t){0, 0});
        return;
    }
    raft_offset_epoch_t latest;
    char path[4400];
    meta_snapshot_latest(cl->o.metadata_dir, SNAPSHOTS_KEPT, &latest, path, sizeof(path));
    sm_info(CL_MOD, "metadata snapshot at offset %lld (epoch %d) written", (long long)id.offset,
            id.epoch);
    raft_snapshot_created(cl->raft, now, id);
}

/* RAFT_ACT_SNAPSHOT_INSTALL: a follower's fetched snapshot replaces its image and log. */
static void install_snapshot(cluster_t *cl, raft_offset_epoch_t id) {
    int rc = meta_snapshot_part_install(cl->o.metadata_dir, id);
    char path[4400], name[64];
    raft_snapshot_file_name(id, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", cl->o.metadata_dir, name);
    meta_image_t *fresh = calloc(1, sizeof(*fresh));
    meta_snapshot_info_t info;
    memset(&info, 0, sizeof(info));
    if (rc == SM_OK && fresh && meta_image_init(fresh) == SM_OK) {
        fresh->self_id = cl->o.image->self_id;
        rc = meta_snapshot_load(fresh, path, &info);
    } else if (rc == SM_OK) {
        rc = SM_ERR_NOMEM;
    }
    if (rc != SM_OK) {
        sm_error(CL_MOD, "the snapshot at %lld fetched from the leader cannot be installed: %s",
                 (long long)id.offset, sm_strerror(rc));
        if (fresh) meta_image_free(fresh);
        free(fresh);
        return;
    }
    if (cl->o.dynamic) raft_snapshot_voters(cl->raft, &info.voters);
    meta_image_wrlock(cl->o.image);
    meta_image_swap(cl->o.image, fresh); /* fresh now holds the old contents */
    meta_image_unlock(cl->o.image);
    txn_reset(cl);
    if (log_truncate_fully(cl->log, id.offset) != SM_OK)
        sm_error(CL_MOD, "metadata log cannot restart at %lld", (long long)id.offset);
    cl->apply_next = id.offset;
    atomic_store(&cl->applied, id.offset - 1);
    sm_info(CL_MOD, "metadata snapshot at offset %lld (epoch %d) installed from the leader",
            (long long)id.offset, id.epoch);
    notify_replaced(cl, fresh);
    meta_image_free(fresh);
    free(fresh);
}

/* Executes Raft's outbox, fsyncing appended entries before reporting them. */
static void drain(cluster_t *cl) {
    for (int rounds = 0; rounds < 64; rounds++) {
        raft_action_t a;
        int64_t now = cl_now();
        while (raft_poll(cl->raft, &a)) {
            switch (a.kind) {
            case RAFT_ACT_PERSIST_STATE: persist_state(cl, &a.state); break;
            case RAFT_ACT_APPEND:
                if (append_entries(cl, a.offset, a.entries, a.n_entries) != SM_OK)
                    sm_error(CL_MOD, "metadata log append at %lld failed", (long long)a.offset);
                break;
            case RAFT_ACT_TRUNCATE:
                if (log_truncate_to(cl->log, a.offset) != SM_OK)
                    sm_error(CL_MOD, "metadata log truncation to %lld failed",
                             (long long)a.offset);
                else
                    sm_info(CL_MOD, "metadata log: divergent tail from %lld removed",
                            (long long)a.offset);
                break;
            case RAFT_ACT_SEND:
                if (a.msg.kind == RAFT_MSG_VOTE_RESP || a.msg.kind == RAFT_MSG_BEGIN_EPOCH_RESP ||
                    a.msg.kind == RAFT_MSG_END_EPOCH_RESP || a.msg.kind == RAFT_MSG_FETCH_RESP ||
                    a.msg.kind == RAFT_MSG_FETCH_SNAPSHOT_RESP)
                    answer_inbound(cl, &a.msg);
                else
                    cl_send_raft(cl, &a.msg);
                break;
            case RAFT_ACT_COMMIT: apply_to(cl, a.offset); break;
            case RAFT_ACT_LEADER_CHANGE: break;
            case RAFT_ACT_LOG_START:
                if (log_delete_records_before(cl->log, a.offset) != SM_OK)
                    sm_warn(CL_MOD, "metadata log below %lld not released", (long long)a.offset);
                break;
            case RAFT_ACT_SNAPSHOT_REQUEST: take_snapshot(cl, a.snapshot, a.voters); break;
            case RAFT_ACT_SNAPSHOT_WRITE:
                if (meta_snapshot_part_write(cl->o.metadata_dir, a.snapshot, a.position, a.data,
                                             a.len) != SM_OK)
                    sm_error(CL_MOD, "fetched snapshot chunk cannot be written");
                break;
            case RAFT_ACT_SNAPSHOT_INSTALL: install_snapshot(cl, a.snapshot); break;
            }
        }
        update_view(cl, now);
        if (!cl->need_flush) return;
        cl->need_flush = false;
        if (log_flush(cl->log) != SM_OK) {
            sm_error(CL_MOD, "metadata log fsync failed");
            return;
        }
        raft_log_flushed(cl->raft, cl_now(), log_end_offset(cl->log));
    }
}

/* ---- proposals ---- */

static int propose_one(cluster_t *cl, const void *data, uint32_t len, int64_t *off) {
    return raft_propose(cl->raft, cl_now(), data, len, off);
}

int cl_propose_records(cluster_t *cl, const sm_bytes_t *values, int n, int64_t *first,
                       int64_t *last) {
    if (!atomic_load(&cl->active)) return SM_ERR_AGAIN;
    int64_t off = -1;
    int rc = SM_OK;
    if (n > 1) {
        /* frame version 1, type 23, version 0, then the (flexible) record: no tagged fields */
        static const uint8_t begin[] = {1, REC_BEGIN_TXN, 0, 0};
        rc = propose_one(cl, begin, sizeof(begin), &off);
    }
    for (int i = 0; i < n && rc == SM_OK; i++) {
        rc = propose_one(cl, values[i].ptr, (uint32_t)values[i].len, &off);
        if (i == 0) *first = off;
    }
    if (n > 1 && rc == SM_OK) {
        static const uint8_t end[] = {1, REC_END_TXN, 0, 0};
        rc = propose_one(cl, end, sizeof(end), &off);
    }
    *last = off;
    return rc;
}

static void handle_propose(cluster_t *cl, cl_waiter_t *w) {
    int rc = cl_propose_records(cl, w->values, w->n, &w->first, &w->last);
    pthread_mutex_lock(&cl->mu);
    if (rc != SM_OK) {
        w->status = rc == SM_ERR_AGAIN ? SM_ERR_AGAIN : rc;
        w->done = true;
        pthread_cond_broadcast(&cl->cv);
    } else {
        w->next = cl->waiters;
        cl->waiters = w;
    }
    pthread_mutex_unlock(&cl->mu);
}

int cluster_append(void *arg, uint8_t *batch, size_t len, int64_t *base_offset) {
    cluster_t *cl = arg;
    if (!cl || !atomic_load(&cl->active)) return SM_ERR_AGAIN;
    proto_batch_header_t h;
    int rc = proto_batch_validate(batch, len, &h);
    if (rc != SM_OK) return rc;
    cl_waiter_t w;
    memset(&w, 0, sizeof(w));
    w.values = calloc((size_t)(h.records_count > 0 ? h.records_count : 1), sizeof(sm_bytes_t));
    if (!w.values) return SM_ERR_NOMEM;
    proto_record_iter_t it;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    proto_record_t rec;
    while (proto_record_iter_next(&it, &rec) == 1)
        if (rec.value.len >= 0) w.values[w.n++] = rec.value;
    cl_in_t *in = calloc(1, sizeof(*in));
    if (!in) {
        free(w.values);
        return SM_ERR_NOMEM;
    }
    in->kind = CL_IN_PROPOSE;
    in->w = &w;
    cl_push(cl, in);
    pthread_mutex_lock(&cl->mu);
    while (!w.done)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    free(w.values);
    *base_offset = w.first;
    return w.status;
}

bool cluster_is_active(void *cl) { return cl && atomic_load(&((cluster_t *)cl)->active); }
int32_t cluster_controller_id(cluster_t *cl) { return atomic_load(&cl->leader_id); }
int64_t cluster_applied_offset(cluster_t *cl) { return atomic_load(&cl->applied); }

/* ---- relays ---- */

void cluster_forward(cluster_t *cl, net_request_t *nreq) {
    cl_fwd_t *f = calloc(1, sizeof(*f));
    cl_in_t *in = calloc(1, sizeof(*in));
    if (!f || !in || nreq->len < 8) {
        free(f);
        free(in);
        net_request_close(nreq);
        return;
    }
    f->nreq = nreq;
    f->api_key = (int16_t)(nreq->frame[0] << 8 | nreq->frame[1]);
    f->version = (int16_t)(nreq->frame[2] << 8 | nreq->frame[3]);
    f->orig_corr = (int32_t)((uint32_t)nreq->frame[4] << 24 | (uint32_t)nreq->frame[5] << 16 |
                             (uint32_t)nreq->frame[6] << 8 | nreq->frame[7]);
    f->deadline = cl_now() + CL_FWD_TIMEOUT_MS;
    in->kind = CL_IN_FORWARD;
    in->fwd = f;
    cl_push(cl, in);
}

static void fwd_unlink(cluster_t *cl, cl_fwd_t *f) {
    cl_fwd_t **pp = &cl->fwds;
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp) *pp = f->next;
}

void cluster_forward_close(cluster_t *cl) {
    atomic_store(&cl->fwd_closed, true);
    cl_wake(cl);
}

void cl_fwd_finish(cluster_t *cl, cl_fwd_t *f, const uint8_t *resp, size_t len) {
    cl_fwd_abandon(f);
    fwd_unlink(cl, f);
    if (f->nreq) {
        if (!resp || len < 4) {
            net_request_close(f->nreq);
        } else {
            uint8_t *frame = malloc(len + 4);
            if (!frame) {
                net_request_close(f->nreq);
            } else {
                frame[0] = (uint8_t)(len >> 24);
                frame[1] = (uint8_t)(len >> 16);
                frame[2] = (uint8_t)(len >> 8);
                frame[3] = (uint8_t)len;
                memcpy(frame + 4, resp, len);
                /* the client's correlation id back in place */
                frame[4] = (uint8_t)((uint32_t)f->orig_corr >> 24);
                frame[5] = (uint8_t)((uint32_t)f->orig_corr >> 16);
                frame[6] = (uint8_t)((uint32_t)f->orig_corr >> 8);
                frame[7] = (uint8_t)f->orig_corr;
                cl_respond_raw(f->nreq, frame, len + 4);
            }
        }
        free(f->frame);
        free(f);
        return;
    }
    pthread_mutex_lock(&cl->mu);
    if (resp && (f->resp = malloc(len ? len : 1))) {
        memcpy(f->resp, resp, len);
        f->resp_len = len;
    }
    f->done = true;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

/* A relay whose deadline passed: a client hears REQUEST_TIMED_OUT in every result, as from
 * Kafka's forwarding (the connection closes when that answer cannot be built); an internal
 * call fails. */
static void fwd_expire(cluster_t *cl, cl_fwd_t *f) {
    sm_info(CL_MOD,
            "a forwarded request (api key %d) found no active controller in %d ms "
            "(%d attempts)",
            f->api_key, CL_FWD_TIMEOUT_MS, f->attempts);
    if (!f->nreq || !cl->o.forward_fail) {
        cl_fwd_finish(cl, f, NULL, 0);
        return;
    }
    cl_fwd_abandon(f);
    fwd_unlink(cl, f);
    cl->o.forward_fail(cl->o.serve_ctx, f->nreq, PROTO_ERR_REQUEST_TIMED_OUT);
    free(f);
}

void cl_fwd_answer(cluster_t *cl, cl_fwd_t *f, const uint8_t *resp, size_t len, int64_t now) {
    if (!cl->o.forward_stale || !cl->o.forward_stale(resp, len, f->api_key, f->version)) {
        cl_fwd_finish(cl, f, resp, len);
        return;
    }
    /* Kafka's NodeToControllerRequestThread on NOT_CONTROLLER: forget that controller and
     * send the request again once the next one is known. */
    sm_debug(CL_MOD,
             "node %d answered a forwarded request (api key %d) NOT_CONTROLLER; "
             "sending it again",
             f->sent_to, f->api_key);
    if (now >= f->deadline) {
        if (f->nreq)
            fwd_expire(cl, f);
        else
            cl_fwd_finish(cl, f, resp, len); /* the caller reads NOT_CONTROLLER */
        return;
    }
    f->retry_at = now + CL_FWD_BACKOFF_MS;
}

/* Relays in arrival order: an attempt given up (another controller became known, or it went
 * unanswered too long) waits again; a waiting one past its deadline expires; the others are
 * sent, none before an older one still waiting, so one client's requests reach the
 * controller in the order they came. */
static void fwds_sweep(cluster_t *cl, int64_t now) {
    int32_t leader = atomic_load(&cl->leader_id);
    bool blocked = false, closed = atomic_load(&cl->fwd_closed);
    cl_fwd_t *f = cl->fwds;
    while (f) {
        cl_fwd_t *next = f->next;
        if (closed && f->nreq) {
            cl_fwd_finish(cl, f, NULL, 0);
            f = next;
            continue;
        }
        if (f->sent &&
            ((leader >= 0 && leader != f->sent_to) || now - f->sent_at >= CL_FWD_ATTEMPT_MS)) {
            sm_debug(CL_MOD,
                     "a forwarded request (api key %d) sent to node %d is sent again "
                     "(controller now %d)",
                     f->api_key, f->sent_to, leader);
            cl_fwd_abandon(f);
        }
        if (!f->sent) {
            if (now >= f->deadline)
                fwd_expire(cl, f);
            else if (blocked || !cl_fwd_try(cl, f, now))
                blocked = true;
        }
        f = next;
    }
}

/* An internal call to the controller: sends body as api_key's request, waits for the
 * answer and decodes it into resp (allocated from a). */
static int call_controller(cluster_t *cl, int16_t api_key, int16_t version, const void *body,
                           sm_arena_t *a, void *resp) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    cl_fwd_t *f = calloc(1, sizeof(*f));
    cl_in_t *in = calloc(1, sizeof(*in));
    uint8_t *frame = NULL;
    size_t len = 0;
    char client[32];
    snprintf(client, sizeof(client), "samsa-node-%d", cl->o.node_id);
    if (!f || !in || !api ||
        cl_encode_frame(api->request, api_key, version, 0, false, body, client, &frame, &len)) {
        free(f);
        free(in);
        free(frame);
        return SM_ERR_NOMEM;
    }
    /* stored without the size prefix, as a client's frame is */
    memmove(frame, frame + 4, len - 4);
    f->frame = frame;
    f->len = len - 4;
    f->api_key = api_key;
    f->version = version;
    f->deadline = cl_now() + 30000;
    in->kind = CL_IN_FORWARD;
    in->fwd = f;
    cl_push(cl, in);
    pthread_mutex_lock(&cl->mu);
    while (!f->done)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    /* the bytes stay in a: decoded strings borrow them */
    int rc = SM_ERR_IO;
    uint8_t *keep = f->resp ? sm_arena_alloc(a, f->resp_len) : NULL;
    if (keep) {
        memcpy(keep, f->resp, f->resp_len);
        sm_reader_t r = sm_reader_make(keep, f->resp_len);
        proto_response_header_t rh;
        int hv = proto_response_header_version(api_key, version);
        rc = proto_response_header_decode(&r, a, (int16_t)hv, &rh);
        if (rc == SM_OK) {
            api->response->init(resp);
            rc = api->response->decode(&r, a, version, resp);
        }
    }
    free(f->resp);
    free(f->frame);
    free(f);
    return rc;
}

void cluster_remote_create_topic(void *arg, sm_str_t name, int32_t partitions,
                                 int16_t replication_factor, const meta_config_kv_t *configs,
                                 int32_t nconfigs, meta_result_t *res) {
    cluster_t *cl = arg;
    if (!cl) {
        res->error = PROTO_ERR_NOT_CONTROLLER;
        snprintf(res->message, sizeof(res->message), "The cluster is starting.");
        return;
    }
    proto_create_topics_request_t q;
    proto_create_topics_request_creatable_topic_t t;
    proto_create_topics_request_creatable_topic_config_t cfg[64];
    proto_create_topics_request_init(&q);
    memset(&t, 0, sizeof(t));
    t.name = name;
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    t.assignments.n = 0;
    int nc = 0;
    for (int32_t i = 0; i < nconfigs && nc < 64; i++) {
        memset(&cfg[nc], 0, sizeof(cfg[nc]));
        cfg[nc].name = configs[i].name;
        cfg[nc].value = configs[i].value;
        nc++;
    }
    t.configs = (proto_create_topics_request_creatable_topic_config_array_t){nc, cfg};
    q.topics = (proto_create_topics_request_creatable_topic_array_t){1, &t};
    q.timeout_ms = 30000;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_create_topics_response_t resp;
    int rc = call_controller(cl, CL_API_CREATE_TOPICS, CL_V_CREATE_TOPICS, &q, &a, &resp);
    res->message[0] = 0;
    if (rc != SM_OK || resp.topics.n != 1) {
        res->error = PROTO_ERR_NOT_CONTROLLER;
        snprintf(res->message, sizeof(res->message), "The controller could not be reached.");
    } else {
        res->error = resp.topics.v[0].error_code;
        if (resp.topics.v[0].error_message.len > 0)
            snprintf(res->message, sizeof(res->message), "%.*s",
                     (int)resp.topics.v[0].error_message.len, resp.topics.v[0].error_message.ptr);
    }
    sm_arena_free(&a);
}

void cluster_remote_allocate_producer_ids(void *arg, int32_t count, int64_t *first,
                                          meta_result_t *res) {
    cluster_t *cl = arg;
    (void)count;
    if (!cl) {
        res->error = PROTO_ERR_NOT_CONTROLLER;
        snprintf(res->message, sizeof(res->message), "The cluster is starting.");
        return;
    }
    proto_allocate_producer_ids_request_t q;
    proto_allocate_producer_ids_request_init(&q);
    q.broker_id = cl->o.node_id;
    q.broker_epoch = cl->broker_epoch;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_allocate_producer_ids_response_t resp;
    int rc = call_controller(cl, CL_API_ALLOCATE_PRODUCER_IDS, CL_V_ALLOCATE_PRODUCER_IDS, &q, &a,
                             &resp);
    res->message[0] = 0;
    if (rc != SM_OK) {
        res->error = PROTO_ERR_NOT_CONTROLLER;
        snprintf(res->message, sizeof(res->message), "The controller could not be reached.");
    } else {
        res->error = resp.error_code;
        *first = resp.producer_id_start;
    }
    sm_arena_free(&a);
}

/* ---- the inbox ---- */

static void handle_in(cluster_t *cl, cl_in_t *in, int64_t now) {
    switch (in->kind) {
    case CL_IN_RAFT: {
        cl_inbound_t *ib = calloc(1, sizeof(*ib));
        if (!ib) {
            net_request_close(in->nreq);
            break;
        }
        in->msg.corr = ++cl->next_raft_corr;
        *ib = (cl_inbound_t){cl->inbound, in->msg.corr, -1, in->nreq, in->api_key,
                             in->version, in->corr, now, 0, NULL, 0};
        cl->inbound = ib;
        raft_step(cl->raft, now, &in->msg);
        break;
    }
    case CL_IN_REGISTER:
        if (!cl_ctrl_register(cl, in, now)) return; /* deferred: kept */
        break;
    case CL_IN_HEARTBEAT: cl_ctrl_heartbeat(cl, in, now); break;
    case CL_IN_DESCRIBE: cl_answer_describe(cl, in->nreq, in->version, in->corr); break;
    case CL_IN_PROPOSE: handle_propose(cl, in->w); break;
    case CL_IN_FORWARD: { /* sent by fwds_sweep, behind the older ones */
        cl_fwd_t **pp = &cl->fwds;
        while (*pp)
            pp = &(*pp)->next;
        in->fwd->next = NULL;
        *pp = in->fwd;
        break;
    }
    case CL_IN_ALTER:
        if (!cl_ctrl_alter_partition_new(cl, in)) return; /* deferred: kept */
        break;
    case CL_IN_ALTER_SEND: cl_alter_send(cl, in->alter, now); break;
    case CL_IN_ELECT:
        if (!cl_ctrl_elect(cl, in)) return;
        break;
    case CL_IN_VOTERS: cl_voters_request(cl, in, now); break;
    }
    sm_arena_free(&in->arena);
    free(in);
}

/* Inbound Raft requests Raft never answered (dropped as bad input): closed after a while. */
static void sweep(cluster_t *cl, int64_t now) {
    cl_inbound_t **pp = &cl->inbound;
    while (*pp) {
        cl_inbound_t *ib = *pp;
        if (now - ib->at > 2 * cl->o.request_timeout_ms + 1000) {
            *pp = ib->next;
            net_request_close(ib->nreq);
            free(ib);
        } else {
            pp = &ib->next;
        }
    }
    fwds_sweep(cl, now);
}

static void *quorum_main(void *arg) {
    cluster_t *cl = arg;
    struct epoll_event evs[32];
    while (!atomic_load(&cl->stop)) {
        int64_t now = cl_now();
        int64_t deadline = raft_next_deadline(cl->raft);
        if (cl_agent_deadline(cl) < deadline) deadline = cl_agent_deadline(cl);
        int64_t wait = deadline - now;
        if (wait > 100) wait = 100;
        if (wait < 0) wait = 0;
        int n = epoll_wait(cl->epfd, evs, 32, (int)wait);
        if (n < 0 && errno != EINTR) {
            sm_error(CL_MOD, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                if (read(cl->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    sm_warn(CL_MOD, "eventfd read: %s", strerror(errno));
                continue;
            }
            cl_peer_event(cl, evs[i].data.ptr, evs[i].events);
        }
        pthread_mutex_lock(&cl->mu);
        cl_in_t *in = cl->inbox;
        cl->inbox = cl->inbox_tail = NULL;
        pthread_mutex_unlock(&cl->mu);
        now = cl_now();
        while (in) {
            cl_in_t *next = in->next;
            handle_in(cl, in, now);
            in = next;
        }
        raft_tick(cl->raft, now);
        drain(cl);
        cl_agent_tick(cl, now);
        cl_ctrl_tick(cl, now);
        cl_partitions_tick(cl, now);
        sweep(cl, now);
        drain(cl);
        cl_voters_tick(cl, now);
        cl_peers_arm(cl);
    }
    return NULL;
}

/* ---- configuration helpers ---- */

int cluster_parse_voters(const char *list, cluster_voter_t *out, int *n, char *err, size_t cap) {
    *n = 0;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (*n == RAFT_MAX_VOTERS) {
            snprintf(err, cap, "config: controller.quorum.voters: more than %d voters",
                     RAFT_MAX_VOTERS);
            return SM_ERR_PARSE;
        }
        cluster_voter_t *v = &out[*n];
        char *at = strchr(t, '@');
        char *colon = strrchr(t, ':');
        char *end = NULL;
        long id = at ? strtol(t, &end, 10) : -1;
        long port = colon ? strtol(colon + 1, NULL, 10) : -1;
        if (!at || end != at || id < 0 || id > INT32_MAX || !colon || colon < at || port <= 0 ||
            port > 65535 || colon == at + 1) {
            snprintf(err, cap,
                     "config: controller.quorum.voters: cannot parse \"%s\" (expected "
                     "id@host:port)",
                     t);
            return SM_ERR_PARSE;
        }
        v->id = (int32_t)id;
        size_t hl = (size_t)(colon - at - 1);
        if (hl >= sizeof(v->host)) hl = sizeof(v->host) - 1;
        memcpy(v->host, at + 1, hl);
        v->host[hl] = 0;
        if (v->host[0] == '[' && hl > 2 && v->host[hl - 1] == ']') { /* [ipv6] */
            memmove(v->host, v->host + 1, hl - 2);
            v->host[hl - 2] = 0;
        }
        v->port = (int32_t)port;
        for (int i = 0; i < *n; i++)
            if (out[i].id == v->id) {
                snprintf(err, cap, "config: controller.quorum.voters: node %d is listed twice",
                         v->id);
                return SM_ERR_PARSE;
            }
        (*n)++;
    }
    if (*n == 0) {
        snprintf(err, cap, "config: controller.quorum.voters: no voter given");
        return SM_ERR_PARSE;
    }
    return SM_OK;
}

int cluster_parse_bootstrap(const char *list, cluster_voter_t *out, int *n, char *err,
                            size_t cap) {
    *n = 0;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char *colon = strrchr(t, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (*n == RAFT_MAX_VOTERS || !colon || colon == t || port <= 0 || port > 65535 ||
            (end && *end)) {
            snprintf(err, cap,
                     "config: controller.quorum.bootstrap.servers: cannot parse \"%s\" (expected "
                     "host:port, at most %d)",
                     t, RAFT_MAX_VOTERS);
            return SM_ERR_PARSE;
        }
        cluster_voter_t *v = &out[(*n)++];
        v->id = -1;
        size_t hl = (size_t)(colon - t);
        if (t[0] == '[' && hl > 2 && t[hl - 1] == ']') t++, hl -= 2; /* [ipv6] */
        snprintf(v->host, sizeof(v->host), "%.*s", (int)hl, t);
        v->port = (int32_t)port;
    }
    if (*n == 0) {
        snprintf(err, cap, "config: controller.quorum.bootstrap.servers: no server given");
        return SM_ERR_PARSE;
    }
    return SM_OK;
}

int cluster_format_standalone(const char *metadata_dir, int32_t node_id,
                              const uint8_t directory_id[16], const char *listener,
                              const char *host, int32_t port) {
    raft_offset_epoch_t latest;
    char path[4400];
    if (meta_snapshot_latest(metadata_dir, SNAPSHOTS_KEPT, &latest, path, sizeof(path)) == SM_OK) {
        sm_error(CL_MOD, "%s: already formatted (a snapshot is there)", metadata_dir);
        return SM_ERR_EXISTS;
    }
    raft_voter_set_t *vs = calloc(1, sizeof(*vs));
    meta_image_t *img = calloc(1, sizeof(*img));
    int rc = vs && img ? meta_image_init(img) : SM_ERR_NOMEM;
    if (rc == SM_OK) {
        vs->n = 1;
        vs->v[0].id = node_id;
        memcpy(vs->v[0].dir, directory_id, 16);
        snprintf(vs->v[0].listener, sizeof(vs->v[0].listener), "%s", listener);
        snprintf(vs->v[0].host, sizeof(vs->v[0].host), "%s", host);
        vs->v[0].port = (uint16_t)port;
        meta_snapshot_opts_t so = {.node_id = node_id, .voters = vs};
        if (mkdir(metadata_dir, 0755) && errno != EEXIST) rc = SM_ERR_IO;
        if (rc == SM_OK)
            rc = meta_snapshot_write(img, metadata_dir, (raft_offset_epoch_t){0, 0}, 0, &so);
        meta_image_free(img);
    }
    free(img);
    free(vs);
    return rc;
}

void cluster_default_id(const cluster_voter_t *v, int n, char out[23]) {
    /* Two CRC32C chains over the sorted voter list make 16 bytes, shaped as a v4 uuid and
     * written in url-safe base64, as Kafka's cluster ids are. */
    char text[4096];
    size_t o = 0;
    int32_t ids[RAFT_MAX_VOTERS];
    for (int i = 0; i < n; i++)
        ids[i] = v[i].id;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            int32_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    for (int i = 0; i < n && o < sizeof(text) - 300; i++)
        for (int k = 0; k < n; k++)
            if (v[k].id == ids[i])
                o += (size_t)snprintf(text + o, sizeof(text) - o, "%d@%s:%d,", v[k].id,
                                      v[k].host, v[k].port);
    uint8_t u[16];
    uint32_t c = 0x5a3a5a3a;
    for (int i = 0; i < 4; i++) {
        c = sm_crc32c(c + (uint32_t)i, text, o);
        memcpy(u + 4 * i, &c, 4);
    }
    sm_uuid_make_v4(u);
    sm_uuid_base64(u, out);
}

/* ---- start and stop ---- */

static int open_log(cluster_t *cl, raft_restore_t *rs, sm_arena_t *a, restore_ctx_t *rc,
                    int32_t *state_voters, char *qtext, raft_voter_set_t *snap_voters) {
    log_config_t mcfg;
    log_config_default(&mcfg);
    mcfg.retention_ms = -1;
    mcfg.segment_bytes = 64 << 20;
    int st = log_open(cl->o.metadata_dir, &mcfg, false, 0, -1, &cl->log);
    if (st != SM_OK) {
        sm_error(CL_MOD, "%s: cannot open the metadata log: %s", cl->o.metadata_dir,
                 sm_strerror(st));
        return st;
    }
    /* The latest snapshot rebuilds the image; the log after it is what Raft holds. */
    char spath[4400];
    raft_offset_epoch_t sid = {0, 0};
    if (meta_snapshot_latest(cl->o.metadata_dir, SNAPSHOTS_KEPT, &sid, spath, sizeof(spath)) ==
        SM_OK) {
        meta_snapshot_info_t info;
        memset(&info, 0, sizeof(info));
        st = meta_snapshot_load(cl->o.image, spath, &info);
        *snap_voters = info.voters; /* a dynamic quorum's set at the log start */
        if (st != SM_OK) {
            sm_error(CL_MOD, "%s: cannot load the metadata snapshot: %s", spath, sm_strerror(st));
            return st;
        }
        sm_info(CL_MOD, "metadata snapshot at offset %lld (epoch %d) loaded",
                (long long)sid.offset, sid.epoch);
        if (log_end_offset(cl->log) < sid.offset || log_start_offset(cl->log) > sid.offset)
            st = log_truncate_fully(cl->log, sid.offset);
        else if (log_start_offset(cl->log) < sid.offset)
            st = log_delete_records_before(cl->log, sid.offset);
        if (st != SM_OK) return st;
    }
    rc->a = a;
    rc->from = sid.offset;
    st = log_for_each_batch(cl->log, sid.offset, restore_batch, rc);
    if (st != SM_OK) {
        sm_error(CL_MOD, "%s: the metadata log cannot be read (%s)", cl->o.metadata_dir,
                 sm_strerror(st));
        return st;
    }
    memset(rs, 0, sizeof(*rs));
    rs->snapshot = sid;
    rs->voters = cl->o.dynamic ? snap_voters : NULL;
    rs->entries = rc->v;
    rs->n_entries = rc->n;
    cl->apply_next = sid.offset;
    atomic_store(&cl->applied, sid.offset - 1);
    snprintf(cl->quorum_state_path, sizeof(cl->quorum_state_path), "%s/quorum-state",
             cl->o.metadata_dir);
    size_t qlen = 0;
    FILE *f = fopen(cl->quorum_state_path, "r");
    if (f) {
        qlen = fread(qtext, 1, 4095, f);
        qtext[qlen] = 0;
        fclose(f);
        int nv = 0;
        if (raft_quorum_file_parse(qtext, qlen, &rs->state, state_voters, &nv) != SM_OK) {
            sm_error(CL_MOD, "%s: cannot parse the quorum state", cl->quorum_state_path);
            return SM_ERR_PARSE;
        }
        rs->have_state = true;
        if (nv >= 0) {
            rs->state_voters = state_voters;
            rs->n_state_voters = nv;
        }
    }
    return SM_OK;
}

int cluster_start(const cluster_opts_t *o, cluster_t *_Atomic *out) {
    cluster_t *cl = calloc(1, sizeof(*cl));
    if (!cl) return SM_ERR_NOMEM;
    cl->o = *o;
    cl->epfd = cl->evfd = -1;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cv, NULL);
    pthread_mutex_init(&cl->wmu, NULL);
    pthread_cond_init(&cl->wcv, NULL);
    atomic_init(&cl->leader_id, -1);
    atomic_init(&cl->active, false);
    atomic_init(&cl->applied, -1);
    atomic_init(&cl->stop, false);
    cl->epoch_start = -1;
    cl->leader_epoch = -1;
    cl->broker_epoch = -1;
    atomic_store(&cl->registered_epoch, -1);
    cl->hb_sent_to = cl->reg_sent_to = -1;
    for (int i = 0; i < o->n_voters; i++)
        cl->voter_ids[i] = o->voters[i].id;
    if (getrandom(cl->incarnation.b, 16, 0) != 16)
        for (int i = 0; i < 16; i++)
            cl->incarnation.b[i] = (uint8_t)rand();

    sm_arena_t a;
    sm_arena_init(&a, 0);
    restore_ctx_t rc = {0};
    raft_restore_t rs;
    int32_t state_voters[RAFT_MAX_VOTERS];
    char qtext[4096];
    raft_voter_set_t *snap_voters = calloc(1, sizeof(*snap_voters));
    int st = snap_voters ? open_log(cl, &rs, &a, &rc, state_voters, qtext, snap_voters)
                         : SM_ERR_NOMEM;
    if (st == SM_OK) {
        raft_config_t rcfg;
        raft_config_defaults(&rcfg);
        rcfg.node_id = o->node_id;
        rcfg.n_voters = o->n_voters;
        memcpy(rcfg.voters, cl->voter_ids, sizeof(int32_t) * (size_t)o->n_voters);
        rcfg.dynamic = o->dynamic;
        memcpy(rcfg.directory_id, o->directory_id, 16);
        rcfg.n_bootstrap = o->n_bootstrap;
        snprintf(rcfg.cluster_id, sizeof(rcfg.cluster_id), "%.31s", o->cluster_id);
        rcfg.election_timeout_ms = o->election_timeout_ms;
        rcfg.fetch_timeout_ms = o->fetch_timeout_ms;
        rcfg.election_backoff_max_ms = o->election_backoff_max_ms;
        rcfg.request_timeout_ms = o->request_timeout_ms;
        rcfg.retry_backoff_ms = o->retry_backoff_ms;
        rcfg.max_fetch_entries = 4096;
        rcfg.snapshot_min_entries = o->snapshot_min_entries;
        rcfg.snapshot_interval_ms = o->snapshot_interval_ms;
        rcfg.snapshot_read = meta_snapshot_read;
        rcfg.ctx = cl->o.metadata_dir;
        uint64_t seed;
        if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) seed = (uint64_t)cl_now();
        rcfg.rng_seed = seed ^ (uint64_t)o->node_id;
        st = raft_new(&rcfg, &rs, cl_now(), &cl->raft);
        if (st != SM_OK)
            sm_error(CL_MOD,
                     "the Raft quorum cannot start (node.id %d, %d voters): see the line above",
                     o->node_id, o->n_voters);
    }
    free(rc.v);
    free(snap_voters);
    sm_arena_free(&a);
    if (st != SM_OK) goto fail;
    sm_info(CL_MOD, "node %d: metadata log %s holds %lld records; %s of a %d-voter %s quorum",
            o->node_id, o->metadata_dir, (long long)log_end_offset(cl->log),
            raft_is_voter(cl->raft) ? "voter" : "observer", raft_voters(cl->raft)->n,
            o->dynamic ? "dynamic (kraft.version 1)" : "static");

    if (o->dynamic && raft_voters(cl->raft)->n == 0)
        sm_warn(CL_MOD,
                "node %d knows no voter yet: it joins as an observer through "
                "controller.quorum.bootstrap.servers and waits to be added (AddRaftVoter); a new "
                "quorum starts from samsa-server --format --standalone",
                o->node_id);
    cl->epfd = epoll_create1(EPOLL_CLOEXEC);
    cl->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cl->epfd < 0 || cl->evfd < 0) {
        st = SM_ERR_IO;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, cl->evfd, &ev)) {
        st = SM_ERR_IO;
        goto fail;
    }
    cl_peers_init(cl);
    /* Published before anything can call back: the controller listener, the applier
     * (drain) and the client listeners' handlers already running find it. */
    o->controller->quorum.ctx = cl;
    *out = cl;
    if (o->is_controller && (st = cl_serve_start(cl)) != SM_OK) goto fail;
    drain(cl);
    if (pthread_create(&cl->thread, NULL, quorum_main, cl)) {
        st = SM_ERR_IO;
        goto fail;
    }
    cl->thread_started = true;
    return SM_OK;
fail:
    /* The broker does not start: nothing serves requests any more. */
    *out = NULL;
    o->controller->quorum.ctx = NULL;
    cluster_stop(cl);
    return st ? st : SM_ERR;
}

int64_t cluster_broker_epoch(cluster_t *cl) { return cl ? atomic_load(&cl->registered_epoch) : -1; }

void cluster_stop(cluster_t *cl) {
    if (!cl) return;
    if (cl->thread_started) {
        /* Controlled shutdown (a broker asks to be fenced), then a leader resigns; each
         * waited for a bounded time. */
        int64_t deadline = cl_now() + 5000;
        pthread_mutex_lock(&cl->mu);
        cl->want_shutdown = true;
        pthread_mutex_unlock(&cl->mu);
        cl_wake(cl);
        while (cl->o.is_broker && cl_now() < deadline) {
            pthread_mutex_lock(&cl->mu);
            bool acked = cl->shutdown_acked;
            sm_cond_wait_until(&cl->cv, &cl->mu, cl_now() + 50);
            pthread_mutex_unlock(&cl->mu);
            if (acked) break;
        }
        atomic_store(&cl->stop, true);
        cl_wake(cl);
        pthread_join(cl->thread, NULL);
        if (raft_state(cl->raft) == RAFT_LEADER) {
            raft_resign(cl->raft, cl_now());
            drain(cl);
            cl_peers_arm(cl);
            /* give the EndQuorumEpoch a moment to leave */
            int64_t until = cl_now() + 200;
            while (cl_now() < until) {
                struct epoll_event evs[8];
                int n = epoll_wait(cl->epfd, evs, 8, 20);
                for (int i = 0; i < n; i++)
                    if (evs[i].data.ptr) cl_peer_event(cl, evs[i].data.ptr, evs[i].events);
                cl_peers_arm(cl);
            }
        }
    }
    cl_serve_stop(cl);
    cl_voters_close(cl);
    complete_waiters(cl, true, SM_ERR_AGAIN);
    while (cl->fwds)
        cl_fwd_finish(cl, cl->fwds, NULL, 0);
    while (cl->inbound) {
        cl_inbound_t *ib = cl->inbound;
        cl->inbound = ib->next;
        net_request_close(ib->nreq);
        free(ib);
    }
    while (cl->after) {
        cl_inbound_t *ib = cl->after;
        cl->after = ib->next;
        net_request_close(ib->nreq);
        free(ib->frame);
        free(ib);
    }
    pthread_mutex_lock(&cl->mu);
    cl_in_t *in = cl->inbox;
    cl->inbox = NULL;
    pthread_mutex_unlock(&cl->mu);
    while (in) {
        cl_in_t *next = in->next;
        if (in->nreq) net_request_close(in->nreq);
        if (in->kind == CL_IN_FORWARD) {
            in->fwd->next = NULL;
            cl->fwds = in->fwd;
            cl_fwd_finish(cl, in->fwd, NULL, 0);
        }
        if (in->kind == CL_IN_ALTER_SEND) {
            in->alter->next = cl->alters;
            cl->alters = in->alter;
        }
        if (in->kind == CL_IN_ELECT) {
            pthread_mutex_lock(&cl->mu);
            in->elect->status = SM_ERR_AGAIN;
            in->elect->done = true;
            pthread_cond_broadcast(&cl->cv);
            pthread_mutex_unlock(&cl->mu);
        }
        if (in->kind == CL_IN_PROPOSE) {
            pthread_mutex_lock(&cl->mu);
            in->w->status = SM_ERR_AGAIN;
            in->w->done = true;
            pthread_cond_broadcast(&cl->cv);
            pthread_mutex_unlock(&cl->mu);
        }
        sm_arena_free(&in->arena);
        free(in);
        in = next;
    }
    cl_peers_close(cl);
    cl_partitions_stop(cl);
    txn_reset(cl);
    free(cl->txn_vals);
    free(cl->txn_offs);
    if (cl->raft) raft_free(cl->raft);
    if (cl->log && log_close(cl->log) != SM_OK)
        sm_error(CL_MOD, "%s: closing the metadata log reported errors", cl->o.metadata_dir);
    if (cl->epfd >= 0) close(cl->epfd);
    if (cl->evfd >= 0) close(cl->evfd);
    pthread_mutex_destroy(&cl->wmu);
    pthread_cond_destroy(&cl->wcv);
    pthread_cond_destroy(&cl->cv);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}
