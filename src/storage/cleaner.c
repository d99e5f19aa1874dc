/*
 * One cleaning of a compacted log (see cleaner.h), as Kafka's Cleaner: the
 * key map from the dirty part, then a rewrite of every segment below the end
 * of what the map covers, in groups, each swapped in through
 * <base>.log.cleaned -> <base>.log.swap -> <base>.log; and the recovery of a
 * swap interrupted by a crash. Not for picking logs or threads
 * (cleaner_pool.c).
 *
 * Threads: runs on one cleaner thread per log at a time (log->cleaning), or
 * a test's. It reads segments that appends no longer touch (below the active
 * segment and the flushed offset) without the log's mutex, and takes the
 * mutex only to snapshot the list and to swap a group in; the swap fails
 * (SM_ERR_AGAIN, the group's files are dropped) when retention, DeleteRecords
 * or truncation changed those segments meanwhile.
 *
 * Invariants kept:
 *  1. Offsets are never changed: a rewritten batch keeps its base offset, its
 *     last offset delta, producer id, epoch and base sequence and leader epoch;
 *     records keep their offset deltas, timestamps, keys, values and headers.
 *  2. A record goes only when a later offset of the same key is in the map
 *     (so it is kept in the log), or it is a tombstone whose batch's delete
 *     horizon (KIP-534: base timestamp, attribute bit 6) has passed, or it has
 *     no key (Kafka drops those as invalid in a compacted topic).
 *  3. The last batch of each producer seen in the dirty part is kept, empty
 *     when all its records went (Kafka's empty batch keeping the header), so
 *     the producer's sequence state survives a restart.
 *  4. A .swap file is complete and fsynced; the old segments are renamed
 *     .deleted before the swap is renamed over the first one's name, so every
 *     crash leaves either the old segments or the new one (plus old ones past
 *     its range, which only hold records the new one also lost on purpose).
 * Transactions, as Kafka's cleaner:
 *  5. Nothing of a transaction without a marker in the plan (open, or
 *     decided past it) is cleaned: a first pass over the dirty part's headers
 *     finds where the earliest such transaction begins, and the map (so
 *     clean_upto) stops before it.
 *  6. An aborted transaction (an entry of the .txnindex files: producer,
 *     first offset, marker offset) loses its batches below clean_upto, and
 *     its records never enter the map; a committed transaction's records are
 *     cleaned like any others (they enter the map and go when superseded).
 *  7. A marker (COMMIT or ABORT) is kept while the cleaning read a batch of
 *     its transaction; then it gets a delete horizon (now +
 *     delete.retention.ms, as a tombstone's batch does) and goes at the
 *     first cleaning after it, unless it is its producer's last batch.
 *  8. The .txnindex entries of a rewritten group whose ABORT marker stays go
 *     to the new segment's index: <base>.txnindex.swap, written before the
 *     .log's .cleaned -> .swap rename and renamed into place with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/cleaner_impl.h"
#include "txn/aborted_index.h"

/* Largest decompressed records area of one batch the cleaner inflates; a
 * bigger one is kept as it is (and its keys do not enter the map). */
#define CLEAN_MAX_INFLATE (128u << 20)

static void (*test_hook)(const char *step);

void log_cleaner_set_test_hook(void (*hook)(const char *step)) { test_hook = hook; }

static void step(const char *name) {
    if (test_hook) test_hook(name);
}

/* ---------------------------------------------------------------- planning */

/* The log as one cleaning sees it: the inactive, flushed segments below the
 * first uncleanable offset, referenced. */
typedef struct plan {
    log_segment_t **segs;
    int64_t *sizes;
    int64_t *next; /* next_offset of each at the snapshot */
    int n;         /* cleanable segments */
    int first_dirty;
    int64_t clean_point; /* effective: within [first base, first uncleanable] */
    int64_t first_uncleanable;
    int64_t clean_bytes, dirty_bytes;
    int64_t horizon; /* l->clean_horizon */
    log_config_t cfg;
} plan_t;

static void plan_free(plan_t *p) {
    for (int i = 0; i < p->n; i++)
        seg_unref(p->segs[i]);
    free(p->segs);
    free(p->sizes);
    free(p->next);
    memset(p, 0, sizeof(*p));
}

/* Timestamp of the first batch of s (max.compaction.lag.ms), -1 unknown. */
static int64_t first_batch_ts(log_segment_t *s) {
    int fd;
    if (seg_fd_acquire(s, &fd)) return -1;
    uint8_t hb[PROTO_BATCH_HEADER_SIZE];
    proto_batch_header_t h;
    int64_t ts = -1;
    if (atomic_load(&s->size) >= PROTO_BATCH_HEADER_SIZE && seg_pread(fd, hb, sizeof(hb), 0) == 0 &&
        proto_batch_parse_header(hb, sizeof(hb), &h) == SM_OK)
        ts = h.max_timestamp;
    seg_fd_release(s);
    return ts;
}

static int plan_make(log_t *l, int64_t now, plan_t *p) {
    memset(p, 0, sizeof(*p));
    pthread_mutex_lock(&l->mu);
    int cand = l->nsegs - 1; /* never the active segment */
    p->cfg = l->cfg;
    p->horizon = l->clean_horizon;
    int64_t flushed = atomic_load(&l->flushed_offset);
    int64_t cp = l->clean_point;
    int64_t start = l->start_offset;
    int n = 0;
    if (cand > 0 && p->cfg.compact && !atomic_load(&l->offline)) {
        p->segs = malloc(sizeof(*p->segs) * (size_t)cand);
        p->sizes = malloc(sizeof(*p->sizes) * (size_t)cand);
        p->next = malloc(sizeof(*p->next) * (size_t)cand);
        if (!p->segs || !p->sizes || !p->next) {
            pthread_mutex_unlock(&l->mu);
            plan_free(p);
            return SM_ERR_NOMEM;
        }
        for (; n < cand; n++) {
            log_segment_t *s = l->segs[n];
            /* Not yet flushed (pinned, index files unwritten): not yet. */
            if (s->next_offset > flushed || s->base >= l->unfinished_base) break;
            seg_ref(s);
            p->segs[n] = s;
            p->sizes[n] = atomic_load(&s->size);
            p->next[n] = s->next_offset;
        }
    }
    p->first_uncleanable = n < l->nsegs ? l->segs[n]->base : atomic_load(&l->end_offset);
    pthread_mutex_unlock(&l->mu);
    p->n = n;
    /* min.compaction.lag.ms: a segment holding a record younger than the lag
     * and everything after it stay dirty. */
    if (p->cfg.min_compaction_lag_ms > 0) {
        for (int i = 0; i < p->n; i++) {
            int64_t ts, off;
            if (seg_max_timestamp(p->segs[i], p->cfg.index_interval_bytes, &ts, &off) == SM_OK &&
                ts > now - p->cfg.min_compaction_lag_ms) {
                p->first_uncleanable = p->segs[i]->base;
                for (int k = i; k < p->n; k++)
                    seg_unref(p->segs[k]);
                p->n = i;
                break;
            }
        }
    }
    int64_t first = p->n ? p->segs[0]->base : p->first_uncleanable;
    if (cp < start) cp = start; /* Kafka: a checkpoint below the log start restarts there */
    if (cp < first) cp = first;
    if (cp > p->first_uncleanable) cp = p->first_uncleanable;
    p->clean_point = cp;
    p->first_dirty = 0;
    while (p->first_dirty < p->n && p->next[p->first_dirty] <= cp)
        p->first_dirty++;
    for (int i = 0; i < p->n; i++) {
        if (i < p->first_dirty)
            p->clean_bytes += p->sizes[i];
        else
            p->dirty_bytes += p->sizes[i];
    }
    return SM_OK;
}

