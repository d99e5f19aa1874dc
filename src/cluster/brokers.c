/*
 * Broker registration, heartbeats and fencing, both sides, on the quorum thread.
 *
 * Broker side (process.roles has broker), states:
 *   unregistered --BrokerRegistration answered--> registered (broker epoch) --heartbeats-->
 *   a heartbeat answered STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED -> unregistered
 *   shutting down: a heartbeat with WantShutDown until answered ShouldShutDown
 * At most one registration and one heartbeat are in flight. Every registration carries
 * PreviousBrokerEpoch: the broker epoch the clean-shutdown markers held at start (KIP-966),
 * -1 after an unclean stop.
 * Start-up, as Kafka's BrokerLifecycleManager (STARTING -> RECOVERY -> RUNNING): starting
 * --own registration applied here and unfenced at that broker epoch--> serving (once; the
 * client listeners open, on_serving). The controller unfences a broker only once a heartbeat
 * reports its metadata offset at or past its registration, so serving implies every record
 * committed before it registered is in this node's image. While starting, heartbeats go
 * every STARTING_HB_MS instead of broker.heartbeat.interval.ms (Kafka: 10 ms).
 *
 * Controller side (the active controller), per broker in the image:
 *   registered fenced --heartbeat with the metadata offset past its registration--> unfenced
 *   unfenced --no heartbeat for broker.session.timeout.ms, or WantShutDown--> fenced
 * Each transition is one metadata change: the broker record (RegisterBrokerRecord,
 * UnfenceBrokerRecord, BrokerRegistrationChangeRecord fenced) with the PartitionChangeRecords
 * it implies (partitions.c: a fenced or shutting-down broker leaves the ISRs and its
 * leaderships move to other in-sync replicas; leaderless partitions get a leader when a broker
 * of their ISR is unfenced). A new incarnation registering with a PreviousBrokerEpoch that is
 * not its last registered epoch shut down uncleanly: its registration carries the
 * PartitionChangeRecords that take it out of the ISRs and ELRs (KIP-966), decided, like the
 * other partition changes, only once the previous ones are applied. Invariants: a broker's
 * change is not proposed again until the previous one is applied (pending offset); liveness
 * is reset when this node becomes active, so brokers get a full session to reach the new
 * controller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cluster/cluster_impl.h"
#include "metadata/record.h"
#include "protocol/errors.h"
#include "protocol/gen/broker_registration_change_record.h"
#include "protocol/gen/register_broker_record.h"
#include "protocol/gen/unfence_broker_record.h"

#define RETRY_MS 500
#define STARTING_HB_MS 10

/* ---- broker side ---- */

static void send_to_controller(cluster_t *cl, cl_out_kind_t kind, int16_t api_key,
                               int16_t version, const void *body, int64_t now) {
    int32_t leader = atomic_load(&cl->leader_id);
    cl_peer_t *p = leader >= 0 ? cl_peer(cl, leader, true) : NULL;
    if (!p || !cl_peer_ready(cl, p, now)) return;
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    char client[32];
    snprintf(client, sizeof(client), "samsa-broker-%d", cl->o.node_id);
    uint8_t *frame;
    size_t len;
    cl_out_t *o = calloc(1, sizeof(*o));
    if (!o) return;
    if (cl_encode_frame(api->request, api_key, version, 0, false, body, client, &frame, &len)) {
        free(o);
        return;
    }
    o->kind = kind;
    o->api_key = api_key;
    o->version = version;
    if (cl_peer_send(cl, p, frame, len, o) != SM_OK) return;
    if (kind == CL_OUT_REGISTER) {
        cl->reg_inflight = true;
        cl->reg_sent_at = now;
        cl->reg_sent_to = leader;
    }
    if (kind == CL_OUT_HEARTBEAT) {
        cl->hb_inflight = true;
        cl->hb_sent_at = now;
        cl->hb_sent_to = leader;
    }
}

/* A registration or heartbeat still in flight to a controller that is no longer the one,
 * or unanswered past the request timeout, counts as lost: without this a paused
 * (SIGSTOP) controller, whose connection stays open, held every broker's heartbeats, and
 * its successor fenced them all a session timeout after it took over. */
