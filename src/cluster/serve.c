/*
 * The CONTROLLER listener: its own network thread decodes each request and hands it on, so
 * that nothing a client or a slow controller operation does can hold up Raft traffic.
 *   Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot -> the quorum thread (Raft)
 *   BrokerRegistration, BrokerHeartbeat, AlterPartition,
 *   DescribeQuorum,
 *   AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter (KIP-853)    -> the quorum thread
 *   admin requests forwarded by brokers (ElectLeaders too),
 *   AllocateProducerIds                                          -> the worker thread, which
 *                                                                   blocks in the controller
 *   ApiVersions                                                  -> answered here
 * Anything else closes the connection, as Kafka's controller does not serve it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "cluster/cluster_impl.h"
#include "protocol/errors.h"
#include "protocol/request.h"
#include "raft/raft_codec.h"
#include "raft/raft_voters.h"

/* APIs of the controller listener and their versions (Kafka 4.4's controller ranges for
 * those it serves). */
static const int16_t served[][3] = {
    {CL_API_FETCH, 4, 17},
    {CL_API_API_VERSIONS, 0, 4},
    {CL_API_CREATE_TOPICS, 2, 7},
    {20, 1, 6},  /* DeleteTopics */
    {33, 0, 2},  /* AlterConfigs */
    {37, 0, 3},  /* CreatePartitions */
    {CL_API_ELECT_LEADERS, 0, 2},
    {44, 0, 1},  /* IncrementalAlterConfigs */
    {45, 0, 1},  /* AlterPartitionReassignments */
    {46, 0, 0},  /* ListPartitionReassignments */
    {49, 0, 1},  /* AlterClientQuotas */
    {CL_API_VOTE, 0, 2},
    {CL_API_BEGIN_EPOCH, 0, 1},
    {CL_API_END_EPOCH, 0, 1},
    {CL_API_DESCRIBE_QUORUM, 0, 2},
    {CL_API_ALTER_PARTITION, 2, 3},
    {57, 0, 1}, /* UpdateFeatures */
    {60, 1, 2}, /* DescribeCluster (controller endpoints) */
    {CL_API_FETCH_SNAPSHOT, 0, 1},
    {CL_API_BROKER_REGISTRATION, 0, 4},
    {CL_API_BROKER_HEARTBEAT, 0, 2},
    {CL_API_ALLOCATE_PRODUCER_IDS, 0, 0},
    {CL_API_ADD_RAFT_VOTER, 0, 1},
    {CL_API_REMOVE_RAFT_VOTER, 0, 0},
    {CL_API_UPDATE_RAFT_VOTER, 0, 0},
};
#define N_SERVED (sizeof(served) / sizeof(served[0]))

static const int16_t *find_served(int16_t key) {
    for (size_t i = 0; i < N_SERVED; i++)
        if (served[i][0] == key) return served[i];
    return NULL;
}

static bool is_raft(int16_t key) {
    return key == CL_API_VOTE || key == CL_API_BEGIN_EPOCH || key == CL_API_END_EPOCH ||
           key == CL_API_FETCH || key == CL_API_FETCH_SNAPSHOT;
}

static raft_msg_kind_t raft_req_kind(int16_t key) {
    switch (key) {
    case CL_API_VOTE: return RAFT_MSG_VOTE_REQ;
    case CL_API_BEGIN_EPOCH: return RAFT_MSG_BEGIN_EPOCH_REQ;
    case CL_API_END_EPOCH: return RAFT_MSG_END_EPOCH_REQ;
    case CL_API_FETCH: return RAFT_MSG_FETCH_REQ;
    default: return RAFT_MSG_FETCH_SNAPSHOT_REQ;
    }
}

