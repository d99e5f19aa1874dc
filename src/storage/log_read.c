/*
 * Reads of a partition log: file ranges for sendfile, copy-out reads, batch
 * walks, and lookups by timestamp (ListOffsets). The log's mutex is held only
 * to pick the segment and snapshot its size; file reads happen outside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/log_impl.h"

/* Largest decompressed records area a timestamp lookup inflates. */
#define TS_LOOKUP_MAX_INFLATE (64u << 20)

/* Reads a few KiB at a time so that small batches cost one pread per chunk,
 * not one per header. */
int log_walk_to_offset(int fd, int64_t pos, int64_t size, int64_t offset, int64_t *found_pos,
                       proto_batch_header_t *h) {
    uint8_t chunk[8192];
    int64_t cstart = 0, clen = 0;
    while (pos < size) {
        if (pos < cstart || pos + PROTO_BATCH_HEADER_SIZE > cstart + clen) {
            int64_t want =
                size - pos < (int64_t)sizeof(chunk) ? size - pos : (int64_t)sizeof(chunk);
            if (want < PROTO_BATCH_HEADER_SIZE) return SM_ERR_CORRUPT;
            if (seg_pread(fd, chunk, (size_t)want, pos)) return SM_ERR_CORRUPT;
            cstart = pos;
            clen = want;
        }
        if (proto_batch_parse_header(chunk + (pos - cstart), PROTO_BATCH_HEADER_SIZE, h))
            return SM_ERR_CORRUPT;
        int64_t total = (int64_t)proto_batch_total_size(h);
        if (pos + total > size) return SM_ERR_CORRUPT;
        if (proto_batch_last_offset(h) >= offset) {
            *found_pos = pos;
            return SM_OK;
        }
        pos += total;
    }
    return SM_ERR_NOTFOUND;
}

/* Picks the segment holding offset; returns it referenced with its size, or
 * NULL with *rc (SM_OK and nothing to read at the end of the log). */
