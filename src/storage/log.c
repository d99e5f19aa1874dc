/*
 * A partition log (see log.h and the invariants in log_impl.h): opening with
 * recovery, appends with roll, flushing, closing. Reads are in log_read.c,
 * truncation and retention in log_retention.c, flush requests in flusher.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/records.h"
#include "storage/log_impl.h"

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
    c->compact = false;
    c->min_cleanable_ratio = 0.5;
    c->min_compaction_lag_ms = 0;
    c->max_compaction_lag_ms = INT64_MAX;
    c->delete_retention_ms = 86400000;
    c->recovery_flush_bytes = 4 << 20;
    c->recovery_flush_ms = 1000;
}

/* ---------------------------------------------------------------- helpers */

void log_go_offline(log_t *l, const char *what, int err) {
    if (!atomic_exchange(&l->offline, true))
        sm_error("storage", "%s: %s failed (%s); the partition is offline until restart", l->dir,
                 what, strerror(err));
}

int log_find_segment(log_t *l, int64_t offset) {
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

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int log_detach_head(log_t *l, int n, log_segment_t ***out) {
    *out = NULL;
    if (n <= 0) return SM_OK;
    log_segment_t **v = malloc(sizeof(*v) * (size_t)n);
    if (!v) return SM_ERR_NOMEM;
    memcpy(v, l->segs, sizeof(*v) * (size_t)n);
    memmove(l->segs, l->segs + n, sizeof(*l->segs) * (size_t)(l->nsegs - n));
    l->nsegs -= n;
    l->dir_dirty = true;
    *out = v;
    return SM_OK;
}

void log_retire_segments(log_t *l, log_segment_t **v, int n, int64_t now) {
    int64_t after = now + l->cfg.file_delete_delay_ms;
    for (int i = 0; i < n; i++) {
        /* Outside the log's mutex: renames do not hold up appends. A failed
         * rename leaves the files for the next start to find (their offsets
         * are below the log start by then). */
        if (seg_rename_deleted(v[i], after))
            sm_warn("storage", "%s: cannot rename segment %020" PRId64 " for deletion: %s", l->dir,
                    v[i]->base, strerror(errno));
    }
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        if (l->ntrash == l->cap_trash) {
            int cap = l->cap_trash ? l->cap_trash * 2 : 8;
            log_segment_t **t = realloc(l->trash, sizeof(*t) * (size_t)cap);
            if (!t) {
                seg_unlink_files(v[i]);
                seg_unref(v[i]);
                continue;
            }
            l->trash = t;
            l->cap_trash = cap;
        }
        l->trash[l->ntrash++] = v[i];
    }
    pthread_mutex_unlock(&l->mu);
    free(v);
}

/* ---------------------------------------------------------------- open */