static void answer_api_versions(net_request_t *nreq, int16_t version, int32_t corr) {
    proto_api_versions_response_t resp;
    proto_api_versions_response_api_version_t keys[N_SERVED];
    proto_api_versions_response_init(&resp);
    for (size_t i = 0; i < N_SERVED; i++) {
        memset(&keys[i], 0, sizeof(keys[i]));
        keys[i].api_key = served[i][0];
        keys[i].min_version = served[i][1];
        keys[i].max_version = served[i][2];
    }
    resp.api_keys = (proto_api_versions_response_api_version_array_t){(int32_t)N_SERVED, keys};
    if (version > 4) {
        resp.error_code = PROTO_ERR_UNSUPPORTED_VERSION;
        version = 0;
    }
    cl_respond(nreq, CL_API_API_VERSIONS, version, corr, &resp);
}

/* DescribeCluster to a controller: the voters and their controller endpoints, as Kafka's
 * controllers answer tools started with --bootstrap-controller. */
static void answer_describe_cluster(cluster_t *cl, net_request_t *nreq, sm_arena_t *a,
                                    const proto_request_t *req) {
    proto_describe_cluster_request_t q;
    sm_reader_t r = sm_reader_make(req->body_start, req->body_len);
    int16_t v = req->header.request_api_version;
    if (proto_describe_cluster_request_decode(&r, a, v, &q) != SM_OK) {
        net_request_close(nreq);
        return;
    }
    proto_describe_cluster_response_t resp;
    proto_describe_cluster_response_describe_cluster_broker_t nodes[RAFT_MAX_VOTERS];
    proto_describe_cluster_response_init(&resp);
    resp.endpoint_type = q.endpoint_type;
    resp.cluster_id = sm_str_from(cl->o.cluster_id);
    resp.controller_id = atomic_load(&cl->leader_id);
    resp.cluster_authorized_operations = INT32_MIN;
    if (q.endpoint_type != 2) {
        resp.error_code = PROTO_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp.error_message = SM_STR_LIT("The controller only handles CONTROLLER endpoints.");
        resp.controller_id = -1;
    } else {
        /* the voters in force: controller.quorum.voters, or a dynamic quorum's set */
        raft_voter_set_t *vs = calloc(1, sizeof(*vs));
        if (!vs) {
            net_request_close(nreq);
            return;
        }
        if (cl->o.dynamic) {
            pthread_mutex_lock(&cl->mu);
            *vs = cl->voters_view;
            pthread_mutex_unlock(&cl->mu);
        } else {
            vs->n = cl->o.n_voters;
            for (int i = 0; i < vs->n; i++) {
                vs->v[i].id = cl->o.voters[i].id;
                snprintf(vs->v[i].host, sizeof(vs->v[i].host), "%s", cl->o.voters[i].host);
                vs->v[i].port = (uint16_t)cl->o.voters[i].port;
            }
        }
        for (int i = 0; i < vs->n; i++) {
            memset(&nodes[i], 0, sizeof(nodes[i]));
            nodes[i].broker_id = vs->v[i].id;
            nodes[i].host = sm_str_from(vs->v[i].host);
            nodes[i].port = vs->v[i].port;
            nodes[i].rack = SM_STR_NULL;
        }
        resp.brokers = (proto_describe_cluster_response_describe_cluster_broker_array_t){vs->n, nodes};
        cl_respond(nreq, 60, v, req->header.correlation_id, &resp);
        free(vs);
        return;
    }
    cl_respond(nreq, 60, v, req->header.correlation_id, &resp);
}

/* Work for the quorum thread, with an arena sized for nreq's frame; NULL (nreq closed) when
 * memory is short. */
static cl_in_t *in_new(net_request_t *nreq) {
    cl_in_t *in = calloc(1, sizeof(*in));
    if (!in) {
        net_request_close(nreq);
        return NULL;
    }
    sm_arena_init(&in->arena, proto_decode_arena_limit(nreq->len));
    return in;
}