static double plan_ratio(const plan_t *p) {
    int64_t total = p->clean_bytes + p->dirty_bytes;
    return total > 0 ? (double)p->dirty_bytes / (double)total : 0.0;
}

/* Whether the log needs cleaning now (Kafka's LogCleanerManager rules). */
static bool plan_cleanable(const plan_t *p, int64_t now, bool force) {
    if (!p->cfg.compact || p->n == 0) return false;
    if (force) return true;
    if (p->dirty_bytes > 0 && plan_ratio(p) >= p->cfg.min_cleanable_ratio) return true;
    if (p->horizon > 0 && now >= p->horizon) return true; /* tombstones are due */
    if (p->dirty_bytes > 0 && p->cfg.max_compaction_lag_ms != INT64_MAX) {
        int64_t ts = first_batch_ts(p->segs[p->first_dirty]);
        if (ts >= 0 && now - ts > p->cfg.max_compaction_lag_ms) return true;
    }
    return false;
}

double log_cleaner_score(log_t *l, int64_t now) {
    plan_t p;
    if (plan_make(l, now, &p)) return -1;
    double score = -1;
    if (plan_cleanable(&p, now, false)) {
        score = plan_ratio(&p);
        if (p.dirty_bytes == 0 || score < p.cfg.min_cleanable_ratio) score += 1.0;
    }
    plan_free(&p);
    return score;
}

void log_cleaner_release(log_t *l) { atomic_store(&l->cleaning, false); }

void log_clean_info(log_t *l, int64_t now, log_clean_info_t *out) {
    memset(out, 0, sizeof(*out));
    plan_t p;
    if (plan_make(l, now, &p) == SM_OK) {
        out->clean_point = p.clean_point;
        out->first_uncleanable = p.first_uncleanable;
        out->clean_bytes = p.clean_bytes;
        out->dirty_bytes = p.dirty_bytes;
        out->dirty_ratio = plan_ratio(&p);
        out->cleanable = plan_cleanable(&p, now, false);
        plan_free(&p);
    }
    pthread_mutex_lock(&l->mu);
    out->compact = l->cfg.compact;
    out->last = l->clean_stats;
    pthread_mutex_unlock(&l->mu);
    out->cleaning = atomic_load(&l->cleaning);
}

int64_t log_clean_point(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t v = l->clean_point;
    pthread_mutex_unlock(&l->mu);
    return v;
}

void log_set_clean_point(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->mu);
    l->clean_point = offset;
    pthread_mutex_unlock(&l->mu);
}

/* ---------------------------------------------------------------- I/O */

/* producer id -> a value, pairs in v (a few producers per log). */
typedef struct pidtab {
    int64_t *v;
    size_t n, cap;
} pidtab_t;

static int pidtab_set(pidtab_t *t, int64_t pid, int64_t value) {
    for (size_t i = 0; i < t->n; i++)
        if (t->v[2 * i] == pid) {
            t->v[2 * i + 1] = value;
            return SM_OK;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        int64_t *n = realloc(t->v, sizeof(*n) * 2 * cap);
        if (!n) return SM_ERR_NOMEM;
        t->v = n;
        t->cap = cap;
    }
    t->v[2 * t->n] = pid;
    t->v[2 * t->n + 1] = value;
    t->n++;
    return SM_OK;
}

/* -1 when pid has no value. */
static int64_t pidtab_get(const pidtab_t *t, int64_t pid) {
    for (size_t i = 0; i < t->n; i++)
        if (t->v[2 * i] == pid) return t->v[2 * i + 1];
    return -1;
}

/* Flags of an aborted-transaction entry during one cleaning. */
enum { ABORTED_READ = 1, ABORTED_MARKER_GONE = 2 };

typedef struct ctx {
    log_t *l;
    const log_clean_opts_t *o;
    plan_t *p;
    int64_t now;
    int64_t clean_upto; /* records below it are cleaned against the map */
    clean_map_t *map;
    /* producer id -> last offset of its last batch in the dirty part */
    pidtab_t last;
    /* Transactions (invariants 5-8): the aborted ones, a flag per entry, the
     * producers with a committed batch read since their last marker, and
     * where the first transaction without a marker in the plan begins. */
    txn_aborted_index_t aborted;
    uint8_t *aflags;
    pidtab_t committed;
    int64_t txn_bound;   /* INT64_MAX: none */
    int64_t min_horizon; /* earliest future horizon kept, 0 none */
    uint8_t *rbuf;       /* segment read buffer */
    size_t rcap;
    uint8_t *scratch; /* rebuilt records / batches */
    size_t scap;
    log_clean_stats_t st;
} ctx_t;

static int pause_for(ctx_t *c, size_t bytes) {
    int64_t ms = clean_throttle_delay_ms(c->o->throttle, bytes);
    while (ms > 0) {
        if (atomic_load(&c->l->clean_abort)) return SM_ERR_AGAIN;
        int64_t slice = ms < 100 ? ms : 100;
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000};
        nanosleep(&ts, NULL); /* rate limiting, not synchronisation */
        ms -= slice;
    }
    return atomic_load(&c->l->clean_abort) ? SM_ERR_AGAIN : SM_OK;
}

