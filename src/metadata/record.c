/*
 * Metadata record framing (see record.h).
 */
#include "metadata/record.h"

size_t meta_record_size(const meta_record_t *r) {
    const proto_msg_desc_t *d = proto_metadata_record_lookup(r->type);
    if (!d) return 0;
    return sm_uvarint_size(META_RECORD_FRAME_VERSION) + sm_uvarint_size((uint32_t)r->type) +
           sm_uvarint_size((uint32_t)r->version) + d->size(r->version, r->msg);
}

int meta_record_write(sm_writer_t *w, const meta_record_t *r) {
    const proto_msg_desc_t *d = proto_metadata_record_lookup(r->type);
    if (!d) return SM_ERR_VERSION;
    TRY(sm_wr_uvarint(w, META_RECORD_FRAME_VERSION));
    TRY(sm_wr_uvarint(w, (uint32_t)r->type));
    TRY(sm_wr_uvarint(w, (uint32_t)r->version));
    return d->encode(w, r->version, r->msg);
}

int meta_record_read(const uint8_t *value, size_t len, sm_arena_t *a, int16_t *type,
                     int16_t *version, void **msg) {
    sm_reader_t r = sm_reader_make(value, len);
    uint32_t frame, t, v;
    TRY(sm_rd_uvarint(&r, &frame));
    TRY(sm_rd_uvarint(&r, &t));
    TRY(sm_rd_uvarint(&r, &v));
    if (frame != META_RECORD_FRAME_VERSION || t > INT16_MAX || v > INT16_MAX) return SM_ERR_PARSE;
    const proto_msg_desc_t *d = proto_metadata_record_lookup((int16_t)t);
    if (!d || (int16_t)v < d->min_version || (int16_t)v > d->max_version) return SM_ERR_VERSION;
    void *m = sm_arena_alloc(a, d->struct_size);
    if (!m) return SM_ERR_NOMEM;
    TRY(d->decode(&r, a, (int16_t)v, m));
    if (sm_rd_left(&r)) return SM_ERR_PARSE;
    *type = (int16_t)t;
    *version = (int16_t)v;
    *msg = m;
    return SM_OK;
}