static void on_request(net_request_t *nreq, void *arg) {
    cluster_t *cl = arg;
    cl_in_t *in = in_new(nreq);
    if (!in) return;
    proto_request_t req;
    int rc = proto_request_parse_header(nreq->frame, nreq->len, &in->arena, &req);
    int16_t key = req.header.request_api_key, v = req.header.request_api_version;
    const int16_t *s = rc == SM_ERR_PARSE ? NULL : find_served(key);
    if (s && key == CL_API_API_VERSIONS) {
        answer_api_versions(nreq, v, req.header.correlation_id);
        goto done;
    }
    if (!s || rc != SM_OK || v < s[1] || v > s[2]) {
        sm_debug(CL_MOD, "controller listener: api %d v%d from %s refused", key, v,
                 net_conn_peer(nreq->conn));
        net_request_close(nreq);
        goto done;
    }
    in->nreq = nreq;
    in->api_key = key;
    in->version = v;
    in->corr = req.header.correlation_id;
    sm_reader_t r = sm_reader_make(req.body_start, req.body_len);
    if (is_raft(key)) {
        if (raft_codec_decode(raft_req_kind(key), &r, &in->arena, v, -1, cl->o.node_id,
                              &in->msg) != SM_OK) {
            net_request_close(nreq);
            goto done;
        }
        in->kind = CL_IN_RAFT;
        cl_push(cl, in);
        return;
    }
    if (key == CL_API_BROKER_REGISTRATION || key == CL_API_BROKER_HEARTBEAT ||
        key == CL_API_ALTER_PARTITION) {
        const proto_api_desc_t *api = proto_api_lookup(key);
        in->body = sm_arena_alloc(&in->arena, api->request->struct_size);
        if (!in->body || api->request->decode(&r, &in->arena, v, in->body) != SM_OK) {
            net_request_close(nreq);
            goto done;
        }
        in->kind = key == CL_API_BROKER_REGISTRATION ? CL_IN_REGISTER
                   : key == CL_API_BROKER_HEARTBEAT  ? CL_IN_HEARTBEAT
                                                     : CL_IN_ALTER;
        cl_push(cl, in);
        return;
    }
    if (key == 60) {
        answer_describe_cluster(cl, nreq, &in->arena, &req);
        goto done;
    }
    if (key == CL_API_DESCRIBE_QUORUM) {
        in->kind = CL_IN_DESCRIBE;
        cl_push(cl, in);
        return;
    }
    if (key == CL_API_ADD_RAFT_VOTER || key == CL_API_REMOVE_RAFT_VOTER ||
        key == CL_API_UPDATE_RAFT_VOTER) {
        sm_arena_free(&in->arena);
        free(in);
        cl_serve_voters(cl, nreq);
        return;
    }
    /* An admin request: the worker runs it through the broker's handlers. */
    sm_arena_free(&in->arena);
    free(in);
    cl_work_push(cl, nreq);
    return;
done:
    sm_arena_free(&in->arena);
    free(in);
}

/* AddRaftVoter / RemoveRaftVoter / UpdateRaftVoter: decided by the Raft leader's quorum
 * thread; another node relays them to it. */
void cl_serve_voters(cluster_t *cl, net_request_t *nreq) {
    cl_in_t *in = in_new(nreq);
    if (!in) return;
    proto_request_t req;
    const proto_api_desc_t *api = NULL;
    if (proto_request_parse_header(nreq->frame, nreq->len, &in->arena, &req) == SM_OK)
        api = proto_api_lookup(req.header.request_api_key);
    sm_reader_t r = sm_reader_make(req.body_start, req.body_len);
    in->body = api ? sm_arena_alloc(&in->arena, api->request->struct_size) : NULL;
    if (!in->body ||
        api->request->decode(&r, &in->arena, req.header.request_api_version, in->body) != SM_OK) {
        net_request_close(nreq);
        sm_arena_free(&in->arena);
        free(in);
        return;
    }
    in->nreq = nreq;
    in->api_key = req.header.request_api_key;
    in->version = req.header.request_api_version;
    in->corr = req.header.correlation_id;
    in->kind = CL_IN_VOTERS;
    cl_push(cl, in);
}