static int ensure(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return SM_OK;
    size_t n = *cap ? *cap : 65536;
    while (n < need)
        n *= 2;
    uint8_t *b = realloc(*buf, n);
    if (!b) return SM_ERR_NOMEM;
    *buf = b;
    *cap = n;
    return SM_OK;
}

/* Sequential whole-batch reader over one segment. */
typedef struct breader {
    ctx_t *c;
    int fd;
    int64_t size;
    int64_t pos;    /* next batch */
    int64_t bstart; /* file position of rbuf[0] */
    size_t have;    /* valid bytes in rbuf */
} breader_t;

/* 1 with the batch, its header and position, 0 at the end, < 0 on error (SM_ERR_CORRUPT for
 * garbage). */
static int br_next(breader_t *r, const uint8_t **batch, proto_batch_header_t *h, int64_t *pos) {
    ctx_t *c = r->c;
    if (r->pos >= r->size) return 0;
    for (int pass = 0; pass < 3; pass++) { /* header, then a buffer grown to the batch */
        int64_t off = r->pos - r->bstart;
        if (r->pos >= r->bstart && off + PROTO_BATCH_HEADER_SIZE <= (int64_t)r->have) {
            if (proto_batch_parse_header(c->rbuf + off, r->have - (size_t)off, h))
                return SM_ERR_CORRUPT;
            int64_t total = (int64_t)proto_batch_total_size(h);
            if (r->pos + total > r->size) return SM_ERR_CORRUPT;
            if (off + total <= (int64_t)r->have) {
                *batch = c->rbuf + off;
                *pos = r->pos;
                r->pos += total;
                return 1;
            }
            int rc = ensure(&c->rbuf, &c->rcap, (size_t)total);
            if (rc) return rc;
        }
        /* Refill from pos. */
        size_t bufsz =
            c->o->io_buffer_size > PROTO_BATCH_HEADER_SIZE ? c->o->io_buffer_size : (size_t)1 << 20;
        int erc = ensure(&c->rbuf, &c->rcap, bufsz);
        if (erc) return erc;
        size_t want = c->rcap;
        if ((int64_t)want > r->size - r->pos) want = (size_t)(r->size - r->pos);
        if (want < PROTO_BATCH_HEADER_SIZE) return SM_ERR_CORRUPT;
        if (seg_pread(r->fd, c->rbuf, want, r->pos)) return SM_ERR_IO;
        c->st.bytes_read += (int64_t)want;
        r->bstart = r->pos;
        r->have = want;
        int rc = pause_for(c, want);
        if (rc) return rc;
    }
    return SM_ERR_CORRUPT;
}

/* The records area of a batch, decompressed into *owned when needed. */
static int batch_records(const uint8_t *batch, size_t len, const proto_batch_header_t *h,
                         const uint8_t **data, size_t *dlen, uint8_t **owned) {
    *owned = NULL;
    int codec = proto_batch_compression(h);
    if (codec == PROTO_COMPRESSION_NONE) {
        *data = batch + PROTO_BATCH_HEADER_SIZE;
        *dlen = len - PROTO_BATCH_HEADER_SIZE;
        return SM_OK;
    }
    if (len == PROTO_BATCH_HEADER_SIZE) {
        *data = batch + len;
        *dlen = 0;
        return SM_OK;
    }
    int rc = proto_decompress_alloc(codec, batch + PROTO_BATCH_HEADER_SIZE,
                                    len - PROTO_BATCH_HEADER_SIZE, CLEAN_MAX_INFLATE, owned, dlen);
    if (rc) return rc;
    *data = *owned;
    return SM_OK;
}

/* ---------------------------------------------------------------- the map */

/* -1 when the producer has no batch in the dirty part. */
static int64_t pid_last(const ctx_t *c, int64_t pid) { return pidtab_get(&c->last, pid); }

/* The aborted transaction holding a producer's batch at offset, -1 none. */
static ssize_t aborted_of(const ctx_t *c, int64_t pid, int64_t offset) {
    const txn_aborted_index_t *x = &c->aborted;
    for (size_t i = txn_aborted_index_first_ending(x, offset); i < x->n; i++)
        if (x->v[i].producer_id == pid && x->v[i].first_offset <= offset) return (ssize_t)i;
    return -1;
}

/* The aborted transaction whose marker is at offset, -1 none. */
static ssize_t aborted_marker(const ctx_t *c, int64_t pid, int64_t offset) {
    ssize_t i = aborted_of(c, pid, offset);
    return i >= 0 && c->aborted.v[i].last_offset == offset ? i : -1;
}

/* Invariant 5: where the earliest transaction still without a marker at the
 * end of the plan begins (c->txn_bound), from the dirty part's headers. */
static int txn_prepass(ctx_t *c) {
    plan_t *p = c->p;
    pidtab_t open = {0};
    int rc = SM_OK;
    c->txn_bound = INT64_MAX;
    for (int i = p->first_dirty; rc == SM_OK && i < p->n; i++) {
        log_segment_t *s = p->segs[i];
        int fd;
        if ((rc = seg_fd_acquire(s, &fd))) break;
        for (int64_t pos = 0; pos + PROTO_BATCH_HEADER_SIZE <= p->sizes[i];) {
            uint8_t hb[PROTO_BATCH_HEADER_SIZE];
            proto_batch_header_t h;
            if ((rc = seg_pread(fd, hb, sizeof(hb), pos))) break;
            if (proto_batch_parse_header(hb, sizeof(hb), &h)) {
                rc = SM_ERR_CORRUPT;
                break;
            }
            c->st.bytes_read += (int64_t)sizeof(hb);
            if (h.attributes & PROTO_ATTR_CONTROL)
                rc = pidtab_set(&open, h.producer_id, -1);
            else if ((h.attributes & PROTO_ATTR_TRANSACTIONAL) &&
                     pidtab_get(&open, h.producer_id) < 0)
                rc = pidtab_set(&open, h.producer_id, h.base_offset);
            if (rc) break;
            pos += (int64_t)proto_batch_total_size(&h);
        }
        seg_fd_release(s);
    }
    for (size_t k = 0; k < open.n; k++)
        if (open.v[2 * k + 1] >= 0 && open.v[2 * k + 1] < c->txn_bound)
            c->txn_bound = open.v[2 * k + 1];
    free(open.v);
    return rc;
}

