/*
 * Idempotent producer state (see producer_state.h). The sequence rules follow
 * Kafka's: a batch from a newer epoch must start at sequence 0; within an epoch
 * a batch equal to one of the last five is a duplicate, otherwise it must start
 * right after the last one (sequences wrap from INT32_MAX to 0); a producer the
 * partition knows nothing about (new, or its state expired) may start anywhere.
 */
#include "txn/producer_state.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/err.h"

void txn_producer_state_init(txn_producer_state_t *s) {
    sm_map_init(&s->producers);
    s->n_open = 0;
}

static void clear(txn_producer_state_t *s) {
    s->n_open = 0;
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->producers, &it, NULL, NULL, &v))
        free(v);
    sm_map_free(&s->producers);
    sm_map_init(&s->producers);
}

void txn_producer_state_free(txn_producer_state_t *s) {
    clear(s);
    sm_map_free(&s->producers);
}

const txn_producer_t *txn_producer_state_get(const txn_producer_state_t *s, int64_t producer_id) {
    return sm_map_get(&s->producers, &producer_id, sizeof(producer_id));
}

static int32_t next_seq(int32_t seq) { return seq == INT32_MAX ? 0 : seq + 1; }

txn_check_t txn_producer_state_check(const txn_producer_state_t *s, int64_t producer_id,
                                     int16_t epoch, int32_t first_seq, int32_t last_seq,
                                     int64_t *dup_offset) {
    const txn_producer_t *p = txn_producer_state_get(s, producer_id);
    if (!p) return TXN_APPEND;
    /* Also for a producer known only by a marker that bumped its epoch: the
     * fenced zombie's writes are refused. */
    if (epoch < p->epoch) return TXN_FENCED_EPOCH;
    if (p->n_batches == 0) return TXN_APPEND;
    if (epoch > p->epoch) return first_seq == 0 ? TXN_APPEND : TXN_OUT_OF_ORDER;
    for (int32_t i = 0; i < p->n_batches; i++) {
        const txn_batch_meta_t *b = &p->batches[i];
        if (b->first_seq == first_seq && b->last_seq == last_seq) {
            *dup_offset = b->first_offset;
            return TXN_DUPLICATE;
        }
    }
    int32_t last = p->batches[p->n_batches - 1].last_seq;
    return first_seq == next_seq(last) ? TXN_APPEND : TXN_OUT_OF_ORDER;
}

static txn_producer_t *entry(txn_producer_state_t *s, int64_t producer_id, int16_t epoch) {
    txn_producer_t *p = sm_map_get(&s->producers, &producer_id, sizeof(producer_id));
    if (p) return p;
    p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->producer_id = producer_id;
    p->epoch = epoch;
    p->coordinator_epoch = -1;
    p->current_txn_first_offset = -1;
    if (sm_map_put(&s->producers, &producer_id, sizeof(producer_id), p)) {
        free(p);
        return NULL;
    }
    return p;
}

int txn_producer_state_update(txn_producer_state_t *s, int64_t producer_id, int16_t epoch,
                              int32_t first_seq, int32_t last_seq, int64_t first_offset,
                              int64_t last_offset, int64_t timestamp) {
    txn_producer_t *p = entry(s, producer_id, epoch);
    if (!p) return SM_ERR_NOMEM;
    if (epoch != p->epoch) p->n_batches = 0;
    p->epoch = epoch;
    if (p->n_batches == TXN_BATCHES_KEPT) {
        memmove(&p->batches[0], &p->batches[1], sizeof(p->batches[0]) * (TXN_BATCHES_KEPT - 1));
        p->n_batches--;
    }
    p->batches[p->n_batches++] =
        (txn_batch_meta_t){first_seq, last_seq, first_offset, last_offset, timestamp};
    p->last_timestamp = timestamp;
    return SM_OK;
}

int txn_producer_state_begin_txn(txn_producer_state_t *s, int64_t producer_id, int16_t epoch,
                                 int64_t first_offset) {
    txn_producer_t *p = entry(s, producer_id, epoch);
    if (!p) return SM_ERR_NOMEM;
    if (p->current_txn_first_offset < 0) {
        p->current_txn_first_offset = first_offset;
        s->n_open++;
    }
    return SM_OK;
}

