/*
 * A partition log (see log.h): segments, append with roll, reads as file
 * ranges, indexes, recovery, truncation, retention and flushing.
 *
 * Invariants, under l->mu:
 *  1. segs[] is sorted by base; segs[i]->next_offset == segs[i+1]->base except
 *     that a segment may end earlier when it was cut by recovery.
 *  2. end_offset == segs[last]->next_offset; start_offset >= segs[0]->base.
 *  3. Every byte of a segment below its size is a whole, validated batch.
 *  4. offline is sticky: set on the first failed write or fsync.
 */
#include "storage/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/records.h"
#include "storage/segment.h"

struct log {
    pthread_mutex_t mu;
    pthread_mutex_t flush_mu; /* serialises fsyncs: group commit */
    char *dir;
    log_config_t cfg;
    log_segment_t **segs;
    int nsegs, cap;
    int64_t start_offset;
    _Atomic int64_t end_offset;
    _Atomic int64_t flushed_offset;
    int64_t unflushed_msgs;
    int64_t first_unflushed_ms; /* 0 when everything is flushed */
    bool offline;
    log_segment_t **trash; /* renamed .deleted segments waiting for unlink */
    int ntrash, cap_trash;
};

void log_config_default(log_config_t *c) {
    c->segment_bytes = 1073741824;
    c->segment_ms = 604800000;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10485760;
    c->retention_ms = 604800000;
    c->retention_bytes = -1;
    c->flush_interval_messages = INT64_MAX;
    c->flush_interval_ms = INT64_MAX;
    c->file_delete_delay_ms = 60000;
    c->fsync_before_ack = false;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- segments */

static char *seg_path(const char *dir, int64_t base) {
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%020" PRId64, dir, base);
    return p;
}

static int open_ext(const char *path, const char *ext, int flags) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s%s", path, ext);
    return open(buf, flags | O_CLOEXEC, 0644);
}

static void seg_close_files(log_segment_t *s) {
    if (s->fd >= 0) close(s->fd);
    if (s->idx_fd >= 0) close(s->idx_fd);
    if (s->tidx_fd >= 0) close(s->tidx_fd);
    s->fd = s->idx_fd = s->tidx_fd = -1;
}

static void seg_free(log_segment_t *s) {
    seg_close_files(s);
    free(s->idx);
    free(s->tidx);
    free(s->path);
    free(s);
}

static void seg_ref(log_segment_t *s) { atomic_fetch_add(&s->refs, 1); }
static void seg_unref(log_segment_t *s) {
    if (atomic_fetch_sub(&s->refs, 1) == 1) seg_free(s);
}

static log_segment_t *seg_new(const char *dir, int64_t base) {
    log_segment_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->base = base;
    s->next_offset = base;
    s->fd = s->idx_fd = s->tidx_fd = -1;
    s->max_ts = -1;
    s->max_ts_offset = -1;
    atomic_init(&s->refs, 1);
    s->path = seg_path(dir, base);
    if (!s->path) {
        free(s);
        return NULL;
    }
    return s;
}

static int idx_push(log_segment_t *s, int32_t rel, int32_t pos) {
    if (s->n_idx == s->cap_idx) {
        int32_t cap = s->cap_idx ? s->cap_idx * 2 : 64;
        seg_index_entry_t *n = realloc(s->idx, sizeof(*n) * (size_t)cap);
        if (!n) return SM_ERR_NOMEM;
        s->idx = n;
        s->cap_idx = cap;
    }
    s->idx[s->n_idx++] = (seg_index_entry_t){rel, pos};
    return SM_OK;
}

static int tidx_push(log_segment_t *s, int64_t ts, int32_t rel) {
    if (s->n_tidx == s->cap_tidx) {
        int32_t cap = s->cap_tidx ? s->cap_tidx * 2 : 64;
        seg_time_entry_t *n = realloc(s->tidx, sizeof(*n) * (size_t)cap);
        if (!n) return SM_ERR_NOMEM;
        s->tidx = n;
        s->cap_tidx = cap;
    }
    s->tidx[s->n_tidx++] = (seg_time_entry_t){ts, rel};
    return SM_OK;
}

/* Notes one batch (at pos, header h) in the in-memory indexes; when
 * write_files, also appends the new entries to .index / .timeindex. */
