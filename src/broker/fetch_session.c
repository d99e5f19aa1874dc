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
    for (int i = 0; i < s->n; i++)
        free(s->parts[i].topic);
    free(s->parts);
    sm_map_free(&s->index);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void fetch_sessions_free(fetch_sessions_t *c) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->by_id, &it, NULL, NULL, &v)) session_free(v);
    sm_map_free(&c->by_id);
    pthread_mutex_destroy(&c->mu);
}

/* Drops a reference; caller holds the cache mutex. */
static void unref_locked(fetch_session_t *s) {
    if (--s->refs == 0) session_free(s);
}

static void remove_locked(fetch_sessions_t *c, int32_t id) {
    fetch_session_t *s = sm_map_del(&c->by_id, &id, sizeof(id));
    if (s) unref_locked(s);
}

fetch_session_t *fetch_session_get(fetch_sessions_t *c, int32_t id) {
    pthread_mutex_lock(&c->mu);
    fetch_session_t *s = sm_map_get(&c->by_id, &id, sizeof(id));
    if (s) s->refs++;
    pthread_mutex_unlock(&c->mu);
    return s;
}

void fetch_session_put(fetch_sessions_t *c, fetch_session_t *s) {
    if (!s) return;
    pthread_mutex_lock(&c->mu);
    unref_locked(s);
    pthread_mutex_unlock(&c->mu);
}

void fetch_session_remove(fetch_sessions_t *c, int32_t id) {
    pthread_mutex_lock(&c->mu);
    remove_locked(c, id);
    pthread_mutex_unlock(&c->mu);
}

fetch_session_t *fetch_session_create(fetch_sessions_t *c, int64_t now) {
    if (c->max_slots <= 0) return NULL;
    fetch_session_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    sm_map_init(&s->index);
    s->epoch = 1;
    s->last_used = now;
    s->refs = 2; /* the cache's and the caller's */
    pthread_mutex_lock(&c->mu);
    if ((int)sm_map_size(&c->by_id) >= c->max_slots) {
        /* Evict the least recently used session (last_used is read without
         * its session's lock: a stale value only changes which one goes). */
        size_t it = 0;
        void *v;
        fetch_session_t *oldest = NULL;
        while (sm_map_next(&c->by_id, &it, NULL, NULL, &v))
            if (!oldest || ((fetch_session_t *)v)->last_used < oldest->last_used) oldest = v;
        if (oldest) remove_locked(c, oldest->id);
    }
    do {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = (uint32_t)rand();
        s->id = (int32_t)(r & 0x7fffffff);
    } while (s->id == 0 || sm_map_get(&c->by_id, &s->id, sizeof(s->id)));
    int rc = sm_map_put(&c->by_id, &s->id, sizeof(s->id), s);
    pthread_mutex_unlock(&c->mu);
    if (rc) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* The index key of a partition: its topic id when given, else its name. */
static size_t part_key(uint8_t *key, size_t cap, const char *topic, const sm_uuid_t *id,
                       int32_t partition) {
    memcpy(key, &partition, 4);
    if (id && !sm_uuid_is_zero(id)) {
        key[4] = 'I';
        memcpy(key + 5, id->b, 16);
        return 21;
    }
    size_t tl = topic ? strlen(topic) : 0;
    if (tl > cap - 5) tl = cap - 5;
    key[4] = 'N';
    memcpy(key + 5, topic, tl);
    return 5 + tl;
}

fs_part_t *fetch_session_find(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                              int32_t partition) {
    uint8_t key[5 + 256];
    size_t kl = part_key(key, sizeof(key), topic, id, partition);
    intptr_t at = (intptr_t)sm_map_get(&s->index, key, kl);
    return at > 0 ? &s->parts[at - 1] : NULL;
}

fs_part_t *fetch_session_upsert(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                                int32_t partition) {
    uint8_t key[5 + 256];
    size_t kl = part_key(key, sizeof(key), topic, id, partition);
    intptr_t at = (intptr_t)sm_map_get(&s->index, key, kl);
    if (at > 0) return &s->parts[at - 1];
    if (s->n >= FETCH_SESSION_MAX_PARTITIONS) return NULL;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        fs_part_t *n = realloc(s->parts, sizeof(*n) * (size_t)cap);
        if (!n) return NULL;
        s->parts = n;
        s->cap = cap;
    }
    char *name = strdup(topic ? topic : "");
    if (!name || sm_map_put(&s->index, key, kl, (void *)(intptr_t)(s->n + 1))) {
        free(name);
        return NULL;
    }
    fs_part_t *p = &s->parts[s->n++];
    memset(p, 0, sizeof(*p));
    p->topic = name;
    if (id) p->topic_id = *id;
    p->partition = partition;
    p->sent_hw = p->sent_lso = p->sent_log_start = -1;
    p->current_leader_epoch = p->last_fetched_epoch = -1;
    return p;
}

void fetch_session_forget(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                          int32_t partition) {
    uint8_t key[5 + 256];
    size_t kl = part_key(key, sizeof(key), topic, id, partition);
    intptr_t at = (intptr_t)sm_map_del(&s->index, key, kl);
    if (at <= 0) return;
    fs_part_t *gone = &s->parts[at - 1];
    free(gone->topic);
    if (at - 1 != s->n - 1) {
        /* The last entry moves into the hole: re-point its index entry. */
        fs_part_t *last = &s->parts[s->n - 1];
        *gone = *last;
        kl = part_key(key, sizeof(key), gone->topic, &gone->topic_id, gone->partition);
        sm_map_put(&s->index, key, kl, (void *)at); /* replacing never allocates */
    }
    s->n--;
}
