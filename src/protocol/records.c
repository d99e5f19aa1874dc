/*
 * Record batch v2 reading, validation, patching and building (see records.h).
 * All reads of untrusted bytes go through the bounds-checked readers of
 * base/buf.h.
 */
#include "protocol/records.h"

#include <string.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/err.h"

#define BATCH_LENGTH_MIN (PROTO_BATCH_HEADER_SIZE - PROTO_BATCH_LOG_OVERHEAD)

int proto_batch_parse_header(const uint8_t *buf, size_t len, proto_batch_header_t *h) {
    /* Magic sits at offset 16; read it first so old formats get their own error. */
    if (len < PROTO_BATCH_OFF_MAGIC + 1) return SM_ERR_PARSE;
    sm_reader_t r = sm_reader_make(buf, len);
    sm_rd_i64(&r, &h->base_offset);
    sm_rd_i32(&r, &h->batch_length);
    sm_rd_i32(&r, &h->partition_leader_epoch);
    sm_rd_i8(&r, &h->magic);
    if (h->magic != 2) return SM_ERR_VERSION;
    if (len < PROTO_BATCH_HEADER_SIZE) return SM_ERR_PARSE;
    sm_rd_u32(&r, &h->crc);
    sm_rd_i16(&r, &h->attributes);
    sm_rd_i32(&r, &h->last_offset_delta);
    sm_rd_i64(&r, &h->base_timestamp);
    sm_rd_i64(&r, &h->max_timestamp);
    sm_rd_i64(&r, &h->producer_id);
    sm_rd_i16(&r, &h->producer_epoch);
    sm_rd_i32(&r, &h->base_sequence);
    sm_rd_i32(&r, &h->records_count);
    if (h->batch_length < BATCH_LENGTH_MIN) return SM_ERR_CORRUPT;
    if (h->records_count < 0 || h->last_offset_delta < 0) return SM_ERR_CORRUPT;
    return SM_OK;
}