/* Adds one batch's keys; SM_ERR_SPACE (nothing added) when they may not fit. */
static int map_batch(ctx_t *c, const uint8_t *batch, size_t len, const proto_batch_header_t *h) {
    if (h->producer_id >= 0) {
        int rc = pidtab_set(&c->last, h->producer_id, proto_batch_last_offset(h));
        if (rc) return rc;
    }
    /* An aborted transaction's records never supersede others (invariant
     * 6); markers hold no keys. */
    if (h->attributes & PROTO_ATTR_CONTROL) return SM_OK;
    if ((h->attributes & PROTO_ATTR_TRANSACTIONAL) &&
        aborted_of(c, h->producer_id, h->base_offset) >= 0)
        return SM_OK;
    if (h->records_count > 0 && (size_t)h->records_count > clean_map_room(c->map))
        return SM_ERR_SPACE;
    const uint8_t *data;
    size_t dlen;
    uint8_t *owned;
    if (batch_records(batch, len, h, &data, &dlen, &owned)) return SM_OK; /* kept whole */
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, data, dlen, h->records_count);
    int rc = SM_OK;
    while (proto_record_iter_next(&it, &rec) == 1) {
        if (rec.key.len < 0) continue;
        if ((rc = clean_map_put(c->map, rec.key.ptr, (size_t)rec.key.len,
                                h->base_offset + rec.offset_delta)))
            break;
    }
    free(owned);
    return rc;
}

/* Builds the map from the clean point on; sets c->clean_upto to where it
 * stops (a batch boundary). */
static int build_map(ctx_t *c) {
    plan_t *p = c->p;
    c->clean_upto = p->clean_point;
    for (int i = p->first_dirty; i < p->n; i++) {
        log_segment_t *s = p->segs[i];
        breader_t r = {c, -1, p->sizes[i], 0, 0, 0};
        int64_t pos = 0;
        if (p->clean_point > s->base &&
            seg_lookup_position(s, p->cfg.index_interval_bytes, p->clean_point, &pos))
            pos = 0;
        int rc = seg_fd_acquire(s, &r.fd);
        if (rc) return rc;
        r.pos = pos;
        const uint8_t *b;
        proto_batch_header_t h;
        int64_t bpos;
        bool full = false;
        while ((rc = br_next(&r, &b, &h, &bpos)) == 1) {
            if (proto_batch_last_offset(&h) < p->clean_point) continue;
            if (h.base_offset >= c->txn_bound) {
                full = true; /* invariant 5: the map ends before it */
                break;
            }
            rc = map_batch(c, b, proto_batch_total_size(&h), &h);
            if (rc == SM_ERR_SPACE) {
                full = true;
                rc = SM_OK;
                break;
            }
            if (rc) break;
            c->clean_upto = proto_batch_last_offset(&h) + 1;
        }
        seg_fd_release(s);
        if (rc < 0) return rc;
        if (full) return SM_OK;
        c->clean_upto = p->next[i] > c->clean_upto ? p->next[i] : c->clean_upto;
    }
    return SM_OK;
}

/* ---------------------------------------------------------------- rewriting */

typedef struct out {
    int fd;
    uint8_t *buf;
    size_t cap, len;
    int64_t pos; /* file position of buf[0] + len: where the next batch goes */
    log_segment_t *seg;
    int32_t interval;
} out_t;

static int out_flush(ctx_t *c, out_t *w) {
    if (!w->len) return SM_OK;
    if (fio_write_all(w->fd, w->buf, w->len)) return SM_ERR_IO;
    int rc = pause_for(c, w->len);
    w->len = 0;
    return rc;
}

static int out_batch(ctx_t *c, out_t *w, const uint8_t *batch, size_t len) {
    proto_batch_header_t h;
    int rc = proto_batch_parse_header(batch, len, &h);
    if (rc) return SM_ERR_CORRUPT;
    if (w->len + len > w->cap && (rc = out_flush(c, w))) return rc;
    if (len > w->cap) {
        if (fio_write_all(w->fd, batch, len)) return SM_ERR_IO;
    } else {
        memcpy(w->buf + w->len, batch, len);
        w->len += len;
    }
    if ((rc = seg_note_batch(w->seg, w->interval, w->pos, &h))) return rc;
    w->pos += (int64_t)len;
    c->st.bytes_written += (int64_t)len;
    return SM_OK;
}

static void put64(uint8_t *p, int64_t v) {
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (uint8_t)v;
}
static void put32(uint8_t *p, int32_t v) {
    for (int i = 3; i >= 0; i--, v = (int32_t)((uint32_t)v >> 8))
        p[i] = (uint8_t)v;
}
static void put16(uint8_t *p, int16_t v) {
    p[0] = (uint8_t)((uint16_t)v >> 8);
    p[1] = (uint8_t)v;
}

static size_t put_uvarint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* The empty batch Kafka keeps for a producer's last batch: the header with no
 * records, uncompressed, base and max timestamp = the old max timestamp. */
static int out_empty_batch(ctx_t *c, out_t *w, const uint8_t *batch,
                           const proto_batch_header_t *h) {
    uint8_t e[PROTO_BATCH_HEADER_SIZE];
    memcpy(e, batch, PROTO_BATCH_HEADER_SIZE);
    put32(e + PROTO_BATCH_OFF_LENGTH, PROTO_BATCH_HEADER_SIZE - PROTO_BATCH_LOG_OVERHEAD);
    int16_t attr = (int16_t)(h->attributes & (PROTO_ATTR_LOG_APPEND_TIME |
                                              PROTO_ATTR_TRANSACTIONAL | PROTO_ATTR_CONTROL));
    put16(e + PROTO_BATCH_OFF_ATTRIBUTES, attr);
    put64(e + PROTO_BATCH_OFF_BASE_TIMESTAMP, h->max_timestamp);
    put32(e + PROTO_BATCH_OFF_RECORDS_COUNT, 0);
    proto_batch_update_crc(e, sizeof(e));
    return out_batch(c, w, e, sizeof(e));
}

/* One kept record, as a slice of the records area. */
typedef struct kept {
    const uint8_t *p;
    size_t len;
    int64_t ts_delta;
} kept_t;

/* Re-encodes a record with a new timestamp delta (the batch's base timestamp
 * becomes its delete horizon); everything else is copied. */