static void give_up_stale(cluster_t *cl, int64_t now) {
    int32_t leader = atomic_load(&cl->leader_id);
    if (cl->hb_inflight &&
        (cl->hb_sent_to != leader || now - cl->hb_sent_at > cl->o.request_timeout_ms))
        cl->hb_inflight = false;
    if (cl->reg_inflight &&
        (cl->reg_sent_to != leader || now - cl->reg_sent_at > cl->o.request_timeout_ms))
        cl->reg_inflight = false;
}

static void send_registration(cluster_t *cl, int64_t now) {
    proto_broker_registration_request_t q;
    proto_broker_registration_request_listener_t ls[META_MAX_ENDPOINTS];
    proto_broker_registration_request_init(&q);
    q.broker_id = cl->o.node_id;
    q.cluster_id = sm_str_from(cl->o.cluster_id);
    q.incarnation_id = cl->incarnation;
    for (int i = 0; i < cl->o.n_endpoints; i++) {
        memset(&ls[i], 0, sizeof(ls[i]));
        ls[i].name = sm_str_from(cl->o.endpoints[i].name);
        ls[i].host = sm_str_from(cl->o.endpoints[i].host);
        ls[i].port = (uint16_t)cl->o.endpoints[i].port;
        ls[i].security_protocol = cl->o.endpoints[i].security_protocol;
    }
    q.listeners =
        (proto_broker_registration_request_listener_array_t){cl->o.n_endpoints, ls};
    q.features.n = 0;
    q.rack = cl->o.rack[0] ? sm_str_from(cl->o.rack) : SM_STR_NULL;
    q.previous_broker_epoch = cl->o.previous_broker_epoch;
    send_to_controller(cl, CL_OUT_REGISTER, CL_API_BROKER_REGISTRATION, CL_V_REGISTRATION, &q, now);
}

static void send_heartbeat(cluster_t *cl, int64_t now, bool shutdown) {
    proto_broker_heartbeat_request_t q;
    proto_broker_heartbeat_request_init(&q);
    q.broker_id = cl->o.node_id;
    q.broker_epoch = cl->broker_epoch;
    q.current_metadata_offset = atomic_load(&cl->applied);
    q.want_fence = false;
    q.want_shut_down = shutdown;
    send_to_controller(cl, CL_OUT_HEARTBEAT, CL_API_BROKER_HEARTBEAT, CL_V_HEARTBEAT, &q, now);
}

/* starting -> serving: this broker's registration is applied here and unfenced. */
static void check_serving(cluster_t *cl) {
    if (cl->serving || cl->broker_epoch < 0 || atomic_load(&cl->applied) < cl->broker_epoch)
        return;
    meta_image_t *img = cl->o.image;
    meta_image_rdlock(img);
    const meta_broker_t *bk = meta_image_broker(img, cl->o.node_id);
    bool unfenced = bk && !bk->fenced && bk->epoch == cl->broker_epoch;
    meta_image_unlock(img);
    if (!unfenced) return;
    cl->serving = true;
    sm_info(CL_MOD,
            "broker %d caught up with the metadata log (offset %lld) and is unfenced: "
            "serving clients",
            cl->o.node_id, (long long)atomic_load(&cl->applied));
    if (cl->o.on_serving) cl->o.on_serving(cl->o.serve_ctx);
}

int64_t cl_agent_deadline(const cluster_t *cl) {
    return cl->o.is_broker && !cl->serving && cl->broker_epoch >= 0 ? cl->next_agent_at
                                                                     : INT64_MAX;
}