uint32_t proto_batch_compute_crc(const uint8_t *buf, size_t len) {
    if (len < PROTO_BATCH_OFF_ATTRIBUTES) return 0;
    return sm_crc32c(0, buf + PROTO_BATCH_OFF_ATTRIBUTES, len - PROTO_BATCH_OFF_ATTRIBUTES);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void proto_batch_update_crc(uint8_t *buf, size_t len) {
    put_u32(buf + PROTO_BATCH_OFF_CRC, proto_batch_compute_crc(buf, len));
}

void proto_batch_set_base_offset(uint8_t *buf, int64_t base_offset) {
    put_u64(buf + PROTO_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void proto_batch_set_leader_epoch(uint8_t *buf, int32_t epoch) {
    put_u32(buf + PROTO_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

void proto_batch_set_log_append_time(uint8_t *buf, size_t len, int64_t ts) {
    if (len < PROTO_BATCH_HEADER_SIZE) return; /* not a batch: nothing to patch */
    sm_reader_t r = sm_reader_make(buf + PROTO_BATCH_OFF_ATTRIBUTES, 2);
    uint16_t attrs = 0;
    sm_rd_u16(&r, &attrs);
    put_u16(buf + PROTO_BATCH_OFF_ATTRIBUTES, attrs | PROTO_ATTR_LOG_APPEND_TIME);
    put_u64(buf + PROTO_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    proto_batch_update_crc(buf, len);
}

void proto_record_iter_init(proto_record_iter_t *it, const uint8_t *data, size_t len,
                            int32_t count) {
    it->p = data;
    it->end = data + len;
    it->remaining = count;
}

/* Reads a varint-length-prefixed byte string (-1 = null). */
static int read_varbytes(sm_reader_t *r, sm_bytes_t *out) {
    int32_t n;
    if (sm_rd_varint(r, &n) || n < -1) return SM_ERR_PARSE;
    if (n < 0) {
        *out = SM_BYTES_NULL;
        return SM_OK;
    }
    const uint8_t *p;
    if (sm_rd_slice(r, (size_t)n, &p)) return SM_ERR_PARSE;
    *out = (sm_bytes_t){p, n};
    return SM_OK;
}

int proto_record_iter_next(proto_record_iter_t *it, proto_record_t *rec) {
    if (it->remaining <= 0) return 0;
    sm_reader_t r = {it->p, it->end};
    int32_t length;
    if (sm_rd_varint(&r, &length) || length < 0 || (size_t)length > sm_rd_left(&r))
        return SM_ERR_PARSE;
    sm_reader_t body = {r.p, r.p + length};
    if (sm_rd_i8(&body, &rec->attributes) || sm_rd_varlong(&body, &rec->timestamp_delta) ||
        sm_rd_varint(&body, &rec->offset_delta) || read_varbytes(&body, &rec->key) ||
        read_varbytes(&body, &rec->value) || sm_rd_varint(&body, &rec->header_count) ||
        rec->header_count < 0)
        return SM_ERR_PARSE;
    rec->headers = body.p;
    rec->headers_len = sm_rd_left(&body);
    /* Walk the headers so a record is only returned when it is whole. */
    sm_reader_t hr = body;
    for (int32_t i = 0; i < rec->header_count; i++) {
        int32_t klen;
        sm_bytes_t v;
        const uint8_t *kp;
        if (sm_rd_varint(&hr, &klen) || klen < 0 || sm_rd_slice(&hr, (size_t)klen, &kp) ||
            read_varbytes(&hr, &v))
            return SM_ERR_PARSE;
    }
    if (sm_rd_left(&hr) != 0) return SM_ERR_PARSE; /* length must match the fields exactly */
    it->p = body.end;
    it->remaining--;
    return 1;
}

void proto_header_iter_init(proto_header_iter_t *it, const proto_record_t *rec) {
    it->p = rec->headers;
    it->end = rec->headers + rec->headers_len;
    it->remaining = rec->header_count;
}

int proto_header_iter_next(proto_header_iter_t *it, proto_record_header_t *hdr) {
    if (it->remaining <= 0) return 0;
    sm_reader_t r = {it->p, it->end};
    int32_t klen;
    const uint8_t *kp;
    if (sm_rd_varint(&r, &klen) || klen < 0 || sm_rd_slice(&r, (size_t)klen, &kp) ||
        read_varbytes(&r, &hdr->value))
        return SM_ERR_PARSE;
    hdr->key = (sm_str_t){(const char *)kp, klen};
    it->p = r.p;
    it->remaining--;
    return 1;
}

int proto_batch_validate(const uint8_t *buf, size_t len, proto_batch_header_t *h) {
    int rc = proto_batch_parse_header(buf, len, h);
    if (rc) return rc;
    if (proto_batch_total_size(h) != len) return SM_ERR_CORRUPT;
    if (proto_batch_compute_crc(buf, len) != h->crc) return SM_ERR_CORRUPT;
    int codec = proto_batch_compression(h);
    if (codec > PROTO_COMPRESSION_ZSTD) return SM_ERR_CORRUPT;
    if (h->records_count > 0 && h->last_offset_delta != h->records_count - 1 &&
        codec == PROTO_COMPRESSION_NONE)
        return SM_ERR_CORRUPT;
    if (codec != PROTO_COMPRESSION_NONE) return SM_OK;
    /* Each record takes at least 7 bytes; a count beyond that cannot fit. */
    if ((size_t)h->records_count > (len - PROTO_BATCH_HEADER_SIZE) / 7 + 1) return SM_ERR_CORRUPT;
    proto_record_iter_t it;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h->records_count);
    proto_record_t rec;
    int32_t expect = 0;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        if (rec.offset_delta != expect++) return SM_ERR_CORRUPT;
    }
    if (rc < 0) return SM_ERR_CORRUPT;
    if (it.p != it.end) return SM_ERR_CORRUPT; /* bytes left after the last record */
    return SM_OK;
}

void proto_batch_iter_init(proto_batch_iter_t *it, const uint8_t *data, size_t len) {
    it->p = data;
    it->end = data + len;
}

int proto_batch_iter_next(proto_batch_iter_t *it, const uint8_t **batch, size_t *len,
                          proto_batch_header_t *h) {
    size_t left = (size_t)(it->end - it->p);
    if (left == 0) return 0;
    if (left < PROTO_BATCH_LOG_OVERHEAD) return SM_ERR_PARSE;
    int rc = proto_batch_parse_header(it->p, left, h);
    if (rc == SM_ERR_PARSE) return SM_ERR_PARSE;
    if (rc) return rc;
    size_t total = proto_batch_total_size(h);
    if (total > left) return SM_ERR_PARSE;
    *batch = it->p;
    *len = total;
    it->p += total;
    return 1;
}

/* ---- building ---- */

void proto_batch_builder_init(proto_batch_builder_t *b, uint8_t *buf, size_t cap,
                              const proto_batch_builder_opts_t *o) {
    memset(b, 0, sizeof(*b));
    b->buf = buf;
    b->cap = cap;
    b->base_timestamp = o->base_timestamp;
    b->max_timestamp = -1;
    if (cap < PROTO_BATCH_HEADER_SIZE || (o->attributes & PROTO_ATTR_COMPRESSION_MASK)) {
        b->status = cap < PROTO_BATCH_HEADER_SIZE ? SM_ERR_SPACE : SM_ERR_RANGE;
        return;
    }
    memset(buf, 0, PROTO_BATCH_HEADER_SIZE);
    put_u64(buf + PROTO_BATCH_OFF_BASE_OFFSET, (uint64_t)o->base_offset);
    put_u32(buf + PROTO_BATCH_OFF_LEADER_EPOCH, (uint32_t)o->partition_leader_epoch);
    buf[PROTO_BATCH_OFF_MAGIC] = 2;
    put_u16(buf + PROTO_BATCH_OFF_ATTRIBUTES, (uint16_t)o->attributes);
    put_u64(buf + PROTO_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)o->base_timestamp);
    put_u64(buf + PROTO_BATCH_OFF_PRODUCER_ID, (uint64_t)o->producer_id);
    put_u16(buf + PROTO_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)o->producer_epoch);
    put_u32(buf + PROTO_BATCH_OFF_BASE_SEQUENCE, (uint32_t)o->base_sequence);
    b->len = PROTO_BATCH_HEADER_SIZE;
}

static size_t varbytes_size(sm_bytes_t v) {
    return v.len < 0 ? sm_varint_size(-1) : sm_varint_size(v.len) + (size_t)v.len;
}

/* Bytes of a record after its length prefix; SIZE_MAX for a null header key
 * (Kafka requires header keys) or a body beyond int32. */
static size_t record_body_size(int64_t ts_delta, int32_t offset_delta, sm_bytes_t key,
                               sm_bytes_t value, const proto_record_header_t *headers,
                               int32_t nheaders) {
    size_t body = 1 + sm_varlong_size(ts_delta) + sm_varint_size(offset_delta) +
                  varbytes_size(key) + varbytes_size(value) + sm_varint_size(nheaders);
    for (int32_t i = 0; i < nheaders; i++) {
        if (headers[i].key.len < 0) return SIZE_MAX;
        size_t kl = (size_t)headers[i].key.len;
        body += sm_varint_size(headers[i].key.len) + kl + varbytes_size(headers[i].value);
    }
    return body > INT32_MAX ? SIZE_MAX : body;
}

size_t proto_record_size(int64_t timestamp_delta, int32_t offset_delta, sm_bytes_t key,
                         sm_bytes_t value, const proto_record_header_t *headers, int32_t nheaders) {
    if (nheaders < 0 || (nheaders > 0 && !headers)) return 0;
    size_t body = record_body_size(timestamp_delta, offset_delta, key, value, headers, nheaders);
    if (body == SIZE_MAX) return 0;
    return sm_varint_size((int32_t)body) + body;
}

int proto_batch_builder_add(proto_batch_builder_t *b, int64_t timestamp, sm_bytes_t key,
                            sm_bytes_t value, const proto_record_header_t *headers,
                            int32_t nheaders) {
    if (b->status) return b->status;
    int64_t ts_delta;
    if (__builtin_sub_overflow(timestamp, b->base_timestamp, &ts_delta) || b->count == INT32_MAX ||
        nheaders < 0 || (nheaders > 0 && !headers))
        return b->status = SM_ERR_RANGE;
    size_t body = record_body_size(ts_delta, b->count, key, value, headers, nheaders);
    if (body == SIZE_MAX) return b->status = SM_ERR_RANGE;
    size_t total = sm_varint_size((int32_t)body) + body;
    if (b->cap - b->len < total) return b->status = SM_ERR_SPACE;
    /* Sized exactly above, so none of these writes can fail. */
    sm_writer_t w = sm_writer_make(b->buf + b->len, total);
    sm_wr_varint(&w, (int32_t)body);
    sm_wr_i8(&w, 0);
    sm_wr_varlong(&w, ts_delta);
    sm_wr_varint(&w, b->count);
    sm_wr_varint(&w, key.len < 0 ? -1 : key.len);
    if (key.len > 0) sm_wr_raw(&w, key.ptr, (size_t)key.len);
    sm_wr_varint(&w, value.len < 0 ? -1 : value.len);
    if (value.len > 0) sm_wr_raw(&w, value.ptr, (size_t)value.len);
    sm_wr_varint(&w, nheaders);
    for (int32_t i = 0; i < nheaders; i++) {
        sm_wr_varint(&w, headers[i].key.len);
        if (headers[i].key.len > 0) sm_wr_raw(&w, headers[i].key.ptr, (size_t)headers[i].key.len);
        sm_wr_varint(&w, headers[i].value.len < 0 ? -1 : headers[i].value.len);
        if (headers[i].value.len > 0)
            sm_wr_raw(&w, headers[i].value.ptr, (size_t)headers[i].value.len);
    }
    b->len += total;
    b->count++;
    if (timestamp > b->max_timestamp) b->max_timestamp = timestamp;
    return SM_OK;
}

int proto_batch_builder_finish(proto_batch_builder_t *b, size_t *len) {
    if (b->status) return b->status;
    uint8_t *buf = b->buf;
    put_u32(buf + PROTO_BATCH_OFF_LENGTH, (uint32_t)(b->len - PROTO_BATCH_LOG_OVERHEAD));
    put_u32(buf + PROTO_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count ? b->count - 1 : 0));
    put_u64(buf + PROTO_BATCH_OFF_MAX_TIMESTAMP,
            (uint64_t)(b->count ? b->max_timestamp : b->base_timestamp));
    put_u32(buf + PROTO_BATCH_OFF_RECORDS_COUNT, (uint32_t)b->count);
    proto_batch_update_crc(buf, b->len);
    *len = b->len;
    return SM_OK;
}

int proto_control_batch_type(const uint8_t *batch, size_t len, int32_t *coordinator_epoch) {
    proto_batch_header_t h;
    *coordinator_epoch = -1;
    if (len < PROTO_BATCH_HEADER_SIZE || proto_batch_parse_header(batch, len, &h) ||
        !(h.attributes & PROTO_ATTR_CONTROL) || proto_batch_compression(&h) != PROTO_COMPRESSION_NONE)
        return SM_ERR_PARSE;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    if (proto_record_iter_next(&it, &rec) != 1 || rec.key.len < 4) return SM_ERR_PARSE;
    sm_reader_t r = sm_reader_make(rec.key.ptr, (size_t)rec.key.len);
    int16_t version, type;
    if (sm_rd_i16(&r, &version) || sm_rd_i16(&r, &type) || version < 0) return SM_ERR_PARSE;
    if (rec.value.len >= 6) {
        sm_reader_t vr = sm_reader_make(rec.value.ptr, (size_t)rec.value.len);
        int16_t vversion;
        if (sm_rd_i16(&vr, &vversion) == SM_OK) sm_rd_i32(&vr, coordinator_epoch);
    }
    return type;
}

size_t proto_control_batch_build(uint8_t *buf, size_t cap, int64_t producer_id, int16_t epoch,
                                 int32_t coordinator_epoch, int type, int64_t timestamp) {
    uint8_t key[4], value[6];
    sm_writer_t kw = sm_writer_make(key, sizeof(key)), vw = sm_writer_make(value, sizeof(value));
    sm_wr_i16(&kw, 0);
    sm_wr_i16(&kw, (int16_t)type);
    sm_wr_i16(&vw, 0);
    sm_wr_i32(&vw, coordinator_epoch);
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, PROTO_ATTR_TRANSACTIONAL | PROTO_ATTR_CONTROL,
                                    timestamp, producer_id, epoch, -1};
    proto_batch_builder_init(&b, buf, cap, &o);
    proto_batch_builder_add(&b, timestamp, (sm_bytes_t){key, sizeof(key)},
                            (sm_bytes_t){value, sizeof(value)}, NULL, 0);
    size_t len = 0;
    return proto_batch_builder_finish(&b, &len) == SM_OK ? len : 0;
}
