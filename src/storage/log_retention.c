/*
 * Removing data from a partition log: truncation (replication), DeleteRecords,
 * time and size retention with Kafka's delayed file deletion, and the periodic
 * maintenance pass. Decisions that need file reads are made outside the log's
 * mutex; the mutex is held only to change the segment list.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "storage/log_impl.h"

/* Detaches segs[from..nsegs) (l->mu held). */
static int detach_tail(log_t *l, int from, log_segment_t ***out) {
    int n = l->nsegs - from;
    *out = NULL;
    if (n <= 0) return 0;
    log_segment_t **v = malloc(sizeof(*v) * (size_t)n);
    if (!v) return SM_ERR_NOMEM;
    memcpy(v, l->segs + from, sizeof(*v) * (size_t)n);
    l->nsegs = from;
    l->dir_dirty = true;
    *out = v;
    return n;
}

/* With flush_mu and mu held: every segment goes, a new empty one starts at
 * offset. The old files are renamed first, so a segment with the same base
 * cannot clash with the new one. */
static int truncate_fully_locked(log_t *l, int64_t offset, int64_t now) {
    log_segment_t *s = seg_new(l->dir, offset);
    if (!s) return SM_ERR_NOMEM;
    log_segment_t **old;
    int n = detach_tail(l, 0, &old);
    if (n < 0) {
        seg_unref(s);
        return n;
    }
    for (int i = 0; i < n; i++)
        if (seg_rename_deleted(old[i], now + l->cfg.file_delete_delay_ms)) seg_unlink_files(old[i]);
    int rc = seg_create_files(s);
    if (rc == SM_OK) {
        l->segs[0] = s; /* cap >= 1: the list was never empty */
        l->nsegs = 1;
    } else {
        log_go_offline(l, "segment creation", errno);
        /* Keep the invariant that the list is not empty. */
        l->segs[0] = s;
        l->nsegs = 1;
    }
    l->start_offset = offset;
    atomic_store(&l->end_offset, offset);
    atomic_store(&l->flushed_offset, offset);
    l->unfinished_base = INT64_MAX;
    l->unflushed_msgs = 0;
    l->first_unflushed_ms = 0;
    l->dir_dirty = true;
    /* The old segments wait for file.delete.delay.ms like retention's. */
    pthread_mutex_unlock(&l->mu);
    if (n > 0) log_retire_segments(l, old, n, now);
    pthread_mutex_lock(&l->mu);
    return rc;
}

int log_truncate_fully(log_t *l, int64_t offset) {
    if (offset < 0) return SM_ERR_RANGE;
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    int rc = atomic_load(&l->offline) ? SM_ERR_IO : truncate_fully_locked(l, offset, sm_time_ms());
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}

int log_truncate_to(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK;
    log_segment_t **gone = NULL;
    log_segment_t *held = NULL; /* whose descriptor is acquired */
    int ngone = 0, fd = -1;
    int64_t now = sm_time_ms();
    if (atomic_load(&l->offline)) {
        rc = SM_ERR_IO;
        goto out;
    }
    if (offset >= atomic_load(&l->end_offset)) goto out;
    if (offset <= l->segs[0]->base) {
        rc = truncate_fully_locked(l, offset < 0 ? 0 : offset, now);
        goto out;
    }
    /* Whole segments at or after offset go. */
    int keep = log_find_segment(l, offset);
    if (l->segs[keep]->base == offset && keep > 0) keep--;
    ngone = detach_tail(l, keep + 1, &gone);
    if (ngone < 0) {
        rc = ngone;
        ngone = 0;
        goto out;
    }
    /* Renamed now, under the mutex: the next roll may create a segment with
     * the same base as one of these. */
    for (int i = 0; i < ngone; i++)
        if (seg_rename_deleted(gone[i], now + l->cfg.file_delete_delay_ms))
            seg_unlink_files(gone[i]);
    log_segment_t *s = log_active(l);
    if (!s->pinned && (rc = seg_pin_active(s, l->cfg.index_interval_bytes))) {
        log_go_offline(l, "reopening a segment for truncation", errno);
        goto out;
    }
    /* Cut at the batch holding offset; the whole batch goes. */
    if ((rc = seg_fd_acquire(s, &fd))) {
        if (rc != SM_ERR_LIMIT) log_go_offline(l, "reopening a segment for truncation", errno);
        goto out;
    }
    held = s;
    int64_t size = atomic_load(&s->size), pos, cut = size, new_end = s->next_offset;
    proto_batch_header_t h;
    if (offset < s->next_offset) {
        if ((rc = seg_lookup_position(s, l->cfg.index_interval_bytes, offset, &pos))) goto out;
        int w = log_walk_to_offset(fd, pos, size, offset, &cut, &h);
        if (w == SM_OK) {
            new_end = h.base_offset;
        } else if (w != SM_ERR_NOTFOUND) {
            rc = SM_ERR_CORRUPT;
            goto out;
        }
    }
    if (cut < size) {
        atomic_fetch_add(&s->truncations, 1);
        if (ftruncate(fd, cut)) {
            log_go_offline(l, "truncate", errno);
            rc = SM_ERR_IO;
            goto out;
        }
        atomic_store(&s->size, cut);
        if ((rc = seg_truncate_indexes(s, fd, new_end, cut))) {
            log_go_offline(l, "index truncation", errno);
            goto out;
        }
    }
    if (cut == 0) s->created_ms = 0;
    atomic_store(&l->end_offset, new_end);
    if (atomic_load(&l->flushed_offset) > new_end) atomic_store(&l->flushed_offset, new_end);
    if (l->start_offset > new_end) l->start_offset = new_end;
    if (l->unfinished_base >= s->base) l->unfinished_base = INT64_MAX;
    l->dir_dirty = true;
out:
    if (held) seg_fd_release(held);
    pthread_mutex_unlock(&l->mu);
    if (ngone > 0) log_retire_segments(l, gone, ngone, now);
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}

