/*
 * Bounds-checked readers and writers for Kafka's wire encoding: big-endian
 * integers, zig-zag and unsigned varints, classic and compact strings, bytes and
 * array lengths. Every read checks the remaining bytes first and returns
 * SM_ERR_PARSE instead of reading past the end; no caller indexes a buffer directly.
 * Writers check capacity the same way and return SM_ERR_SPACE.
 */
#ifndef SM_BUF_H
#define SM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/types.h"

typedef struct sm_reader {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last readable byte */
} sm_reader_t;

/* Places in an encoded message where record bytes are to be spliced in from
 * elsewhere (a file range sent with sendfile) instead of being copied. */
typedef struct sm_holes {
    size_t n, cap;
    size_t *pos; /* offset in the output where the k-th hole's bytes belong */
} sm_holes_t;

typedef struct sm_writer {
    uint8_t *p;
    uint8_t *end;
    uint8_t *base;      /* start of the output, for hole positions */
    sm_holes_t *holes;  /* NULL: records are always copied */
} sm_writer_t;

static inline sm_reader_t sm_reader_make(const void *data, size_t len) {
    return (sm_reader_t){(const uint8_t *)data, (const uint8_t *)data + len};
}
static inline sm_writer_t sm_writer_make(void *data, size_t len) {
    return (sm_writer_t){(uint8_t *)data, (uint8_t *)data + len, (uint8_t *)data, NULL};
}
static inline size_t sm_rd_left(const sm_reader_t *r) { return (size_t)(r->end - r->p); }

/* ---- reading ---- */

static inline int sm_rd_skip(sm_reader_t *r, size_t n) {
    if (sm_rd_left(r) < n) return SM_ERR_PARSE;
    r->p += n;
    return SM_OK;
}

static inline int sm_rd_u8(sm_reader_t *r, uint8_t *v) {
    if (sm_rd_left(r) < 1) return SM_ERR_PARSE;
    *v = r->p[0];
    r->p += 1;
    return SM_OK;
}
static inline int sm_rd_i8(sm_reader_t *r, int8_t *v) { return sm_rd_u8(r, (uint8_t *)v); }
static inline int sm_rd_bool(sm_reader_t *r, bool *v) {
    uint8_t b;
    if (sm_rd_u8(r, &b)) return SM_ERR_PARSE;
    *v = b != 0;
    return SM_OK;
}
static inline int sm_rd_u16(sm_reader_t *r, uint16_t *v) {
    if (sm_rd_left(r) < 2) return SM_ERR_PARSE;
    *v = (uint16_t)((uint16_t)r->p[0] << 8 | r->p[1]);
    r->p += 2;
    return SM_OK;
}
static inline int sm_rd_i16(sm_reader_t *r, int16_t *v) { return sm_rd_u16(r, (uint16_t *)v); }
static inline int sm_rd_u32(sm_reader_t *r, uint32_t *v) {
    if (sm_rd_left(r) < 4) return SM_ERR_PARSE;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return SM_OK;
}
static inline int sm_rd_i32(sm_reader_t *r, int32_t *v) { return sm_rd_u32(r, (uint32_t *)v); }
static inline int sm_rd_u64(sm_reader_t *r, uint64_t *v) {
    if (sm_rd_left(r) < 8) return SM_ERR_PARSE;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | r->p[i];
    *v = x;
    r->p += 8;
    return SM_OK;
}
static inline int sm_rd_i64(sm_reader_t *r, int64_t *v) { return sm_rd_u64(r, (uint64_t *)v); }
static inline int sm_rd_f64(sm_reader_t *r, double *v) {
    uint64_t x;
    if (sm_rd_u64(r, &x)) return SM_ERR_PARSE;
    memcpy(v, &x, sizeof(*v));
    return SM_OK;
}
static inline int sm_rd_uuid(sm_reader_t *r, sm_uuid_t *v) {
    if (sm_rd_left(r) < 16) return SM_ERR_PARSE;
    memcpy(v->b, r->p, 16);
    r->p += 16;
    return SM_OK;
}

