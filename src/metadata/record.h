/*
 * Framing of metadata log records inside record-batch values, as KRaft does:
 * unsigned varint frame version (1), unsigned varint record type (the
 * schema's apiKey), unsigned varint record version, then the record encoded
 * with its generated codec.
 */
#ifndef META_RECORD_H
#define META_RECORD_H

#include "protocol/gen/api.h"

#define META_RECORD_FRAME_VERSION 1

/* A record ready to append: type, version and the generated struct. */
typedef struct meta_record {
    int16_t type;
    int16_t version;
    const void *msg;
} meta_record_t;

/* Bytes meta_record_write needs for r. */
size_t meta_record_size(const meta_record_t *r);
int meta_record_write(sm_writer_t *w, const meta_record_t *r);

/*
 * Decodes a framed record from value bytes; *msg is allocated from a and
 * borrows the value's bytes. Returns SM_OK, SM_ERR_PARSE, or SM_ERR_VERSION for
 * an unknown record type or version.
 */
int meta_record_read(const uint8_t *value, size_t len, sm_arena_t *a, int16_t *type,
                     int16_t *version, void **msg);

#endif
