/*
 * Helpers shared by the storage tests (test_storage*.c): a temporary root,
 * batch building with recognisable values, reading a batch back through the
 * copy path, and small file utilities. Test code only.
 */
#ifndef TEST_STORAGE_UTIL_H
#define TEST_STORAGE_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fileio.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/log.h"

static char su_root[256];

static inline void su_make_root(const char *name) {
    snprintf(su_root, sizeof(su_root), "/tmp/samsa-%s-XXXXXX", name);
    if (!mkdtemp(su_root)) abort();
}

static inline void su_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", su_root, name);
}

static inline uint64_t su_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static inline uint64_t su_seed(uint64_t dflt) {
    const char *e = getenv("SAMSA_SEED");
    return e ? strtoull(e, NULL, 10) : dflt;
}

/* Builds a batch of n records; record i has timestamp ts + i (or ts_of[i]
 * when given) and a value of vlen bytes starting with tag and i. */
static inline size_t su_batch(uint8_t *buf, size_t cap, int n, int64_t ts, const int64_t *ts_of,
                              uint32_t tag, size_t vlen) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, ts_of ? ts_of[0] : ts, -1, -1, -1};
    proto_batch_builder_init(&b, buf, cap, &o);
    uint8_t val[4096];
    if (vlen < 8) vlen = 8;
    if (vlen > sizeof(val)) vlen = sizeof(val);
    for (int i = 0; i < n; i++) {
        memset(val, (int)((tag + (uint32_t)i) & 0xff), vlen);
        memcpy(val, &tag, 4);
        uint32_t ii = (uint32_t)i;
        memcpy(val + 4, &ii, 4);
        proto_batch_builder_add(&b, ts_of ? ts_of[i] : ts + i, SM_BYTES_NULL,
                                (sm_bytes_t){val, (int32_t)vlen}, NULL, 0);
    }
    size_t len = 0;
    if (proto_batch_builder_finish(&b, &len)) abort();
    return len;
}

/* Compresses the records of the uncompressed batch plain (plen bytes) with
 * codec into out: header copied, length, attributes and CRC updated. */
static inline size_t su_compress_batch(uint8_t *out, size_t cap, const uint8_t *plain, size_t plen,
                                       int codec) {
    size_t clen = 0;
    memcpy(out, plain, PROTO_BATCH_HEADER_SIZE);
    if (proto_compress(codec, -1, plain + PROTO_BATCH_HEADER_SIZE, plen - PROTO_BATCH_HEADER_SIZE,
                       out + PROTO_BATCH_HEADER_SIZE, cap - PROTO_BATCH_HEADER_SIZE, &clen))
        abort();
    size_t total = PROTO_BATCH_HEADER_SIZE + clen;
    int32_t blen = (int32_t)(total - PROTO_BATCH_LOG_OVERHEAD);
    out[8] = (uint8_t)(blen >> 24);
    out[9] = (uint8_t)(blen >> 16);
    out[10] = (uint8_t)(blen >> 8);
    out[11] = (uint8_t)blen;
    out[PROTO_BATCH_OFF_ATTRIBUTES + 1] |= (uint8_t)codec;
    proto_batch_update_crc(out, total);
    return total;
}

/* The tag of a stored batch (from its first record's value). */
static inline uint32_t su_tag(const uint8_t *batch, size_t len) {
    proto_batch_header_t h;
    if (proto_batch_parse_header(batch, len, &h)) return 0xffffffffu;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    uint32_t tag = 0xffffffffu;
    if (proto_record_iter_next(&it, &rec) == 1 && rec.value.len >= 4)
        memcpy(&tag, rec.value.ptr, 4);
    return tag;
}

/* Reads the batch holding offset into buf (copy path) and validates it. */
static inline int su_read_batch(log_t *l, int64_t offset, uint8_t *buf, size_t cap,
                                proto_batch_header_t *h) {
    log_range_t r;
    int rc = log_read(l, offset, 1, true, &r);
    if (rc) return rc;
    if (r.len == 0) {
        log_range_release(&r);
        return SM_ERR_NOTFOUND;
    }
    int64_t n = log_range_copy(&r, buf, cap);
    log_range_release(&r);
    if (n < PROTO_BATCH_HEADER_SIZE) return SM_ERR_IO;
    rc = proto_batch_parse_header(buf, (size_t)n, h);
    if (rc) return rc;
    if (proto_batch_total_size(h) > (size_t)n) return SM_ERR_SPACE;
    return proto_batch_validate(buf, proto_batch_total_size(h), h);
}

static inline int64_t su_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

/* Number of entries in dir whose name contains needle. */
static inline int su_count_files(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

/* Open descriptors of this process. */
static inline int su_open_fds(void) { return su_count_files("/proc/self/fd", "") - 3; }

static inline void su_seg_path(char *buf, size_t cap, const char *dir, int64_t base,
                               const char *ext) {
    snprintf(buf, cap, "%s/%020lld%s", dir, (long long)base, ext);
}

#endif