/* Unsigned varint of at most 5 bytes (32 bits), as Kafka's readUnsignedVarint. */
static inline int sm_rd_uvarint(sm_reader_t *r, uint32_t *v) {
    uint32_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        uint8_t b;
        if (sm_rd_u8(r, &b)) return SM_ERR_PARSE;
        if (shift == 28 && (b & 0xf0)) return SM_ERR_PARSE;
        x |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return SM_OK;
        }
    }
    return SM_ERR_PARSE;
}
static inline int sm_rd_uvarlong(sm_reader_t *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (sm_rd_u8(r, &b)) return SM_ERR_PARSE;
        if (shift == 63 && (b & 0xfe)) return SM_ERR_PARSE;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return SM_OK;
        }
    }
    return SM_ERR_PARSE;
}
/* Zig-zag signed varints, as used inside record batches. */
static inline int sm_rd_varint(sm_reader_t *r, int32_t *v) {
    uint32_t u;
    if (sm_rd_uvarint(r, &u)) return SM_ERR_PARSE;
    *v = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return SM_OK;
}
static inline int sm_rd_varlong(sm_reader_t *r, int64_t *v) {
    uint64_t u;
    if (sm_rd_uvarlong(r, &u)) return SM_ERR_PARSE;
    *v = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return SM_OK;
}

/* Takes n bytes as a zero-copy slice. */
static inline int sm_rd_slice(sm_reader_t *r, size_t n, const uint8_t **out) {
    if (sm_rd_left(r) < n) return SM_ERR_PARSE;
    *out = r->p;
    r->p += n;
    return SM_OK;
}

/* Length prefixes. Each returns len = -1 for null; a negative length other
 * than -1 is malformed. Compact forms store len + 1 as an unsigned varint. */
static inline int sm_rd_len16(sm_reader_t *r, int32_t *len) {
    int16_t l;
    if (sm_rd_i16(r, &l) || l < -1) return SM_ERR_PARSE;
    *len = l;
    return SM_OK;
}
static inline int sm_rd_len32(sm_reader_t *r, int32_t *len) {
    int32_t l;
    if (sm_rd_i32(r, &l) || l < -1) return SM_ERR_PARSE;
    *len = l;
    return SM_OK;
}
static inline int sm_rd_ulen(sm_reader_t *r, int32_t *len) {
    uint32_t u;
    if (sm_rd_uvarint(r, &u) || u > INT32_MAX) return SM_ERR_PARSE;
    *len = (int32_t)u - 1;
    return SM_OK;
}

static inline int sm_rd_str_body(sm_reader_t *r, int32_t len, bool nullable, sm_str_t *s) {
    if (len < 0) {
        if (!nullable) return SM_ERR_PARSE;
        *s = SM_STR_NULL;
        return SM_OK;
    }
    const uint8_t *p;
    if (sm_rd_slice(r, (size_t)len, &p)) return SM_ERR_PARSE;
    *s = (sm_str_t){(const char *)p, len};
    return SM_OK;
}
static inline int sm_rd_bytes_body(sm_reader_t *r, int32_t len, bool nullable, sm_bytes_t *b) {
    if (len < 0) {
        if (!nullable) return SM_ERR_PARSE;
        *b = SM_BYTES_NULL;
        return SM_OK;
    }
    const uint8_t *p;
    if (sm_rd_slice(r, (size_t)len, &p)) return SM_ERR_PARSE;
    *b = (sm_bytes_t){p, len};
    return SM_OK;
}
static inline int sm_rd_string(sm_reader_t *r, bool compact, bool nullable, sm_str_t *s) {
    int32_t len;
    if ((compact ? sm_rd_ulen(r, &len) : sm_rd_len16(r, &len))) return SM_ERR_PARSE;
    return sm_rd_str_body(r, len, nullable, s);
}
static inline int sm_rd_bytes(sm_reader_t *r, bool compact, bool nullable, sm_bytes_t *b) {
    int32_t len;
    if ((compact ? sm_rd_ulen(r, &len) : sm_rd_len32(r, &len))) return SM_ERR_PARSE;
    return sm_rd_bytes_body(r, len, nullable, b);
}
/* Array count; the caller checks it against the remaining bytes before it
 * sizes an allocation (each element takes at least min_elem_size bytes). */