static void remove_file(const char *dir, const char *name) {
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

static bool parse_seg_name(const char *name, const char *ext, int64_t *base) {
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0) return false;
    for (int i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9') return false;
    char *end;
    long long b = strtoll(name, &end, 10);
    if (end != name + 20 || b < 0) return false;
    *base = b;
    return true;
}

static bool has_base(const int64_t *bases, int nb, int64_t b) {
    return bsearch(&b, bases, (size_t)nb, sizeof(*bases), cmp_i64) != NULL;
}

/* Lists segment bases; removes leftovers (.deleted, .cleaned, .swap, temp
 * files, index files without their .log). */
static int list_segments(const char *dir, int64_t **out, int *nout) {
    DIR *d = opendir(dir);
    if (!d) return seg_status_of_errno(errno);
    int64_t *bases = NULL;
    int nb = 0, cap = 0, rc = SM_OK;
    char **orphans = NULL;
    int no = 0, capo = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        size_t n = strlen(name);
        int64_t b;
        if (parse_seg_name(name, ".log", &b)) {
            if (nb == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *nbases = realloc(bases, sizeof(*bases) * (size_t)cap);
                if (!nbases) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                bases = nbases;
            }
            bases[nb++] = b;
        } else if ((n > 8 && strcmp(name + n - 8, ".deleted") == 0) ||
                   (n > 8 && strcmp(name + n - 8, ".cleaned") == 0) ||
                   (n > 5 && strcmp(name + n - 5, ".swap") == 0)) {
            remove_file(dir, name); /* left over from before a restart */
        } else if (parse_seg_name(name, ".index", &b) || parse_seg_name(name, ".timeindex", &b) ||
                   parse_seg_name(name, ".txnindex", &b)) {
            if (no == capo) {
                capo = capo ? capo * 2 : 16;
                char **no_ = realloc(orphans, sizeof(*orphans) * (size_t)capo);
                if (!no_) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                orphans = no_;
            }
            if (!(orphans[no] = strdup(name))) {
                rc = SM_ERR_NOMEM;
                break;
            }
            no++;
        }
    }
    closedir(d);
    if (nb) qsort(bases, (size_t)nb, sizeof(*bases), cmp_i64);
    for (int i = 0; i < no; i++) {
        int64_t b;
        if (rc == SM_OK && !parse_seg_name(orphans[i], ".index", &b) &&
            !parse_seg_name(orphans[i], ".timeindex", &b))
            parse_seg_name(orphans[i], ".txnindex", &b);
        if (rc == SM_OK && !has_base(bases, nb, b)) remove_file(dir, orphans[i]);
        free(orphans[i]);
    }
    free(orphans);
    if (rc) {
        free(bases);
        return rc;
    }
    *out = bases;
    *nout = nb;
    return SM_OK;
}

static bool file_exists(log_segment_t *s, const char *ext) {
    char p[4200];
    seg_file_path(s, ext, p, sizeof(p));
    return access(p, F_OK) == 0;
}

static _Atomic int64_t rec_segments, rec_bytes, rec_cut_bytes, rec_max_log_bytes;

void log_recovery_totals(log_recovery_totals_t *out) {
    out->segments = atomic_load(&rec_segments);
    out->bytes = atomic_load(&rec_bytes);
    out->cut_bytes = atomic_load(&rec_cut_bytes);
    out->max_log_bytes = atomic_load(&rec_max_log_bytes);
}

void log_recovery_reset_max(void) { atomic_store(&rec_max_log_bytes, 0); }

typedef struct recovery_report {
    int scanned;
    int64_t bytes;
    int64_t cut_bytes;
    int dropped;
} recovery_report_t;

/* Scans and validates segment s (not yet in the list) and cuts a torn or
 * corrupt tail; a segment holding the recovery point rp is scanned from the
 * index point below it. *cut: damage was found (later segments must go). */
static int recover_segment(log_t *l, log_segment_t *s, int64_t file_size, int64_t rp, bool *cut,
                           recovery_report_t *rep) {
    int fd;
    int rc = seg_fd_acquire(s, &fd);
    if (rc) return rc;
    int64_t valid_end, from = 0;
    rep->scanned++;
    atomic_fetch_add(&rec_segments, 1);
    if (rp > s->base)
        rc = seg_recover_from(s, fd, l->cfg.index_interval_bytes, rp, file_size, &valid_end, &from);
    else
        rc = seg_scan(s, fd, l->cfg.index_interval_bytes, true, file_size, &valid_end);
    if (file_size > from) {
        rep->bytes += file_size - from;
        atomic_fetch_add(&rec_bytes, file_size - from);
    }
    if (rc == SM_OK && valid_end < file_size) {
        rep->cut_bytes += file_size - valid_end;
        atomic_fetch_add(&rec_cut_bytes, file_size - valid_end);
        *cut = true;
        if (ftruncate(fd, valid_end)) rc = SM_ERR_IO;
    }
    /* What recovery keeps is on disk before the recovery point moves past it. */
    if (rc == SM_OK) rc = fio_fdatasync(fd);
    seg_fd_release(s);
    atomic_store(&s->size, valid_end);
    return rc;
}

/* One attempt of log_open; SM_ERR_LIMIT when it ran out of descriptors
 * (nothing is lost: a second attempt redoes what was not finished). */
