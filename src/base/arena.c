/*
 * Bump allocator: chunks grow geometrically, large requests get a chunk of
 * their own. See arena.h for the ownership rules.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sm_arena_chunk {
    sm_arena_chunk_t *next;
    size_t cap;
    size_t off;
    _Alignas(16) unsigned char data[];
};

#define ARENA_MIN_CHUNK 4096

void sm_arena_init(sm_arena_t *a, size_t limit) {
    a->head = NULL;
    a->used = 0;
    a->reserved = 0;
    a->limit = limit;
}

void *sm_arena_alloc(sm_arena_t *a, size_t size) {
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size) return NULL;
    if (need == 0) need = 16;
    if (a->limit && (need > a->limit || a->used > a->limit - need)) return NULL;
    sm_arena_chunk_t *c = a->head;
    if (!c || c->cap - c->off < need) {
        size_t cap = c ? c->cap * 2 : ARENA_MIN_CHUNK;
        if (cap > (1u << 20)) cap = 1u << 20;
        /* Under a limit, never reserve more than could still be handed out. */
        if (a->limit && cap > a->limit - a->used) cap = a->limit - a->used;
        if (cap < need) cap = need;
        sm_arena_chunk_t *n = malloc(sizeof(*n) + cap);
        if (!n) return NULL;
        n->cap = cap;
        n->off = 0;
        a->reserved += cap;
        if (c && c->cap - c->off >= 256 && cap == need) {
            /* A big one-off block: keep the current chunk in front for small
             * allocations that follow. */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = c->data + c->off;
    c->off += need;
    a->used += need;
    memset(p, 0, size);
    return p;
}

void *sm_arena_calloc(sm_arena_t *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return sm_arena_alloc(a, n * size);
}

char *sm_arena_strndup(sm_arena_t *a, const char *s, size_t n) {
    char *p = sm_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void sm_arena_reset(sm_arena_t *a) {
    sm_arena_chunk_t *c = a->head;
    while (c) {
        sm_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
    a->reserved = 0;
}

void sm_arena_free(sm_arena_t *a) { sm_arena_reset(a); }

sm_str_t sm_arena_str(sm_arena_t *a, const char *s) {
    if (!s) return SM_STR_NULL;
    size_t n = strlen(s);
    char *p = sm_arena_strndup(a, s, n);
    return p ? (sm_str_t){p, (int32_t)n} : SM_STR_NULL;
}
