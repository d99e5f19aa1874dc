/*
 * Storage append benchmark: appends record batches of about 16 KiB (records of
 * 1 KiB or 100 B) to one partition log, in page-cache mode (no fsync per
 * append) and with fsync before every acknowledgement, and prints MB/s.
 * usage: bench_append DIR TOTAL_MB RECORD_BYTES FSYNC(0|1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/records.h"
#include "storage/log.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s DIR TOTAL_MB RECORD_BYTES FSYNC\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    size_t total = (size_t)atol(argv[2]) << 20;
    size_t rec = (size_t)atol(argv[3]);
    int fsync_each = atoi(argv[4]);
    sm_log_set_level(SM_LOG_ERROR);
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.fsync_before_ack = fsync_each != 0;
    log_t *l;
    if (log_open(dir, &cfg, false, 0, -1, &l)) return 1;
    /* One 16 KiB batch, built once and appended repeatedly (offsets are
     * reassigned by each append, as for a produced batch). */
    static uint8_t batch[32768], work[32768];
    uint8_t *value = malloc(rec);
    memset(value, 'x', rec);
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 1700000000000, -1, -1, -1};
    proto_batch_builder_init(&b, batch, sizeof(batch), &o);
    size_t len = 0;
    int n = 0;
    while (1) {
        proto_batch_builder_t save = b;
        if (proto_batch_builder_add(&b, 1700000000000, SM_BYTES_NULL, (sm_bytes_t){value, (int32_t)rec}, NULL, 0) ||
            b.len > 16384) {
            b = save;
            b.status = 0;
            break;
        }
        n++;
    }
    proto_batch_builder_finish(&b, &len);
    size_t appended = 0;
    double t0 = now_s();
    while (appended < total) {
        memcpy(work, batch, len);
        int64_t f, la;
        if (log_append(l, work, len, 0, &f, &la)) return 1;
        if (fsync_each && log_flush(l)) return 1;
        appended += len;
    }
    log_flush(l);
    double dt = now_s() - t0;
    printf("%zu-byte records, %d per batch, %s: %.1f MB/s (%.0f records/s, %zu MB)\n", rec, n,
           fsync_each ? "fsync before ack" : "page cache", appended / dt / 1e6, appended / len * n / dt,
           appended >> 20);
    log_close(l);
    fio_remove_tree(dir);
    free(value);
    return 0;
}