void cl_agent_tick(cluster_t *cl, int64_t now) {
    if (!cl->o.is_broker) return;
    check_serving(cl);
    pthread_mutex_lock(&cl->mu);
    bool shutdown = cl->want_shutdown;
    if (shutdown && cl->broker_epoch < 0 && !cl->shutdown_acked) {
        cl->shutdown_acked = true; /* never registered: nothing to hand over */
        pthread_cond_broadcast(&cl->cv);
    }
    pthread_mutex_unlock(&cl->mu);
    give_up_stale(cl, now);
    if (now < cl->next_agent_at && !(cl->hb_sent_to != atomic_load(&cl->leader_id) &&
                                     cl->broker_epoch >= 0))
        return;
    if (cl->broker_epoch < 0) {
        if (!cl->reg_inflight && !shutdown) send_registration(cl, now);
    } else if (!cl->hb_inflight) {
        send_heartbeat(cl, now, shutdown);
    }
    bool starting = !cl->serving && cl->broker_epoch >= 0;
    cl->next_agent_at = now + (shutdown   ? 100
                               : starting ? STARTING_HB_MS
                                          : cl->o.heartbeat_interval_ms);
}

void cl_agent_failed(cluster_t *cl, cl_out_t *o) {
    if (o->kind == CL_OUT_ALTER) {
        cl_alter_failed(cl, o);
        return;
    }
    if (o->kind == CL_OUT_REGISTER) cl->reg_inflight = false;
    if (o->kind == CL_OUT_HEARTBEAT) cl->hb_inflight = false;
    cl->next_agent_at = cl_now() + RETRY_MS;
}

void cl_agent_response(cluster_t *cl, cl_out_t *o, sm_reader_t *r, sm_arena_t *a) {
    int64_t now = cl_now();
    if (o->kind == CL_OUT_ALTER) {
        cl_alter_response(cl, o, r, a);
        return;
    }
    if (o->kind == CL_OUT_REGISTER) {
        cl->reg_inflight = false;
        proto_broker_registration_response_t resp;
        if (proto_broker_registration_response_decode(r, a, o->version, &resp) != SM_OK) {
            cl->next_agent_at = now + RETRY_MS;
            return;
        }
        if (resp.error_code == PROTO_ERR_NONE) {
            cl->broker_epoch = resp.broker_epoch;
            atomic_store(&cl->registered_epoch, resp.broker_epoch);
            cl->next_agent_at = now;
            sm_info(CL_MOD, "broker %d registered with controller %d (broker epoch %lld)",
                    cl->o.node_id, atomic_load(&cl->leader_id), (long long)cl->broker_epoch);
        } else {
            cl->next_agent_at = now + RETRY_MS;
            if (resp.error_code != PROTO_ERR_NOT_CONTROLLER)
                sm_warn(CL_MOD, "broker registration refused: %s",
                        proto_error_name(resp.error_code));
        }
        return;
    }
    cl->hb_inflight = false;
    proto_broker_heartbeat_response_t resp;
    if (proto_broker_heartbeat_response_decode(r, a, o->version, &resp) != SM_OK) {
        cl->next_agent_at = now + RETRY_MS;
        return;
    }
    if (resp.error_code == PROTO_ERR_STALE_BROKER_EPOCH ||
        resp.error_code == PROTO_ERR_BROKER_ID_NOT_REGISTERED) {
        sm_info(CL_MOD, "heartbeat answered %s: registering again",
                proto_error_name(resp.error_code));
        cl->broker_epoch = -1;
        cl->next_agent_at = now;
        return;
    }
    if (resp.error_code != PROTO_ERR_NONE) {
        cl->next_agent_at = now + RETRY_MS;
        return;
    }
    if (resp.should_shut_down) {
        pthread_mutex_lock(&cl->mu);
        cl->shutdown_acked = true;
        pthread_cond_broadcast(&cl->cv);
        pthread_mutex_unlock(&cl->mu);
    }
}

/* ---- controller side ---- */

static cl_liveness_t *live(cluster_t *cl, int32_t id, int64_t now) {
    for (int i = 0; i < cl->n_live; i++)
        if (cl->live[i].id == id) return &cl->live[i];
    if (cl->n_live == CL_MAX_BROKERS) return NULL;
    cl_liveness_t *l = &cl->live[cl->n_live++];
    l->id = id;
    l->last_heartbeat = now;
    l->pending = -1;
    return l;
}

