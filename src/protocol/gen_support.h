/*
 * What the generated codecs in protocol/gen/ build on: the wire readers and
 * writers, the arena, and the handling of tagged fields the codec does not know
 * (kept on decode and written back in tag order on encode, so a message passes
 * through Samsa unchanged).
 */
#ifndef PROTO_GEN_SUPPORT_H
#define PROTO_GEN_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/types.h"

/* Returns the status of x from the enclosing function when it is not SM_OK. */
#define TRY(x)                   \
    do {                         \
        int rc_ = (x);           \
        if (rc_ != SM_OK) return rc_; \
    } while (0)

#define PROTO_MAYBE_UNUSED __attribute__((unused))

/* Records an unknown tagged field; room for ntags entries is taken from the
 * arena on first use (the caller has bounded ntags by the frame size). */
int proto_tags_keep(sm_arena_t *a, sm_raw_tags_t *tags, uint32_t ntags, uint32_t tag,
                    const uint8_t *data, uint32_t size);
/* Reads a tagged-field section of a struct without known tagged fields,
 * keeping every field as unknown. */
int proto_tags_read_unknown(sm_reader_t *r, sm_arena_t *a, sm_raw_tags_t *tags);
/* Encoded size of the kept unknown tagged fields (tag, size, bytes each). */
size_t proto_tags_size(const sm_raw_tags_t *tags);
/* Writes kept unknown tagged fields from index *next on while their tag is
 * below limit, advancing *next; lets known and unknown tags interleave in order. */
int proto_tags_write_below(sm_writer_t *w, const sm_raw_tags_t *tags, int32_t *next,
                           uint64_t limit);

#endif