static inline int sm_rd_array_len(sm_reader_t *r, bool compact, bool nullable,
                                  size_t min_elem_size, int32_t *n) {
    if ((compact ? sm_rd_ulen(r, n) : sm_rd_len32(r, n))) return SM_ERR_PARSE;
    if (*n < 0) return nullable ? SM_OK : SM_ERR_PARSE;
    /* Every element takes at least one byte, as Kafka's readers assume: an
     * element whose smallest form computes to zero bytes (a struct whose
     * fields all belong to other versions) must not let a count of two
     * billion through to the allocator. */
    if (min_elem_size < 1) min_elem_size = 1;
    if ((size_t)*n > sm_rd_left(r) / min_elem_size) return SM_ERR_PARSE;
    return SM_OK;
}

/* ---- sizes ---- */

static inline size_t sm_uvarint_size(uint32_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static inline size_t sm_uvarlong_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static inline uint32_t sm_zigzag32(int32_t v) { return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31); }
static inline uint64_t sm_zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline size_t sm_varint_size(int32_t v) { return sm_uvarint_size(sm_zigzag32(v)); }
static inline size_t sm_varlong_size(int64_t v) { return sm_uvarlong_size(sm_zigzag64(v)); }

static inline size_t sm_string_size(sm_str_t s, bool compact) {
    size_t body = s.len < 0 ? 0 : (size_t)s.len;
    if (compact) return sm_uvarint_size((uint32_t)(s.len + 1)) + body;
    return 2 + body;
}
static inline size_t sm_bytes_size(sm_bytes_t b, bool compact) {
    size_t body = b.len < 0 ? 0 : (size_t)b.len;
    if (compact) return sm_uvarint_size((uint32_t)(b.len + 1)) + body;
    return 4 + body;
}
static inline size_t sm_array_len_size(int32_t n, bool compact) {
    return compact ? sm_uvarint_size((uint32_t)(n + 1)) : 4;
}

/* ---- writing ---- */

static inline size_t sm_wr_left(const sm_writer_t *w) { return (size_t)(w->end - w->p); }