void cl_work_push(cluster_t *cl, net_request_t *nreq) {
    cl_work_t *w = calloc(1, sizeof(*w));
    if (!w) {
        net_request_close(nreq);
        return;
    }
    w->nreq = nreq;
    pthread_mutex_lock(&cl->wmu);
    if (cl->work_closed) {
        pthread_mutex_unlock(&cl->wmu);
        net_request_close(nreq);
        free(w);
        return;
    }
    if (cl->work_tail)
        cl->work_tail->next = w;
    else
        cl->work = w;
    cl->work_tail = w;
    pthread_cond_signal(&cl->wcv);
    pthread_mutex_unlock(&cl->wmu);
}

static void *worker_main(void *arg) {
    cluster_t *cl = arg;
    for (;;) {
        pthread_mutex_lock(&cl->wmu);
        while (!cl->work && !atomic_load(&cl->stop))
            pthread_cond_wait(&cl->wcv, &cl->wmu);
        cl_work_t *w = cl->work;
        if (w) {
            cl->work = w->next;
            if (!cl->work) cl->work_tail = NULL;
        }
        pthread_mutex_unlock(&cl->wmu);
        if (!w) break;
        cl->o.serve(cl->o.serve_ctx, w->nreq);
        free(w);
    }
    return NULL;
}

int cl_serve_start(cluster_t *cl) {
    if (pthread_create(&cl->worker, NULL, worker_main, cl)) return SM_ERR_IO;
    cl->worker_started = true;
    net_opts_t no = cl->o.net;
    no.host = cl->o.controller_host;
    no.port = cl->o.controller_port;
    no.threads = 1;
    no.on_request = on_request;
    no.on_close = NULL;
    no.arg = cl;
    int rc = net_server_start(&no, &cl->net);
    if (rc != SM_OK) {
        sm_error(CL_MOD, "controller listener %s:%d: cannot listen (%s)", cl->o.controller_host,
                 cl->o.controller_port, sm_strerror(rc));
        return rc;
    }
    sm_info(CL_MOD, "listener %s: serving the controller on %s:%d", cl->o.controller_listener,
            cl->o.controller_host[0] ? cl->o.controller_host : "*", net_server_port(cl->net));
    return SM_OK;
}

void cl_serve_stop_worker(cluster_t *cl) {
    pthread_mutex_lock(&cl->wmu);
    cl->work_closed = true;
    atomic_store(&cl->stop, true);
    pthread_cond_broadcast(&cl->wcv);
    pthread_mutex_unlock(&cl->wmu);
    if (cl->worker_started) {
        pthread_join(cl->worker, NULL);
        cl->worker_started = false;
    }
    pthread_mutex_lock(&cl->wmu);
    cl_work_t *w = cl->work;
    cl->work = cl->work_tail = NULL;
    pthread_mutex_unlock(&cl->wmu);
    while (w) {
        cl_work_t *next = w->next;
        net_request_close(w->nreq);
        free(w);
        w = next;
    }
}

void cl_serve_stop(cluster_t *cl) {
    cl_serve_stop_worker(cl);
    if (cl->net) net_server_stop(cl->net, 1000);
    cl->net = NULL;
}

static void fill_replica(proto_describe_quorum_response_replica_state_t *o,
                         const raft_replica_info_t *in, int64_t shift) {
    memset(o, 0, sizeof(*o));
    o->replica_id = in->id;
    o->log_end_offset = in->log_end_offset;
    o->last_fetch_timestamp = in->last_fetch_ms >= 0 ? in->last_fetch_ms + shift : -1;
    o->last_caught_up_timestamp = in->last_caught_up_ms >= 0 ? in->last_caught_up_ms + shift : -1;
    memcpy(o->replica_directory_id.b, in->dir, 16);
}

