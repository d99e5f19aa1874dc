/*
 * ListPartitionReassignments (KIP-455): the partitions with an ongoing reassignment (adding
 * or removing replicas in the image), all of them for a null topic list, else those named;
 * partitions with none are left out, as Kafka lists them. A cluster answers on the active
 * controller (the request is relayed there like the other admin requests).
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef proto_list_partition_reassignments_request_t req_t;
typedef proto_list_partition_reassignments_response_t resp_t;
typedef proto_list_partition_reassignments_response_ongoing_topic_reassignment_t topic_out_t;
typedef proto_list_partition_reassignments_response_ongoing_partition_reassignment_t part_out_t;

static sm_i32_array_t copy_ids(sm_arena_t *a, const int32_t *v, int32_t n) {
    int32_t *c = sm_arena_calloc(a, (size_t)n + 1, sizeof(int32_t));
    if (!c) return (sm_i32_array_t){0, NULL};
    for (int32_t i = 0; i < n; i++)
        c[i] = v[i];
    return (sm_i32_array_t){n, c};
}

/* Appends t's ongoing reassignments among the wanted partitions (NULL: all) as one topic. */
static void add_topic(broker_req_t *r, const meta_topic_t *t, const sm_i32_array_t *wanted,
                      topic_out_t *out, int32_t *nout) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_partitions; i++)
        if (t->partitions[i].n_adding || t->partitions[i].n_removing) n++;
    if (n == 0) return;
    part_out_t *parts = sm_arena_calloc(&r->arena, (size_t)n, sizeof(*parts));
    if (!parts) return;
    int32_t k = 0;
    for (int32_t i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *p = &t->partitions[i];
        if (!p->n_adding && !p->n_removing) continue;
        if (wanted) {
            bool asked = false;
            for (int32_t w = 0; w < wanted->n; w++)
                if (wanted->v[w] == p->id) asked = true;
            if (!asked) continue;
        }
        parts[k].partition_index = p->id;
        parts[k].replicas = copy_ids(&r->arena, p->replicas, p->n_replicas);
        parts[k].adding_replicas = copy_ids(&r->arena, p->adding, p->n_adding);
        parts[k].removing_replicas = copy_ids(&r->arena, p->removing, p->n_removing);
        k++;
    }
    if (k == 0) return;
    out[*nout].name = sm_arena_str(&r->arena, t->name);
    out[*nout].partitions =
        (proto_list_partition_reassignments_response_ongoing_partition_reassignment_array_t){k,
                                                                                           parts};
    (*nout)++;
}

int broker_handle_list_partition_reassignments(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    meta_image_t *img = &b->image;
    meta_image_rdlock(img);
    size_t ntopics = req->topics.n >= 0 ? (size_t)req->topics.n : sm_map_size(&img->topics_by_name);
    topic_out_t *topics = sm_arena_calloc(&r->arena, ntopics + 1, sizeof(*topics));
    int32_t nout = 0;
    if (topics && req->topics.n < 0) {
        size_t it = 0;
        void *v;
        while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v))
            add_topic(r, v, NULL, topics, &nout);
    } else if (topics) {
        for (int32_t i = 0; i < req->topics.n; i++) {
            const meta_topic_t *t = meta_image_topic(img, req->topics.v[i].name);
            if (t) add_topic(r, t, &req->topics.v[i].partition_indexes, topics, &nout);
        }
    }
    meta_image_unlock(img);
    if (!topics) return BROKER_CLOSE;
    resp->error_code = PROTO_ERR_NONE;
    resp->error_message = SM_STR_NULL;
    resp->topics =
        (proto_list_partition_reassignments_response_ongoing_topic_reassignment_array_t){nout,
                                                                                         topics};
    return BROKER_RESPOND;
}