int log_delete_records_before(log_t *l, int64_t offset) {
    pthread_mutex_lock(&l->mu);
    int rc = SM_OK, n = 0;
    log_segment_t **gone = NULL;
    int64_t now = sm_time_ms();
    if (atomic_load(&l->offline)) {
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
    while (drop < l->nsegs - 1 && l->segs[drop]->next_offset <= offset)
        drop++;
    if (drop == l->nsegs - 1 && log_active(l)->next_offset <= offset &&
        atomic_load(&log_active(l)->size) > 0) {
        /* Even the active segment is below: roll so it can go too. */
        if ((rc = log_roll_locked(l))) goto out;
        drop = l->nsegs - 1;
    }
    if ((rc = log_detach_head(l, drop, &gone)) == SM_OK) n = drop;
out:
    pthread_mutex_unlock(&l->mu);
    if (n > 0) log_retire_segments(l, gone, n, now);
    return rc;
}

/* ---------------------------------------------------------------- retention */

/* The newest timestamp of a segment for time retention: its largest record
 * timestamp, or the file's modification time when it has none (Kafka's rule). */
static int64_t segment_newest_ms(log_segment_t *s, int32_t interval) {
    int64_t ts, off;
    if (seg_max_timestamp(s, interval, &ts, &off) == SM_OK && ts >= 0) return ts;
    char p[4200];
    struct stat st;
    seg_file_path(s, ".log", p, sizeof(p));
    if (stat(p, &st)) return INT64_MAX; /* unknown: keep it */
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Retention's choice: how many of the oldest segments go. Reads time indexes
 * (lazily), so it runs without the log's mutex on a referenced snapshot. */
static int retention_pick(log_segment_t **v, const int64_t *sizes, int n, const log_config_t *cfg,
                          int64_t now, bool *all_expired) {
    int drop_t = 0, drop_s = 0;
    *all_expired = false;
    if (cfg->retention_ms >= 0) {
        /* An empty segment below the active one (all its records compacted
         * away) ages by its file's time, as Kafka's. */
        while (drop_t < n && (sizes[drop_t] > 0 || drop_t < n - 1) &&
               now - segment_newest_ms(v[drop_t], cfg->index_interval_bytes) > cfg->retention_ms)
            drop_t++;
        *all_expired = drop_t == n;
    }
    if (cfg->retention_bytes >= 0) {
        int64_t total = 0;
        for (int i = 0; i < n; i++)
            total += sizes[i];
        /* Kafka drops the oldest while the rest still reaches the bound. */
        while (drop_s < n - 1 && total - sizes[drop_s] >= cfg->retention_bytes) {
            total -= sizes[drop_s];
            drop_s++;
        }
    }
    return drop_t > drop_s ? drop_t : drop_s;
}

int log_run_retention(log_t *l, int64_t now) {
    pthread_mutex_lock(&l->mu);
    if (atomic_load(&l->offline)) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    int n = l->nsegs;
    log_segment_t **v = malloc(sizeof(*v) * (size_t)n);
    int64_t *sizes = malloc(sizeof(*sizes) * (size_t)n);
    if (!v || !sizes) {
        pthread_mutex_unlock(&l->mu);
        free(v);
        free(sizes);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        v[i] = l->segs[i];
        seg_ref(v[i]);
        sizes[i] = atomic_load(&v[i]->size);
    }
    log_config_t cfg = l->cfg;
    pthread_mutex_unlock(&l->mu);

    bool all_expired;
    int drop = retention_pick(v, sizes, n, &cfg, now, &all_expired);
    log_segment_t **gone = NULL;
    int removed = 0;
    bool rolled = false;
    pthread_mutex_lock(&l->mu);
    /* The list may have changed meanwhile (truncation, DeleteRecords): only
     * the part of the snapshot still at the head of the log counts. */
    int same = 0;
    while (same < drop && same < l->nsegs && l->segs[same] == v[same])
        same++;
    drop = same;
    if (drop > 0 && drop == l->nsegs) {
        /* Everything expired, the active segment too: roll so it can go (if
         * the roll fails, the active segment stays). */
        if (all_expired && log_roll_locked(l) == SM_OK) rolled = true;
        drop = l->nsegs - 1;
    }
    if (drop > 0 && log_detach_head(l, drop, &gone) == SM_OK) {
        removed = drop;
        if (l->start_offset < l->segs[0]->base) l->start_offset = l->segs[0]->base;
    }
    pthread_mutex_unlock(&l->mu);
    if (removed) log_retire_segments(l, gone, removed, now);
    if (rolled) log_flush_async(l);
    for (int i = 0; i < n; i++)
        seg_unref(v[i]);
    free(v);
    free(sizes);
    return removed;
}

void log_run_flush_policy(log_t *l, int64_t now) {
    pthread_mutex_lock(&l->mu);
    /* Renamed segments whose delay has passed. */
    int keep = 0, nexp = 0;
    log_segment_t **expired = l->ntrash ? malloc(sizeof(*expired) * (size_t)l->ntrash) : NULL;
    for (int i = 0; i < l->ntrash; i++) {
        log_segment_t *s = l->trash[i];
        if (expired && now >= s->delete_after_ms)
            expired[nexp++] = s;
        else
            l->trash[keep++] = s;
    }
    l->ntrash = keep;
    bool flush = !atomic_load(&l->offline) &&
                 ((l->first_unflushed_ms && l->cfg.flush_interval_ms != INT64_MAX &&
                   now - l->first_unflushed_ms >= l->cfg.flush_interval_ms) ||
                  l->unfinished_base != INT64_MAX);
    /* The recovery bound's time half: bytes appended this long ago go to the
     * flusher threads (never flushed here when there are none). */
    bool recovery = false;
    if (!flush && l->flusher && !atomic_load(&l->offline) && !l->cfg.fsync_before_ack &&
        l->cfg.recovery_flush_ms > 0 && l->first_unflushed_ms &&
        now - l->first_unflushed_ms >= l->cfg.recovery_flush_ms && !l->recovery_flush_queued) {
        l->recovery_flush_queued = true;
        recovery = true;
    }
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < nexp; i++) {
        seg_unlink_files(expired[i]);
        seg_unref(expired[i]);
    }
    free(expired);
    if (recovery) log_flush_for_recovery(l, log_end_offset(l));
    /* flush.ms, and rolled segments still waiting for their flush. */
    if (flush) {
        if (l->flusher)
            log_flush_async(l);
        else
            /* A failure takes the log offline and is logged there. */
            SM_IGNORE(log_flush(l));
    }
}

int log_run_maintenance(log_t *l, int64_t now) {
    int removed = log_run_retention(l, now);
    log_run_flush_policy(l, now);
    return removed;
}

int log_rename_for_delete(log_t *l, const char *new_dir) {
    pthread_mutex_lock(&l->mu);
    int rc = rename(l->dir, new_dir) ? SM_ERR_IO : SM_OK;
    char *d = rc == SM_OK ? strdup(new_dir) : NULL;
    if (d) {
        /* Threads may still be printing or fsyncing the old name: keep it. */
        free(l->old_dir);
        l->old_dir = l->dir;
        l->dir = d;
        for (int i = 0; i < l->nsegs; i++)
            seg_set_dir(l->segs[i], d);
        for (int i = 0; i < l->ntrash; i++)
            seg_set_dir(l->trash[i], d);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}
