/*
 * KIP-853's voter changes on the quorum thread: AddRaftVoter (80), RemoveRaftVoter (81) and
 * UpdateRaftVoter (82) served by the Raft leader of a dynamic quorum, which decides them
 * (raft_add_voter and friends: one change at a time, a new voter caught up), and the
 * answers held until the VotersRecord commits. Not for: relaying them from brokers and
 * other controllers (cluster_forward does) or the voter set itself (src/raft).
 *
 * States of a held answer: pending (in cl->voter_changes, its record at `offset`) ->
 * answered NONE once the high watermark passes offset, NOT_LEADER_OR_FOLLOWER once this node
 * stops leading, REQUEST_TIMED_OUT at its deadline. Invariant: each is answered exactly once
 * and then freed; cluster_stop closes those still held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cluster/cluster_impl.h"
#include "protocol/errors.h"
#include "protocol/gen/add_raft_voter_request.h"
#include "protocol/gen/add_raft_voter_response.h"
#include "protocol/gen/remove_raft_voter_request.h"
#include "protocol/gen/remove_raft_voter_response.h"
#include "protocol/gen/update_raft_voter_request.h"
#include "protocol/gen/update_raft_voter_response.h"
#include "raft/raft_voters.h"

static const char *error_text(int16_t err) {
    switch (err) {
    case PROTO_ERR_NONE: return NULL;
    case PROTO_ERR_DUPLICATE_VOTER: return "The voter id is already part of the set of voters.";
    case PROTO_ERR_VOTER_NOT_FOUND: return "The voter is not part of the set of voters.";
    case PROTO_ERR_UNSUPPORTED_VERSION:
        return "The cluster does not support changing voters: kraft.version is 0 (a static "
               "controller.quorum.voters).";
    case PROTO_ERR_REQUEST_TIMED_OUT:
        return "Request timed out: a voter change is pending, the leader has not committed its "
               "epoch yet, or the new voter is not caught up.";
    case PROTO_ERR_NOT_LEADER_OR_FOLLOWER: return "This node is not the Raft leader.";
    case PROTO_ERR_INCONSISTENT_CLUSTER_ID: return "The cluster id does not match.";
    default: return "The voter change was refused.";
    }
}

static void answer(net_request_t *nreq, int16_t api, int16_t version, int32_t corr, int16_t err,
                   cluster_t *cl) {
    const char *text = error_text(err);
    sm_str_t msg = text ? sm_str_from(text) : SM_STR_NULL;
    if (api == CL_API_ADD_RAFT_VOTER) {
        proto_add_raft_voter_response_t r;
        proto_add_raft_voter_response_init(&r);
        r.error_code = err;
        r.error_message = msg;
        cl_respond(nreq, api, version, corr, &r);
    } else if (api == CL_API_REMOVE_RAFT_VOTER) {
        proto_remove_raft_voter_response_t r;
        proto_remove_raft_voter_response_init(&r);
        r.error_code = err;
        r.error_message = msg;
        cl_respond(nreq, api, version, corr, &r);
    } else {
        proto_update_raft_voter_response_t r;
        proto_update_raft_voter_response_current_leader_t cur;
        proto_update_raft_voter_response_init(&r);
        memset(&cur, 0, sizeof(cur));
        raft_quorum_state_t qs = raft_quorum_state(cl->raft);
        cur.leader_id = qs.leader_id;
        cur.leader_epoch = qs.epoch;
        cur.host = SM_STR_LIT("");
        const raft_voter_set_t *vs = raft_voters(cl->raft);
        int li = raft_voters_find(vs, qs.leader_id);
        if (li >= 0) {
            cur.host = sm_str_from(vs->v[li].host);
            cur.port = vs->v[li].port;
        }
        r.error_code = err;
        r.current_leader = &cur;
        cl_respond(nreq, api, version, corr, &r);
    }
}

static bool cluster_id_ok(cluster_t *cl, sm_str_t id) {
    return id.len < 0 || (strlen(cl->o.cluster_id) == (size_t)id.len &&
                          memcmp(cl->o.cluster_id, id.ptr, (size_t)id.len) == 0);
}

/* The voter's endpoint on this cluster's controller listener, from a request's listeners. */
#define FILL_ENDPOINT(cl, v, ls, err)                                                              \
    do {                                                                                           \
        for (int i_ = 0; i_ < (ls).n; i_++) {                                                      \
            const char *want_ =                                                                    \
                (cl)->o.controller_listener[0] ? (cl)->o.controller_listener : "CONTROLLER";       \
            if ((ls).v[i_].name.len != (int32_t)strlen(want_) ||                                   \
                strncasecmp((ls).v[i_].name.ptr, want_, strlen(want_)) != 0)                       \
                continue;                                                                          \
            snprintf((v).listener, sizeof((v).listener), "%s", want_);                             \
            snprintf((v).host, sizeof((v).host), "%.*s", (int)(ls).v[i_].host.len,                 \
                     (ls).v[i_].host.ptr);                                                         \
            (v).port = (ls).v[i_].port;                                                            \
        }                                                                                          \
        if (!(v).host[0] || !(v).port) (err) = PROTO_ERR_INVALID_REQUEST;                          \
    } while (0)

