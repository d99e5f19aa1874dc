/*
 * Storage append benchmark (not a test): appends record batches of about
 * 16 KiB (records of RECORD_BYTES) to one partition log and prints MB/s.
 * Modes: "cache" (page cache, Kafka's default flush policy, one fdatasync at
 * the end, inside the timing), "sync" (one producer, fsync before every
 * acknowledgement), "group" (PRODUCERS threads, fsync before ack through the
 * flusher: group commit).
 * Mode "size" prints the batch length (for a baseline writing the same sizes).
 * usage: bench_append DIR TOTAL_MB RECORD_BYTES cache|sync|group|size [PRODUCERS]
 */
#include <pthread.h>
#include <stdatomic.h>
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

static uint8_t batch[32768];
static size_t batch_len;
static int batch_records;

/* One batch of at most 16 KiB, built once; each append copies it, as a
 * produced batch arrives in a fresh buffer, and gets new offsets. */
static void build_batch(size_t rec) {
    uint8_t *value = malloc(rec);
    memset(value, 'x', rec);
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 1700000000000, -1, -1, -1};
    proto_batch_builder_init(&b, batch, sizeof(batch), &o);
    for (;;) {
        proto_batch_builder_t save = b;
        if (proto_batch_builder_add(&b, 1700000000000, SM_BYTES_NULL,
                                    (sm_bytes_t){value, (int32_t)rec}, NULL, 0) ||
            b.len > 16384) {
            b = save;
            b.status = 0;
            break;
        }
        batch_records++;
    }
    proto_batch_builder_finish(&b, &batch_len);
    free(value);
}

typedef struct producer {
    log_t *l;
    log_flusher_t *f;
    size_t quota; /* bytes to append */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int rc;
} producer_t;

static void on_durable(void *arg, int status) {
    producer_t *p = arg;
    pthread_mutex_lock(&p->mu);
    p->pending = 0;
    if (status) p->rc = status;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *produce(void *arg) {
    producer_t *p = arg;
    uint8_t *work = malloc(batch_len);
    for (size_t done = 0; done < p->quota && p->rc == 0; done += batch_len) {
        memcpy(work, batch, batch_len);
        int64_t f, la;
        if ((p->rc = log_append(p->l, work, batch_len, 0, &f, &la))) break;
        if (!p->f) continue;
        p->pending = 1;
        int rc = log_flush_request(p->f, p->l, la + 1, on_durable, p);
        if (rc == SM_ERR_AGAIN) {
            pthread_mutex_lock(&p->mu);
            while (p->pending)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        } else if (rc) {
            p->rc = rc;
        }
    }
    free(work);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR TOTAL_MB RECORD_BYTES cache|sync|group [PRODUCERS]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1], *mode = argv[4];
    size_t total = (size_t)atol(argv[2]) << 20;
    size_t rec = (size_t)atol(argv[3]);
    int producers = argc > 5 ? atoi(argv[5]) : 1;
    bool group = strcmp(mode, "group") == 0, sync = strcmp(mode, "sync") == 0;
    if (!group) producers = 1;
    if (strcmp(mode, "size") == 0) {
        build_batch(rec);
        printf("%zu\n", batch_len);
        return 0;
    }
    sm_log_set_level(SM_LOG_ERROR);
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.fsync_before_ack = group || sync;
    log_t *l;
    if (log_open(dir, &cfg, false, 0, -1, &l)) return 1;
    build_batch(rec);
    log_flusher_t *fl = NULL;
    if (log_flusher_start(1, &fl)) return 1;
    log_attach_flusher(l, fl);
    producer_t *ps = calloc((size_t)producers, sizeof(*ps));
    pthread_t *tids = calloc((size_t)producers, sizeof(*tids));
    double t0 = now_s();
    int rc = 0;
    if (sync) {
        uint8_t *work = malloc(batch_len);
        for (size_t done = 0; done < total && rc == 0; done += batch_len) {
            memcpy(work, batch, batch_len);
            int64_t f, la;
            rc = log_append(l, work, batch_len, 0, &f, &la);
            if (rc == 0) rc = log_sync_to(l, la + 1);
        }
        free(work);
    } else {
        for (int i = 0; i < producers; i++) {
            ps[i] = (producer_t){l,
                                 group ? fl : NULL,
                                 total / (size_t)producers,
                                 PTHREAD_MUTEX_INITIALIZER,
                                 PTHREAD_COND_INITIALIZER,
                                 0,
                                 0};
            pthread_create(&tids[i], NULL, produce, &ps[i]);
        }
        for (int i = 0; i < producers; i++) {
            pthread_join(tids[i], NULL);
            if (ps[i].rc) rc = ps[i].rc;
        }
    }
    if (rc == 0) rc = log_flush(l);
    double dt = now_s() - t0;
    if (rc) {
        fprintf(stderr, "append failed: %s\n", sm_strerror(rc));
        return 1;
    }
    size_t appended = (size_t)(log_end_offset(l) / batch_records) * batch_len;
    printf("%zu-byte records, %d per batch (%zu bytes), %s%s: %.1f MB/s (%.0f records/s, %zu MB)\n",
           rec, batch_records, batch_len, mode, group ? (producers > 1 ? " commit" : "") : "",
           appended / dt / 1e6, (double)log_end_offset(l) / dt, appended >> 20);
    if (group) printf("  (%d producers sharing fsyncs)\n", producers);
    log_flusher_stop(fl);
    log_attach_flusher(l, NULL);
    log_close(l);
    fio_remove_tree(dir);
    free(ps);
    free(tids);
    return 0;
}
