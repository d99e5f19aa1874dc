/*
 * The fetching side of a fetch session (see fetch_session_handler.h).
 */
#include "broker/fetch_session_handler.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "protocol/errors.h"

void fsh_init(fsh_t *h) {
    memset(h, 0, sizeof(*h));
    sm_map_init(&h->index);
}

void fsh_free(fsh_t *h) {
    free(h->parts);
    sm_map_free(&h->index);
    memset(h, 0, sizeof(*h));
}

static void key_of(uint8_t key[20], const sm_uuid_t *topic_id, int32_t partition) {
    memcpy(key, topic_id->b, 16);
    memcpy(key + 16, &partition, 4);
}

int fsh_find(const fsh_t *h, const sm_uuid_t *topic_id, int32_t partition) {
    uint8_t key[20];
    key_of(key, topic_id, partition);
    intptr_t at = (intptr_t)sm_map_get(&h->index, key, sizeof(key));
    return at > 0 ? (int)(at - 1) : -1;
}

static bool same(const fsh_part_t *a, const fsh_part_t *b) {
    return a->fetch_offset == b->fetch_offset && a->log_start == b->log_start &&
           a->current_leader_epoch == b->current_leader_epoch &&
           a->last_fetched_epoch == b->last_fetched_epoch && a->max_bytes == b->max_bytes;
}

/* Forgets everything: no session, the next request full. */
static void reset(fsh_t *h) {
    h->session_id = 0;
    h->epoch = 0;
    h->n = 0;
    sm_map_free(&h->index);
    sm_map_init(&h->index);
}

int fsh_build(fsh_t *h, const fsh_part_t *want, int n, bool *full, int *send, int *n_send,
              fsh_part_t *forget, int *n_forget) {
    *full = h->epoch == 0;
    *n_send = *n_forget = 0;
    bool *kept = NULL;
    if (!*full && h->n > 0 && !(kept = calloc((size_t)h->n, sizeof(*kept)))) goto nomem;
    for (int i = 0; i < n; i++) {
        int at = *full ? -1 : fsh_find(h, &want[i].topic_id, want[i].partition);
        if (at >= 0) kept[at] = true;
        if (*full || at < 0 || !same(&h->parts[at], &want[i])) send[(*n_send)++] = i;
    }
    for (int i = 0; !*full && i < h->n; i++)
        if (!kept[i]) forget[(*n_forget)++] = h->parts[i];
    free(kept);
    /* The session now holds the wanted partitions, in their order. */
    if (n > h->cap) {
        fsh_part_t *v = realloc(h->parts, sizeof(*v) * (size_t)n);
        if (!v) goto nomem;
        h->parts = v;
        h->cap = n;
    }
    if (n > 0) memcpy(h->parts, want, sizeof(*want) * (size_t)n);
    h->n = n;
    sm_map_free(&h->index);
    sm_map_init(&h->index);
    for (int i = 0; i < n; i++) {
        uint8_t key[20];
        key_of(key, &want[i].topic_id, want[i].partition);
        if (sm_map_put(&h->index, key, sizeof(key), (void *)(intptr_t)(i + 1))) goto nomem;
    }
    h->last_full = *full;
    if (*full)
        h->full_requests++;
    else
        h->incremental_requests++;
    return SM_OK;
nomem:
    reset(h);
    return SM_ERR_NOMEM;
}

bool fsh_response(fsh_t *h, int16_t error, int32_t session_id) {
    if (error == PROTO_ERR_FETCH_SESSION_ID_NOT_FOUND) {
        h->session_id = 0;
        h->epoch = 0;
        return false;
    }
    if (error != PROTO_ERR_NONE) { /* the leader closes the session at the next request */
        h->epoch = 0;
        return false;
    }
    if (session_id == 0) { /* none opened, or the leader closed it */
        h->session_id = 0;
        h->epoch = 0;
    } else if (h->last_full) {
        h->session_id = session_id;
        h->epoch = 1;
    } else {
        h->epoch = h->epoch == INT32_MAX ? 1 : h->epoch + 1;
    }
    return true;
}

void fsh_failed(fsh_t *h) { h->epoch = 0; }
