/*
 * Transactional offsets waiting for their markers (see txn_offsets.h).
 */
#include "group/txn_offsets.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

typedef struct plist {
    group_txn_offset_t *v;
    size_t n, cap;
} plist_t;

void group_txn_offsets_init(group_txn_offsets_t *s) { sm_map_init(&s->by_producer); }

static void entry_free(group_txn_offset_t *e) {
    free((void *)e->group.ptr);
    free((void *)e->topic.ptr);
    free((void *)e->metadata.ptr);
}

static void plist_free(plist_t *l) {
    for (size_t i = 0; i < l->n; i++)
        entry_free(&l->v[i]);
    free(l->v);
    free(l);
}

void group_txn_offsets_free(group_txn_offsets_t *s) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->by_producer, &it, NULL, NULL, &v))
        plist_free(v);
    sm_map_free(&s->by_producer);
}

static int copy_bytes(sm_bytes_t in, sm_bytes_t *out) {
    if (in.len < 0) {
        *out = SM_BYTES_NULL;
        return SM_OK;
    }
    uint8_t *p = malloc((size_t)in.len + 1);
    if (!p) return SM_ERR_NOMEM;
    if (in.len) memcpy(p, in.ptr, (size_t)in.len);
    *out = (sm_bytes_t){p, in.len};
    return SM_OK;
}

int group_txn_offsets_add(group_txn_offsets_t *s, int64_t producer_id,
                          const group_txn_offset_t *e) {
    plist_t *l = sm_map_get(&s->by_producer, &producer_id, sizeof(producer_id));
    if (!l) {
        if (!(l = calloc(1, sizeof(*l)))) return SM_ERR_NOMEM;
        if (sm_map_put(&s->by_producer, &producer_id, sizeof(producer_id), l)) {
            free(l);
            return SM_ERR_NOMEM;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        group_txn_offset_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) return SM_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    group_txn_offset_t c = *e;
    c.group = c.topic = c.metadata = SM_BYTES_NULL;
    if (copy_bytes(e->group, &c.group) || copy_bytes(e->topic, &c.topic) ||
        copy_bytes(e->metadata, &c.metadata)) {
        entry_free(&c);
        return SM_ERR_NOMEM;
    }
    l->v[l->n++] = c;
    return SM_OK;
}

static bool bytes_eq(sm_bytes_t a, sm_bytes_t b) {
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

bool group_txn_offsets_pending(const group_txn_offsets_t *s, sm_bytes_t group, sm_bytes_t topic,
                               int32_t partition) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->by_producer, &it, NULL, NULL, &v)) {
        const plist_t *l = v;
        for (size_t i = 0; i < l->n; i++)
            if (l->v[i].partition == partition && bytes_eq(l->v[i].group, group) &&
                bytes_eq(l->v[i].topic, topic))
                return true;
    }
    return false;
}

void group_txn_offsets_complete(group_txn_offsets_t *s, int64_t producer_id,
                                int32_t offsets_partition, bool commit,
                                void (*apply)(void *arg, const group_txn_offset_t *e), void *arg) {
    plist_t *l = sm_map_get(&s->by_producer, &producer_id, sizeof(producer_id));
    if (!l) return;
    size_t keep = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].offsets_partition != offsets_partition) {
            l->v[keep++] = l->v[i];
            continue;
        }
        if (commit) apply(arg, &l->v[i]);
        entry_free(&l->v[i]);
    }
    l->n = keep;
    if (keep == 0) plist_free(sm_map_del(&s->by_producer, &producer_id, sizeof(producer_id)));
}