static size_t reencode_record(const kept_t *k, int64_t new_delta, uint8_t *dst) {
    sm_reader_t r = {k->p, k->p + k->len};
    int32_t length = 0;
    int8_t attr = 0;
    int64_t old = 0;
    sm_rd_varint(&r, &length);
    sm_rd_i8(&r, &attr);
    sm_rd_varlong(&r, &old);
    size_t rest = sm_rd_left(&r);
    uint8_t body_head[1 + 10];
    body_head[0] = (uint8_t)attr;
    size_t hn = 1 + put_uvarint(body_head + 1, sm_zigzag64(new_delta));
    size_t n = put_uvarint(dst, sm_zigzag32((int32_t)(hn + rest)));
    memcpy(dst + n, body_head, hn);
    memcpy(dst + n + hn, r.p, rest);
    return n + hn + rest;
}

/* Writes a batch rebuilt from its kept records: their count, the max
 * timestamp (from max_delta) and, with set_horizon, the base timestamp
 * becoming the delete horizon (records re-encoded relative to it);
 * compressed with the batch's codec. Kept as it is when it cannot be
 * rebuilt (no bound for its codec, compression failing). */
static int write_rebuilt(ctx_t *c, out_t *w, const uint8_t *batch, size_t len,
                         const proto_batch_header_t *h, const kept_t *kept, int32_t nkept,
                         bool set_horizon, int64_t horizon, int64_t max_delta) {
    int64_t base_ts = set_horizon ? horizon : h->base_timestamp;
    size_t rec_bytes = 0;
    for (int32_t i = 0; i < nkept; i++)
        rec_bytes += kept[i].len + 20;
    int codec = proto_batch_compression(h);
    size_t bound = codec ? proto_compress_bound(codec, rec_bytes) : 0;
    if (codec && bound == 0) return out_batch(c, w, batch, len);
    int rc = ensure(&c->scratch, &c->scap, PROTO_BATCH_HEADER_SIZE + rec_bytes + bound);
    if (rc) return rc;
    uint8_t *recs = c->scratch + PROTO_BATCH_HEADER_SIZE + bound; /* plain records */
    uint8_t *dst = codec ? recs : c->scratch + PROTO_BATCH_HEADER_SIZE;
    size_t rn = 0;
    for (int32_t i = 0; i < nkept; i++) {
        if (set_horizon) {
            rn +=
                reencode_record(&kept[i], h->base_timestamp + kept[i].ts_delta - base_ts, dst + rn);
        } else {
            memcpy(dst + rn, kept[i].p, kept[i].len);
            rn += kept[i].len;
        }
    }
    size_t area = rn;
    if (codec) {
        size_t clen;
        if (proto_compress(codec, -1, recs, rn, c->scratch + PROTO_BATCH_HEADER_SIZE, bound, &clen))
            return out_batch(c, w, batch, len);
        area = clen;
    }
    uint8_t *nb = c->scratch;
    memcpy(nb, batch, PROTO_BATCH_HEADER_SIZE);
    size_t nlen = PROTO_BATCH_HEADER_SIZE + area;
    put32(nb + PROTO_BATCH_OFF_LENGTH, (int32_t)(nlen - PROTO_BATCH_LOG_OVERHEAD));
    int16_t attr = h->attributes;
    if (set_horizon) attr = (int16_t)(attr | PROTO_ATTR_DELETE_HORIZON);
    put16(nb + PROTO_BATCH_OFF_ATTRIBUTES, attr);
    put64(nb + PROTO_BATCH_OFF_BASE_TIMESTAMP, base_ts);
    if (!(h->attributes & PROTO_ATTR_LOG_APPEND_TIME))
        put64(nb + PROTO_BATCH_OFF_MAX_TIMESTAMP, h->base_timestamp + max_delta);
    put32(nb + PROTO_BATCH_OFF_RECORDS_COUNT, nkept);
    proto_batch_update_crc(nb, nlen);
    return out_batch(c, w, nb, nlen);
}

static void note_horizon(ctx_t *c, int64_t horizon) {
    if (horizon > c->now && (c->min_horizon == 0 || horizon < c->min_horizon))
        c->min_horizon = horizon;
}

/* A marker below clean_upto (invariant 7). */
static int clean_marker(ctx_t *c, out_t *w, const uint8_t *batch, size_t len,
                        const proto_batch_header_t *h) {
    int32_t epoch;
    int type = h->records_count > 0 ? proto_control_batch_type(batch, len, &epoch) : -1;
    bool done = false; /* no batch of its transaction was read in this cleaning */
    ssize_t a = -1;
    int rc = SM_OK;
    if (type == PROTO_CONTROL_ABORT) {
        a = aborted_marker(c, h->producer_id, h->base_offset);
        done = a < 0 || !(c->aflags[a] & ABORTED_READ);
    } else if (type == PROTO_CONTROL_COMMIT) {
        done = pidtab_get(&c->committed, h->producer_id) <= 0;
        rc = pidtab_set(&c->committed, h->producer_id, 0);
    }
    if (rc) return rc;
    bool has_horizon = (h->attributes & PROTO_ATTR_DELETE_HORIZON) != 0;
    bool producers_last = pid_last(c, h->producer_id) == proto_batch_last_offset(h);
    if (!done || producers_last) return out_batch(c, w, batch, len);
    if (has_horizon && c->now >= h->base_timestamp) {
        if (a >= 0) c->aflags[a] |= ABORTED_MARKER_GONE;
        c->st.records_removed += h->records_count;
        return SM_OK;
    }
    if (has_horizon) {
        note_horizon(c, h->base_timestamp);
        return out_batch(c, w, batch, len);
    }
    /* Its horizon from now on: the batch rebuilt with every record. */
    const uint8_t *data = batch + PROTO_BATCH_HEADER_SIZE;
    size_t dlen = len - PROTO_BATCH_HEADER_SIZE;
    kept_t one[4];
    int32_t n = 0;
    int64_t max_delta = 0;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, data, dlen, h->records_count);
    const uint8_t *start = it.p;
    while (n < 4 && proto_record_iter_next(&it, &rec) == 1) {
        one[n++] = (kept_t){start, (size_t)(it.p - start), rec.timestamp_delta};
        if (rec.timestamp_delta > max_delta) max_delta = rec.timestamp_delta;
        start = it.p;
    }
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE || n != h->records_count)
        return out_batch(c, w, batch, len); /* not a marker as Kafka writes them: kept */
    int64_t horizon = c->now + c->p->cfg.delete_retention_ms;
    note_horizon(c, horizon);
    return write_rebuilt(c, w, batch, len, h, one, n, true, horizon, max_delta);
}