void cl_ctrl_became_active(cluster_t *cl, int64_t now) {
    cl->n_live = 0;
    /* Proposals of an earlier term here may have been truncated away: their offsets would
     * never be applied and every decision would wait for them forever (a controller killed
     * and elected again stopped fencing and answering AlterPartition). */
    cl->part_pending = cl->bulk_pending = -1;
    sm_map_free(&cl->touched);
    sm_map_init(&cl->touched);
    meta_image_t *img = cl->o.image;
    meta_image_rdlock(img);
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->brokers, &it, NULL, NULL, &v))
        live(cl, ((meta_broker_t *)v)->id, now);
    meta_image_unlock(img);
    cl->next_fence_check = now + cl->o.heartbeat_interval_ms;
}

void cl_recs_add(cl_recs_t *rs, int16_t type, int16_t version, const void *msg) {
    meta_record_t rec = {type, version, msg};
    size_t len = meta_record_size(&rec);
    uint8_t *buf = malloc(len);
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 16;
        sm_bytes_t *nv = realloc(rs->v, sizeof(*nv) * (size_t)cap);
        if (nv) {
            rs->v = nv;
            rs->cap = cap;
        }
    }
    if (!buf || rs->n == rs->cap) {
        free(buf);
        rs->oom = true;
        return;
    }
    sm_writer_t w = sm_writer_make(buf, len);
    if (meta_record_write(&w, &rec) != SM_OK) {
        free(buf);
        rs->oom = true;
        return;
    }
    rs->v[rs->n++] = (sm_bytes_t){buf, (int32_t)len};
}

void cl_recs_free(cl_recs_t *rs) {
    for (int i = 0; i < rs->n; i++)
        free((void *)rs->v[i].ptr);
    free(rs->v);
}

static void propose_change(cluster_t *cl, cl_recs_t *rs, cl_liveness_t *l) {
    int64_t first = -1, last = -1;
    if (!rs->oom && rs->n > 0 && cl_propose_records(cl, rs->v, rs->n, &first, &last) == SM_OK) {
        if (l) l->pending = last;
        cl->part_pending = cl->bulk_pending = last;
    }
    cl_recs_free(rs);
}

static void fence(cluster_t *cl, const meta_broker_t *bk, cl_liveness_t *l, bool shutdown) {
    cl_recs_t rs = {0};
    proto_broker_registration_change_record_t ch;
    proto_broker_registration_change_record_init(&ch);
    ch.broker_id = bk->id;
    ch.broker_epoch = bk->epoch;
    ch.fenced = 1;
    ch.in_controlled_shutdown = shutdown ? 1 : 0;
    /* Leadership moves first (a shutting-down broker hands its partitions over), then the
     * broker is fenced; one metadata transaction, applied whole. */
    cl_leadership_changes(cl, &rs, bk->id, shutdown ? CL_LEAD_SHUTDOWN : CL_LEAD_FENCE);
    cl_recs_add(&rs, PROTO_BROKER_REGISTRATION_CHANGE_RECORD_API_KEY, 1, &ch);
    propose_change(cl, &rs, l);
}

static void respond_heartbeat(cl_in_t *in, int16_t err, bool caught_up, bool fenced,
                              bool shut_down) {
    proto_broker_heartbeat_response_t resp;
    proto_broker_heartbeat_response_init(&resp);
    resp.error_code = err;
    resp.is_caught_up = caught_up;
    resp.is_fenced = fenced;
    resp.should_shut_down = shut_down;
    cl_respond(in->nreq, CL_API_BROKER_HEARTBEAT, in->version, in->corr, &resp);
}

static void respond_registration(cl_in_t *in, int16_t err) {
    proto_broker_registration_response_t resp;
    proto_broker_registration_response_init(&resp);
    resp.error_code = err;
    cl_respond(in->nreq, CL_API_BROKER_REGISTRATION, in->version, in->corr, &resp);
}