static int seg_note_batch(log_segment_t *s, const log_config_t *cfg, int64_t pos,
                          const proto_batch_header_t *h, bool write_files) {
    size_t size = proto_batch_total_size(h);
    int64_t last = proto_batch_last_offset(h);
    int32_t rel = (int32_t)(last - s->base);
    if (s->size == 0 && s->created_ms == 0) s->created_ms = now_ms();
    /* Kafka indexes a batch once index.interval.bytes have passed since the
     * previous entry; the entry maps the batch's last offset to its start. */
    if (s->bytes_since_index >= cfg->index_interval_bytes || s->n_idx == 0) {
        if (s->n_idx == 0 && pos != 0) {
            /* first entry only at a later batch: fine, lookups fall back to 0 */
        }
        if (idx_push(s, rel, (int32_t)pos)) return SM_ERR_NOMEM;
        if (write_files && s->idx_fd >= 0) {
            uint8_t e[8];
            sm_writer_t w = sm_writer_make(e, 8);
            sm_wr_i32(&w, rel);
            sm_wr_i32(&w, (int32_t)pos);
            if (fio_pwrite_all(s->idx_fd, e, 8, (int64_t)(s->n_idx - 1) * 8)) return SM_ERR_IO;
        }
        s->bytes_since_index = 0;
        int64_t ts = h->max_timestamp;
        if (ts > s->max_ts || s->n_tidx == 0) {
            int64_t tts = ts > s->max_ts ? ts : s->max_ts;
            int64_t toff = ts > s->max_ts ? last : s->max_ts_offset;
            if (s->n_tidx == 0 || tts > s->tidx[s->n_tidx - 1].timestamp) {
                if (tidx_push(s, tts, (int32_t)(toff - s->base))) return SM_ERR_NOMEM;
                if (write_files && s->tidx_fd >= 0) {
                    uint8_t e[12];
                    sm_writer_t w = sm_writer_make(e, 12);
                    sm_wr_i64(&w, tts);
                    sm_wr_i32(&w, (int32_t)(toff - s->base));
                    if (fio_pwrite_all(s->tidx_fd, e, 12, (int64_t)(s->n_tidx - 1) * 12))
                        return SM_ERR_IO;
                }
            }
        }
    }
    s->bytes_since_index += (int64_t)size;
    if (h->max_timestamp > s->max_ts) {
        s->max_ts = h->max_timestamp;
        s->max_ts_offset = last;
    }
    s->next_offset = last + 1;
    return SM_OK;
}

/* Rewrites both index files from memory (after a rebuild or truncation). */
static int seg_write_indexes(log_segment_t *s) {
    char path[4096];
    uint8_t *buf = malloc((size_t)(s->n_idx > s->n_tidx ? s->n_idx : s->n_tidx) * 12 + 12);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, (size_t)s->n_idx * 8);
    for (int32_t i = 0; i < s->n_idx; i++) {
        sm_wr_i32(&w, s->idx[i].rel_offset);
        sm_wr_i32(&w, s->idx[i].position);
    }
    snprintf(path, sizeof(path), "%s.index", s->path);
    int rc = fio_write_file(path, buf, (size_t)s->n_idx * 8, false);
    w = sm_writer_make(buf, (size_t)s->n_tidx * 12);
    for (int32_t i = 0; i < s->n_tidx; i++) {
        sm_wr_i64(&w, s->tidx[i].timestamp);
        sm_wr_i32(&w, s->tidx[i].rel_offset);
    }
    snprintf(path, sizeof(path), "%s.timeindex", s->path);
    if (!rc) rc = fio_write_file(path, buf, (size_t)s->n_tidx * 12, false);
    free(buf);
    return rc;
}

static int seg_open_index_fds(log_segment_t *s) {
    if (s->idx_fd < 0) s->idx_fd = open_ext(s->path, ".index", O_RDWR | O_CREAT);
    if (s->tidx_fd < 0) s->tidx_fd = open_ext(s->path, ".timeindex", O_RDWR | O_CREAT);
    return (s->idx_fd < 0 || s->tidx_fd < 0) ? SM_ERR_IO : SM_OK;
}

/*
 * Loads .index and .timeindex. Returns SM_ERR_CORRUPT when they are missing or
 * inconsistent with the segment (the caller then rebuilds them by scanning).
 */
static int seg_load_indexes(log_segment_t *s) {
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s.index", s->path);
    if (fio_read_file(path, &data, &len, 64 << 20)) return SM_ERR_CORRUPT;
    int rc = SM_ERR_CORRUPT;
    if (len % 8) goto out;
    sm_reader_t r = sm_reader_make(data, len);
    int32_t prev_rel = -1, prev_pos = -1;
    for (size_t i = 0; i < len / 8; i++) {
        int32_t rel = 0, pos = 0;
        sm_rd_i32(&r, &rel);
        sm_rd_i32(&r, &pos);
        if (i > 0 && rel == 0 && pos == 0) break; /* preallocated zeros */
        if (rel <= prev_rel || pos <= prev_pos || pos >= s->size || rel < 0) goto out;
        if (idx_push(s, rel, pos)) goto out;
        prev_rel = rel;
        prev_pos = pos;
    }
    free(data);
    data = NULL;
    snprintf(path, sizeof(path), "%s.timeindex", s->path);
    if (fio_read_file(path, &data, &len, 64 << 20)) goto out;
    if (len % 12) goto out;
    r = sm_reader_make(data, len);
    int64_t prev_ts = INT64_MIN;
    for (size_t i = 0; i < len / 12; i++) {
        int64_t ts = 0;
        int32_t rel = 0;
        sm_rd_i64(&r, &ts);
        sm_rd_i32(&r, &rel);
        if (i > 0 && ts == 0 && rel == 0) break;
        if (ts < prev_ts || rel < 0) goto out;
        if (tidx_push(s, ts, rel)) goto out;
        prev_ts = ts;
        if (ts > s->max_ts) {
            s->max_ts = ts;
            s->max_ts_offset = s->base + rel;
        }
    }
    rc = SM_OK;
out:
    free(data);
    if (rc) {
        s->n_idx = s->n_tidx = 0;
        s->max_ts = s->max_ts_offset = -1;
    }
    return rc;
}

