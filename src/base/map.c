/*
 * Open-addressing hash map (see map.h). FNV-1a 64 with a final mix; tables
 * grow at 70% load counting tombstones.
 */
#include "base/map.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

uint64_t sm_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h < 2 ? h + 2 : h;
}

void sm_map_init(sm_map_t *m) { memset(m, 0, sizeof(*m)); }

void sm_map_free(sm_map_t *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].hash >= 2) free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static sm_map_slot_t *find(const sm_map_t *m, const void *key, size_t key_len, uint64_t h) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        sm_map_slot_t *s = &m->slots[i];
        if (s->hash == 0) return NULL;
        if (s->hash == h && s->key_len == key_len && memcmp(s->key, key, key_len) == 0) return s;
    }
}

void *sm_map_get(const sm_map_t *m, const void *key, size_t key_len) {
    sm_map_slot_t *s = find(m, key, key_len, sm_hash_bytes(key, key_len));
    return s ? s->value : NULL;
}

static int grow(sm_map_t *m) {
    size_t ncap = m->cap ? m->cap * 2 : 16;
    if (m->used * 2 < m->cap) ncap = m->cap; /* mostly tombstones: rehash in place size */
    sm_map_slot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return SM_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        sm_map_slot_t *s = &m->slots[i];
        if (s->hash < 2) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->dead = 0;
    return SM_OK;
}

int sm_map_put(sm_map_t *m, const void *key, size_t key_len, void *value) {
    uint64_t h = sm_hash_bytes(key, key_len);
    sm_map_slot_t *s = find(m, key, key_len, h);
    if (s) {
        s->value = value;
        return SM_OK;
    }
    if ((m->used + m->dead + 1) * 10 > m->cap * 7) {
        int rc = grow(m);
        if (rc) return rc;
    }
    void *k = malloc(key_len ? key_len : 1);
    if (!k) return SM_ERR_NOMEM;
    memcpy(k, key, key_len);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].hash >= 2) i = (i + 1) & mask;
    if (m->slots[i].hash == 1) m->dead--;
    m->slots[i] = (sm_map_slot_t){h, k, key_len, value};
    m->used++;
    return SM_OK;
}

void *sm_map_del(sm_map_t *m, const void *key, size_t key_len) {
    sm_map_slot_t *s = find(m, key, key_len, sm_hash_bytes(key, key_len));
    if (!s) return NULL;
    void *v = s->value;
    free(s->key);
    s->key = NULL;
    s->hash = 1;
    s->value = NULL;
    m->used--;
    m->dead++;
    return v;
}

int sm_map_next(const sm_map_t *m, size_t *iter, const void **key, size_t *key_len, void **value) {
    while (*iter < m->cap) {
        sm_map_slot_t *s = &m->slots[(*iter)++];
        if (s->hash >= 2) {
            if (key) *key = s->key;
            if (key_len) *key_len = s->key_len;
            if (value) *value = s->value;
            return 1;
        }
    }
    return 0;
}