static int open_once(const char *dir, const log_config_t *cfg, bool clean, int64_t recovery_point,
                     int64_t log_start, log_t **out) {
    if (mkdir(dir, 0755) && errno != EEXIST) return SM_ERR_IO;
    log_t *l = calloc(1, sizeof(*l));
    if (!l) return SM_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->flush_mu, NULL);
    pthread_mutex_init(&l->wmu, NULL);
    pthread_cond_init(&l->wcv, NULL);
    l->dir = strdup(dir);
    l->cfg = *cfg;
    l->unfinished_base = INT64_MAX;
    l->clean_point = -1;
    atomic_init(&l->high_watermark, -1);
    int64_t *bases = NULL;
    int nb = 0;
    /* A cleaning interrupted after its .swap file was complete is finished
     * first; list_segments then removes what is left of others. */
    int rc = l->dir ? log_cleaner_complete_swaps(dir) : SM_ERR_NOMEM;
    if (rc == SM_OK) rc = list_segments(dir, &bases, &nb);
    if (rc) goto fail;

    recovery_report_t rep = {0};
    bool cut = false, recovered = false;
    for (int i = 0; i < nb; i++) {
        log_segment_t *s = seg_new(dir, bases[i]);
        if (!s) {
            rc = SM_ERR_NOMEM;
            goto fail;
        }
        if (cut) {
            /* Everything after a corrupt point goes, like Kafka's recovery. */
            seg_unlink_files(s);
            seg_unref(s);
            rep.dropped++;
            continue;
        }
        char p[4200];
        struct stat st;
        seg_file_path(s, ".log", p, sizeof(p));
        if (stat(p, &st)) {
            seg_unref(s);
            rc = SM_ERR_IO;
            goto fail;
        }
        bool last = i == nb - 1;
        int64_t next_base = last ? -1 : bases[i + 1];
        atomic_store(&s->size, (int64_t)st.st_size);
        /* Unclean: a segment holding offsets at or after the recovery point
         * may hold torn or unflushed data. Clean: the checkpoint must describe
         * the last segment, or it is scanned after all. */
        bool scan = clean ? last && !(recovery_point > s->base ||
                                      (recovery_point == s->base && st.st_size == 0))
                          : last || next_base > recovery_point;
        if (!scan && (!file_exists(s, ".index") || !file_exists(s, ".timeindex"))) scan = true;
        if (!scan) {
            s->next_offset = last ? recovery_point : next_base;
            if (last) {
                if ((rc = seg_pin_active(s, l->cfg.index_interval_bytes))) {
                    seg_unref(s);
                    goto fail;
                }
                /* The index must end below the checkpointed end. */
                if (s->max_ts_offset >= recovery_point) scan = true;
            }
        }
        if (scan) {
            recovered = true;
            if ((rc = recover_segment(l, s, st.st_size, clean ? 0 : recovery_point, &cut, &rep))) {
                seg_unref(s);
                goto fail;
            }
            if (atomic_load(&s->size) == 0 && !last && !cut) {
                /* An empty segment in the middle (a crash during roll). */
                seg_unlink_files(s);
                seg_unref(s);
                continue;
            }
            if (!last && !cut) {
                /* A complete inactive segment: its index files for next time. */
                seg_close_time_index(s);
                if ((rc = seg_write_index_files(s))) {
                    seg_unref(s);
                    goto fail;
                }
            }
        }
        if ((rc = segs_push(l, s))) {
            seg_unref(s);
            goto fail;
        }
    }
    for (int64_t m = atomic_load(&rec_max_log_bytes);
         rep.bytes > m && !atomic_compare_exchange_weak(&rec_max_log_bytes, &m, rep.bytes);)
        ;
    if (rep.cut_bytes || rep.dropped)
        sm_warn("storage",
                "%s: recovery scanned %d segment(s), cut %" PRId64 " byte(s) of torn or corrupt "
                "data and %d later segment(s); the log now ends at offset %" PRId64,
                dir, rep.scanned, rep.cut_bytes, rep.dropped,
                l->nsegs ? log_active(l)->next_offset : (int64_t)0);
    else if (recovered)
        sm_debug("storage", "%s: recovery scanned %d segment(s), nothing cut", dir, rep.scanned);
    if (l->nsegs == 0) {
        log_segment_t *s = seg_new(dir, log_start > 0 ? log_start : 0);
        if (!s) {
            rc = SM_ERR_NOMEM;
            goto fail;
        }
        if ((rc = seg_create_files(s)) || (rc = segs_push(l, s))) {
            seg_unref(s);
            goto fail;
        }
        recovered = true;
    } else {
        log_segment_t *s = log_active(l);
        if (!s->pinned && (rc = seg_pin_active(s, l->cfg.index_interval_bytes))) goto fail;
        /* Appends open the active segment on demand (through the descriptor
         * cache); opening it once now fails a log that could never take one. */
        int fd;
        if ((rc = seg_fd_acquire(s, &fd))) goto fail;
        seg_fd_release(s);
        if (atomic_load(&s->size) > 0) s->created_ms = sm_time_ms();
    }
    if ((recovered || rep.dropped) && (rc = fio_fsync_dir(dir))) goto fail;
    atomic_store(&l->end_offset, log_active(l)->next_offset);
    atomic_store(&l->flushed_offset, log_active(l)->next_offset);
    l->start_offset = l->segs[0]->base;
    /* A start beyond the end (recovery cut data above it) leaves nothing
     * readable below the end: records below the start stay deleted. */
    if (log_start > l->start_offset)
        l->start_offset =
            log_start < log_active(l)->next_offset ? log_start : log_active(l)->next_offset;
    free(bases);
    *out = l;
    return SM_OK;
