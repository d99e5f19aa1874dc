/*
 * The fetch session cache (see fetch_session.h).
 */
#include "broker/fetch_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/err.h"

void fetch_sessions_init(fetch_sessions_t *c, int max_slots) {
    pthread_mutex_init(&c->mu, NULL);
    sm_map_init(&c->by_id);
    c->max_slots = max_slots;
}

static void session_free(fetch_session_t *s) {
    free(s->parts);
    free(s);
}

void fetch_sessions_free(fetch_sessions_t *c) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->by_id, &it, NULL, NULL, &v)) session_free(v);
    sm_map_free(&c->by_id);
    pthread_mutex_destroy(&c->mu);
}

fetch_session_t *fetch_session_get(fetch_sessions_t *c, int32_t id) {
    return sm_map_get(&c->by_id, &id, sizeof(id));
}

void fetch_session_remove(fetch_sessions_t *c, int32_t id) {
    fetch_session_t *s = sm_map_del(&c->by_id, &id, sizeof(id));
    if (s) session_free(s);
}

fetch_session_t *fetch_session_create(fetch_sessions_t *c, int64_t now) {
    if (c->max_slots <= 0) return NULL;
    if ((int)sm_map_size(&c->by_id) >= c->max_slots) {
        /* Evict the least recently used session. */
        size_t it = 0;
        void *v;
        fetch_session_t *oldest = NULL;
        while (sm_map_next(&c->by_id, &it, NULL, NULL, &v))
            if (!oldest || ((fetch_session_t *)v)->last_used < oldest->last_used) oldest = v;
        if (oldest) fetch_session_remove(c, oldest->id);
    }
    fetch_session_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    do {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = (uint32_t)rand();
        s->id = (int32_t)(r & 0x7fffffff);
    } while (s->id == 0 || fetch_session_get(c, s->id));
    s->epoch = 1;
    s->last_used = now;
    if (sm_map_put(&c->by_id, &s->id, sizeof(s->id), s)) {
        free(s);
        return NULL;
    }
    return s;
}

static bool same(const fs_part_t *p, const char *topic, const sm_uuid_t *id, int32_t partition) {
    if (p->partition != partition) return false;
    if (id && !sm_uuid_is_zero(id)) return memcmp(p->topic_id.b, id->b, 16) == 0;
    return strcmp(p->topic, topic) == 0;
}

fs_part_t *fetch_session_upsert(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                                int32_t partition) {
    for (int i = 0; i < s->n; i++)
        if (same(&s->parts[i], topic, id, partition)) return &s->parts[i];
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        fs_part_t *n = realloc(s->parts, sizeof(*n) * (size_t)cap);
        if (!n) return NULL;
        s->parts = n;
        s->cap = cap;
    }
    fs_part_t *p = &s->parts[s->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->topic, sizeof(p->topic), "%s", topic ? topic : "");
    if (id) p->topic_id = *id;
    p->partition = partition;
    p->sent_hw = p->sent_lso = p->sent_log_start = -1;
    return p;
}

void fetch_session_forget(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                          int32_t partition) {
    for (int i = 0; i < s->n; i++) {
        if (same(&s->parts[i], topic, id, partition)) {
            s->parts[i] = s->parts[--s->n];
            return;
        }
    }
}
