/*
 * The admin views of groups: FindCoordinator, ListGroups, DescribeGroups,
 * DeleteGroups. Reads visit one shard at a time; DeleteGroups writes the
 * tombstones of a group first and forgets it only when they were appended.
 * Not for the protocols themselves (classic.c, offsets.c).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/handlers/handlers.h"
#include "group/group_impl.h"
#include "broker/group_host.h"
#include "protocol/errors.h"
#include "txn/coordinator.h"

#define S group_S

/* One FindCoordinator answer: this node on a single node; in a cluster the
 * leader of the key's partition of the internal topic, by the request's
 * listener. */
typedef struct coord_answer {
    int16_t err;
    sm_str_t message;
    int32_t node;
    sm_str_t host;
    int32_t port;
} coord_answer_t;

static void find_one(broker_req_t *r, int8_t key_type, sm_str_t key, const broker_node_t *nodes,
                     int nn, coord_answer_t *o) {
    broker_t *b = r->b;
    *o = (coord_answer_t){PROTO_ERR_NONE, SM_STR_NULL, -1, SM_STR_LIT(""), -1};
    if (key_type > 2)
        o->err = PROTO_ERR_INVALID_REQUEST;
    else if (!(key_type == 0 && b->groups) && !(key_type == 1 && b->txns))
        o->err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    if (o->err) {
        o->message = SM_STR_LIT("No coordinator for this key type");
        return;
    }
    if (!b->s.cluster_mode) {
        o->node = b->s.node_id;
        o->host = sm_arena_str(&r->arena, broker_req_host(r));
        o->port = broker_req_port(r);
        return;
    }
    /* (An empty group id hashes to 0: partition 0, as Kafka's hashCode.) */
    int32_t part = key_type != 0 ? txn_coordinator_partition_for(b, key)
                   : key.len > 0 ? group_offsets_partition(b, key)
                                 : 0;
    int32_t node = -1;
    o->err = broker_coordinator_node(b, key_type == 0 ? "__consumer_offsets" : TXN_STATE_TOPIC,
                                     part, &node);
    for (int i = 0; !o->err && i < nn; i++)
        if (nodes[i].id == node) {
            o->node = node;
            o->host = nodes[i].host;
            o->port = nodes[i].port;
            return;
        }
    o->err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    o->message = SM_STR_LIT("The coordinator is not available.");
}

int broker_handle_find_coordinator(broker_req_t *r) {
    broker_t *b = r->b;
    proto_find_coordinator_request_t *req = broker_body(r);
    proto_find_coordinator_response_t *resp = r->resp;
    /* Key types: 0 groups, 1 transactional ids (both here), 2 share groups. */
    broker_node_t *nodes = NULL;
    int nn = b->s.cluster_mode ? broker_nodes(r, false, &nodes) : 0;
    if (nn < 0) return BROKER_CLOSE;
    coord_answer_t a;
    if (r->version < 4) {
        find_one(r, req->key_type, req->key, nodes, nn, &a);
        resp->error_code = a.err;
        resp->error_message = a.message;
        resp->node_id = a.node;
        resp->host = a.host;
        resp->port = a.port;
        return BROKER_RESPOND;
    }
    int32_t n = req->coordinator_keys.n > 0 ? req->coordinator_keys.n : 0;
    resp->coordinators.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->coordinators.v));
    if (!resp->coordinators.v) return BROKER_CLOSE;
    resp->coordinators.n = n;
    for (int32_t i = 0; i < n; i++) {
        proto_find_coordinator_response_coordinator_t *o = &resp->coordinators.v[i];
        o->key = req->coordinator_keys.v[i];
        find_one(r, req->key_type, o->key, nodes, nn, &a);
        o->error_code = a.err;
        o->error_message = a.message;
        o->node_id = a.node;
        o->host = a.host;
        o->port = a.port;
    }
    return BROKER_RESPOND;
}

static bool state_matches(const proto_list_groups_request_t *req, const char *state) {
    if (req->states_filter.n <= 0) return true;
    for (int32_t k = 0; k < req->states_filter.n; k++)
        if (req->states_filter.v[k].len == (int32_t)strlen(state) &&
            strncasecmp(state, req->states_filter.v[k].ptr, strlen(state)) == 0)
            return true;
    return false;
}

static bool type_matches(const proto_list_groups_request_t *req, const char *type) {
    if (req->types_filter.n <= 0) return true;
    for (int32_t k = 0; k < req->types_filter.n; k++)
        if (req->types_filter.v[k].len == (int32_t)strlen(type) &&
            strncasecmp(req->types_filter.v[k].ptr, type, strlen(type)) == 0)
            return true;
    return false;
}

