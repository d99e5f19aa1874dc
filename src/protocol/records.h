/*
 * Record batches, magic v2 (Kafka's on-disk and on-wire format): parse and validate
 * headers and CRCs, iterate batches in a records blob and records in a batch,
 * patch base offset / leader epoch in place, and build new batches. Compressed
 * batches are recognised from their attributes; their records are opaque here.
 * Nothing here allocates; all views borrow the caller's buffer.
 */
#ifndef PROTO_RECORDS_H
#define PROTO_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/types.h"

/* Byte offsets of header fields inside a batch. */
enum {
    PROTO_BATCH_OFF_BASE_OFFSET = 0,
    PROTO_BATCH_OFF_LENGTH = 8,
    PROTO_BATCH_OFF_LEADER_EPOCH = 12,
    PROTO_BATCH_OFF_MAGIC = 16,
    PROTO_BATCH_OFF_CRC = 17,
    PROTO_BATCH_OFF_ATTRIBUTES = 21, /* the CRC covers from here to the end */
    PROTO_BATCH_OFF_LAST_OFFSET_DELTA = 23,
    PROTO_BATCH_OFF_BASE_TIMESTAMP = 27,
    PROTO_BATCH_OFF_MAX_TIMESTAMP = 35,
    PROTO_BATCH_OFF_PRODUCER_ID = 43,
    PROTO_BATCH_OFF_PRODUCER_EPOCH = 51,
    PROTO_BATCH_OFF_BASE_SEQUENCE = 53,
    PROTO_BATCH_OFF_RECORDS_COUNT = 57,
    PROTO_BATCH_HEADER_SIZE = 61,
    PROTO_BATCH_LOG_OVERHEAD = 12, /* base offset + length: bytes not counted in length */
};

#define PROTO_ATTR_COMPRESSION_MASK 0x07
#define PROTO_ATTR_LOG_APPEND_TIME 0x08
#define PROTO_ATTR_TRANSACTIONAL 0x10
#define PROTO_ATTR_CONTROL 0x20
#define PROTO_ATTR_DELETE_HORIZON 0x40

enum proto_compression {
    PROTO_COMPRESSION_NONE = 0,
    PROTO_COMPRESSION_GZIP = 1,
    PROTO_COMPRESSION_SNAPPY = 2,
    PROTO_COMPRESSION_LZ4 = 3,
    PROTO_COMPRESSION_ZSTD = 4,
};

typedef struct proto_batch_header {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the length field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} proto_batch_header_t;

static inline int proto_batch_compression(const proto_batch_header_t *h) {
    return h->attributes & PROTO_ATTR_COMPRESSION_MASK;
}
/* Total bytes of the batch on disk / on the wire. */
static inline size_t proto_batch_total_size(const proto_batch_header_t *h) {
    return (size_t)h->batch_length + PROTO_BATCH_LOG_OVERHEAD;
}
static inline int64_t proto_batch_last_offset(const proto_batch_header_t *h) {
    return h->base_offset + h->last_offset_delta;
}

/*
 * Reads the 61-byte header at buf (len bytes available). Checks magic == 2 and
 * that batch_length is at least the header's share; does not check the CRC or
 * that the whole batch is present. Returns SM_OK, SM_ERR_PARSE (too short),
 * SM_ERR_CORRUPT (impossible values) or SM_ERR_VERSION (magic != 2).
 */
int proto_batch_parse_header(const uint8_t *buf, size_t len, proto_batch_header_t *h);

/*
 * Full validation of one batch occupying exactly len bytes: header as above,
 * total size == len, CRC32C over attributes..end matches, records_count >= 0,
 * last_offset_delta consistent with the count when the batch is not compressed,
 * and for uncompressed batches every record decodes within the batch with
 * offset deltas 0..count-1 ascending and lengths that add up exactly.
 * Compressed batches (codec 1..4) get the header, size and CRC checks only;
 * codecs above 4 are SM_ERR_CORRUPT. This is the producer's contract: batches
 * rewritten by a log cleaner (offset gaps, last_offset_delta past count-1)
 * would not pass. Fills *h. Returns SM_OK or SM_ERR_PARSE / SM_ERR_CORRUPT /
 * SM_ERR_VERSION.
 */
int proto_batch_validate(const uint8_t *buf, size_t len, proto_batch_header_t *h);

/* CRC32C over buf[PROTO_BATCH_OFF_ATTRIBUTES .. len). */
uint32_t proto_batch_compute_crc(const uint8_t *buf, size_t len);
/* Rewrites the stored CRC after header fields under it changed. */
void proto_batch_update_crc(uint8_t *buf, size_t len);

/* In-place patches of a batch (buf holds at least its header). Base offset and
 * leader epoch are outside the CRC. */
void proto_batch_set_base_offset(uint8_t *buf, int64_t base_offset);
void proto_batch_set_leader_epoch(uint8_t *buf, int32_t epoch);
/* Sets LogAppendTime: attribute bit and max timestamp (= ts), then the CRC. */
void proto_batch_set_log_append_time(uint8_t *buf, size_t len, int64_t ts);

/* Walks the batches of a records blob (a Produce/Fetch "records" field or a
 * segment file read). */