bool cl_ctrl_register(cluster_t *cl, cl_in_t *in, int64_t now) {
    const proto_broker_registration_request_t *q = in->body;
    if (!atomic_load(&cl->active)) {
        respond_registration(in, PROTO_ERR_NOT_CONTROLLER);
        return true;
    }
    if (!sm_str_eq(q->cluster_id, sm_str_from(cl->o.cluster_id))) {
        sm_warn(CL_MOD, "broker %d registers with cluster id %.*s, this cluster is %s: refused",
                q->broker_id, (int)(q->cluster_id.len > 0 ? q->cluster_id.len : 0),
                q->cluster_id.ptr ? q->cluster_id.ptr : "", cl->o.cluster_id);
        respond_registration(in, PROTO_ERR_INCONSISTENT_CLUSTER_ID);
        return true;
    }
    meta_image_t *img = cl->o.image;
    meta_image_rdlock(img);
    const meta_broker_t *bk = meta_image_broker(img, q->broker_id);
    bool restarted = bk && memcmp(bk->incarnation_id.b, q->incarnation_id.b, 16) != 0;
    bool taken = restarted && !bk->fenced;
    int64_t last_epoch = bk ? bk->epoch : -1;
    bool elr = meta_elr_enabled(img);
    meta_image_unlock(img);
    cl_liveness_t *l = live(cl, q->broker_id, now);
    if (taken && l && now - l->last_heartbeat < cl->o.session_timeout_ms) {
        sm_warn(CL_MOD, "broker %d registers while another incarnation of it is alive: refused",
                q->broker_id);
        respond_registration(in, PROTO_ERR_DUPLICATE_BROKER_REGISTRATION);
        return true;
    }
    /* KIP-966: a new incarnation whose PreviousBrokerEpoch is not its last registration's
     * epoch stopped uncleanly (the clean-shutdown markers record the epoch): it may have
     * lost unflushed records, so it leaves the ISRs and ELRs in the same
     * metadata transaction, decided once earlier partition changes are applied. */
    bool unclean = elr && restarted && q->previous_broker_epoch != last_epoch;
    if (unclean && cl_partitions_busy(cl)) {
        cl_partitions_defer(cl, in);
        return false;
    }
    cl_recs_t rs = {0};
    if (restarted)
        sm_info(CL_MOD,
                "broker %d registers after %s shutdown (previous broker epoch %lld, last "
                "registered %lld)%s",
                q->broker_id, q->previous_broker_epoch == last_epoch ? "a clean" : "an unclean",
                (long long)q->previous_broker_epoch, (long long)last_epoch,
                unclean ? ": it leaves the ISRs and eligible leader replicas" : "");
    if (unclean) cl_leadership_changes(cl, &rs, q->broker_id, CL_LEAD_UNCLEAN_SHUTDOWN);
    int n_changes = rs.n;
    proto_register_broker_record_t rec;
    proto_register_broker_record_broker_endpoint_t eps[META_MAX_ENDPOINTS];
    proto_register_broker_record_init(&rec);
    rec.broker_id = q->broker_id;
    rec.incarnation_id = q->incarnation_id;
    rec.broker_epoch = raft_log_end(cl->raft);
    int ne = q->listeners.n > META_MAX_ENDPOINTS ? META_MAX_ENDPOINTS : q->listeners.n;
    for (int i = 0; i < ne; i++) {
        memset(&eps[i], 0, sizeof(eps[i]));
        eps[i].name = q->listeners.v[i].name;
        eps[i].host = q->listeners.v[i].host;
        eps[i].port = q->listeners.v[i].port;
        eps[i].security_protocol = q->listeners.v[i].security_protocol;
    }
    rec.end_points = (proto_register_broker_record_broker_endpoint_array_t){ne > 0 ? ne : 0, eps};
    rec.features.n = 0;
    rec.rack = q->rack;
    rec.fenced = true;
    cl_recs_add(&rs, PROTO_REGISTER_BROKER_RECORD_API_KEY, 3, &rec);
    int64_t first = -1, last = -1;
    int rc = rs.oom ? SM_ERR_NOMEM : cl_propose_records(cl, rs.v, rs.n, &first, &last);
    cl_recs_free(&rs);
    if (rc != SM_OK) {
        respond_registration(in, rc == SM_ERR_AGAIN ? PROTO_ERR_NOT_CONTROLLER
                                                    : PROTO_ERR_UNKNOWN_SERVER_ERROR);
        return true;
    }
    if (l) {
        l->last_heartbeat = now;
        l->pending = last;
    }
    if (n_changes > 0) cl->part_pending = cl->bulk_pending = last;
    cl_inbound_t *ib = calloc(1, sizeof(*ib));
    if (!ib) {
        net_request_close(in->nreq);
        return true;
    }
    *ib = (cl_inbound_t){cl->after, 0, last, in->nreq, in->api_key, in->version, in->corr, now,
                         first, NULL, 0};
    cl->after = ib;
    return true;
}

