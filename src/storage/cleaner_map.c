/*
 * The cleaner's bounded key -> offset map: open addressing over 24-byte slots
 * (two 64-bit hashes of the key, the offset), growing by doubling up to the
 * budget it was given, then refusing inserts past load_factor of it, as
 * Kafka's SkimpyOffsetMap. Two keys with the same 128-bit hash count as one
 * (Kafka accepts the same risk with MD5). Single-threaded: one map per
 * cleaner thread. Also the I/O throttle the pool's threads share.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "storage/cleaner_impl.h"

typedef struct slot {
    uint64_t h1, h2;
    int64_t off1; /* offset + 1; 0 = empty */
} slot_t;

struct clean_map {
    slot_t *slots;
    size_t nslots; /* power of two */
    size_t maxslots;
    size_t n;
    size_t max_entries;
    double load;
};

static uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static uint64_t hash_key(const uint8_t *p, size_t len, uint64_t seed) {
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ fmix64(w + seed)) * 0x87c37b91114253d5ULL;
        h = (h << 31) | (h >> 33);
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < len; k++)
        tail |= (uint64_t)p[i + k] << (8 * k);
    h ^= fmix64(tail ^ seed ^ (uint64_t)len);
    return fmix64(h);
}

int clean_map_new(size_t bytes, double load_factor, clean_map_t **out) {
    clean_map_t *m = calloc(1, sizeof(*m));
    if (!m) return SM_ERR_NOMEM;
    size_t max = bytes / sizeof(slot_t), p = 16;
    while (p * 2 <= max)
        p *= 2;
    m->maxslots = p;
    m->load = load_factor > 0 && load_factor < 1 ? load_factor : 0.9;
    m->nslots = p < 4096 ? p : 4096;
    m->slots = calloc(m->nslots, sizeof(slot_t));
    if (!m->slots) {
        free(m);
        return SM_ERR_NOMEM;
    }
    m->max_entries = (size_t)((double)m->maxslots * m->load);
    if (m->max_entries < 1) m->max_entries = 1;
    *out = m;
    return SM_OK;
}

void clean_map_free(clean_map_t *m) {
    if (!m) return;
    free(m->slots);
    free(m);
}

void clean_map_clear(clean_map_t *m) {
    memset(m->slots, 0, m->nslots * sizeof(slot_t));
    m->n = 0;
}

static slot_t *find(slot_t *slots, size_t nslots, uint64_t h1, uint64_t h2) {
    size_t mask = nslots - 1, i = (size_t)h1 & mask;
    for (;;) {
        slot_t *s = &slots[i];
        if (s->off1 == 0 || (s->h1 == h1 && s->h2 == h2)) return s;
        i = (i + 1) & mask;
    }
}

static int grow(clean_map_t *m) {
    size_t n = m->nslots * 2;
    slot_t *ns = calloc(n, sizeof(slot_t));
    if (!ns) return SM_ERR_NOMEM;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].off1) *find(ns, n, m->slots[i].h1, m->slots[i].h2) = m->slots[i];
    free(m->slots);
    m->slots = ns;
    m->nslots = n;
    return SM_OK;
}

int clean_map_put(clean_map_t *m, const uint8_t *key, size_t len, int64_t offset) {
    uint64_t h1 = hash_key(key, len, 0x243f6a8885a308d3ULL);
    uint64_t h2 = hash_key(key, len, 0x13198a2e03707344ULL);
    slot_t *s = find(m->slots, m->nslots, h1, h2);
    if (s->off1) {
        s->off1 = offset + 1;
        return SM_OK;
    }
    if (m->n >= m->max_entries) return SM_ERR_SPACE;
    if (m->n + 1 > m->nslots / 2 && m->nslots < m->maxslots) {
        if (grow(m) == SM_OK) s = find(m->slots, m->nslots, h1, h2);
    }
    if (m->n + 1 >= m->nslots) return SM_ERR_SPACE;
    s->h1 = h1;
    s->h2 = h2;
    s->off1 = offset + 1;
    m->n++;
    return SM_OK;
}

int64_t clean_map_get(const clean_map_t *m, const uint8_t *key, size_t len) {
    uint64_t h1 = hash_key(key, len, 0x243f6a8885a308d3ULL);
    uint64_t h2 = hash_key(key, len, 0x13198a2e03707344ULL);
    const slot_t *s = find(m->slots, m->nslots, h1, h2);
    return s->off1 ? s->off1 - 1 : -1;
}

size_t clean_map_size(const clean_map_t *m) { return m->n; }

size_t clean_map_room(const clean_map_t *m) {
    return m->max_entries > m->n ? m->max_entries - m->n : 0;
}

/* ---- throttle ---- */

struct clean_throttle {
    pthread_mutex_t mu;
    double rate; /* bytes per second */
    int64_t window_start_ms;
    double window_bytes;
};

int clean_throttle_new(double bytes_per_second, clean_throttle_t **out) {
    *out = NULL;
    if (!(bytes_per_second > 0) || bytes_per_second >= 1e300) return SM_OK; /* unthrottled */
    clean_throttle_t *t = calloc(1, sizeof(*t));
    if (!t) return SM_ERR_NOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->rate = bytes_per_second;
    t->window_start_ms = sm_time_ms();
    *out = t;
    return SM_OK;
}

void clean_throttle_free(clean_throttle_t *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int64_t clean_throttle_delay_ms(clean_throttle_t *t, size_t bytes) {
    if (!t) return 0;
    pthread_mutex_lock(&t->mu);
    int64_t now = sm_time_ms();
    if (now - t->window_start_ms > 1000) {
        /* A fresh window: past idle time gives no credit beyond a second. */
        t->window_start_ms = now - 1000 < t->window_start_ms ? t->window_start_ms : now - 1000;
        t->window_bytes = 0;
    }
    t->window_bytes += (double)bytes;
    double due_ms = t->window_bytes * 1000.0 / t->rate; /* when these bytes may have gone */
    int64_t elapsed = now - t->window_start_ms;
    int64_t delay = due_ms > (double)elapsed ? (int64_t)(due_ms - (double)elapsed) : 0;
    pthread_mutex_unlock(&t->mu);
    return delay;
}