static log_segment_t *pick_segment(log_t *l, int64_t offset, int64_t *size, int32_t *interval,
                                   unsigned *gen, int *rc) {
    log_segment_t *s = NULL;
    *rc = SM_OK;
    pthread_mutex_lock(&l->mu);
    int64_t end = atomic_load(&l->end_offset);
    if (atomic_load(&l->offline)) {
        *rc = SM_ERR_IO;
    } else if (offset < l->start_offset || offset > end) {
        *rc = SM_ERR_RANGE;
    } else if (offset < end) {
        int i = log_find_segment(l, offset);
        /* A segment cut short by recovery may end before the next one begins. */
        while (i < l->nsegs && l->segs[i]->next_offset <= offset)
            i++;
        if (i < l->nsegs) {
            s = l->segs[i];
            seg_ref(s);
            *gen = atomic_load(&s->truncations);
            *size = atomic_load(&s->size);
            *interval = l->cfg.index_interval_bytes;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* Where a read of offset goes on when segment s holds nothing at or after it:
 * the next segment's base, offset itself when s left the list, -1 when s is
 * the last segment (then the data is missing, not compacted away). */
static int64_t skip_gap(log_t *l, log_segment_t *s, int64_t offset) {
    int64_t r = offset;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->nsegs; i++) {
        if (l->segs[i] != s) continue;
        r = i + 1 < l->nsegs ? l->segs[i + 1]->base : -1;
        if (r >= 0 && r < offset) r = offset;
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

/* The file position in s (size bytes long) of the batch holding end_offset,
 * or size when the segment ends before it. */
static int64_t bound_position(log_segment_t *s, int fd, int32_t interval, int64_t size,
                              int64_t end_offset) {
    int64_t pos, found;
    proto_batch_header_t h;
    if (seg_lookup_position(s, interval, end_offset, &pos) != SM_OK) return size;
    if (log_walk_to_offset(fd, pos, size, end_offset, &found, &h) != SM_OK) return size;
    /* A batch that straddles the bound (end_offset inside it) ends the read
     * before it: bounds are batch boundaries (high watermark, LSO). */
    return found;
}

int log_read(log_t *l, int64_t offset, size_t max_bytes, bool min_one, log_range_t *out) {
    return log_read_upto(l, offset, INT64_MAX, max_bytes, min_one, out);
}

int log_read_upto(log_t *l, int64_t offset, int64_t end_offset, size_t max_bytes, bool min_one,
                  log_range_t *out) {
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    bool index_rebuilt = false;
    for (;;) {
        int64_t size = 0;
        int32_t interval = 0;
        unsigned gen = 0;
        int rc;
        log_segment_t *s = pick_segment(l, offset, &size, &interval, &gen, &rc);
        if (!s) return rc;
        int64_t pos, from = 0;
        int fd = -1;
        proto_batch_header_t h;
        if ((rc = seg_lookup_position(s, interval, offset, &pos)) == SM_OK &&
            (rc = seg_fd_acquire(s, &fd)) == SM_OK) {
            from = pos;
            rc = log_walk_to_offset(fd, pos, size, offset, &pos, &h);
            if (rc == SM_OK && h.base_offset >= end_offset) {
                /* Nothing below the bound: an empty range at the bound. */
                seg_fd_release(s);
                seg_unref(s);
                out->first_offset = h.base_offset;
                return SM_OK;
            }
            if (rc == SM_OK) {
                int64_t limit = end_offset != INT64_MAX
                                    ? bound_position(s, fd, interval, size, end_offset)
                                    : size;
                size_t avail = (size_t)(limit - pos);
                size_t len = avail < max_bytes ? avail : max_bytes;
                size_t first = proto_batch_total_size(&h);
                if (min_one && len < first) len = first;
                out->seg = s;
                out->fd = fd;
                out->file_pos = pos;
                out->len = len;
                out->first_offset = h.base_offset;
                return SM_OK;
            }
            seg_fd_release(s);
        }
        bool truncated = atomic_load(&s->truncations) != gen;
        if (rc == SM_ERR_IO && seg_retired(s)) {
            /* Deleted (and maybe unlinked) since it was picked: the next pick
             * answers from the log as it is now. */
            seg_unref(s);
            continue;
        }
        if (rc == SM_ERR_NOTFOUND && !truncated) {
            /* Compaction removed everything from offset to the segment's
             * end: the next segment answers (or, when the cleaner swapped
             * this one out, the next pick). */
            int64_t skip = skip_gap(l, s, offset);
            if (skip >= 0) {
                offset = skip;
                seg_unref(s);
                continue;
            }
        }
        if (rc == SM_ERR_CORRUPT || rc == SM_ERR_NOTFOUND) {
            if (truncated) {
                /* Truncated under us: the next pick sees the new end. */
                seg_unref(s);
                continue;
            }
            if (from != 0 && !index_rebuilt) {
                /* Garbage where the index pointed: rebuild it, once. */
                seg_mark_index_corrupt(s);
                index_rebuilt = true;
                seg_unref(s);
                continue;
            }
            sm_error("storage", "%s: no valid batch for offset %lld in segment %lld", l->dir,
                     (long long)offset, (long long)s->base);
            rc = SM_ERR_CORRUPT;
        }
        seg_unref(s);
        return rc;
    }
}

void log_range_release(log_range_t *r) {
    if (r->seg) {
        seg_fd_release(r->seg);
        seg_unref(r->seg);
    }
    r->seg = NULL;
    r->fd = -1;
}

int64_t log_range_copy(const log_range_t *r, uint8_t *buf, size_t cap) {
    size_t n = r->len < cap ? r->len : cap;
    if (n == 0) return 0;
    if (seg_pread(r->fd, buf, n, r->file_pos)) return SM_ERR_IO;
    return (int64_t)n;
}

int log_read_copy(log_t *l, int64_t offset, size_t max_bytes, bool min_one, uint8_t *buf,
                  size_t cap, size_t *len, int64_t *first_offset) {
    log_range_t r;
    *len = 0;
    *first_offset = -1;
    int rc = log_read(l, offset, max_bytes, min_one, &r);
    if (rc) return rc;
    if (r.len > cap) {
        log_range_release(&r);
        return SM_ERR_SPACE;
    }
    int64_t n = log_range_copy(&r, buf, cap);
    *first_offset = r.first_offset;
    log_range_release(&r);
    if (n < 0) return (int)n;
    *len = (size_t)n;
    return SM_OK;
}

int log_for_each_batch(log_t *l, int64_t from,
                       int (*fn)(void *arg, const uint8_t *batch, size_t len,
                                 const struct proto_batch_header *h),
                       void *arg) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = SM_OK;
    int64_t start = log_start_offset(l);
    int64_t deadline = log_descriptor_deadline();
    if (from < start) from = start;
    while (rc == SM_OK && from < log_end_offset(l)) {
        log_range_t r;
        /* Loading state from a log (producers, groups, transactions) waits
         * out a descriptor shortage rather than stop half-way. */
        while (log_descriptor_retry(rc = log_read(l, from, 1 << 20, true, &r), deadline))
            ;
        if (rc) break;
        if (r.len == 0) {
            log_range_release(&r);
            break;
        }
        if (r.len > cap) {
            uint8_t *n = realloc(buf, r.len);
            if (!n) {
                log_range_release(&r);
                rc = SM_ERR_NOMEM;
                break;
            }
            buf = n;
            cap = r.len;
        }
        int64_t got = log_range_copy(&r, buf, r.len);
        log_range_release(&r);
        if (got <= 0) {
            rc = SM_ERR_IO;
            break;
        }
        proto_batch_iter_t it;
        proto_batch_iter_init(&it, buf, (size_t)got);
        const uint8_t *bp;
        size_t blen;
        proto_batch_header_t h;
        int64_t next = from;
        while (rc == SM_OK && proto_batch_iter_next(&it, &bp, &blen, &h) == 1) {
            rc = fn(arg, bp, blen, &h);
            next = proto_batch_last_offset(&h) + 1;
        }
        if (next <= from) break;
        from = next;
    }
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- timestamps */

/*
 * The first record of a batch at or after min_offset whose timestamp is >= ts
 * (exact: == ts). Decompresses compressed batches. SM_ERR_NOTFOUND when none.
 */
static int batch_find_record(const uint8_t *batch, size_t len, const proto_batch_header_t *h,
                             int64_t min_offset, int64_t ts, bool exact, int64_t *off,
                             int64_t *rts) {
    if (h->attributes & PROTO_ATTR_LOG_APPEND_TIME) {
        /* Every record carries the batch's append time. */
        bool match = exact ? h->max_timestamp == ts : h->max_timestamp >= ts;
        if (!match || proto_batch_last_offset(h) < min_offset) return SM_ERR_NOTFOUND;
        *off = h->base_offset > min_offset ? h->base_offset : min_offset;
        *rts = h->max_timestamp;
        return SM_OK;
    }
    const uint8_t *data = batch + PROTO_BATCH_HEADER_SIZE;
    size_t dlen = len - PROTO_BATCH_HEADER_SIZE;
    uint8_t *inflated = NULL;
    int rc = SM_OK;
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE) {
        size_t cap = dlen * 4 + 4096, got = 0;
        for (;;) {
            if (cap > TS_LOOKUP_MAX_INFLATE) cap = TS_LOOKUP_MAX_INFLATE;
            uint8_t *n = realloc(inflated, cap);
            if (!n) {
                rc = SM_ERR_NOMEM;
                goto out;
            }
            inflated = n;
            rc = proto_decompress(proto_batch_compression(h), data, dlen, inflated, cap, &got);
            if (rc != SM_ERR_RANGE || cap == TS_LOOKUP_MAX_INFLATE) break;
            cap *= 2;
        }
        if (rc) goto out;
        data = inflated;
        dlen = got;
    }
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, data, dlen, h->records_count);
    rc = SM_ERR_NOTFOUND;
    while (proto_record_iter_next(&it, &rec) == 1) {
        int64_t t = h->base_timestamp + rec.timestamp_delta;
        int64_t o = h->base_offset + rec.offset_delta;
        if (o >= min_offset && (exact ? t == ts : t >= ts)) {
            *off = o;
            *rts = t;
            rc = SM_OK;
            break;
        }
    }
out:
    free(inflated);
    return rc;
}

/* Referenced snapshot of the segments from the one holding `from` on. */
static int snapshot_segments(log_t *l, int64_t *from, log_segment_t ***out, int64_t **sizes,
                             int32_t *interval) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    if (atomic_load(&l->offline)) {
        pthread_mutex_unlock(&l->mu);
        return SM_ERR_IO;
    }
    if (*from < l->start_offset) *from = l->start_offset;
    int first = log_find_segment(l, *from);
    int n = l->nsegs - first;
    *out = malloc(sizeof(**out) * (size_t)n);
    *sizes = malloc(sizeof(**sizes) * (size_t)n);
    if (!*out || !*sizes) {
        free(*out);
        free(*sizes);
        rc = SM_ERR_NOMEM;
    } else {
        for (int i = 0; i < n; i++) {
            (*out)[i] = l->segs[first + i];
            seg_ref((*out)[i]);
            (*sizes)[i] = atomic_load(&l->segs[first + i]->size);
        }
        *interval = l->cfg.index_interval_bytes;
    }
    pthread_mutex_unlock(&l->mu);
    return rc < 0 ? rc : n;
}

/* Reads the batch at pos (header h) into *buf (grown as needed). */
static int read_batch(int fd, int64_t pos, const proto_batch_header_t *h, uint8_t **buf,
                      size_t *cap) {
    size_t total = proto_batch_total_size(h);
    if (total > *cap) {
        uint8_t *n = realloc(*buf, total);
        if (!n) return SM_ERR_NOMEM;
        *buf = n;
        *cap = total;
    }
    return seg_pread(fd, *buf, total, pos);
}

/* Searches one segment from offset `from` for the first record with
 * timestamp >= ts (exact: == ts). */
static int search_segment(log_segment_t *s, int64_t size, int32_t interval, int64_t from,
                          int64_t ts, bool exact, int64_t *off, int64_t *rts) {
    int64_t pos;
    int rc = seg_lookup_position(s, interval, from, &pos);
    if (rc) return rc;
    int fd;
    if ((rc = seg_fd_acquire(s, &fd))) return rc;
    uint8_t *buf = NULL;
    size_t cap = 0;
    proto_batch_header_t h;
    rc = SM_ERR_NOTFOUND;
    while (pos < size) {
        int64_t at;
        int w = log_walk_to_offset(fd, pos, size, from, &at, &h);
        if (w) {
            rc = w == SM_ERR_NOTFOUND ? w : SM_ERR_CORRUPT;
            break;
        }
        pos = at + (int64_t)proto_batch_total_size(&h);
        if (exact ? h.max_timestamp != ts : h.max_timestamp < ts) {
            from = proto_batch_last_offset(&h) + 1;
            continue;
        }
        int r = read_batch(fd, at, &h, &buf, &cap);
        if (r == SM_OK)
            r = batch_find_record(buf, proto_batch_total_size(&h), &h, from, ts, exact, off, rts);
        if (r == SM_OK || r == SM_ERR_NOMEM || r == SM_ERR_IO) {
            rc = r;
            break;
        }
        if (r != SM_ERR_NOTFOUND) {
            /* Undecodable records: answer with the batch, as the index would. */
            *off = h.base_offset > from ? h.base_offset : from;
            *rts = h.max_timestamp;
            rc = SM_OK;
            break;
        }
        from = proto_batch_last_offset(&h) + 1;
    }
    free(buf);
    seg_fd_release(s);
    return rc;
}

static int offset_for_timestamp_once(log_t *l, int64_t ts, int64_t *offset, int64_t *found_ts) {
    *offset = -1;
    *found_ts = -1;
    log_segment_t **v;
    int64_t *sizes, start = 0;
    int32_t interval;
    int n = snapshot_segments(l, &start, &v, &sizes, &interval);
    if (n < 0) return n;
    int rc = SM_OK;
    for (int i = 0; i < n; i++) {
        if (sizes[i] == 0) continue;
        int64_t mts, moff;
        if ((rc = seg_max_timestamp(v[i], interval, &mts, &moff))) break;
        if (mts < ts) continue;
        int64_t from;
        if ((rc = seg_lookup_time(v[i], interval, ts, &from))) break;
        if (from < start) from = start;
        rc = search_segment(v[i], sizes[i], interval, from, ts, false, offset, found_ts);
        if (rc == SM_OK) break;
        if (rc != SM_ERR_NOTFOUND) break;
        rc = SM_OK;
    }
    for (int i = 0; i < n; i++)
        seg_unref(v[i]);
    free(v);
    free(sizes);
    return rc;
}

static int max_timestamp_once(log_t *l, int64_t *offset, int64_t *ts) {
    *offset = -1;
    *ts = -1;
    log_segment_t **v;
    int64_t *sizes, start = 0;
    int32_t interval;
    int n = snapshot_segments(l, &start, &v, &sizes, &interval);
    if (n < 0) return n;
    int rc = SM_OK, best = -1;
    int64_t best_off = -1;
    for (int i = 0; i < n; i++) {
        if (sizes[i] == 0) continue;
        int64_t mts, moff;
        if ((rc = seg_max_timestamp(v[i], interval, &mts, &moff))) break;
        if (mts > *ts) {
            *ts = mts;
            best_off = moff;
            best = i;
        }
    }
    if (rc == SM_OK && best >= 0) {
        /* The time index names the batch (its last offset); the answer is the
         * record holding the timestamp (KIP-734), found inside that batch. */
        int64_t from = best_off, found = -1, fts;
        int64_t pos;
        int fd;
        if (seg_lookup_position(v[best], interval, from, &pos) == SM_OK &&
            seg_fd_acquire(v[best], &fd) == SM_OK) {
            proto_batch_header_t h;
            int64_t at;
            uint8_t *buf = NULL;
            size_t cap = 0;
            if (log_walk_to_offset(fd, pos, sizes[best], from, &at, &h) == SM_OK &&
                read_batch(fd, at, &h, &buf, &cap) == SM_OK &&
                batch_find_record(buf, proto_batch_total_size(&h), &h, h.base_offset, *ts, true,
                                  &found, &fts) == SM_OK)
                best_off = found;
            free(buf);
            seg_fd_release(v[best]);
        }
        *offset = best_off;
    }
    for (int i = 0; i < n; i++)
        seg_unref(v[i]);
    free(v);
    free(sizes);
    return rc;
}

/* A truncation racing with a lookup can make it read past the new end: such a
 * lookup answers SM_ERR_CORRUPT and is simply made again. */
int log_offset_for_timestamp(log_t *l, int64_t ts, int64_t *offset, int64_t *found_ts) {
    int rc = SM_ERR_CORRUPT;
    for (int attempt = 0; attempt < 8 && rc == SM_ERR_CORRUPT; attempt++)
        rc = offset_for_timestamp_once(l, ts, offset, found_ts);
    return rc;
}

int log_max_timestamp(log_t *l, int64_t *offset, int64_t *ts) {
    int rc = SM_ERR_CORRUPT;
    for (int attempt = 0; attempt < 8 && rc == SM_ERR_CORRUPT; attempt++)
        rc = max_timestamp_once(l, offset, ts);
    return rc;
}