void cl_ctrl_heartbeat(cluster_t *cl, cl_in_t *in, int64_t now) {
    const proto_broker_heartbeat_request_t *q = in->body;
    if (!atomic_load(&cl->active)) {
        respond_heartbeat(in, PROTO_ERR_NOT_CONTROLLER, false, true, false);
        return;
    }
    meta_image_t *img = cl->o.image;
    meta_image_rdlock(img);
    const meta_broker_t *bk = meta_image_broker(img, q->broker_id);
    meta_broker_t copy;
    if (bk) copy = *bk;
    meta_image_unlock(img);
    if (!bk) {
        respond_heartbeat(in, PROTO_ERR_BROKER_ID_NOT_REGISTERED, false, true, false);
        return;
    }
    if (copy.epoch != q->broker_epoch) {
        respond_heartbeat(in, PROTO_ERR_STALE_BROKER_EPOCH, false, true, false);
        return;
    }
    cl_liveness_t *l = live(cl, q->broker_id, now);
    if (l) l->last_heartbeat = now;
    bool settled = (!l || l->pending < cl->apply_next) && !cl_partitions_busy(cl);
    bool caught_up = q->current_metadata_offset >= copy.epoch;
    if (q->want_shut_down) {
        bool done = copy.fenced && copy.in_controlled_shutdown;
        if (settled && !done) {
            sm_info(CL_MOD, "broker %d shuts down: its leaderships move, then it is fenced",
                    copy.id);
            fence(cl, &copy, l, true);
        }
        /* ShouldShutDown once the handover is applied (the broker asks again meanwhile). */
        respond_heartbeat(in, PROTO_ERR_NONE, caught_up, true, done);
        return;
    }
    if (copy.fenced && caught_up && settled) {
        cl_recs_t rs = {0};
        proto_unfence_broker_record_t uf;
        proto_unfence_broker_record_init(&uf);
        uf.id = copy.id;
        uf.epoch = copy.epoch;
        cl_recs_add(&rs, PROTO_UNFENCE_BROKER_RECORD_API_KEY, 0, &uf);
        cl_leadership_changes(cl, &rs, copy.id, CL_LEAD_UNFENCE);
        sm_info(CL_MOD, "broker %d caught up with the metadata log: unfenced", copy.id);
        propose_change(cl, &rs, l);
    }
    respond_heartbeat(in, PROTO_ERR_NONE, caught_up, copy.fenced, false);
}

void cl_ctrl_tick(cluster_t *cl, int64_t now) {
    if (!atomic_load(&cl->active) || now < cl->next_fence_check) return;
    cl->next_fence_check = now + 250;
    meta_image_t *img = cl->o.image;
    meta_broker_t late[16];
    int nlate = 0;
    meta_image_rdlock(img);
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->brokers, &it, NULL, NULL, &v) && nlate < 16) {
        const meta_broker_t *bk = v;
        if (bk->fenced) continue;
        cl_liveness_t *l = live(cl, bk->id, now);
        if (l && now - l->last_heartbeat > cl->o.session_timeout_ms &&
            l->pending < cl->apply_next && !cl_partitions_busy(cl))
            late[nlate++] = *bk;
    }
    meta_image_unlock(img);
    for (int i = 0; i < nlate; i++) {
        /* each fencing decides on the image the previous one left: the others wait for a
         * later tick once one is proposed */
        if (cl_partitions_busy(cl)) break;
        cl_liveness_t *l = live(cl, late[i].id, now);
        sm_warn(CL_MOD, "broker %d sent no heartbeat for %lld ms (broker.session.timeout.ms): "
                        "fenced",
                late[i].id, (long long)(l ? now - l->last_heartbeat : 0));
        fence(cl, &late[i], l, false);
    }
}
