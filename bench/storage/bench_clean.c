/*
 * Log cleaner benchmark (not a test): fills one compacted log with TOTAL_MB of
 * batches of 16 records (KEYS distinct keys, VALUE_BYTES random values, codec
 * none or lz4), rolls and flushes, then times one cleaning (the key map and
 * the rewrite of every segment) and prints the MB/s of log cleaned (segment
 * bytes before the cleaning / seconds), the bytes read and written, and what
 * was left. The page cache is warm (the data was just written), as it usually
 * is for the cleaner's dirty part.
 * usage: bench_clean DIR TOTAL_MB KEYS VALUE_BYTES none|lz4
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/cleaner.h"
#include "storage/log.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bench_clean DIR TOTAL_MB KEYS VALUE_BYTES none|lz4\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t total = atoll(argv[2]) << 20;
    long keys = atol(argv[3]);
    size_t vlen = (size_t)atol(argv[4]);
    int codec = strcmp(argv[5], "lz4") == 0 ? PROTO_COMPRESSION_LZ4 : PROTO_COMPRESSION_NONE;
    if (keys <= 0 || vlen == 0 || vlen > 8192 || total <= 0) return 2;
    sm_log_set_level(SM_LOG_WARN);
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 64 << 20;
    cfg.compact = true;
    cfg.retention_ms = -1;
    log_t *l;
    if (log_open(dir, &cfg, false, 0, -1, &l)) return 1;
    static uint8_t plain[1 << 18], out[1 << 18];
    uint8_t *val = malloc(vlen);
    uint64_t rng = 88172645463325252ull;
    long k = 0;
    int64_t written = 0;
    while (written < total) {
        proto_batch_builder_t b;
        proto_batch_builder_opts_t o = {0, 0, 0, 1000, -1, -1, -1};
        proto_batch_builder_init(&b, plain, sizeof(plain), &o);
        for (int i = 0; i < 16; i++, k++) {
            char key[32];
            int kl = snprintf(key, sizeof(key), "key-%ld", k % keys);
            for (size_t j = 0; j < vlen; j += 8) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                memcpy(val + j, &rng, vlen - j < 8 ? vlen - j : 8);
            }
            proto_batch_builder_add(&b, 1000 + i, (sm_bytes_t){(const uint8_t *)key, kl},
                                    (sm_bytes_t){val, (int32_t)vlen}, NULL, 0);
        }
        size_t len;
        if (proto_batch_builder_finish(&b, &len)) return 1;
        uint8_t *data = plain;
        if (codec) {
            size_t clen;
            memcpy(out, plain, PROTO_BATCH_HEADER_SIZE);
            if (proto_compress(codec, -1, plain + PROTO_BATCH_HEADER_SIZE,
                               len - PROTO_BATCH_HEADER_SIZE, out + PROTO_BATCH_HEADER_SIZE,
                               sizeof(out) - PROTO_BATCH_HEADER_SIZE, &clen))
                return 1;
            len = PROTO_BATCH_HEADER_SIZE + clen;
            int32_t blen = (int32_t)(len - PROTO_BATCH_LOG_OVERHEAD);
            for (int i = 0; i < 4; i++)
                out[8 + i] = (uint8_t)(blen >> (24 - 8 * i));
            out[PROTO_BATCH_OFF_ATTRIBUTES + 1] |= (uint8_t)codec;
            proto_batch_update_crc(out, len);
            data = out;
        }
        int64_t f, x;
        if (log_append(l, data, len, 0, &f, &x)) return 1;
        written += (int64_t)len;
    }
    log_roll(l);
    log_flush(l);
    int64_t before = log_size_bytes(l);
    clean_map_t *map;
    if (clean_map_new(134217728, 0.9, &map)) return 1;
    log_clean_opts_t o = {.map = map, .now_ms = 2000, .force = true, .io_buffer_size = 524288};
    bool did;
    double t0 = now_s();
    int rc = log_clean(l, &o, &did);
    double dt = now_s() - t0;
    log_clean_info_t ci;
    log_clean_info(l, 2000, &ci);
    printf("cleaned %.1f MB (%ld keys, %zu B values, %s) in %.3f s: %.1f MB/s; read %.1f MB, "
           "wrote %.1f MB, %lld records removed, log now %.1f MB%s\n",
           before / 1e6, keys, vlen, argv[5], dt, before / 1e6 / dt, ci.last.bytes_read / 1e6,
           ci.last.bytes_written / 1e6, (long long)ci.last.records_removed, log_size_bytes(l) / 1e6,
           rc ? " (cleaning FAILED)" : "");
    clean_map_free(map);
    log_close(l);
    fio_remove_tree(dir);
    free(val);
    return rc ? 1 : 0;
}