fail:
    free(bases);
    for (int i = 0; i < l->nsegs; i++)
        seg_unref(l->segs[i]);
    free(l->segs);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->flush_mu);
    pthread_mutex_destroy(&l->wmu);
    pthread_cond_destroy(&l->wcv);
    free(l);
    return rc;
}

static _Atomic int64_t descriptor_wait_ms = LOG_DESCRIPTOR_WAIT_MS;

void log_set_descriptor_wait_ms(int64_t ms) { atomic_store(&descriptor_wait_ms, ms); }

int64_t log_descriptor_deadline(void) { return sm_mono_ms() + atomic_load(&descriptor_wait_ms); }

bool log_descriptor_retry(int rc, int64_t deadline) {
    return rc == SM_ERR_LIMIT && seg_fd_wait(deadline) == SM_OK;
}

int64_t log_descriptor_waits(void) { return seg_fd_waits(); }

int log_open(const char *dir, const log_config_t *cfg, bool clean, int64_t recovery_point,
             int64_t log_start, log_t **out) {
    int64_t deadline = log_descriptor_deadline();
    bool told = false;
    for (;;) {
        int rc = open_once(dir, cfg, clean, recovery_point, log_start, out);
        if (rc != SM_ERR_LIMIT) return rc;
        if (!told)
            sm_warn("storage", "%s: out of descriptors while opening the log; waiting for one",
                    dir);
        told = true;
        if (!log_descriptor_retry(rc, deadline)) return rc;
    }
}

/* ---------------------------------------------------------------- close */

static void free_log(log_t *l) {
    for (int i = 0; i < l->nsegs; i++)
        seg_unref(l->segs[i]);
    for (int i = 0; i < l->ntrash; i++) {
        seg_unlink_files(l->trash[i]);
        seg_unref(l->trash[i]);
    }
    free(l->trash);
    free(l->segs);
    free(l->dir);
    free(l->old_dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->flush_mu);
    pthread_mutex_destroy(&l->wmu);
    pthread_cond_destroy(&l->wcv);
    free(l);
}

