/*
 * ElectLeaders (KIP-460). A cluster elects on the active controller (requests reach it as
 * every admin request does): PREFERRED gives each partition back to its first replica when
 * that one is in the ISR and usable, UNCLEAN gives a leaderless partition any live replica.
 * On one node every partition's leader is its preferred (and only) replica, so each named
 * partition answers ELECTION_NOT_NEEDED. A null partition list means every partition; only
 * those where something was done or failed are reported, as Kafka answers.
 */
#include "broker/handlers/handlers.h"
#include "cluster/cluster.h"
#include "protocol/errors.h"

typedef proto_elect_leaders_response_replica_election_result_t topic_result_t;
typedef proto_elect_leaders_response_partition_result_t part_result_t;

static const char *election_message(int16_t err) {
    switch (err) {
    case PROTO_ERR_NONE: return NULL;
    case PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION: return "The partition does not exist.";
    case PROTO_ERR_ELECTION_NOT_NEEDED: return "Leader election not needed for topic partition.";
    case PROTO_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
        return "The preferred leader was not available.";
    case PROTO_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
        return "Eligible topic partition leaders are not available.";
    case PROTO_ERR_NOT_CONTROLLER: return "This is not the correct controller for this cluster.";
    default: return "The election failed.";
    }
}

/* Every partition (null list) or the named ones, as the controller's election list;
 * names the request gave map to their topic ids (zero for unknown topics). */
static cluster_election_t *list_partitions(broker_req_t *r, const proto_elect_leaders_request_t *req,
                                           int *n) {
    broker_t *b = r->b;
    meta_image_t *img = &b->image;
    int count = 0;
    meta_image_rdlock(img);
    if (req->topic_partitions.n < 0) {
        size_t it = 0;
        void *v;
        while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v))
            count += ((meta_topic_t *)v)->n_partitions;
    } else {
        for (int32_t i = 0; i < req->topic_partitions.n; i++)
            count += req->topic_partitions.v[i].partitions.n > 0
                         ? req->topic_partitions.v[i].partitions.n
                         : 0;
    }
    cluster_election_t *e = sm_arena_calloc(&r->arena, (size_t)count + 1, sizeof(*e));
    int k = 0;
    if (e && req->topic_partitions.n < 0) {
        size_t it = 0;
        void *v;
        while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v)) {
            const meta_topic_t *t = v;
            for (int32_t p = 0; p < t->n_partitions && k < count; p++)
                e[k++] = (cluster_election_t){t->id, p, 0};
        }
    } else if (e) {
        for (int32_t i = 0; i < req->topic_partitions.n; i++) {
            const proto_elect_leaders_request_topic_partitions_t *tp = &req->topic_partitions.v[i];
            const meta_topic_t *t = meta_image_topic(img, tp->topic);
            for (int32_t p = 0; p < tp->partitions.n && k < count; p++)
                e[k++] = (cluster_election_t){t ? t->id : (sm_uuid_t){{0}}, tp->partitions.v[p], 0};
        }
    }
    meta_image_unlock(img);
    *n = k;
    return e;
}

/* Answers from the election list, in the request's shape (or grouped by topic for all). */
static int answer(broker_req_t *r, const proto_elect_leaders_request_t *req,
                  const cluster_election_t *e, int n) {
    broker_t *b = r->b;
    proto_elect_leaders_response_t *resp = r->resp;
    int32_t nt = req->topic_partitions.n;
    bool all = nt < 0;
    if (all) nt = n; /* at most one topic per partition */
    topic_result_t *topics = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*topics));
    part_result_t *parts = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*parts));
    if (!topics || !parts) return BROKER_CLOSE;
    int32_t ti = 0;
    int k = 0;
    meta_image_rdlock(&b->image);
    for (int i = 0; i < n; i++) {
        if (all && e[i].error == PROTO_ERR_ELECTION_NOT_NEEDED) continue;
        bool next_topic;
        if (all) {
            next_topic = ti == 0 || memcmp(e[i].topic_id.b, e[i - 1].topic_id.b, 16) != 0 ||
                         topics[ti - 1].partition_result.n == 0;
        } else {
            next_topic = false;
        }
        if (all && next_topic) {
            const meta_topic_t *t = meta_image_topic_by_id(&b->image, &e[i].topic_id);
            topics[ti].topic = sm_arena_str(&r->arena, t ? t->name : "");
            topics[ti].partition_result = (proto_elect_leaders_response_partition_result_array_t){
                0, &parts[k]};
            ti++;
        }
        part_result_t *out = &parts[k++];
        out->partition_id = e[i].partition;
        out->error_code = e[i].error;
        const char *msg = election_message(e[i].error);
        out->error_message = msg ? sm_arena_str(&r->arena, msg) : SM_STR_NULL;
        if (all) topics[ti - 1].partition_result.n++;
    }
    meta_image_unlock(&b->image);
    if (!all) {
        int at = 0;
        for (int32_t i = 0; i < nt; i++) {
            const proto_elect_leaders_request_topic_partitions_t *tp = &req->topic_partitions.v[i];
            int32_t np = tp->partitions.n > 0 ? tp->partitions.n : 0;
            topics[i].topic = tp->topic;
            topics[i].partition_result =
                (proto_elect_leaders_response_partition_result_array_t){np, &parts[at]};
            at += np;
        }
        ti = nt;
    }
    resp->replica_election_results =
        (proto_elect_leaders_response_replica_election_result_array_t){ti, topics};
    return BROKER_RESPOND;
}

int broker_handle_elect_leaders(broker_req_t *r) {
    broker_t *b = r->b;
    proto_elect_leaders_request_t *req = broker_body(r);
    proto_elect_leaders_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->replica_election_results.n = 0;
    if (r->version >= 1 && req->election_type != 0 && req->election_type != 1) {
        resp->error_code = PROTO_ERR_INVALID_REQUEST;
        return BROKER_RESPOND;
    }
    int n = 0;
    cluster_election_t *e = list_partitions(r, req, &n);
    if (!e) return BROKER_CLOSE;
    if (b->cluster) {
        int rc = cluster_elect_leaders(b->cluster, r->version >= 1 ? req->election_type : 0, e, n);
        if (rc != SM_OK)
            for (int i = 0; i < n; i++)
                e[i].error = rc == SM_ERR_AGAIN ? PROTO_ERR_NOT_CONTROLLER
                                                : PROTO_ERR_UNKNOWN_SERVER_ERROR;
    } else {
        meta_image_rdlock(&b->image);
        for (int i = 0; i < n; i++) {
            const meta_topic_t *t = meta_image_topic_by_id(&b->image, &e[i].topic_id);
            e[i].error = t && e[i].partition >= 0 && e[i].partition < t->n_partitions
                             ? PROTO_ERR_ELECTION_NOT_NEEDED
                             : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        meta_image_unlock(&b->image);
    }
    return answer(r, req, e, n);
}