/* DescribeQuorum: the leader's view of every voter and observer. */
void cl_answer_describe(cluster_t *cl, net_request_t *nreq, int16_t version, int32_t corr) {
    raft_quorum_info_t qi;
    int16_t err = raft_describe_quorum(cl->raft, &qi);
    proto_describe_quorum_response_t resp;
    proto_describe_quorum_response_topic_data_t topic;
    proto_describe_quorum_response_partition_data_t part;
    proto_describe_quorum_response_replica_state_t voters[RAFT_MAX_VOTERS],
        observers[RAFT_MAX_OBSERVERS];
    proto_describe_quorum_response_node_t nodes[RAFT_MAX_VOTERS];
    proto_describe_quorum_response_listener_t listeners[RAFT_MAX_VOTERS];
    proto_describe_quorum_response_init(&resp);
    memset(&topic, 0, sizeof(topic));
    memset(&part, 0, sizeof(part));
    topic.topic_name = SM_STR_LIT(RAFT_METADATA_TOPIC);
    topic.partitions = (proto_describe_quorum_response_partition_data_array_t){1, &part};
    resp.topics = (proto_describe_quorum_response_topic_data_array_t){1, &topic};
    part.partition_index = 0;
    part.error_code = err;
    part.error_message = SM_STR_NULL;
    /* Raft's clock is monotonic; the answer is in wall-clock ms. */
    int64_t shift = sm_time_ms() - cl_now();
    if (err == PROTO_ERR_NONE) {
        part.leader_id = qi.leader_id;
        part.leader_epoch = qi.epoch;
        part.high_watermark = qi.high_watermark;
        const raft_voter_set_t *vs = raft_voters(cl->raft);
        for (int i = 0; i < qi.n_voters; i++) {
            fill_replica(&voters[i], &qi.voters[i], shift);
            int k = raft_voters_find(vs, qi.voters[i].id);
            if (k >= 0) memcpy(voters[i].replica_directory_id.b, vs->v[k].dir, 16);
            if (qi.voters[i].id == cl->o.node_id) /* the leader is caught up with itself */
                voters[i].last_fetch_timestamp = voters[i].last_caught_up_timestamp =
                    sm_time_ms();
        }
        for (int i = 0; i < qi.n_observers; i++)
            fill_replica(&observers[i], &qi.observers[i], shift);
        part.current_voters =
            (proto_describe_quorum_response_replica_state_array_t){qi.n_voters, voters};
        part.observers =
            (proto_describe_quorum_response_replica_state_array_t){qi.n_observers, observers};
    } else {
        part.leader_id = atomic_load(&cl->leader_id);
        part.leader_epoch = raft_quorum_state(cl->raft).epoch;
        part.high_watermark = raft_high_watermark(cl->raft);
    }
    /* Nodes: the voters' controller endpoints (Kafka lists the voters only) */
    const raft_voter_set_t *vs = raft_voters(cl->raft);
    int n_nodes = cl->o.dynamic ? vs->n : cl->o.n_voters;
    for (int i = 0; i < n_nodes; i++) {
        memset(&nodes[i], 0, sizeof(nodes[i]));
        memset(&listeners[i], 0, sizeof(listeners[i]));
        const char *lname = cl->o.controller_listener[0] ? cl->o.controller_listener : "CONTROLLER";
        if (cl->o.dynamic) {
            nodes[i].node_id = vs->v[i].id;
            listeners[i].name = sm_str_from(vs->v[i].listener[0] ? vs->v[i].listener : lname);
            listeners[i].host = sm_str_from(vs->v[i].host);
            listeners[i].port = vs->v[i].port;
        } else {
            nodes[i].node_id = cl->o.voters[i].id;
            listeners[i].name = sm_str_from(lname);
            listeners[i].host = sm_str_from(cl->o.voters[i].host);
            listeners[i].port = (uint16_t)cl->o.voters[i].port;
        }
        nodes[i].listeners = (proto_describe_quorum_response_listener_array_t){1, &listeners[i]};
    }
    resp.nodes = (proto_describe_quorum_response_node_array_t){n_nodes, nodes};
    cl_respond(nreq, CL_API_DESCRIBE_QUORUM, version, corr, &resp);
}