int log_close(log_t *l) {
    log_flush_quiesce(l);
    int rc = SM_OK;
    pthread_mutex_lock(&l->flush_mu);
    if (!atomic_load(&l->offline)) {
        rc = log_flush_locked(l, INT64_MAX);
        /* The active segment's indexes, with the closing time index entry,
         * so a clean start needs no scan. */
        log_segment_t *s = log_active(l);
        if (rc == SM_OK) rc = seg_close_time_index(s);
        if (rc == SM_OK) rc = seg_write_index_files(s);
        if (rc) log_go_offline(l, "index write at close", errno);
    } else {
        rc = SM_ERR_IO;
    }
    pthread_mutex_unlock(&l->flush_mu);
    free_log(l);
    return rc;
}

void log_abandon(log_t *l) {
    log_flush_quiesce(l);
    free_log(l);
}

/* ---------------------------------------------------------------- accessors */

void log_set_config(log_t *l, const log_config_t *cfg) {
    pthread_mutex_lock(&l->mu);
    l->cfg = *cfg;
    pthread_mutex_unlock(&l->mu);
}

void log_get_config(log_t *l, log_config_t *cfg) {
    pthread_mutex_lock(&l->mu);
    *cfg = l->cfg;
    pthread_mutex_unlock(&l->mu);
}

const char *log_dir(const log_t *l) { return l->dir; }
int64_t log_end_offset(log_t *l) { return atomic_load(&l->end_offset); }
int64_t log_flushed_offset(log_t *l) { return atomic_load(&l->flushed_offset); }

int64_t log_appended_bytes(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t n = l->appended_bytes;
    pthread_mutex_unlock(&l->mu);
    return n;
}
bool log_offline(log_t *l) { return atomic_load(&l->offline); }
bool log_full(log_t *l) { return atomic_load(&l->full); }

int64_t log_start_offset(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t v = l->start_offset;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t log_size_bytes(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int64_t total = 0;
    for (int i = 0; i < l->nsegs; i++)
        total += atomic_load(&l->segs[i]->size);
    pthread_mutex_unlock(&l->mu);
    return total;
}

int log_segment_count(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int n = l->nsegs;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int64_t log_segment_base_of(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->mu);
    int64_t base = l->nsegs ? l->segs[log_find_segment(l, offset)]->base : -1;
    pthread_mutex_unlock(&l->mu);
    return base;
}

void log_set_open_segment_limit(int n) { seg_cache_set_limit(n); }
void log_set_descriptor_budget(int n) { seg_set_fd_budget(n); }
int log_open_segment_count(void) { return seg_cache_size(); }
int log_open_descriptors(void) { return seg_open_fds(); }
int64_t log_segment_bytes_read(void) { return seg_bytes_read(); }

/* ---------------------------------------------------------------- append */

int log_roll_locked(log_t *l) {
    log_segment_t *old = log_active(l);
    /* The old segment stays pinned (fd and in-memory index) until a flush
     * has written it out; no fsync here, so appends never wait for one. */
    int rc = seg_close_time_index(old);
    if (rc) return rc;
    log_segment_t *s = seg_new(l->dir, old->next_offset);
    if (!s) return SM_ERR_NOMEM;
    if ((rc = seg_create_files(s))) {
        int err = errno;
        seg_unref(s);
        /* Out of descriptors: no roll this time, the append fails (retriable)
         * and the log stays as it was. */
        if (rc == SM_ERR_LIMIT) return rc;
        log_go_offline(l, "segment creation", err);
        return SM_ERR_IO;
    }
    if ((rc = segs_push(l, s))) {
        seg_unlink_files(s);
        seg_unref(s);
        return rc;
    }
    l->dir_dirty = true;
    if (l->unfinished_base == INT64_MAX) l->unfinished_base = old->base;
    return SM_OK;
}

int log_roll(log_t *l) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    if (atomic_load(&l->offline))
        rc = SM_ERR_IO;
    else if (atomic_load(&log_active(l)->size) > 0)
        rc = log_roll_locked(l);
    pthread_mutex_unlock(&l->mu);
    if (rc == SM_OK) log_flush_async(l);
    return rc;
}