/*
 * Scans the segment from position 0, rebuilding its indexes. With validate,
 * every batch is read and checked (size, CRC, records); otherwise only headers
 * are read. Returns the position where whole valid batches end in *valid_end.
 */
static int seg_scan(log_segment_t *s, const log_config_t *cfg, bool validate, int64_t file_size,
                    int64_t *valid_end) {
    s->n_idx = s->n_tidx = 0;
    s->max_ts = s->max_ts_offset = -1;
    s->bytes_since_index = 0;
    s->next_offset = s->base;
    int64_t pos = 0;
    uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    int rc = SM_OK;
    int64_t prev_last = s->base - 1;
    while (pos + PROTO_BATCH_HEADER_SIZE <= file_size) {
        if (fio_pread_all(s->fd, hdr, sizeof(hdr), pos)) {
            rc = SM_ERR_IO;
            break;
        }
        proto_batch_header_t h;
        if (proto_batch_parse_header(hdr, sizeof(hdr), &h)) break;
        size_t total = proto_batch_total_size(&h);
        if (pos + (int64_t)total > file_size) break;
        if (h.base_offset <= prev_last || h.base_offset < s->base ||
            proto_batch_last_offset(&h) - s->base > INT32_MAX)
            break;
        if (validate) {
            if (total > bufcap) {
                uint8_t *n = realloc(buf, total);
                if (!n) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                buf = n;
                bufcap = total;
            }
            if (fio_pread_all(s->fd, buf, total, pos)) {
                rc = SM_ERR_IO;
                break;
            }
            if (proto_batch_validate(buf, total, &h)) break;
        }
        if ((rc = seg_note_batch(s, cfg, pos, &h, false))) break;
        prev_last = proto_batch_last_offset(&h);
        pos += (int64_t)total;
    }
    free(buf);
    *valid_end = pos;
    return rc;
}

/* Largest index entry with rel_offset < target_rel... returns the file
 * position to start scanning for the batch containing offset. */
static int64_t seg_lookup(const log_segment_t *s, int64_t offset) {
    int32_t rel = (int32_t)(offset - s->base);
    int32_t lo = 0, hi = s->n_idx - 1, best = -1;
    /* idx entries map a batch's LAST offset to its start: the batch holding
     * `offset` starts at or after the entry with the largest rel < offset. */
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (s->idx[mid].rel_offset < rel) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best < 0 ? 0 : s->idx[best].position;
}

/* ---------------------------------------------------------------- the log */

static int segs_push(log_t *l, log_segment_t *s) {
    if (l->nsegs == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        log_segment_t **n = realloc(l->segs, sizeof(*n) * (size_t)cap);
        if (!n) return SM_ERR_NOMEM;
        l->segs = n;
        l->cap = cap;
    }
    l->segs[l->nsegs++] = s;
    return SM_OK;
}

static log_segment_t *active(log_t *l) { return l->segs[l->nsegs - 1]; }

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void go_offline(log_t *l, const char *what) {
    if (!l->offline)
        sm_error("storage", "%s: %s failed (%s); the partition is offline until restart", l->dir,
                 what, strerror(errno));
    l->offline = true;
}

/* Unlinks a segment's files (all three extensions). */
static void seg_unlink(log_segment_t *s, const char *suffix) {
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    char path[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s%s", s->path, exts[i], suffix);
        unlink(path);
    }
}

/* Moves a segment out of the log: renamed to *.deleted, unlinked later. */
static int seg_retire(log_t *l, log_segment_t *s, int64_t now) {
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    char from[4096], to[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof(from), "%s%s", s->path, exts[i]);
        snprintf(to, sizeof(to), "%s%s.deleted", s->path, exts[i]);
        if (rename(from, to) && errno != ENOENT) return SM_ERR_IO;
    }
    s->deleted = true;
    s->delete_after_ms = now + l->cfg.file_delete_delay_ms;
    if (l->ntrash == l->cap_trash) {
        int cap = l->cap_trash ? l->cap_trash * 2 : 8;
        log_segment_t **n = realloc(l->trash, sizeof(*n) * (size_t)cap);
        if (!n) {
            seg_unlink(s, ".deleted");
            seg_unref(s);
            return SM_OK;
        }
        l->trash = n;
        l->cap_trash = cap;
    }
    l->trash[l->ntrash++] = s;
    return SM_OK;
}