/* Cleans one batch below clean_upto into w (see the invariants above). */
static int clean_batch(ctx_t *c, out_t *w, const uint8_t *batch, size_t len,
                       const proto_batch_header_t *h) {
    if (h->base_offset >= c->clean_upto) return out_batch(c, w, batch, len);
    if (h->attributes & PROTO_ATTR_CONTROL) return clean_marker(c, w, batch, len, h);
    if (h->attributes & PROTO_ATTR_TRANSACTIONAL) {
        ssize_t a = aborted_of(c, h->producer_id, h->base_offset);
        if (a >= 0) {
            /* Aborted: the batch goes (never its producer's last: the marker
             * follows it). */
            c->aflags[a] |= ABORTED_READ;
            c->st.records_removed += h->records_count;
            return SM_OK;
        }
        int rc = pidtab_set(&c->committed, h->producer_id, 1);
        if (rc) return rc;
    }
    const uint8_t *data;
    size_t dlen;
    uint8_t *owned = NULL;
    if (batch_records(batch, len, h, &data, &dlen, &owned)) return out_batch(c, w, batch, len);
    bool has_horizon = (h->attributes & PROTO_ATTR_DELETE_HORIZON) != 0;
    kept_t *kept = h->records_count > 0 ? malloc(sizeof(*kept) * (size_t)h->records_count) : NULL;
    if (h->records_count > 0 && !kept) {
        free(owned);
        return SM_ERR_NOMEM;
    }
    int32_t nkept = 0, total = 0;
    bool tombstones = false;
    int64_t max_delta = INT64_MIN;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, data, dlen, h->records_count);
    int rc;
    const uint8_t *start = it.p;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        total++;
        int64_t off = h->base_offset + rec.offset_delta;
        bool keep = rec.key.len >= 0;
        if (keep) {
            int64_t latest = clean_map_get(c->map, rec.key.ptr, (size_t)rec.key.len);
            if (latest > off) keep = false;
        }
        if (keep && rec.value.len < 0) {
            if (has_horizon && c->now >= h->base_timestamp)
                keep = false;
            else
                tombstones = true;
        }
        if (keep) {
            kept[nkept].p = start;
            kept[nkept].len = (size_t)(it.p - start);
            kept[nkept].ts_delta = rec.timestamp_delta;
            if (rec.timestamp_delta > max_delta) max_delta = rec.timestamp_delta;
            nkept++;
        }
        start = it.p;
    }
    if (rc < 0 || total != h->records_count) {
        /* Records that do not parse: keep the batch as it is. */
        free(kept);
        free(owned);
        return out_batch(c, w, batch, len);
    }
    c->st.records_kept += nkept;
    c->st.records_removed += total - nkept;
    bool set_horizon = tombstones && !has_horizon;
    int64_t horizon = set_horizon   ? c->now + c->p->cfg.delete_retention_ms
                      : has_horizon ? h->base_timestamp
                                    : 0;
    if (tombstones) note_horizon(c, horizon);
    if (nkept == total && !set_horizon) {
        rc = out_batch(c, w, batch, len);
    } else if (nkept == 0) {
        /* A committed transaction's batch is not its producer's last either. */
        int64_t last = pid_last(c, h->producer_id);
        rc = SM_OK;
        if (h->producer_id >= 0 && !(h->attributes & PROTO_ATTR_TRANSACTIONAL) &&
            (last < 0 || last == proto_batch_last_offset(h)))
            rc = out_empty_batch(c, w, batch, h);
    } else {
        rc = write_rebuilt(c, w, batch, len, h, kept, nkept, set_horizon, horizon, max_delta);
    }
    free(kept);
    free(owned);
    return rc;
}

static void swap_paths(const char *dir, int64_t base, char *cleaned, char *swap, char *log,
                       size_t cap) {
    snprintf(cleaned, cap, "%s/%020" PRId64 ".log.cleaned", dir, base);
    snprintf(swap, cap, "%s/%020" PRId64 ".log.swap", dir, base);
    snprintf(log, cap, "%s/%020" PRId64 ".log", dir, base);
}

/* Invariant 8: the aborted-transaction entries of the offsets [from, to)
 * whose marker stays, written to path (*wrote: whether there were any). */
static int write_group_txnindex(ctx_t *c, int64_t from, int64_t to, const char *path, bool *wrote) {
    *wrote = false;
    unlink(path); /* a leftover of an earlier attempt */
    txn_aborted_t *v = malloc(sizeof(*v) * (c->aborted.n ? c->aborted.n : 1));
    if (!v) return SM_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < c->aborted.n; i++) {
        const txn_aborted_t *e = &c->aborted.v[i];
        if (e->last_offset >= from && e->last_offset < to && !(c->aflags[i] & ABORTED_MARKER_GONE))
            v[n++] = *e;
    }
    int rc = n ? txn_aborted_index_write_file(v, n, path) : SM_OK;
    *wrote = n > 0 && rc == SM_OK;
    free(v);
    return rc;
}

/* Swaps the new segment ns in for p->segs[a..b) (see invariant 4); its
 * aborted-transaction index tswap (NULL: none) is renamed into place after
 * the old segments' files are renamed and before the .log swap. */
static int swap_in(ctx_t *c, int a, int b, log_segment_t *ns, const char *swap, const char *logp,
                   const char *tswap) {
    log_t *l = c->l;
    plan_t *p = c->p;
    int n = b - a;
    log_segment_t **old = malloc(sizeof(*old) * (size_t)n);
    if (!old) return SM_ERR_NOMEM;
    pthread_mutex_lock(&l->mu);
    int at = -1, rc = SM_OK;
    for (int i = 0; i < l->nsegs; i++)
        if (l->segs[i] == p->segs[a]) at = i;
    bool same =
        at >= 0 && at + n < l->nsegs && !atomic_load(&l->offline) && !atomic_load(&l->clean_abort);
    for (int i = 0; same && i < n; i++)
        same = l->segs[at + i] == p->segs[a + i];
    if (!same) {
        pthread_mutex_unlock(&l->mu);
        free(old);
        return SM_ERR_AGAIN;
    }
    int64_t now = sm_time_ms();
    for (int i = 0; i < n; i++) {
        old[i] = l->segs[at + i];
        if (seg_rename_deleted(old[i], now + l->cfg.file_delete_delay_ms)) rc = SM_ERR_IO;
        step("renamed-old");
    }
    char tpath[4200];
    snprintf(tpath, sizeof(tpath), "%s.txnindex", ns->path);
    if (rc == SM_OK && tswap && rename(tswap, tpath)) rc = SM_ERR_IO;
    if (rc == SM_OK && rename(swap, logp)) rc = SM_ERR_IO;
    if (rc == SM_OK) step("swapped");
    if (rc) {
        /* Old segments are partly renamed: only a restart (which completes
         * the swap) puts the files and the list back together. */
        pthread_mutex_unlock(&l->mu);
        log_go_offline(l, "segment swap after cleaning", errno);
        free(old);
        return SM_ERR_IO;
    }
    ns->next_offset = old[n - 1]->next_offset;
    l->segs[at] = ns;
    memmove(l->segs + at + 1, l->segs + at + n, sizeof(*l->segs) * (size_t)(l->nsegs - at - n));
    l->nsegs -= n - 1;
    l->dir_dirty = true;
    pthread_mutex_unlock(&l->mu);
    char *dir = atomic_load(&l->dir);
    /* Without it a crash may bring back the old names: recovery completes or
     * drops the swap then (see Compaction in docs/storage.md), so a warning. */
    if (fio_fsync_dir(dir))
        sm_warn("storage", "%s: cannot fsync after a cleaning's swap: %s", dir, strerror(errno));
    if (seg_write_index_files(ns))
        sm_warn("storage",
                "%s: cannot write the indexes of cleaned segment %020" PRId64
                " (rebuilt when needed): %s",
                dir, ns->base, strerror(errno));
    step("indexed");
    log_retire_segments(l, old, n, now);
    return SM_OK;
}