static bool needs_roll(log_t *l, size_t len, int nbatches, int64_t last_offset, int64_t now) {
    log_segment_t *s = log_active(l);
    int64_t size = atomic_load(&s->size);
    if (size == 0) return false;
    if (size + (int64_t)len > l->cfg.segment_bytes) return true;
    if (s->created_ms && now - s->created_ms >= l->cfg.segment_ms) return true;
    /* The indexes could fill up: each batch may add an entry to both. */
    if ((int64_t)(s->idx.n + nbatches) * SEG_IDX_ENTRY > l->cfg.segment_index_bytes) return true;
    if ((int64_t)(s->tidx.n + nbatches + 1) * SEG_TIDX_ENTRY > l->cfg.segment_index_bytes)
        return true;
    /* Relative offsets and positions are int32 in the indexes. */
    if (last_offset - s->base > INT32_MAX) return true;
    if (size + (int64_t)len > INT32_MAX) return true;
    return false;
}

/* log_append and log_append_as_follower: keep, the batches' own offsets and
 * epochs are kept (each at or past the end of the one before), else they are
 * assigned from the log end. */
static int append_batches(log_t *l, uint8_t *data, size_t len, int32_t leader_epoch, bool keep,
                          int64_t *first_offset, int64_t *last_offset) {
    bool rolled = false, flush_now = false, recovery_now = false;
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    if (atomic_load(&l->offline)) {
        rc = SM_ERR_IO;
        goto out;
    }
    /* Assign offsets. */
    int64_t next = atomic_load(&l->end_offset);
    int64_t first = next;
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, data, len);
    const uint8_t *b;
    size_t blen;
    proto_batch_header_t h;
    int count = 0;
    while ((rc = proto_batch_iter_next(&it, &b, &blen, &h)) == 1) {
        if (keep) {
            /* A follower's copy: offsets as the leader assigned them (a
             * compacted log may skip some), never below the end. */
            if (h.base_offset < next || h.last_offset_delta < 0) {
                rc = SM_ERR_RANGE;
                break;
            }
            if (count == 0) first = h.base_offset;
            next = h.base_offset + (int64_t)h.last_offset_delta + 1;
        } else {
            uint8_t *mb = data + (b - data);
            proto_batch_set_base_offset(mb, next);
            proto_batch_set_leader_epoch(mb, leader_epoch);
            next += (int64_t)h.last_offset_delta + 1;
        }
        count++;
    }
    if (rc < 0 || count == 0 || len > INT32_MAX) {
        rc = rc < 0 ? rc : SM_ERR_PARSE;
        goto out;
    }
    rc = SM_OK;
    int64_t now = sm_time_ms();
    if (needs_roll(l, len, count, next - 1, now)) {
        if ((rc = log_roll_locked(l))) goto out;
        rolled = true;
    }
    log_segment_t *s = log_active(l);
    int64_t pos = atomic_load(&s->size);
    /* The active segment's descriptor comes from the bounded cache like any
     * other: out of descriptors, this append fails (retriable) and the log
     * stays online. */
    int fd;
    if ((rc = seg_fd_acquire(s, &fd))) {
        if (rc != SM_ERR_LIMIT) log_go_offline(l, "open", errno);
        goto out;
    }
    /* After a write that ran out of space, whatever part of it reached the
     * file goes before trying again: the segment ends at its last batch. */
    if (atomic_load(&l->full) && ftruncate(fd, pos)) {
        log_go_offline(l, "truncation after a full disk", errno);
        rc = SM_ERR_IO;
    } else if (fio_pwrite_all(fd, data, len, pos)) {
        int err = errno;
        if (err != ENOSPC && err != EDQUOT) {
            log_go_offline(l, "write", err);
        } else if (ftruncate(fd, pos)) {
            log_go_offline(l, "truncation after a full disk", errno);
        } else if (!atomic_exchange(&l->full, true)) {
            sm_warn("storage",
                    "%s: no space left; appends fail, reads go on, appends resume "
                    "when there is space",
                    l->dir);
        }
        rc = SM_ERR_IO;
    }
    seg_fd_release(s);
    if (rc) goto out;
    if (atomic_exchange(&l->full, false))
        sm_info("storage", "%s: space is back; appends resume", l->dir);
    proto_batch_iter_init(&it, data, len);
    while (proto_batch_iter_next(&it, &b, &blen, &h) == 1) {
        if ((rc = seg_note_batch(s, l->cfg.index_interval_bytes, pos, &h))) {
            log_go_offline(l, "index update", ENOMEM);
            goto out;
        }
        pos += (int64_t)blen;
    }
    if (s->created_ms == 0) s->created_ms = now;
    /* Publish: readers see the new batches only from here on. */
    atomic_store(&s->size, pos);
    atomic_store(&l->end_offset, next);
    l->unflushed_msgs += next - first;
    l->appended_bytes += (int64_t)len;
    if (!l->first_unflushed_ms) l->first_unflushed_ms = now;
    flush_now = l->unflushed_msgs >= l->cfg.flush_interval_messages;
    /* The recovery bound: only ever on a flusher thread, never here. With
     * fsync before ack every acknowledged batch is flushed anyway, and the
     * flusher threads are the acknowledgements' own. */
    if (l->flusher && !flush_now && !l->recovery_flush_queued && !l->cfg.fsync_before_ack &&
        l->cfg.recovery_flush_bytes > 0 &&
        l->appended_bytes - l->flushed_bytes >= l->cfg.recovery_flush_bytes) {
        l->recovery_flush_queued = true;
        recovery_now = true;
    }
    *first_offset = first;
    *last_offset = next - 1;