typedef struct proto_batch_iter {
    const uint8_t *p;
    const uint8_t *end;
} proto_batch_iter_t;

void proto_batch_iter_init(proto_batch_iter_t *it, const uint8_t *data, size_t len);
/*
 * Returns 1 with batch, len and h set for the next complete batch (header parsed,
 * not CRC-checked), 0 at a clean end, SM_ERR_PARSE when a partial batch is left
 * (it->p then points at it: Fetch responses may end with one), or another
 * negative status for a corrupt header.
 */
int proto_batch_iter_next(proto_batch_iter_t *it, const uint8_t **batch, size_t *len,
                          proto_batch_header_t *h);

/* One record inside an uncompressed batch (or a decompressed records area). */
typedef struct proto_record {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    sm_bytes_t key;   /* len -1 = null */
    sm_bytes_t value; /* len -1 = null */
    int32_t header_count;
    const uint8_t *headers; /* raw header area, header_count entries */
    size_t headers_len;
} proto_record_t;

typedef struct proto_record_header {
    sm_str_t key;
    sm_bytes_t value; /* len -1 = null */
} proto_record_header_t;

typedef struct proto_record_iter {
    const uint8_t *p;
    const uint8_t *end;
    int32_t remaining;
} proto_record_iter_t;

/* data/len: the bytes after the batch header (for an uncompressed batch,
 * buf + PROTO_BATCH_HEADER_SIZE); count: records_count from the header. */
void proto_record_iter_init(proto_record_iter_t *it, const uint8_t *data, size_t len,
                            int32_t count);
/* 1 = *rec filled, 0 = all records read, SM_ERR_PARSE = malformed. */
int proto_record_iter_next(proto_record_iter_t *it, proto_record_t *rec);

typedef struct proto_header_iter {
    const uint8_t *p;
    const uint8_t *end;
    int32_t remaining;
} proto_header_iter_t;

void proto_header_iter_init(proto_header_iter_t *it, const proto_record_t *rec);
/* 1 = *hdr filled, 0 = done, SM_ERR_PARSE = malformed. */
int proto_header_iter_next(proto_header_iter_t *it, proto_record_header_t *hdr);

/* Control records (KIP-98): a marker's key is int16 version 0, int16 type. */
enum { PROTO_CONTROL_ABORT = 0, PROTO_CONTROL_COMMIT = 1 };
/* The type of a control batch's first record (an uncompressed batch of len
 * bytes): PROTO_CONTROL_ABORT / PROTO_CONTROL_COMMIT (or another type a newer
 * Kafka writes), SM_ERR_PARSE when it holds no readable control record. A
 * marker's coordinator epoch goes to *coordinator_epoch (-1 if absent). */
int proto_control_batch_type(const uint8_t *batch, size_t len, int32_t *coordinator_epoch);
/* Builds a marker batch (attributes transactional|control, one record; value:
 * int16 version 0, int32 coordinator epoch) into buf (cap >= 128); returns
 * its length, or 0 when cap is too small. */
size_t proto_control_batch_build(uint8_t *buf, size_t cap, int64_t producer_id, int16_t epoch,
                                 int32_t coordinator_epoch, int type, int64_t timestamp);

/* Builds one uncompressed batch into a caller buffer. */
typedef struct proto_batch_builder {
    uint8_t *buf;
    size_t cap;
    size_t len; /* bytes written so far (header included) */
    int32_t count;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int status; /* first error, sticky */
} proto_batch_builder_t;

typedef struct proto_batch_builder_opts {
    int64_t base_offset;
    int32_t partition_leader_epoch;
    int16_t attributes; /* compression bits must be 0 */
    int64_t base_timestamp;
    int64_t producer_id;    /* -1 when not idempotent */
    int16_t producer_epoch; /* -1 when not idempotent */
    int32_t base_sequence;  /* -1 when not idempotent */
} proto_batch_builder_opts_t;

void proto_batch_builder_init(proto_batch_builder_t *b, uint8_t *buf, size_t cap,
                              const proto_batch_builder_opts_t *opts);
/* Appends a record with the next offset delta. headers may be NULL when
 * nheaders is 0. A record that does not fit gives SM_ERR_SPACE; a null header
 * key, nheaders < 0 or a timestamp delta beyond int64 gives SM_ERR_RANGE. Errors
 * are sticky: later adds do nothing and finish reports the first one. */
int proto_batch_builder_add(proto_batch_builder_t *b, int64_t timestamp, sm_bytes_t key,
                            sm_bytes_t value, const proto_record_header_t *headers,
                            int32_t nheaders);
/* Writes length, last offset delta, max timestamp, count and CRC; returns the
 * status and the total batch size in *len. */
int proto_batch_builder_finish(proto_batch_builder_t *b, size_t *len);

/* Encoded size of one record, length prefix included (what builder_add takes
 * for it), so callers can size a buffer exactly; 0 for a record builder_add
 * would refuse with SM_ERR_RANGE. */
size_t proto_record_size(int64_t timestamp_delta, int32_t offset_delta, sm_bytes_t key,
                         sm_bytes_t value, const proto_record_header_t *headers, int32_t nheaders);

#endif
