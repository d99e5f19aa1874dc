/*
 * Feature levels (KIP-584, KIP-778, KIP-1022): which levels of each Kafka
 * 4.4 feature this broker supports, which are finalized, and UpdateFeatures.
 *
 * Samsa claims only what it implements or what Kafka requires:
 *  - metadata.version 4.4-IV2 (level 33), the only level it supports: Kafka's
 *    tools and clients require a finalized metadata.version, and Samsa speaks
 *    Kafka 4.4's protocol; it cannot run at the older levels Kafka can.
 *  - transaction.version 0-2, finalized at 2 as Kafka 4.4's: transactions V2
 *    (KIP-890 part 2, txn/coordinator.c), which Kafka 4 clients then use;
 *    older clients keep the V1 protocol, which is served too.
 *  - eligible.leader.replicas.version 0-1, finalized at 1 as Kafka 4.4 does
 *    for a new cluster: eligible leader replicas (KIP-966, metadata/replicas.c);
 *    at 0 the controller keeps no ELR and the high watermark ignores min ISR.
 *  - kraft.version, group.version (KIP-848 consumer groups),
 *    share.version (KIP-932)
 *    and streams.version (KIP-1071) are supported at level 0 only: their
 *    features do not exist in Samsa yet (one node with a static quorum,
 *    classic groups).
 * The finalized level of metadata.version is 33 unless a FeatureLevelRecord in
 * the metadata log says otherwise; UpdateFeatures writes FeatureLevelRecords.
 * The finalized epoch is the offset of the last applied metadata record, as
 * in Kafka.
 */
#include <stdio.h>
#include <string.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef struct feature {
    const char *name;
    int16_t min, max;
    int16_t implied; /* finalized level without a FeatureLevelRecord */
} feature_t;

static const feature_t features[] = {
    {"metadata.version", 33, 33, 33},
    {"kraft.version", 0, 0, 0},
    {"group.version", 0, 0, 0},
    {"transaction.version", 0, 2, 2},
    {META_ELR_FEATURE, 0, 1, 1},
    {"share.version", 0, 0, 0},
    {"streams.version", 0, 0, 0},
};
enum { NFEATURES = sizeof(features) / sizeof(features[0]) };

static const feature_t *feature_find(sm_str_t name) {
    for (int i = 0; i < NFEATURES; i++)
        if (sm_str_eq(name, sm_str_from(features[i].name))) return &features[i];
    return NULL;
}

/* The finalized level; caller holds the image lock. */
static int16_t finalized(const meta_image_t *img, const feature_t *f) {
    return meta_feature_level_or(img, f->name, f->implied);
}

int broker_api_versions_features(broker_req_t *r) {
    proto_api_versions_response_t *resp = r->resp;
    proto_api_versions_response_supported_feature_key_t *sup =
        sm_arena_calloc(&r->arena, NFEATURES, sizeof(*sup));
    proto_api_versions_response_finalized_feature_key_t *fin =
        sm_arena_calloc(&r->arena, NFEATURES, sizeof(*fin));
    if (!sup || !fin) return SM_ERR_NOMEM;
    int ns = 0, nf = 0;
    meta_image_t *img = &r->b->image;
    meta_image_rdlock(img);
    for (int i = 0; i < NFEATURES; i++) {
        const feature_t *f = &features[i];
        /* KIP-1022: before v4, clients cannot read a minimum of 0. */
        if (r->version >= 4 || f->min > 0)
            sup[ns++] = (proto_api_versions_response_supported_feature_key_t){
                .name = sm_str_from(f->name), .min_version = f->min, .max_version = f->max};
        int16_t l = finalized(img, f);
        if (l > 0)
            fin[nf++] = (proto_api_versions_response_finalized_feature_key_t){
                .name = sm_str_from(f->name), .min_version_level = l, .max_version_level = l};
    }
    resp->finalized_features_epoch = img->last_offset > 0 ? img->last_offset : 0;
    meta_image_unlock(img);
    resp->supported_features = (proto_api_versions_response_supported_feature_key_array_t){ns, sup};
    resp->finalized_features = (proto_api_versions_response_finalized_feature_key_array_t){nf, fin};
    return SM_OK;
}

enum { UPGRADE = 1, SAFE_DOWNGRADE = 2, UNSAFE_DOWNGRADE = 3 };

/* Checks one update against the supported range and the finalized level;
 * returns a Kafka error with its message in msg. */