out:
    pthread_mutex_unlock(&l->mu);
    if (rc == SM_OK && flush_now) {
        /* flush.messages: Kafka flushes on the appending thread; with a
         * flusher attached the flush happens there instead. */
        if (l->flusher)
            log_flush_async(l);
        else
            rc = log_flush(l);
    } else if (rc == SM_OK && rolled) {
        log_flush_async(l);
    }
    if (rc == SM_OK && recovery_now) log_flush_for_recovery(l, *last_offset + 1);
    return rc;
}

int64_t log_high_watermark(log_t *l) { return atomic_load(&l->high_watermark); }

void log_set_high_watermark(log_t *l, int64_t hw) { atomic_store(&l->high_watermark, hw); }

int log_append(log_t *l, uint8_t *data, size_t len, int32_t leader_epoch, int64_t *first_offset,
               int64_t *last_offset) {
    return append_batches(l, data, len, leader_epoch, false, first_offset, last_offset);
}

int log_append_as_follower(log_t *l, uint8_t *data, size_t len, int64_t *first_offset,
                           int64_t *last_offset) {
    return append_batches(l, data, len, -1, true, first_offset, last_offset);
}

/* ---------------------------------------------------------------- flush */

int log_flush_locked(log_t *l, int64_t limit) {
    pthread_mutex_lock(&l->mu);
    if (atomic_load(&l->offline)) {
        pthread_mutex_unlock(&l->mu);
        return SM_ERR_IO;
    }
    int64_t end = atomic_load(&l->end_offset);
    int64_t target = limit < end ? limit : end;
    int64_t from = atomic_load(&l->flushed_offset);
    if (from >= target && !l->dir_dirty && l->unfinished_base == INT64_MAX) {
        l->recovery_flush_queued = false;
        pthread_mutex_unlock(&l->mu);
        return SM_OK;
    }
    /* Rolled segments not yet finished, and segments holding offsets in
     * [from, target). */
    int first = log_find_segment(l, from < l->unfinished_base ? from : l->unfinished_base);
    int n = 0;
    log_segment_t **v = malloc(sizeof(*v) * (size_t)(l->nsegs - first));
    if (!v) {
        pthread_mutex_unlock(&l->mu);
        return SM_ERR_NOMEM;
    }
    for (int i = first; i < l->nsegs && l->segs[i]->base < target; i++) {
        seg_ref(l->segs[i]);
        v[n++] = l->segs[i];
    }
    /* The active segment is compared by base: it may be rolled and even
     * retired (freed) while the fsyncs run. */
    int64_t act_base = log_active(l)->base;
    int64_t appended = l->appended_bytes;
    bool dir_dirty = l->dir_dirty;
    l->dir_dirty = false;
    pthread_mutex_unlock(&l->mu);

    /* fsyncs outside the log's mutex: appends continue meanwhile. */
    int rc = SM_OK;
    const char *what = "fsync";
    int err = 0;
    for (int i = 0; i < n && rc == SM_OK; i++) {
        int fd;
        if ((rc = seg_fd_acquire(v[i], &fd))) {
            err = errno;
            /* Removed (retention, truncation) since the snapshot and its
             * descriptor closed by the cache: nothing left to flush. */
            if (seg_retired(v[i])) {
                rc = SM_OK;
                continue;
            }
            what = "open";
            break;
        }
        if ((rc = fio_fdatasync(fd))) err = errno;
        seg_fd_release(v[i]);
        if (rc == SM_OK && v[i]->base != act_base && v[i]->pinned) {
            /* A rolled segment is complete: its index files go out once.
             * (pinned changes only under flush_mu, which is held.) */
            if ((rc = seg_write_index_files(v[i]))) {
                what = "index write";
                err = errno;
            }
        } else if (rc == SM_OK && v[i]->base == act_base && seg_persist_index(v[i])) {
            /* Only a hint for recovery: it scans more without it. */
            sm_debug("storage", "%s: cannot write the active index: %s", l->dir, strerror(errno));
        }
    }
    if (rc == SM_OK && dir_dirty && (rc = fio_fsync_dir(l->dir))) {
        what = "directory fsync";
        err = errno;
    }
    pthread_mutex_lock(&l->mu);
    l->recovery_flush_queued = false;
    if (rc == SM_ERR_LIMIT) {
        /* Out of descriptors: this flush fails, the log stays online and the
         * next flush tries again. */
        sm_warn("storage", "%s: flush postponed: out of descriptors", l->dir);
        if (dir_dirty) l->dir_dirty = true;
    } else if (rc) {
        log_go_offline(l, what, err);
    } else {
        if (target > atomic_load(&l->flushed_offset)) atomic_store(&l->flushed_offset, target);
        if (appended > l->flushed_bytes) l->flushed_bytes = appended;
        /* A roll during the fsyncs left the segment active at the snapshot
         * unfinished. */
        l->unfinished_base = log_active(l)->base != act_base ? act_base : INT64_MAX;
        if (target >= atomic_load(&l->end_offset)) {
            l->unflushed_msgs = 0;
            l->first_unflushed_ms = 0;
        }
    }
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < n; i++) {
        if (rc == SM_OK && v[i]->base != act_base && v[i]->pinned) seg_unpin(v[i]);
        seg_unref(v[i]);
    }
    free(v);
    return rc;
}

int log_sync_to(log_t *l, int64_t offset) {
    if (atomic_load(&l->offline)) return SM_ERR_IO;
    if (atomic_load(&l->flushed_offset) >= offset) return SM_OK;
    pthread_mutex_lock(&l->flush_mu);
    int rc = SM_OK;
    /* Another caller's fsync may have covered us while we waited. */
    if (atomic_load(&l->flushed_offset) < offset) rc = log_flush_locked(l, INT64_MAX);
    pthread_mutex_unlock(&l->flush_mu);
    if (rc == SM_OK && atomic_load(&l->offline)) rc = SM_ERR_IO;
    return rc;
}

int log_flush(log_t *l) {
    int64_t end = atomic_load(&l->end_offset);
    if (atomic_load(&l->offline)) return SM_ERR_IO;
    if (atomic_load(&l->flushed_offset) >= end) {
        /* Nothing appended since, but a roll or retention may have left
         * directory changes or a rolled segment behind. */
        pthread_mutex_lock(&l->flush_mu);
        int rc = log_flush_locked(l, INT64_MAX);
        pthread_mutex_unlock(&l->flush_mu);
        return rc;
    }
    return log_sync_to(l, end);
}
