/*
 * Bump allocator for per-request memory: decoded request structs, response
 * structs and scratch space live in one arena freed in one go when the response
 * has been written. Not thread-safe: an arena belongs to one request at a time.
 */
#ifndef SM_ARENA_H
#define SM_ARENA_H

#include <stddef.h>

#include "base/types.h"

typedef struct sm_arena_chunk sm_arena_chunk_t;

typedef struct sm_arena {
    sm_arena_chunk_t *head; /* newest chunk first */
    size_t used;            /* bytes handed out (including alignment padding) */
    size_t limit;           /* 0 = unlimited; otherwise allocation beyond fails */
    size_t reserved;        /* bytes of chunks taken from malloc */
} sm_arena_t;

void sm_arena_init(sm_arena_t *a, size_t limit);
/* Returns zeroed, 16-byte aligned memory owned by the arena, or NULL when the
 * limit would be passed or malloc fails. */
void *sm_arena_alloc(sm_arena_t *a, size_t size);
/* Allocates n elements of size each, failing on overflow. */
void *sm_arena_calloc(sm_arena_t *a, size_t n, size_t size);
char *sm_arena_strndup(sm_arena_t *a, const char *s, size_t n);
/* A copy of the C string s as an sm_str_t (null for s == NULL or no memory). */
sm_str_t sm_arena_str(sm_arena_t *a, const char *s);
/* Releases every chunk; the arena can be used again afterwards. */
void sm_arena_reset(sm_arena_t *a);
void sm_arena_free(sm_arena_t *a);

#endif