static int new_active_segment(log_t *l, int64_t base) {
    log_segment_t *s = seg_new(l->dir, base);
    if (!s) return SM_ERR_NOMEM;
    s->fd = open_ext(s->path, ".log", O_RDWR | O_CREAT | O_TRUNC);
    if (s->fd < 0 || seg_open_index_fds(s) || ftruncate(s->idx_fd, 0) || ftruncate(s->tidx_fd, 0)) {
        seg_free(s);
        return SM_ERR_IO;
    }
    if (segs_push(l, s)) {
        seg_unlink(s, "");
        seg_free(s);
        return SM_ERR_NOMEM;
    }
    fio_fsync_dir(l->dir);
    return SM_OK;
}

/* Closes the index fds of a segment that stops being active. */
static int seg_deactivate(log_segment_t *s) {
    int rc = SM_OK;
    if (fdatasync(s->fd)) rc = SM_ERR_IO;
    if (s->idx_fd >= 0 && fsync(s->idx_fd)) rc = SM_ERR_IO;
    if (s->tidx_fd >= 0 && fsync(s->tidx_fd)) rc = SM_ERR_IO;
    if (s->idx_fd >= 0) close(s->idx_fd);
    if (s->tidx_fd >= 0) close(s->tidx_fd);
    s->idx_fd = s->tidx_fd = -1;
    return rc;
}

static int roll(log_t *l) {
    log_segment_t *s = active(l);
    if (seg_deactivate(s)) {
        go_offline(l, "fsync on roll");
        return SM_ERR_IO;
    }
    int rc = new_active_segment(l, s->next_offset);
    if (rc == SM_OK) {
        /* Everything before the new segment is on disk now. */
        if (atomic_load(&l->flushed_offset) < s->next_offset)
            atomic_store(&l->flushed_offset, s->next_offset);
    }
    return rc;
}

int log_open(const char *dir, const log_config_t *cfg, bool clean, int64_t recovery_point,
             int64_t log_start, log_t **out) {
    if (mkdir(dir, 0755) && errno != EEXIST) return SM_ERR_IO;
    log_t *l = calloc(1, sizeof(*l));
    if (!l) return SM_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->flush_mu, NULL);
    l->dir = strdup(dir);
    l->cfg = *cfg;
    int rc = SM_ERR_IO;
    int64_t *bases = NULL;
    int nb = 0, capb = 0;
    DIR *d = opendir(dir);
    if (!d || !l->dir) goto fail;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char *end;
        if (n == 20 + 4 && strcmp(e->d_name + 20, ".log") == 0) {
            long long b = strtoll(e->d_name, &end, 10);
            if (end != e->d_name + 20 || b < 0) continue;
            if (nb == capb) {
                capb = capb ? capb * 2 : 16;
                int64_t *nbases = realloc(bases, sizeof(*bases) * (size_t)capb);
                if (!nbases) {
                    rc = SM_ERR_NOMEM;
                    goto fail;
                }
                bases = nbases;
            }
            bases[nb++] = b;
        } else if (n > 8 && strcmp(e->d_name + n - 8, ".deleted") == 0) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p); /* left over from before a restart */
        } else if (n > 8 && (strstr(e->d_name, ".cleaned") || strstr(e->d_name, ".swap"))) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    d = NULL;
    if (nb) qsort(bases, (size_t)nb, sizeof(*bases), cmp_i64);

    int64_t truncated_bytes = 0, dropped_segments = 0;
    bool cut = false;
    for (int i = 0; i < nb; i++) {
        log_segment_t *s = seg_new(dir, bases[i]);
        if (!s) {
            rc = SM_ERR_NOMEM;
            goto fail;
        }
        if (cut) {
            /* Everything after a corrupt point is gone, like Kafka's recovery. */
            seg_unlink(s, "");
            seg_free(s);
            dropped_segments++;
            continue;
        }
        s->fd = open_ext(s->path, ".log", O_RDWR);
        struct stat st;
        if (s->fd < 0 || fstat(s->fd, &st)) {
            seg_free(s);
            goto fail;
        }
        int64_t file_size = st.st_size;
        bool last = i == nb - 1;
        int64_t next_base = last ? -1 : bases[i + 1];
        bool needs_recovery = !clean && (last || next_base > recovery_point);
        s->size = file_size;
        if (!needs_recovery && seg_load_indexes(s) == SM_OK) {
            s->next_offset = last ? (recovery_point > s->base ? recovery_point : s->base)
                                  : next_base;
            if (last && (recovery_point < s->base || (file_size > 0 && recovery_point == s->base))) {
                /* The checkpoint does not describe this segment: scan it. */
                needs_recovery = true;
            }
        } else if (!needs_recovery) {
            needs_recovery = true; /* missing or corrupt index: rebuild */
        }
        if (needs_recovery) {
            int64_t valid_end;
            if ((rc = seg_scan(s, &l->cfg, true, file_size, &valid_end))) {
                seg_free(s);
                goto fail;
            }
            if (valid_end < file_size) {
                truncated_bytes += file_size - valid_end;
                if (ftruncate(s->fd, valid_end)) {
                    seg_free(s);
                    rc = SM_ERR_IO;
                    goto fail;
                }
                cut = true;
            }
            s->size = valid_end;
            if ((rc = seg_write_indexes(s))) {
                seg_free(s);
                goto fail;
            }
        }
        if (s->size == 0 && !last && !cut) {
            /* An empty segment in the middle (crash during roll): drop it. */
            seg_unlink(s, "");
            seg_free(s);
            continue;
        }
        if ((rc = segs_push(l, s))) {
            seg_free(s);
            goto fail;
        }
    }
    if (truncated_bytes || dropped_segments)
        sm_warn("storage", "%s: recovery cut %lld bytes of torn or corrupt data and %lld later "
                "segment(s); log end is now %lld",
                dir, (long long)truncated_bytes, (long long)dropped_segments,
                l->nsegs ? (long long)active(l)->next_offset : 0LL);
    if (l->nsegs == 0) {
        int64_t base = log_start > 0 ? log_start : 0;
        if ((rc = new_active_segment(l, base))) goto fail;
    } else {
        log_segment_t *s = active(l);
        if ((rc = seg_open_index_fds(s))) goto fail;
        /* Index files of the active segment hold exactly n entries. */
        if (ftruncate(s->idx_fd, (off_t)s->n_idx * 8) || ftruncate(s->tidx_fd, (off_t)s->n_tidx * 12)) {
            rc = SM_ERR_IO;
            goto fail;
        }
        s->bytes_since_index = 0;
        if (s->n_idx > 0) s->bytes_since_index = s->size - s->idx[s->n_idx - 1].position;
        else s->bytes_since_index = s->size;
        if (s->size > 0) s->created_ms = now_ms();
    }
    atomic_store(&l->end_offset, active(l)->next_offset);
    atomic_store(&l->flushed_offset, active(l)->next_offset);
    l->start_offset = l->segs[0]->base;
    if (log_start > l->start_offset && log_start <= atomic_load(&l->end_offset))
        l->start_offset = log_start;
    free(bases);
    *out = l;
    return SM_OK;
