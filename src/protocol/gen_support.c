/*
 * Unknown tagged fields for the generated codecs (see gen_support.h).
 */
#include "protocol/gen_support.h"

int proto_tags_keep(sm_arena_t *a, sm_raw_tags_t *tags, uint32_t ntags, uint32_t tag,
                    const uint8_t *data, uint32_t size) {
    if (!tags->v) {
        tags->v = sm_arena_calloc(a, ntags ? ntags : 1, sizeof(*tags->v));
        if (!tags->v) return SM_ERR_NOMEM;
        tags->n = 0;
    }
    if ((uint32_t)tags->n >= ntags) return SM_ERR_PARSE;
    tags->v[tags->n].tag = tag;
    tags->v[tags->n].data = (sm_bytes_t){data, (int32_t)size};
    tags->n++;
    return SM_OK;
}

size_t proto_tags_size(const sm_raw_tags_t *tags) {
    size_t n = 0;
    for (int32_t i = 0; i < tags->n; i++) {
        uint32_t len = (uint32_t)tags->v[i].data.len;
        n += sm_uvarint_size(tags->v[i].tag) + sm_uvarint_size(len) + len;
    }
    return n;
}

int proto_tags_write_below(sm_writer_t *w, const sm_raw_tags_t *tags, int32_t *next,
                           uint64_t limit) {
    while (*next < tags->n && tags->v[*next].tag < limit) {
        const sm_raw_tag_t *t = &tags->v[*next];
        TRY(sm_wr_uvarint(w, t->tag));
        TRY(sm_wr_uvarint(w, (uint32_t)t->data.len));
        TRY(sm_wr_raw(w, t->data.ptr, (size_t)t->data.len));
        (*next)++;
    }
    return SM_OK;
}

int proto_tags_read_unknown(sm_reader_t *r, sm_arena_t *a, sm_raw_tags_t *tags) {
    uint32_t ntags;
    TRY(sm_rd_uvarint(r, &ntags));
    if (ntags > sm_rd_left(r) / 2) return SM_ERR_PARSE;
    for (uint32_t t = 0; t < ntags; t++) {
        uint32_t tag, size;
        const uint8_t *p;
        TRY(sm_rd_uvarint(r, &tag));
        TRY(sm_rd_uvarint(r, &size));
        TRY(sm_rd_slice(r, size, &p));
        TRY(proto_tags_keep(a, tags, ntags, tag, p, size));
    }
    return SM_OK;
}