static inline int sm_wr_raw(sm_writer_t *w, const void *data, size_t n) {
    if (sm_wr_left(w) < n) return SM_ERR_SPACE;
    if (n) memcpy(w->p, data, n);
    w->p += n;
    return SM_OK;
}
static inline int sm_wr_u8(sm_writer_t *w, uint8_t v) {
    if (sm_wr_left(w) < 1) return SM_ERR_SPACE;
    *w->p++ = v;
    return SM_OK;
}
static inline int sm_wr_i8(sm_writer_t *w, int8_t v) { return sm_wr_u8(w, (uint8_t)v); }
static inline int sm_wr_bool(sm_writer_t *w, bool v) { return sm_wr_u8(w, v ? 1 : 0); }
static inline int sm_wr_u16(sm_writer_t *w, uint16_t v) {
    if (sm_wr_left(w) < 2) return SM_ERR_SPACE;
    w->p[0] = (uint8_t)(v >> 8);
    w->p[1] = (uint8_t)v;
    w->p += 2;
    return SM_OK;
}
static inline int sm_wr_i16(sm_writer_t *w, int16_t v) { return sm_wr_u16(w, (uint16_t)v); }
static inline int sm_wr_u32(sm_writer_t *w, uint32_t v) {
    if (sm_wr_left(w) < 4) return SM_ERR_SPACE;
    w->p[0] = (uint8_t)(v >> 24);
    w->p[1] = (uint8_t)(v >> 16);
    w->p[2] = (uint8_t)(v >> 8);
    w->p[3] = (uint8_t)v;
    w->p += 4;
    return SM_OK;
}
static inline int sm_wr_i32(sm_writer_t *w, int32_t v) { return sm_wr_u32(w, (uint32_t)v); }
static inline int sm_wr_u64(sm_writer_t *w, uint64_t v) {
    if (sm_wr_left(w) < 8) return SM_ERR_SPACE;
    for (int i = 7; i >= 0; i--) {
        w->p[i] = (uint8_t)v;
        v >>= 8;
    }
    w->p += 8;
    return SM_OK;
}
static inline int sm_wr_i64(sm_writer_t *w, int64_t v) { return sm_wr_u64(w, (uint64_t)v); }
static inline int sm_wr_f64(sm_writer_t *w, double v) {
    uint64_t x;
    memcpy(&x, &v, sizeof(x));
    return sm_wr_u64(w, x);
}
static inline int sm_wr_uuid(sm_writer_t *w, const sm_uuid_t *v) { return sm_wr_raw(w, v->b, 16); }
static inline int sm_wr_uvarint(sm_writer_t *w, uint32_t v) {
    if (sm_wr_left(w) < sm_uvarint_size(v)) return SM_ERR_SPACE;
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
    return SM_OK;
}
static inline int sm_wr_uvarlong(sm_writer_t *w, uint64_t v) {
    if (sm_wr_left(w) < sm_uvarlong_size(v)) return SM_ERR_SPACE;
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
    return SM_OK;
}
static inline int sm_wr_varint(sm_writer_t *w, int32_t v) { return sm_wr_uvarint(w, sm_zigzag32(v)); }
static inline int sm_wr_varlong(sm_writer_t *w, int64_t v) { return sm_wr_uvarlong(w, sm_zigzag64(v)); }

static inline int sm_wr_string(sm_writer_t *w, sm_str_t s, bool compact) {
    if (!compact && s.len > INT16_MAX) return SM_ERR_RANGE;
    int rc = compact ? sm_wr_uvarint(w, (uint32_t)(s.len + 1)) : sm_wr_i16(w, (int16_t)s.len);
    if (rc || s.len <= 0) return rc;
    return sm_wr_raw(w, s.ptr, (size_t)s.len);
}
static inline int sm_wr_bytes(sm_writer_t *w, sm_bytes_t b, bool compact) {
    int rc = compact ? sm_wr_uvarint(w, (uint32_t)(b.len + 1)) : sm_wr_i32(w, b.len);
    if (rc || b.len <= 0) return rc;
    return sm_wr_raw(w, b.ptr, (size_t)b.len);
}
/*
 * A records field. With holes set on the writer, a value with ptr == NULL and
 * len > 0 writes only its length prefix and records a hole where its len bytes
 * belong; the caller sends those bytes separately (zero copy). Otherwise the
 * same as sm_wr_bytes.
 */
static inline int sm_wr_records(sm_writer_t *w, sm_bytes_t b, bool compact) {
    if (b.ptr || b.len <= 0 || !w->holes) return sm_wr_bytes(w, b, compact);
    int rc = compact ? sm_wr_uvarint(w, (uint32_t)(b.len + 1)) : sm_wr_i32(w, b.len);
    if (rc) return rc;
    sm_holes_t *h = w->holes;
    if (h->n == h->cap) return SM_ERR_SPACE;
    h->pos[h->n++] = (size_t)(w->p - w->base);
    return SM_OK;
}

static inline int sm_wr_array_len(sm_writer_t *w, int32_t n, bool compact) {
    return compact ? sm_wr_uvarint(w, (uint32_t)(n + 1)) : sm_wr_i32(w, n);
}

#endif