fail:
    if (d) closedir(d);
    free(bases);
    for (int i = 0; i < l->nsegs; i++) seg_free(l->segs[i]);
    free(l->segs);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->flush_mu);
    free(l);
    return rc;
}

static void free_log(log_t *l) {
    for (int i = 0; i < l->nsegs; i++) seg_unref(l->segs[i]);
    for (int i = 0; i < l->ntrash; i++) {
        seg_unlink(l->trash[i], ".deleted");
        seg_unref(l->trash[i]);
    }
    free(l->trash);
    free(l->segs);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->flush_mu);
    free(l);
}

int log_close(log_t *l) {
    int rc = SM_OK;
    if (!l->offline) {
        log_segment_t *s = active(l);
        if (fdatasync(s->fd)) rc = SM_ERR_IO;
        if (s->idx_fd >= 0 && fsync(s->idx_fd)) rc = SM_ERR_IO;
        if (s->tidx_fd >= 0 && fsync(s->tidx_fd)) rc = SM_ERR_IO;
    }
    free_log(l);
    return rc;
}

void log_abandon(log_t *l) { free_log(l); }

void log_set_config(log_t *l, const log_config_t *cfg) {
    pthread_mutex_lock(&l->mu);
    l->cfg = *cfg;
    pthread_mutex_unlock(&l->mu);
}

const char *log_dir(const log_t *l) { return l->dir; }
int64_t log_end_offset(log_t *l) { return atomic_load(&l->end_offset); }
int64_t log_flushed_offset(log_t *l) { return atomic_load(&l->flushed_offset); }

int64_t log_start_offset(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t v = l->start_offset;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t log_size_bytes(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t total = 0;
    for (int i = 0; i < l->nsegs; i++) total += l->segs[i]->size;
    pthread_mutex_unlock(&l->mu);
    return total;
}

int log_segment_count(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int n = l->nsegs;
    pthread_mutex_unlock(&l->mu);
    return n;
}

bool log_offline(log_t *l) {
    pthread_mutex_lock(&l->mu);
    bool v = l->offline;
    pthread_mutex_unlock(&l->mu);
    return v;
}

static bool needs_roll(log_t *l, size_t len, int64_t last_offset, int64_t now) {
    log_segment_t *s = active(l);
    if (s->size == 0) return false;
    if (s->size + (int64_t)len > l->cfg.segment_bytes) return true;
    if (s->created_ms && now - s->created_ms >= l->cfg.segment_ms) return true;
    if ((int64_t)(s->n_idx + 1) * 8 > l->cfg.segment_index_bytes) return true;
    if ((int64_t)(s->n_tidx + 1) * 12 > l->cfg.segment_index_bytes) return true;
    if (last_offset - s->base > INT32_MAX) return true;
    if (s->size + (int64_t)len > INT32_MAX) return true;
    return false;
}

int log_append(log_t *l, uint8_t *data, size_t len, int32_t leader_epoch, int64_t *first_offset,
               int64_t *last_offset) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    if (l->offline) {
        rc = SM_ERR_IO;
        goto out;
    }
    /* Assign offsets and collect the headers. */
    int64_t next = atomic_load(&l->end_offset);
    int64_t first = next;
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, data, len);
    const uint8_t *b;
    size_t blen;
    proto_batch_header_t h;
    int count = 0;
    while ((rc = proto_batch_iter_next(&it, &b, &blen, &h)) == 1) {
        uint8_t *mb = data + (b - data);
        proto_batch_set_base_offset(mb, next);
        proto_batch_set_leader_epoch(mb, leader_epoch);
        next += (int64_t)h.last_offset_delta + 1;
        count++;
    }
    if (rc < 0 || count == 0) {
        rc = rc < 0 ? rc : SM_ERR_PARSE;
        goto out;
    }
    rc = SM_OK;
    int64_t now = now_ms();
    if (needs_roll(l, len, next - 1, now) && (rc = roll(l))) goto out;
    log_segment_t *s = active(l);
    if (fio_pwrite_all(s->fd, data, len, s->size)) {
        go_offline(l, "write");
        rc = SM_ERR_IO;
        goto out;
    }
    /* Index the batches. */
    proto_batch_iter_init(&it, data, len);
    int64_t pos = s->size;
    while (proto_batch_iter_next(&it, &b, &blen, &h) == 1) {
        if ((rc = seg_note_batch(s, &l->cfg, pos, &h, true))) {
            go_offline(l, "index write");
            goto out;
        }
        pos += (int64_t)blen;
    }
    s->size = pos;
    atomic_store(&l->end_offset, next);
    l->unflushed_msgs += next - first;
    if (!l->first_unflushed_ms) l->first_unflushed_ms = now;
    *first_offset = first;
    *last_offset = next - 1;