int txn_producer_state_end_txn(txn_producer_state_t *s, int64_t producer_id, int16_t epoch,
                               int32_t coordinator_epoch, int64_t marker_offset,
                               int64_t timestamp, int64_t *first_offset) {
    *first_offset = -1;
    txn_producer_t *p = entry(s, producer_id, epoch);
    if (!p) return SM_ERR_NOMEM;
    if (epoch < p->epoch) return SM_ERR_FENCED;
    if (coordinator_epoch < p->coordinator_epoch) return SM_ERR_STALE;
    if (epoch > p->epoch) {
        /* A marker of a bumped epoch (the coordinator fenced the producer):
         * sequences of the new epoch start again at 0. */
        p->epoch = epoch;
        p->n_batches = 0;
    }
    p->coordinator_epoch = coordinator_epoch;
    p->last_timestamp = timestamp;
    p->markers++;
    if (p->current_txn_first_offset >= 0) {
        *first_offset = p->current_txn_first_offset;
        p->current_txn_first_offset = -1;
        s->n_open--;
    }
    (void)marker_offset;
    return SM_OK;
}

int64_t txn_producer_state_first_open_txn(const txn_producer_state_t *s) {
    if (s->n_open == 0) return -1;
    int64_t first = -1;
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->producers, &it, NULL, NULL, &v)) {
        const txn_producer_t *p = v;
        if (p->current_txn_first_offset >= 0 &&
            (first < 0 || p->current_txn_first_offset < first))
            first = p->current_txn_first_offset;
    }
    return first;
}

static void count_open(txn_producer_state_t *s) {
    s->n_open = 0;
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->producers, &it, NULL, NULL, &v))
        if (((txn_producer_t *)v)->current_txn_first_offset >= 0) s->n_open++;
}

void txn_producer_state_truncate(txn_producer_state_t *s, int64_t offset) {
    size_t it = 0;
    void *v;
    const void *k;
    size_t kl;
    int64_t drop[64];
    int nd;
    do {
        nd = 0;
        it = 0;
        while (nd < 64 && sm_map_next(&s->producers, &it, &k, &kl, &v)) {
            txn_producer_t *p = v;
            /* Keep only batches that end before the truncation point. */
            int32_t keep = 0;
            for (int32_t i = 0; i < p->n_batches; i++)
                if (p->batches[i].last_offset < offset) p->batches[keep++] = p->batches[i];
            p->n_batches = keep;
            if (keep == 0) drop[nd++] = p->producer_id;
        }
        for (int i = 0; i < nd; i++)
            free(sm_map_del(&s->producers, &drop[i], sizeof(drop[i])));
    } while (nd == 64);
    /* A transaction that began at or after the cut is gone with its batches. */
    size_t it2 = 0;
    void *v2;
    while (sm_map_next(&s->producers, &it2, NULL, NULL, &v2)) {
        txn_producer_t *p = v2;
        if (p->current_txn_first_offset >= offset) p->current_txn_first_offset = -1;
    }
    count_open(s);
}

void txn_producer_state_expire(txn_producer_state_t *s, int64_t min_timestamp) {
    int64_t drop[64];
    int nd;
    do {
        size_t it = 0;
        void *v;
        nd = 0;
        while (nd < 64 && sm_map_next(&s->producers, &it, NULL, NULL, &v)) {
            txn_producer_t *p = v;
            if (p->last_timestamp < min_timestamp && p->current_txn_first_offset < 0)
                drop[nd++] = p->producer_id;
        }
        for (int i = 0; i < nd; i++)
            free(sm_map_del(&s->producers, &drop[i], sizeof(drop[i])));
    } while (nd == 64);
}

#define SNAPSHOT_VERSION 1
#define ENTRY_SIZE (8 + 2 + 4 + 8 + 4 + 8 + 4 + 8)

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) return SM_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return SM_OK;
}

