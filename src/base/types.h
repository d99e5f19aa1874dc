/*
 * Plain value types shared by every module: byte slices, strings, UUIDs and the
 * primitive arrays the generated protocol codecs use. No behaviour lives here.
 */
#ifndef SM_TYPES_H
#define SM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A string borrowed from a buffer (not NUL-terminated). len < 0 means null. */
typedef struct sm_str {
    const char *ptr;
    int32_t len;
} sm_str_t;

/* Bytes borrowed from a buffer. len < 0 means null. */
typedef struct sm_bytes {
    const uint8_t *ptr;
    int32_t len;
} sm_bytes_t;

typedef struct sm_uuid {
    uint8_t b[16];
} sm_uuid_t;

#define SM_STR_NULL ((sm_str_t){NULL, -1})
#define SM_BYTES_NULL ((sm_bytes_t){NULL, -1})
#define SM_STR_LIT(s) ((sm_str_t){(s), (int32_t)(sizeof(s) - 1)})

static inline sm_str_t sm_str_from(const char *s) {
    size_t n = 0;
    if (!s) return SM_STR_NULL;
    while (s[n]) n++;
    return (sm_str_t){s, (int32_t)n};
}

static inline bool sm_str_eq(sm_str_t a, sm_str_t b) {
    if (a.len != b.len) return false;
    for (int32_t i = 0; i < a.len; i++)
        if (a.ptr[i] != b.ptr[i]) return false;
    return true;
}

/* Url-safe base64 without padding, as Kafka prints ids: 22 characters and a NUL. */
void sm_uuid_base64(const uint8_t u[16], char out[23]);
/* The reverse: n must be 22. Returns 0 or SM_ERR_CORRUPT. */
int sm_uuid_parse_base64(const char *s, size_t n, uint8_t u[16]);
/* Sets the version (4) and variant bits of random bytes. */
void sm_uuid_make_v4(uint8_t u[16]);

static inline bool sm_uuid_is_zero(const sm_uuid_t *u) {
    for (int i = 0; i < 16; i++)
        if (u->b[i]) return false;
    return true;
}

/* Arrays: n < 0 means a null array. Elements live in the decoding arena. */
#define SM_DECLARE_ARRAY(name, elem) \
    typedef struct name {            \
        int32_t n;                   \
        elem *v;                     \
    } name

SM_DECLARE_ARRAY(sm_i8_array_t, int8_t);
SM_DECLARE_ARRAY(sm_i16_array_t, int16_t);
SM_DECLARE_ARRAY(sm_u16_array_t, uint16_t);
SM_DECLARE_ARRAY(sm_i32_array_t, int32_t);
SM_DECLARE_ARRAY(sm_u32_array_t, uint32_t);
SM_DECLARE_ARRAY(sm_i64_array_t, int64_t);
SM_DECLARE_ARRAY(sm_f64_array_t, double);
SM_DECLARE_ARRAY(sm_bool_array_t, bool);
SM_DECLARE_ARRAY(sm_str_array_t, sm_str_t);
SM_DECLARE_ARRAY(sm_bytes_array_t, sm_bytes_t);
SM_DECLARE_ARRAY(sm_uuid_array_t, sm_uuid_t);

/* One tagged field the decoder did not know, kept so re-encoding is faithful. */
typedef struct sm_raw_tag {
    uint32_t tag;
    sm_bytes_t data;
} sm_raw_tag_t;

SM_DECLARE_ARRAY(sm_raw_tags_t, sm_raw_tag_t);

#endif