out:
    pthread_mutex_unlock(&l->mu);
    if (rc == SM_OK && !l->cfg.fsync_before_ack &&
        l->unflushed_msgs >= l->cfg.flush_interval_messages)
        rc = log_flush(l);
    return rc;
}

int log_flush(log_t *l) {
    int64_t target = atomic_load(&l->end_offset);
    if (atomic_load(&l->flushed_offset) >= target) return SM_OK;
    pthread_mutex_lock(&l->flush_mu);
    int rc = SM_OK;
    if (atomic_load(&l->flushed_offset) >= target) goto out; /* another caller covered us */
    pthread_mutex_lock(&l->mu);
    if (l->offline) {
        pthread_mutex_unlock(&l->mu);
        rc = SM_ERR_IO;
        goto out;
    }
    log_segment_t *s = active(l);
    seg_ref(s);
    int64_t upto = atomic_load(&l->end_offset);
    pthread_mutex_unlock(&l->mu);
    /* fsync outside the log mutex: appends continue meanwhile. */
    int fail = fdatasync(s->fd);
    seg_unref(s);
    pthread_mutex_lock(&l->mu);
    if (fail) {
        go_offline(l, "fsync");
        rc = SM_ERR_IO;
    } else {
        if (upto > atomic_load(&l->flushed_offset)) atomic_store(&l->flushed_offset, upto);
        if (upto >= atomic_load(&l->end_offset)) {
            l->unflushed_msgs = 0;
            l->first_unflushed_ms = 0;
        }
    }
    pthread_mutex_unlock(&l->mu);
out:
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}

/* Index of the segment holding offset (largest base <= offset). */
static int find_segment(log_t *l, int64_t offset) {
    int lo = 0, hi = l->nsegs - 1, best = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->segs[mid]->base <= offset) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