/* Cleans p->segs[a..b) into one new segment. */
static int clean_group(ctx_t *c, int a, int b) {
    plan_t *p = c->p;
    log_t *l = c->l;
    char *dir = atomic_load(&l->dir);
    int64_t base = p->segs[a]->base;
    char cleaned[4200], swap[4200], logp[4200], tswap[4200];
    swap_paths(dir, base, cleaned, swap, logp, sizeof(cleaned));
    snprintf(tswap, sizeof(tswap), "%s/%020" PRId64 ".txnindex.swap", dir, base);
    bool has_tswap = false;
    out_t w = {-1, NULL, 0, 0, 0, NULL, p->cfg.index_interval_bytes};
    int rc = SM_ERR_NOMEM;
    w.cap = c->o->io_buffer_size > 0 ? c->o->io_buffer_size : 1 << 20;
    if (!(w.buf = malloc(w.cap))) goto fail;
    if (!(w.seg = seg_new(dir, base))) goto fail;
    w.fd = open(cleaned, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        rc = SM_ERR_IO;
        goto fail;
    }
    for (int i = a; i < b; i++) {
        log_segment_t *s = p->segs[i];
        breader_t r = {c, -1, p->sizes[i], 0, 0, 0};
        if ((rc = seg_fd_acquire(s, &r.fd))) goto fail;
        const uint8_t *bt;
        proto_batch_header_t h;
        int64_t bpos;
        while ((rc = br_next(&r, &bt, &h, &bpos)) == 1)
            if ((rc = clean_batch(c, &w, bt, proto_batch_total_size(&h), &h))) break;
        seg_fd_release(s);
        if (rc < 0) goto fail;
    }
    if ((rc = out_flush(c, &w))) goto fail;
    if (fio_fdatasync(w.fd)) {
        rc = SM_ERR_IO;
        goto fail;
    }
    close(w.fd);
    w.fd = -1;
    atomic_store(&w.seg->size, w.pos);
    pthread_mutex_lock(&w.seg->imu);
    w.seg->idx_loaded = true;
    w.seg->ts_known = true;
    pthread_mutex_unlock(&w.seg->imu);
    seg_close_time_index(w.seg);
    step("cleaned");
    if ((rc = write_group_txnindex(c, base, p->next[b - 1], tswap, &has_tswap))) goto fail;
    for (size_t i = 0; c->o->marker_removed && i < c->aborted.n; i++) {
        const txn_aborted_t *e = &c->aborted.v[i];
        if ((c->aflags[i] & ABORTED_MARKER_GONE) && e->last_offset >= base &&
            e->last_offset < p->next[b - 1])
            c->o->marker_removed(c->o->marker_arg, l, e->producer_id, e->last_offset);
    }
    if (rename(cleaned, swap) || fio_fsync_dir(dir)) {
        rc = SM_ERR_IO;
        goto fail;
    }
    step("swap");
    rc = swap_in(c, a, b, w.seg, swap, logp, has_tswap ? tswap : NULL);
    if (rc == SM_ERR_AGAIN) {
        unlink(swap);
        unlink(tswap);
    }
    if (rc) seg_unref(w.seg);
    free(w.buf);
    return rc;
fail:
    if (w.fd >= 0) close(w.fd);
    unlink(cleaned);
    if (has_tswap) unlink(tswap);
    if (w.seg) seg_unref(w.seg);
    free(w.buf);
    return rc;
}

/* Kafka's grouping: consecutive segments whose sizes add up to at most
 * segment.bytes, whose indexes would fit segment.index.bytes and whose
 * offsets fit an int32 relative to the first. */
static int group_end(const plan_t *p, int a, int limit) {
    int64_t max_bytes = p->cfg.segment_bytes < INT32_MAX ? p->cfg.segment_bytes : INT32_MAX;
    int64_t interval = p->cfg.index_interval_bytes > 0 ? p->cfg.index_interval_bytes : 4096;
    int64_t bytes = p->sizes[a], idx = (p->sizes[a] / interval + 1) * SEG_IDX_ENTRY;
    int b = a + 1;
    while (b < limit) {
        int64_t nb = bytes + p->sizes[b];
        int64_t ni = idx + (p->sizes[b] / interval + 1) * SEG_IDX_ENTRY;
        if (nb > max_bytes || ni > p->cfg.segment_index_bytes ||
            p->next[b] - p->segs[a]->base > INT32_MAX)
            break;
        bytes = nb;
        idx = ni;
        b++;
    }
    return b;
}