int broker_handle_list_groups(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_list_groups_request_t *req = broker_body(r);
    proto_list_groups_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->groups.n = 0;
    int32_t cap = 0;
    for (int32_t si = 0; si < c->nshards; si++) {
        group_shard_t *s = &c->shards[si];
        pthread_mutex_lock(&s->mu);
        size_t it = 0;
        void *v;
        while (!group_shard_error(s) && sm_map_next(&s->groups, &it, NULL, NULL, &v)) {
            group_t *g = v;
            const char *state = g->cg ? group_consumer_state(g) : group_state_names[g->state];
            const char *type = g->cg ? "consumer" : "classic";
            if (!state_matches(req, state) || !type_matches(req, type)) continue;
            if (resp->groups.n == cap) {
                int32_t ncap = cap ? cap * 2 : 16;
                void *nv = sm_arena_calloc(&r->arena, (size_t)ncap, sizeof(*resp->groups.v));
                if (!nv) break;
                if (cap) memcpy(nv, resp->groups.v, (size_t)cap * sizeof(*resp->groups.v));
                resp->groups.v = nv;
                cap = ncap;
            }
            proto_list_groups_response_listed_group_t *o = &resp->groups.v[resp->groups.n++];
            o->group_id = gs_arena(r, g->id);
            o->protocol_type =
                g->cg ? SM_STR_LIT("consumer")
                      : (g->protocol_type ? gs_arena(r, g->protocol_type) : SM_STR_LIT(""));
            o->group_state = sm_arena_str(&r->arena, state);
            o->group_type = sm_arena_str(&r->arena, type);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return BROKER_RESPOND;
}

/* "Group <id><what>" in r's arena: Kafka's GROUP_ID_NOT_FOUND messages
 * (DescribeGroups v6+, DeleteGroups v3+; older versions do not carry them). */
static sm_str_t group_message(broker_req_t *r, sm_str_t id, const char *what) {
    char msg[300];
    snprintf(msg, sizeof(msg), "Group %.*s%s", id.len > 0 ? (int)(id.len > 250 ? 250 : id.len) : 0,
             id.ptr ? id.ptr : "", what);
    return sm_arena_str(&r->arena, msg);
}

static sm_str_t group_not_found(broker_req_t *r, sm_str_t id) {
    return group_message(r, id, " not found.");
}

static sm_bytes_t arena_bytes(broker_req_t *r, const uint8_t *p, int32_t len) {
    uint8_t *d = sm_arena_alloc(&r->arena, (size_t)len + 1);
    if (d && len) memcpy(d, p, (size_t)len);
    return (sm_bytes_t){d, d ? len : 0};
}

static void describe_group(broker_req_t *r, group_t *g,
                           proto_describe_groups_response_described_group_t *o) {
    o->error_code = PROTO_ERR_NONE;
    o->group_state = sm_arena_str(&r->arena, group_state_names[g->state]);
    o->protocol_type = g->protocol_type ? gs_arena(r, g->protocol_type) : SM_STR_LIT("");
    o->protocol_data =
        g->state == GROUP_STABLE && g->protocol ? gs_arena(r, g->protocol) : SM_STR_LIT("");
    o->members.v = sm_arena_calloc(&r->arena, (size_t)g->nmembers + 1, sizeof(*o->members.v));
    int k = 0;
    for (group_member_t *m = g->members; o->members.v && m; m = m->next, k++) {
        proto_describe_groups_response_described_group_member_t *d = &o->members.v[k];
        d->member_id = gs_arena(r, m->id);
        d->group_instance_id = gs_arena(r, m->instance_id);
        d->client_id = gs_arena(r, m->client_id);
        d->client_host = gs_arena(r, m->client_host);
        d->member_metadata = (sm_bytes_t){NULL, 0};
        for (int j = 0; j < m->nprotocols; j++)
            if (gs_eq(m->protocols[j].name, g->protocol))
                d->member_metadata = arena_bytes(r, m->protocols[j].meta, m->protocols[j].meta_len);
        d->member_assignment = (sm_bytes_t){NULL, 0};
        if (m->assignment && g->state == GROUP_STABLE)
            d->member_assignment = arena_bytes(r, m->assignment, m->assignment_len);
    }
    o->members.n = o->members.v ? k : 0;
}

int broker_handle_describe_groups(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_describe_groups_request_t *req = broker_body(r);
    proto_describe_groups_response_t *resp = r->resp;
    int32_t n = req->groups.n > 0 ? req->groups.n : 0;
    resp->groups.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->groups.v));
    if (!resp->groups.v) return BROKER_CLOSE;
    resp->groups.n = n;
    for (int32_t i = 0; i < n; i++) {
        proto_describe_groups_response_described_group_t *o = &resp->groups.v[i];
        o->group_id = req->groups.v[i];
        o->authorized_operations = INT32_MIN;
        group_shard_t *s = group_shard_for(c, req->groups.v[i]);
        pthread_mutex_lock(&s->mu);
        int16_t err = group_shard_error(s);
        group_t *g = err ? NULL : group_get(s, req->groups.v[i]);
        if (g && g->cg) {
            /* Kafka 4.4 describes classic groups only, also a consumer group
             * holding classic members (ConsumerGroupDescribe describes those,
             * each with its member type). */
            o->error_code = r->version >= 6 ? PROTO_ERR_GROUP_ID_NOT_FOUND : PROTO_ERR_NONE;
            if (r->version >= 6)
                o->error_message = group_message(r, o->group_id, " is not a classic group.");
            o->group_state = SM_STR_LIT("Dead");
            o->protocol_type = SM_STR_LIT("");
            o->protocol_data = SM_STR_LIT("");
        } else if (g) {
            describe_group(r, g, o);
        } else {
            o->error_code = err               ? err
                            : r->version >= 6 ? PROTO_ERR_GROUP_ID_NOT_FOUND
                                              : PROTO_ERR_NONE;
            if (!err && r->version >= 6) o->error_message = group_not_found(r, o->group_id);
            o->group_state = SM_STR_LIT("Dead");
            o->protocol_type = SM_STR_LIT("");
            o->protocol_data = SM_STR_LIT("");
        }
        pthread_mutex_unlock(&s->mu);
    }
    return BROKER_RESPOND;
}