int txn_producer_state_write_snapshot(const txn_producer_state_t *s, const char *path,
                                      bool durable) {
    size_t n = sm_map_size(&s->producers);
    size_t len = 2 + 4 + 4 + n * ENTRY_SIZE;
    uint8_t *buf = malloc(len);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, len);
    sm_wr_i16(&w, SNAPSHOT_VERSION);
    sm_wr_u32(&w, 0);
    sm_wr_i32(&w, (int32_t)n);
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->producers, &it, NULL, NULL, &v)) {
        const txn_producer_t *p = v;
        const txn_batch_meta_t *last = p->n_batches ? &p->batches[p->n_batches - 1] : NULL;
        sm_wr_i64(&w, p->producer_id);
        sm_wr_i16(&w, p->epoch);
        sm_wr_i32(&w, last ? last->last_seq : -1);
        sm_wr_i64(&w, last ? last->last_offset : -1);
        sm_wr_i32(&w, last && last->first_offset >= 0
                          ? (int32_t)(last->last_offset - last->first_offset)
                          : 0);
        sm_wr_i64(&w, p->last_timestamp);
        sm_wr_i32(&w, p->coordinator_epoch);
        sm_wr_i64(&w, p->current_txn_first_offset);
    }
    uint32_t crc = sm_crc32c(0, buf + 6, len - 6);
    sm_writer_t cw = sm_writer_make(buf + 2, 4);
    sm_wr_u32(&cw, crc);

    char tmp[4096];
    int rc = SM_ERR_IO;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) goto out;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto out;
    if (write_all(fd, buf, len) || (durable && fsync(fd))) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path)) {
        unlink(tmp);
        goto out;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = durable ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = SM_OK;
out:
    free(buf);
    return rc;
}

int txn_producer_state_read_snapshot(txn_producer_state_t *s, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SM_ERR_NOTFOUND;
    struct stat st;
    if (fstat(fd, &st) || st.st_size > (64 << 20)) {
        close(fd);
        return SM_ERR_CORRUPT;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    int rc = SM_ERR_CORRUPT;
    if (!buf) {
        close(fd);
        return SM_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != len) goto out;
    sm_reader_t r = sm_reader_make(buf, len);
    int16_t version;
    uint32_t crc;
    int32_t n;
    if (sm_rd_i16(&r, &version) || sm_rd_u32(&r, &crc) || version != SNAPSHOT_VERSION) goto out;
    if (sm_crc32c(0, r.p, sm_rd_left(&r)) != crc) goto out;
    if (sm_rd_i32(&r, &n) || n < 0 || (size_t)n * ENTRY_SIZE != sm_rd_left(&r)) goto out;
    clear(s);
    for (int32_t i = 0; i < n; i++) {
        int64_t pid = 0, last_offset = 0, ts = 0, txn_first = 0;
        int16_t epoch = 0;
        int32_t last_seq = 0, delta = 0, coord_epoch = 0;
        sm_rd_i64(&r, &pid);
        sm_rd_i16(&r, &epoch);
        sm_rd_i32(&r, &last_seq);
        sm_rd_i64(&r, &last_offset);
        sm_rd_i32(&r, &delta);
        sm_rd_i64(&r, &ts);
        sm_rd_i32(&r, &coord_epoch);
        sm_rd_i64(&r, &txn_first);
        if (delta < 0) goto out;
        /* Sequences wrap at INT32_MAX like offsets' deltas. */
        int64_t fs = (int64_t)last_seq - delta;
        int32_t first_seq = (int32_t)(fs < 0 ? fs + INT32_MAX + 1 : fs);
        /* An entry without batches (last sequence -1) is a producer known by
         * its epoch only, e.g. fenced by a marker: kept so the fence holds. */
        if (last_seq >= 0 ? txn_producer_state_update(s, pid, epoch, first_seq, last_seq,
                                                      last_offset - delta, last_offset, ts)
                          : !entry(s, pid, epoch)) {
            rc = SM_ERR_NOMEM;
            goto out;
        }
        txn_producer_t *p = sm_map_get(&s->producers, &pid, sizeof(pid));
        p->coordinator_epoch = coord_epoch;
        p->current_txn_first_offset = txn_first;
        p->last_timestamp = ts;
    }
    count_open(s);
    rc = SM_OK;
out:
    free(buf);
    return rc;
}