int log_read(log_t *l, int64_t offset, size_t max_bytes, bool min_one, log_range_t *out) {
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    int64_t end = atomic_load(&l->end_offset);
    if (l->offline) {
        rc = SM_ERR_IO;
        goto out;
    }
    if (offset < l->start_offset || offset > end) {
        rc = SM_ERR_RANGE;
        goto out;
    }
    if (offset == end) goto out;
    int i = find_segment(l, offset);
    /* A segment cut short by recovery may end before the next one begins. */
    while (i < l->nsegs && l->segs[i]->next_offset <= offset) i++;
    if (i >= l->nsegs) goto out;
    log_segment_t *s = l->segs[i];
    int64_t pos = offset <= s->base ? 0 : seg_lookup(s, offset);
    int64_t size = s->size;
    uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
    proto_batch_header_t h;
    /* Walk batch headers to the batch that contains offset. */
    for (;;) {
        if (pos >= size) goto out;
        if (fio_pread_all(s->fd, hdr, sizeof(hdr), pos) ||
            proto_batch_parse_header(hdr, sizeof(hdr), &h)) {
            rc = SM_ERR_CORRUPT;
            goto out;
        }
        if (proto_batch_last_offset(&h) >= offset) break;
        pos += (int64_t)proto_batch_total_size(&h);
    }
    size_t avail = (size_t)(size - pos);
    size_t len = avail < max_bytes ? avail : max_bytes;
    size_t first = proto_batch_total_size(&h);
    if (min_one && len < first) len = first;
    seg_ref(s);
    out->seg = s;
    out->fd = s->fd;
    out->file_pos = pos;
    out->len = len;
    out->first_offset = h.base_offset;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void log_range_release(log_range_t *r) {
    if (r->seg) seg_unref(r->seg);
    r->seg = NULL;
}

int64_t log_range_copy(const log_range_t *r, uint8_t *buf, size_t cap) {
    size_t n = r->len < cap ? r->len : cap;
    if (n == 0) return 0;
    if (fio_pread_all(r->fd, buf, n, r->file_pos)) return SM_ERR_IO;
    return (int64_t)n;
}

int log_for_each_batch(log_t *l, int64_t from,
                       int (*fn)(void *arg, const uint8_t *batch, size_t len,
                                 const struct proto_batch_header *h),
                       void *arg) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = SM_OK;
    int64_t start = log_start_offset(l);
    if (from < start) from = start;
    while (rc == SM_OK && from < log_end_offset(l)) {
        log_range_t r;
        if ((rc = log_read(l, from, 1 << 20, true, &r))) break;
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

int log_offset_for_timestamp(log_t *l, int64_t ts, int64_t *offset, int64_t *found_ts) {
    *offset = -1;
    *found_ts = -1;
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    for (int i = 0; i < l->nsegs; i++) {
        log_segment_t *s = l->segs[i];
        if (s->size == 0 || s->max_ts < ts) continue;
        /* Start from the last time index entry below ts. */
        int64_t from_offset = s->base;
        for (int32_t k = 0; k < s->n_tidx; k++) {
            if (s->tidx[k].timestamp < ts) from_offset = s->base + s->tidx[k].rel_offset;
            else break;
        }
        int64_t pos = seg_lookup(s, from_offset);
        uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
        proto_batch_header_t h;
        while (pos < s->size) {
            if (fio_pread_all(s->fd, hdr, sizeof(hdr), pos) ||
                proto_batch_parse_header(hdr, sizeof(hdr), &h)) {
                rc = SM_ERR_CORRUPT;
                goto out;
            }
            size_t total = proto_batch_total_size(&h);
            if (h.max_timestamp >= ts && proto_batch_last_offset(&h) >= l->start_offset) {
                /* Find the first record with timestamp >= ts inside the batch. */
                if (proto_batch_compression(&h) == PROTO_COMPRESSION_NONE &&
                    !(h.attributes & PROTO_ATTR_LOG_APPEND_TIME)) {
                    uint8_t *buf = malloc(total);
                    if (!buf) {
                        rc = SM_ERR_NOMEM;
                        goto out;
                    }
                    if (fio_pread_all(s->fd, buf, total, pos)) {
                        free(buf);
                        rc = SM_ERR_IO;
                        goto out;
                    }
                    proto_record_iter_t it;
                    proto_record_t rec;
                    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE,
                                           total - PROTO_BATCH_HEADER_SIZE, h.records_count);
                    while (proto_record_iter_next(&it, &rec) == 1) {
                        int64_t rts = h.base_timestamp + rec.timestamp_delta;
                        int64_t roff = h.base_offset + rec.offset_delta;
                        if (rts >= ts && roff >= l->start_offset) {
                            *offset = roff;
                            *found_ts = rts;
                            break;
                        }
                    }
                    free(buf);
                    if (*offset >= 0) goto out;
                } else {
                    *offset = h.base_offset > l->start_offset ? h.base_offset : l->start_offset;
                    *found_ts = h.max_timestamp;
                    goto out;
                }
            }
            pos += (int64_t)total;
        }
    }
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int log_max_timestamp(log_t *l, int64_t *offset, int64_t *ts) {
    pthread_mutex_lock(&l->mu);
    *offset = -1;
    *ts = -1;
    for (int i = 0; i < l->nsegs; i++) {
        if (l->segs[i]->size > 0 && l->segs[i]->max_ts > *ts) {
            *ts = l->segs[i]->max_ts;
            *offset = l->segs[i]->max_ts_offset;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return SM_OK;
}

int log_truncate_to(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    if (l->offline) {
        rc = SM_ERR_IO;
        goto out;
    }
    if (offset >= atomic_load(&l->end_offset)) goto out;
    if (offset < l->start_offset) offset = l->start_offset;
    /* Drop whole segments at or after offset, keeping at least one. */
    while (l->nsegs > 1 && active(l)->base >= offset) {
        log_segment_t *s = active(l);
        l->nsegs--;
        seg_close_files(s);
        seg_unlink(s, "");
        seg_unref(s);
    }
    log_segment_t *s = active(l);
    if (seg_open_index_fds(s)) {
        rc = SM_ERR_IO;
        goto out;
    }
    /* Find the first batch ending at or after offset: cut there. */
    int64_t file_size = s->size, valid_end;
    if ((rc = seg_scan(s, &l->cfg, false, file_size, &valid_end))) goto out;
    int64_t pos = 0;
    uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
    proto_batch_header_t h;
    while (pos < valid_end) {
        if (fio_pread_all(s->fd, hdr, sizeof(hdr), pos) || proto_batch_parse_header(hdr, sizeof(hdr), &h)) {
            rc = SM_ERR_CORRUPT;
            goto out;
        }
        if (proto_batch_last_offset(&h) >= offset) break;
        pos += (int64_t)proto_batch_total_size(&h);
    }
    if (ftruncate(s->fd, pos)) {
        go_offline(l, "truncate");
        rc = SM_ERR_IO;
        goto out;
    }
    if ((rc = seg_scan(s, &l->cfg, false, pos, &valid_end))) goto out;
    s->size = pos;
    if (s->next_offset < s->base) s->next_offset = s->base;
    if ((rc = seg_write_indexes(s))) goto out;
    s->bytes_since_index = s->n_idx ? s->size - s->idx[s->n_idx - 1].position : s->size;
    atomic_store(&l->end_offset, s->next_offset);
    if (atomic_load(&l->flushed_offset) > s->next_offset) atomic_store(&l->flushed_offset, s->next_offset);
    if (l->start_offset > s->next_offset) l->start_offset = s->next_offset;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int log_delete_records_before(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    int64_t now = now_ms();
    if (l->offline) {
        rc = SM_ERR_IO;
        goto out;
    }
    if (offset > atomic_load(&l->end_offset)) {
        rc = SM_ERR_RANGE;
        goto out;
    }
    if (offset <= l->start_offset) goto out;
    l->start_offset = offset;
    /* Whole segments that end at or below the new start go away. */
    int drop = 0;
    while (drop < l->nsegs - 1 && l->segs[drop]->next_offset <= offset) drop++;
    if (drop == l->nsegs - 1 && active(l)->next_offset <= offset && active(l)->size > 0) {
        /* Even the active segment is below: roll so it can be deleted. */
        if ((rc = roll(l))) goto out;
        drop = l->nsegs - 1;
    }
    for (int i = 0; i < drop; i++) seg_retire(l, l->segs[i], now);
    memmove(l->segs, l->segs + drop, sizeof(*l->segs) * (size_t)(l->nsegs - drop));
    l->nsegs -= drop;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int log_run_maintenance(log_t *l, int64_t now) {
    int removed = 0;
    bool flush = false;
    pthread_mutex_lock(&l->mu);
    if (l->offline) goto out;
    /* Time retention: segments whose newest record is older than retention.ms. */
    if (l->cfg.retention_ms >= 0) {
        int drop = 0;
        while (drop < l->nsegs) {
            log_segment_t *s = l->segs[drop];
            if (s->size == 0) break;
            int64_t newest = s->max_ts >= 0 ? s->max_ts : s->created_ms;
            if (now - newest <= l->cfg.retention_ms) break;
            drop++;
        }
        if (drop == l->nsegs && drop > 0) {
            if (roll(l) == SM_OK) drop = l->nsegs - 1;
            else drop--;
        }
        for (int i = 0; i < drop; i++) seg_retire(l, l->segs[i], now);
        if (drop) {
            memmove(l->segs, l->segs + drop, sizeof(*l->segs) * (size_t)(l->nsegs - drop));
            l->nsegs -= drop;
            removed += drop;
        }
    }
    /* Size retention: drop the oldest while the rest still exceeds the bound. */
    if (l->cfg.retention_bytes >= 0) {
        int64_t total = 0;
        for (int i = 0; i < l->nsegs; i++) total += l->segs[i]->size;
        int drop = 0;
        while (drop < l->nsegs - 1 && total - l->segs[drop]->size >= l->cfg.retention_bytes &&
               total > l->cfg.retention_bytes) {
            total -= l->segs[drop]->size;
            drop++;
        }
        for (int i = 0; i < drop; i++) seg_retire(l, l->segs[i], now);
        if (drop) {
            memmove(l->segs, l->segs + drop, sizeof(*l->segs) * (size_t)(l->nsegs - drop));
            l->nsegs -= drop;
            removed += drop;
        }
    }
    if (l->segs[0]->base > l->start_offset) l->start_offset = l->segs[0]->base;
    /* Unlink retired files whose delay has passed. */
    int keep = 0;
    for (int i = 0; i < l->ntrash; i++) {
        log_segment_t *s = l->trash[i];
        if (now >= s->delete_after_ms) {
            seg_unlink(s, ".deleted");
            seg_unref(s);
        } else {
            l->trash[keep++] = s;
        }
    }
    l->ntrash = keep;
    flush = l->first_unflushed_ms && l->cfg.flush_interval_ms != INT64_MAX &&
            now - l->first_unflushed_ms >= l->cfg.flush_interval_ms;
out:
    pthread_mutex_unlock(&l->mu);
    if (flush) log_flush(l);
    return removed;
}

int log_rename_for_delete(log_t *l, const char *new_dir) {
    pthread_mutex_lock(&l->mu);
    int rc = rename(l->dir, new_dir) ? SM_ERR_IO : SM_OK;
    if (rc == SM_OK) {
        char *d = strdup(new_dir);
        if (d) {
            free(l->dir);
            l->dir = d;
            for (int i = 0; i < l->nsegs; i++) {
                char *p = seg_path(d, l->segs[i]->base);
                if (p) {
                    free(l->segs[i]->path);
                    l->segs[i]->path = p;
                }
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}
