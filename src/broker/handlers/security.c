/*
 * The security APIs of a broker without an authorizer or SASL/SCRAM, answered
 * as Apache Kafka 4.4 answers them in that setup (so tools and MirrorMaker 2
 * get an answer they understand instead of UNSUPPORTED_VERSION):
 *  - DescribeAcls, CreateAcls, DeleteAcls: SECURITY_DISABLED, "No Authorizer
 *    is configured on the broker", for the request or each creation / filter;
 *  - DescribeUserScramCredentials: no credentials exist: all users is an empty
 *    list, a named user RESOURCE_NOT_FOUND;
 *  - AlterUserScramCredentials: each user is refused with
 *    UNSUPPORTED_SASL_MECHANISM, since this broker has no SCRAM to use them.
 */
#include <stdio.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

#define NO_AUTHORIZER "No Authorizer is configured on the broker"

int broker_handle_describe_acls(broker_req_t *r) {
    proto_describe_acls_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_SECURITY_DISABLED;
    resp->error_message = SM_STR_LIT(NO_AUTHORIZER);
    resp->resources.n = 0;
    return BROKER_RESPOND;
}

int broker_handle_create_acls(broker_req_t *r) {
    proto_create_acls_request_t *req = broker_body(r);
    proto_create_acls_response_t *resp = r->resp;
    int32_t n = req->creations.n > 0 ? req->creations.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results.v));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = n;
    for (int32_t i = 0; i < n; i++) {
        resp->results.v[i].error_code = PROTO_ERR_SECURITY_DISABLED;
        resp->results.v[i].error_message = SM_STR_LIT(NO_AUTHORIZER);
    }
    return BROKER_RESPOND;
}

int broker_handle_delete_acls(broker_req_t *r) {
    proto_delete_acls_request_t *req = broker_body(r);
    proto_delete_acls_response_t *resp = r->resp;
    int32_t n = req->filters.n > 0 ? req->filters.n : 0;
    resp->filter_results.v =
        sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->filter_results.v));
    if (!resp->filter_results.v) return BROKER_CLOSE;
    resp->filter_results.n = n;
    for (int32_t i = 0; i < n; i++) {
        resp->filter_results.v[i].error_code = PROTO_ERR_SECURITY_DISABLED;
        resp->filter_results.v[i].error_message = SM_STR_LIT(NO_AUTHORIZER);
        resp->filter_results.v[i].matching_acls.n = 0;
    }
    return BROKER_RESPOND;
}

int broker_handle_describe_user_scram_credentials(broker_req_t *r) {
    proto_describe_user_scram_credentials_request_t *req = broker_body(r);
    proto_describe_user_scram_credentials_response_t *resp = r->resp;
    int32_t n = req->users.n > 0 ? req->users.n : 0;
    resp->error_code = PROTO_ERR_NONE;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results.v));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = n;
    for (int32_t i = 0; i < n; i++) {
        sm_str_t user = req->users.v[i].name;
        char msg[300];
        snprintf(
            msg, sizeof(msg), "Attempt to describe a user credential that does not exist: %.*s",
            user.len > 0 ? (int)(user.len > 200 ? 200 : user.len) : 0, user.ptr ? user.ptr : "");
        resp->results.v[i].user = user;
        resp->results.v[i].error_code = PROTO_ERR_RESOURCE_NOT_FOUND;
        resp->results.v[i].error_message = sm_arena_str(&r->arena, msg);
        resp->results.v[i].credential_infos.n = 0;
    }
    return BROKER_RESPOND;
}

int broker_handle_alter_user_scram_credentials(broker_req_t *r) {
    proto_alter_user_scram_credentials_request_t *req = broker_body(r);
    proto_alter_user_scram_credentials_response_t *resp = r->resp;
    int32_t nd = req->deletions.n > 0 ? req->deletions.n : 0;
    int32_t nu = req->upsertions.n > 0 ? req->upsertions.n : 0;
    resp->results.v =
        sm_arena_calloc(&r->arena, (size_t)nd + (size_t)nu + 1, sizeof(*resp->results.v));
    if (!resp->results.v) return BROKER_CLOSE;
    int32_t n = 0;
    for (int32_t i = 0; i < nd + nu; i++) {
        sm_str_t user = i < nd ? req->deletions.v[i].name : req->upsertions.v[i - nd].name;
        bool seen = false;
        for (int32_t k = 0; k < n && !seen; k++)
            seen = sm_str_eq(resp->results.v[k].user, user);
        if (seen) continue;
        resp->results.v[n].user = user;
        resp->results.v[n].error_code = PROTO_ERR_UNSUPPORTED_SASL_MECHANISM;
        resp->results.v[n].error_message =
            SM_STR_LIT("SCRAM credentials are not supported by this broker yet");
        n++;
    }
    resp->results.n = n;
    return BROKER_RESPOND;
}
