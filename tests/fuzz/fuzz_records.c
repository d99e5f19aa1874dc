/*
 * libFuzzer target: arbitrary bytes as one produced record batch. The harness
 * fixes the length, magic and CRC fields (random bytes would otherwise never
 * get past the CRC), then runs what Produce runs on a batch: full validation,
 * bounded decompression and the record walk for every codec, then iterates
 * records and headers. Also feeds the bytes after the first to each
 * decompressor directly. Nothing may read out of bounds, leak, or exceed the
 * decompression bound.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "protocol/compress.h"
#include "protocol/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DECOMPRESSED (1u << 20)

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void walk_records(const uint8_t *buf, size_t len, const proto_batch_header_t *h) {
    if (proto_batch_compression(h) != 0) return;
    proto_record_iter_t it;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE, h->records_count);
    proto_record_t rec;
    while (proto_record_iter_next(&it, &rec) == 1) {
        proto_header_iter_t hi;
        proto_header_iter_init(&hi, &rec);
        proto_record_header_t hdr;
        while (proto_header_iter_next(&hi, &hdr) == 1) {
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 2) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        if (proto_decompress_alloc(1 + data[0] % 4, data + 1, size - 1, MAX_DECOMPRESSED, &out, &out_len) == SM_OK &&
            out_len > MAX_DECOMPRESSED)
            abort();
        free(out);
    }
    if (size < PROTO_BATCH_HEADER_SIZE) return 0;
    uint8_t *buf = malloc(size);
    memcpy(buf, data, size);
    put_be32(buf + PROTO_BATCH_OFF_LENGTH, (uint32_t)(size - 12));
    buf[PROTO_BATCH_OFF_MAGIC] = 2;
    proto_batch_update_crc(buf, size);
    proto_batch_header_t h;
    if (proto_batch_validate(buf, size, &h) == SM_OK) {
        walk_records(buf, size, &h);
        (void)proto_batch_validate_compressed(buf, size, MAX_DECOMPRESSED);
    }
    free(buf);
    return 0;
}