int log_clean(log_t *l, const log_clean_opts_t *o, bool *did) {
    *did = false;
    plan_t p;
    int rc = plan_make(l, o->now_ms, &p);
    if (rc) return rc;
    if (!plan_cleanable(&p, o->now_ms, o->force)) {
        plan_free(&p);
        return SM_OK;
    }
    int64_t t0 = sm_time_ms();
    ctx_t c = {.l = l, .o = o, .p = &p, .now = o->now_ms, .map = o->map};
    c.st.ratio_before = plan_ratio(&p);
    clean_map_clear(o->map);
    txn_aborted_index_init(&c.aborted);
    if ((rc = txn_aborted_index_read_dir(&c.aborted, atomic_load(&l->dir)))) goto out;
    if (c.aborted.n && !(c.aflags = calloc(c.aborted.n, 1))) {
        rc = SM_ERR_NOMEM;
        goto out;
    }
    if ((rc = txn_prepass(&c))) goto out;
    if ((rc = build_map(&c))) goto out;
    if (c.clean_upto == p.clean_point && p.first_dirty < p.n && p.dirty_bytes > 0 &&
        !(p.horizon > 0 && c.now >= p.horizon)) {
        if (c.txn_bound <= p.clean_point) {
            /* An open transaction right at the clean point: nothing to do yet. */
            rc = SM_OK;
            goto out;
        }
        /* Not even one batch fits the map. */
        sm_warn("storage", "%s: log.cleaner.dedupe.buffer.size is too small for one batch", l->dir);
        rc = SM_ERR_SPACE;
        goto out;
    }
    /* Every segment holding offsets below clean_upto is rewritten. */
    int limit = 0;
    while (limit < p.n && p.segs[limit]->base < c.clean_upto)
        limit++;
    if (limit == 0) {
        rc = SM_OK;
        goto out;
    }
    for (int a = 0; a < limit;) {
        int b = group_end(&p, a, limit);
        if ((rc = clean_group(&c, a, b))) goto out;
        *did = true;
        a = b;
    }
out:
    pthread_mutex_lock(&l->mu);
    if (rc == SM_OK && *did) {
        if (c.clean_upto > l->clean_point) l->clean_point = c.clean_upto;
        l->clean_horizon = c.min_horizon;
        c.st.runs = l->clean_stats.runs + 1;
        c.st.last_run_ms = sm_time_ms();
        c.st.last_duration_ms = c.st.last_run_ms - t0;
        l->clean_stats = c.st;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc == SM_OK && *did)
        sm_info("storage",
                "%s: cleaned up to offset %" PRId64 " (dirty ratio %.2f): read %" PRId64
                " B, wrote %" PRId64 " B, removed %" PRId64 " record(s) in %" PRId64 " ms",
                l->dir, c.clean_upto, c.st.ratio_before, c.st.bytes_read, c.st.bytes_written,
                c.st.records_removed, c.st.last_duration_ms);
    free(c.last.v);
    free(c.committed.v);
    free(c.aflags);
    txn_aborted_index_free(&c.aborted);
    free(c.rbuf);
    free(c.scratch);
    plan_free(&p);
    return rc;
}

/* ---------------------------------------------------------------- recovery */

/* The offset after the last batch of a .swap file (its base when empty).
 * SM_ERR_CORRUPT unless it is whole batches with valid CRCs, as the cleaner
 * writes it before the rename: anything else did not come from a cleaning. */
static int swap_next_offset(const char *path, int64_t base, int64_t *next) {
    *next = base;
    uint8_t *data;
    size_t len;
    if (fio_read_file(path, &data, &len, (size_t)INT32_MAX)) return SM_ERR_IO;
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, data, len);
    const uint8_t *b;
    size_t blen, used = 0;
    proto_batch_header_t h;
    int rc;
    while ((rc = proto_batch_iter_next(&it, &b, &blen, &h)) == 1) {
        if (proto_batch_compute_crc(b, blen) != h.crc || h.base_offset < *next) break;
        *next = proto_batch_last_offset(&h) + 1;
        used = (size_t)(b - data) + blen;
    }
    free(data);
    return used == len ? SM_OK : SM_ERR_CORRUPT;
}

static bool name_base(const char *name, const char *ext, int64_t *base) {
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0) return false;
    int64_t b = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        b = b * 10 + (name[i] - '0');
    }
    *base = b;
    return true;
}

static void remove_segment_files(const char *dir, int64_t base) {
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%020" PRId64 "%s", dir, base, exts[i]);
        unlink(p);
    }
}

int log_cleaner_complete_swaps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? SM_OK : seg_status_of_errno(errno);
    int64_t swaps[64], logs_cap = 0, nlogs = 0;
    int nswaps = 0;
    int64_t *logs = NULL;
    int rc = SM_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t b;
        if (name_base(e->d_name, ".log.swap", &b) && nswaps < 64) {
            swaps[nswaps++] = b;
        } else if (name_base(e->d_name, ".log", &b)) {
            if (nlogs == logs_cap) {
                logs_cap = logs_cap ? logs_cap * 2 : 64;
                int64_t *nl = realloc(logs, sizeof(*nl) * (size_t)logs_cap);
                if (!nl) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                logs = nl;
            }
            logs[nlogs++] = b;
        }
    }
    closedir(d);
    for (int i = 0; rc == SM_OK && i < nswaps; i++) {
        char swap[4200], cleaned[4200], logp[4200];
        swap_paths(dir, swaps[i], cleaned, swap, logp, sizeof(swap));
        int64_t next;
        int src = swap_next_offset(swap, swaps[i], &next);
        if (src == SM_ERR_CORRUPT) {
            sm_warn("storage", "%s: %s is not a cleaned segment; removed", dir, swap);
            unlink(swap);
            continue;
        }
        if (src) {
            /* Old segments may be gone already: the swap must not be lost. */
            sm_error("storage", "%s: cannot read %s to complete a cleaning", dir, swap);
            rc = src;
            break;
        }
        /* The swap replaces its own base and every segment inside its range;
         * its aborted-transaction index, when it has one, replaces the base's
         * (those of the others go with their .log, as orphans). */
        remove_segment_files(dir, swaps[i]);
        for (int64_t k = 0; k < nlogs; k++)
            if (logs[k] > swaps[i] && logs[k] < next) remove_segment_files(dir, logs[k]);
        char tswap[4200], tpath[4200];
        snprintf(tswap, sizeof(tswap), "%s/%020" PRId64 ".txnindex.swap", dir, swaps[i]);
        snprintf(tpath, sizeof(tpath), "%s/%020" PRId64 ".txnindex", dir, swaps[i]);
        if (access(tswap, F_OK) == 0 && rename(tswap, tpath)) {
            rc = SM_ERR_IO;
            break;
        }
        if (rename(swap, logp)) {
            rc = SM_ERR_IO;
            break;
        }
        sm_info("storage", "%s: completed an interrupted cleaning of segment %020" PRId64, dir,
                swaps[i]);
    }
    if (rc == SM_OK && nswaps) rc = fio_fsync_dir(dir);
    free(logs);
    return rc;
}