/* Writes the tombstones of every offset of g and of g; forgets g when they
 * were appended. Returns the Kafka error; *end is the log end to wait for. */
static int16_t delete_group(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t *end) {
    if (g->members || (g->cg && g->cg->nmembers)) return PROTO_ERR_NON_EMPTY_GROUP;
    size_t cnt = sm_map_size(&g->offsets) + 1, it = 0;
    group_rec_t *recs = calloc(cnt, sizeof(*recs));
    if (!recs) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int nr = 0;
    const void *k;
    size_t kl;
    while (sm_map_next(&g->offsets, &it, &k, &kl, NULL)) {
        int32_t part;
        memcpy(&part, (const char *)k + kl - 4, 4);
        if (group_offset_record(S(g->id), (sm_str_t){k, (int32_t)kl - 5}, part, NULL, &recs[nr]) ==
            SM_OK)
            nr++;
    }
    group_meta_view_t none = {0};
    if (group_meta_record(g, &none, true, &recs[nr]) == SM_OK) nr++;
    int16_t err = group_append(c, s, recs, nr, end);
    group_recs_free(recs, nr);
    free(recs);
    if (!err) group_remove(s, g);
    return err;
}

/* DeleteGroups waits for each shard it wrote to: r->state counts them down. */
typedef struct delete_wait {
    atomic_int left;
    _Atomic int16_t err;
} delete_wait_t;

static void delete_groups_answer(broker_req_t *r, int16_t err) {
    delete_wait_t *w = r->state;
    if (err) atomic_store(&w->err, err);
    if (atomic_fetch_sub(&w->left, 1) != 1) return;
    proto_delete_groups_response_t *resp = r->resp;
    err = atomic_load(&w->err);
    for (int32_t i = 0; err && i < resp->results.n; i++)
        if (!resp->results.v[i].error_code) resp->results.v[i].error_code = err;
    broker_req_finish(r);
}

int broker_handle_delete_groups(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_delete_groups_request_t *req = broker_body(r);
    proto_delete_groups_response_t *resp = r->resp;
    int32_t n = req->groups_names.n > 0 ? req->groups_names.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results.v));
    int64_t *ends = sm_arena_calloc(&r->arena, (size_t)c->nshards, sizeof(*ends));
    delete_wait_t *w = sm_arena_calloc(&r->arena, 1, sizeof(*w));
    if (!resp->results.v || !ends || !w) return BROKER_CLOSE;
    resp->results.n = n;
    for (int32_t i = 0; i < n; i++) {
        sm_str_t id = req->groups_names.v[i];
        resp->results.v[i].group_id = id;
        group_shard_t *s = group_shard_for(c, id);
        pthread_mutex_lock(&s->mu);
        int16_t err = group_shard_error(s);
        group_t *g = err ? NULL : group_get(s, id);
        int64_t end = 0;
        if (!err) err = g ? delete_group(c, s, g, &end) : PROTO_ERR_GROUP_ID_NOT_FOUND;
        if (end > ends[s->partition]) ends[s->partition] = end;
        pthread_mutex_unlock(&s->mu);
        resp->results.v[i].error_code = err;
        if (err == PROTO_ERR_GROUP_ID_NOT_FOUND)
            resp->results.v[i].error_message = group_not_found(r, id);
        else if (err == PROTO_ERR_NON_EMPTY_GROUP)
            resp->results.v[i].error_message = SM_STR_LIT("The group is not empty.");
    }
    /* One count more than the shards waited for, dropped last, so the
     * answer cannot go before every wait is registered. */
    int waits = 1;
    for (int32_t p = 0; p < c->nshards; p++)
        waits += ends[p] > 0;
    atomic_init(&w->left, waits);
    atomic_init(&w->err, PROTO_ERR_NONE);
    r->state = w;
    for (int32_t p = 0; p < c->nshards; p++)
        if (ends[p]) group_answer_after(c, &c->shards[p], ends[p], r, delete_groups_answer);
    delete_groups_answer(r, PROTO_ERR_NONE);
    return BROKER_PARKED;
}