static int16_t check_update(const meta_image_t *img,
                            const proto_update_features_request_feature_update_key_t *u,
                            int16_t version, char *msg, size_t cap) {
    const feature_t *f = feature_find(u->feature);
    int flen = u->feature.len > 0 ? (u->feature.len > 100 ? 100 : (int)u->feature.len) : 0;
    const char *fname = u->feature.ptr ? u->feature.ptr : "";
    if (!f) {
        snprintf(msg, cap,
                 "Invalid update version %d for feature %.*s. Controller supports versions 0-0",
                 u->max_version_level, flen, fname);
        return PROTO_ERR_INVALID_UPDATE_VERSION;
    }
    int16_t cur = finalized(img, f);
    int16_t want = u->max_version_level;
    bool downgrade_ok = version == 0 ? u->allow_downgrade : u->upgrade_type != UPGRADE;
    if (want != 0 && (want < f->min || want > f->max)) {
        snprintf(msg, cap,
                 "Invalid update version %d for feature %s. Controller supports versions %d-%d",
                 want, f->name, f->min, f->max);
        return PROTO_ERR_INVALID_UPDATE_VERSION;
    }
    if (want == 0 && f->min > 0) {
        snprintf(msg, cap,
                 "Invalid update version %d for feature %s. Controller supports versions %d-%d",
                 want, f->name, f->min, f->max);
        return PROTO_ERR_INVALID_UPDATE_VERSION;
    }
    if (want < cur && !downgrade_ok) {
        snprintf(
            msg, cap,
            "Invalid update version %d for feature %s. Can't downgrade the version of this feature "
            "without setting the upgrade type to either safe or unsafe downgrade.",
            want, f->name);
        return PROTO_ERR_INVALID_UPDATE_VERSION;
    }
    return PROTO_ERR_NONE;
}

int broker_handle_update_features(broker_req_t *r) {
    proto_update_features_request_t *req = broker_body(r);
    proto_update_features_response_t *resp = r->resp;
    int32_t n = req->feature_updates.n > 0 ? req->feature_updates.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results.v));
    sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*names));
    int16_t *levels = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*levels));
    if (!resp->results.v || !names || !levels) return BROKER_CLOSE;
    resp->results.n = n;
    resp->error_code = PROTO_ERR_NONE;
    int16_t first_err = PROTO_ERR_NONE;
    char first_msg[300] = "";
    meta_image_rdlock(&r->b->image);
    for (int32_t i = 0; i < n; i++) {
        const proto_update_features_request_feature_update_key_t *u = &req->feature_updates.v[i];
        char msg[300] = "";
        int16_t err = PROTO_ERR_NONE;
        for (int32_t k = 0; k < i && !err; k++)
            if (sm_str_eq(req->feature_updates.v[k].feature, u->feature)) {
                snprintf(msg, sizeof(msg), "Feature %.*s was specified more than once.",
                         u->feature.len > 100 ? 100 : (int)u->feature.len, u->feature.ptr);
                err = PROTO_ERR_INVALID_REQUEST;
            }
        if (!err) err = check_update(&r->b->image, u, r->version, msg, sizeof(msg));
        resp->results.v[i].feature = u->feature;
        resp->results.v[i].error_code = err;
        resp->results.v[i].error_message = err ? sm_arena_str(&r->arena, msg) : SM_STR_NULL;
        if (err && !first_err) {
            first_err = err;
            memcpy(first_msg, msg, sizeof(msg));
        }
        names[i] = u->feature;
        levels[i] = u->max_version_level;
    }
    meta_image_unlock(&r->b->image);
    /* All or nothing, as Kafka's controller: v2 answers with the top-level
     * error only. */
    if (first_err) {
        resp->error_code = first_err;
        resp->error_message = sm_arena_str(&r->arena, first_msg);
        for (int32_t i = 0; i < n; i++)
            if (!resp->results.v[i].error_code) resp->results.v[i].error_code = PROTO_ERR_NONE;
        return BROKER_RESPOND;
    }
    if (req->validate_only || n == 0) return BROKER_RESPOND;
    meta_result_t res;
    meta_set_feature_levels(&r->b->controller, names, levels, n, &res);
    if (res.error) {
        resp->error_code = res.error;
        resp->error_message = sm_arena_str(&r->arena, res.message);
        for (int32_t i = 0; i < n; i++)
            resp->results.v[i].error_code = res.error;
    }
    return BROKER_RESPOND;
}
