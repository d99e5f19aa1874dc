/*
 * A hash map from byte-string keys to pointers (open addressing, linear
 * probing, tombstones). Keys are copied into the map. Not thread-safe: the
 * owner provides locking.
 */
#ifndef SM_MAP_H
#define SM_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_map_slot {
    uint64_t hash; /* 0 = empty, 1 = deleted */
    void *key;
    size_t key_len;
    void *value;
} sm_map_slot_t;

typedef struct sm_map {
    sm_map_slot_t *slots;
    size_t cap;  /* power of two */
    size_t used; /* live entries */
    size_t dead; /* tombstones */
} sm_map_t;

void sm_map_init(sm_map_t *m);
void sm_map_free(sm_map_t *m);
void *sm_map_get(const sm_map_t *m, const void *key, size_t key_len);
/* Inserts or replaces; returns SM_OK or SM_ERR_NOMEM. */
int sm_map_put(sm_map_t *m, const void *key, size_t key_len, void *value);
/* Removes the key; returns the old value or NULL. */
void *sm_map_del(sm_map_t *m, const void *key, size_t key_len);
static inline size_t sm_map_size(const sm_map_t *m) { return m->used; }

/* Iteration: for (size_t i = 0; sm_map_next(m, &i, &k, &klen, &v);) ... */
int sm_map_next(const sm_map_t *m, size_t *iter, const void **key, size_t *key_len, void **value);

uint64_t sm_hash_bytes(const void *data, size_t len);

#endif