void cl_voters_request(cluster_t *cl, cl_in_t *in, int64_t now) {
    int32_t leader = raft_quorum_state(cl->raft).leader_id;
    if (raft_state(cl->raft) != RAFT_LEADER && leader >= 0 && leader != cl->o.node_id) {
        cluster_forward(cl, in->nreq); /* the leader decides */
        return;
    }
    int16_t err = PROTO_ERR_NONE;
    int64_t off = -1, deadline = now + cl->o.request_timeout_ms;
    bool wait = true;
    raft_voter_t v;
    memset(&v, 0, sizeof(v));
    if (in->api_key == CL_API_ADD_RAFT_VOTER) {
        proto_add_raft_voter_request_t *q = in->body;
        v.id = q->voter_id;
        memcpy(v.dir, q->voter_directory_id.b, 16);
        if (!cluster_id_ok(cl, q->cluster_id)) err = PROTO_ERR_INCONSISTENT_CLUSTER_ID;
        if (err == PROTO_ERR_NONE) FILL_ENDPOINT(cl, v, q->listeners, err);
        if (err == PROTO_ERR_NONE) err = raft_add_voter(cl->raft, now, &v, &off);
        if (q->timeout_ms > 0) deadline = now + q->timeout_ms;
        wait = in->version < 1 || q->ack_when_committed;
    } else if (in->api_key == CL_API_REMOVE_RAFT_VOTER) {
        proto_remove_raft_voter_request_t *q = in->body;
        if (!cluster_id_ok(cl, q->cluster_id)) err = PROTO_ERR_INCONSISTENT_CLUSTER_ID;
        if (err == PROTO_ERR_NONE)
            err = raft_remove_voter(cl->raft, now, q->voter_id, q->voter_directory_id.b, &off);
        v.id = q->voter_id;
    } else {
        proto_update_raft_voter_request_t *q = in->body;
        v.id = q->voter_id;
        memcpy(v.dir, q->voter_directory_id.b, 16);
        if (!cluster_id_ok(cl, q->cluster_id)) err = PROTO_ERR_INCONSISTENT_CLUSTER_ID;
        if (err == PROTO_ERR_NONE) FILL_ENDPOINT(cl, v, q->listeners, err);
        if (err == PROTO_ERR_NONE) err = raft_update_voter(cl->raft, now, &v, &off);
    }
    sm_info(CL_MOD, "%s of voter %d: %s",
            in->api_key == CL_API_ADD_RAFT_VOTER      ? "AddRaftVoter"
            : in->api_key == CL_API_REMOVE_RAFT_VOTER ? "RemoveRaftVoter"
                                                      : "UpdateRaftVoter",
            v.id, err == PROTO_ERR_NONE ? "appended" : proto_error_name(err));
    cl_inbound_t *ib = err == PROTO_ERR_NONE && wait ? calloc(1, sizeof(*ib)) : NULL;
    if (!ib) {
        answer(in->nreq, in->api_key, in->version, in->corr, err, cl);
        return;
    }
    *ib = (cl_inbound_t){.next = cl->voter_changes,
                         .offset = off,
                         .nreq = in->nreq,
                         .api_key = in->api_key,
                         .version = in->version,
                         .corr = in->corr,
                         .at = deadline};
    cl->voter_changes = ib;
}

void cl_voters_tick(cluster_t *cl, int64_t now) {
    cl_inbound_t **pp = &cl->voter_changes;
    bool leader = raft_state(cl->raft) == RAFT_LEADER;
    int64_t hw = raft_high_watermark(cl->raft);
    while (*pp) {
        cl_inbound_t *ib = *pp;
        int16_t err = PROTO_ERR_NONE;
        if (hw > ib->offset)
            err = PROTO_ERR_NONE;
        else if (!leader)
            err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
        else if (now >= ib->at)
            err = PROTO_ERR_REQUEST_TIMED_OUT;
        else {
            pp = &ib->next;
            continue;
        }
        *pp = ib->next;
        answer(ib->nreq, ib->api_key, ib->version, ib->corr, err, cl);
        free(ib);
    }
}

void cl_voters_close(cluster_t *cl) {
    while (cl->voter_changes) {
        cl_inbound_t *ib = cl->voter_changes;
        cl->voter_changes = ib->next;
        net_request_close(ib->nreq);
        free(ib);
    }
}
