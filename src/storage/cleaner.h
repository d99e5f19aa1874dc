/*
 * Log compaction (cleanup.policy=compact), as Kafka's log cleaner: a cleaning
 * pass over one log (cleaner.c), the bounded key -> offset map it builds
 * (cleaner_map.c), and the pool of background cleaner threads that picks the
 * dirtiest log (cleaner_pool.c, driven by the log manager). Not for retention
 * by time or size (log_retention.c).
 */
#ifndef STORAGE_CLEANER_H
#define STORAGE_CLEANER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct log log_t;

/* What the last cleaning of a log did (also shown by `samsa logs`). */
typedef struct log_clean_stats {
    int64_t runs;        /* cleanings completed since the log was opened */
    int64_t last_run_ms; /* wall clock at the end of the last cleaning, 0 never */
    int64_t last_duration_ms;
    int64_t bytes_read;    /* last cleaning: segment bytes read (map and rewrite) */
    int64_t bytes_written; /* last cleaning: bytes of the rewritten segments */
    int64_t records_removed;
    int64_t records_kept;
    double ratio_before; /* dirty ratio when the cleaning started */
} log_clean_stats_t;

/* A log's state as the cleaner sees it. */
typedef struct log_clean_info {
    bool compact;
    int64_t clean_point;       /* first dirty offset */
    int64_t first_uncleanable; /* the cleanable part ends here (active segment, lag, unflushed) */
    int64_t clean_bytes, dirty_bytes;
    double dirty_ratio; /* dirty / (clean + dirty), 0 when nothing is cleanable */
    bool cleanable;     /* a cleaner thread would pick it now */
    bool cleaning;      /* a cleaner thread is on it */
    log_clean_stats_t last;
} log_clean_info_t;

/* The bounded key -> latest offset map (log.cleaner.dedupe.buffer.size). Keys
 * are kept as 128-bit hashes (Kafka keeps 16-byte MD5 digests): 24 bytes per
 * entry, like Kafka's. */
typedef struct clean_map clean_map_t;
/* bytes: the budget (one thread's share of the dedupe buffer); load_factor:
 * log.cleaner.io.buffer.load.factor. The table grows with use up to the budget. */
int clean_map_new(size_t bytes, double load_factor, clean_map_t **out);
void clean_map_free(clean_map_t *m);
void clean_map_clear(clean_map_t *m);
/* SM_OK, or SM_ERR_SPACE when the map holds its maximum (nothing inserted). */
int clean_map_put(clean_map_t *m, const uint8_t *key, size_t len, int64_t offset);
/* The offset stored for key, or -1. */
int64_t clean_map_get(const clean_map_t *m, const uint8_t *key, size_t len);
size_t clean_map_size(const clean_map_t *m);
/* How many more entries fit. */
size_t clean_map_room(const clean_map_t *m);

/* I/O throttle shared by a pool's threads (log.cleaner.io.max.bytes.per.second). */
typedef struct clean_throttle clean_throttle_t;

/* An ABORT marker of producer_id at offset leaves log l (log_clean_opts_t). */
typedef void (*log_marker_removed_fn)(void *arg, log_t *l, int64_t producer_id, int64_t offset);

typedef struct log_clean_opts {
    clean_map_t *map;
    /* Called on the cleaning thread, holding no lock, for each ABORT marker
     * a cleaning removes (its transaction's batches were all gone), before
     * the segment holding it is replaced: whoever keeps the aborted
     * transactions in memory drops that entry, as the segment's .txnindex
     * does (a read_committed client would apply it to the producer's later
     * batches). NULL: none. */
    log_marker_removed_fn marker_removed;
    void *marker_arg;
    clean_throttle_t *throttle; /* NULL: unthrottled */
    int64_t now_ms;
    bool force;            /* clean even below min.cleanable.dirty.ratio (tests, max lag) */
    size_t io_buffer_size; /* log.cleaner.io.buffer.size: read buffer */
} log_clean_opts_t;

/*
 * One cleaning of l (a cleaner thread, or a test): builds the key map from the
 * dirty part (from the clean point up to the first uncleanable offset, as far
 * as the map holds), then rewrites every segment from the log start to the
 * end of what the map covered, in groups that fit one segment, keeping for
 * each key only its latest record, tombstones until their delete horizon, and
 * each producer's last batch. Each group is written to <base>.log.cleaned,
 * fsynced, renamed to .swap and swapped in (old files renamed .deleted).
 * Appends and reads go on meanwhile. Returns SM_OK (also when there was
 * nothing to do: *did says whether anything was rewritten), SM_ERR_AGAIN when
 * aborted, SM_ERR_IO / SM_ERR_CORRUPT / SM_ERR_NOMEM on failure (the log stays
 * as it was, except groups already swapped, which are complete).
 */
int log_clean(log_t *l, const log_clean_opts_t *o, bool *did);

/* The cleaner's view of l at now_ms (takes the log's mutex briefly). */
void log_clean_info(log_t *l, int64_t now_ms, log_clean_info_t *out);
/* cleaner-offset-checkpoint: the first dirty offset (-1 none). */
int64_t log_clean_point(log_t *l);
void log_set_clean_point(log_t *l, int64_t offset);

/*
 * Recovery at open (called by log_open before it lists segments): every
 * <base>.log.swap left by an interrupted cleaning was complete and fsynced
 * before it was renamed, so it replaces the segments in its offset range;
 * .cleaned files are incomplete and are removed by log_open afterwards.
 */
int log_cleaner_complete_swaps(const char *dir);
/* Tests: hook(step) runs at each step of a group's swap ("cleaned", "swap",
 * "renamed-old", "swapped", "indexed"), so a crash can be injected at each. */
void log_cleaner_set_test_hook(void (*hook)(const char *step));

/* ---- the pool of cleaner threads (cleaner_pool.c) ---- */

typedef struct log_cleaner_opts {
    bool enable;                    /* log.cleaner.enable */
    int threads;                    /* log.cleaner.threads */
    int64_t dedupe_buffer_size;     /* log.cleaner.dedupe.buffer.size, shared by the threads */
    double load_factor;             /* log.cleaner.io.buffer.load.factor */
    int64_t io_buffer_size;         /* log.cleaner.io.buffer.size */
    double io_max_bytes_per_second; /* log.cleaner.io.max.bytes.per.second */
    int64_t backoff_ms;             /* log.cleaner.backoff.ms */
    log_marker_removed_fn marker_removed; /* see log_clean_opts_t; NULL: none */
    void *marker_arg;
} log_cleaner_opts_t;

/* Kafka's defaults. */
void log_cleaner_opts_default(log_cleaner_opts_t *o);

typedef struct log_cleaner log_cleaner_t;
/*
 * The candidates a pool may clean: pick(arg, score, sarg) calls score(sarg,
 * log) for every log not being cleaned and marks the one with the highest
 * non-negative score as cleaning (log->cleaning, under the owner's lock, so a
 * deleted log is never picked); the thread clears it when done. The log
 * manager implements it (log_manager_cleaner_pick).
 */
typedef double (*log_cleaner_score_fn)(void *sarg, log_t *l);
typedef log_t *(*log_cleaner_pick_fn)(void *arg, log_cleaner_score_fn score, void *sarg);
/* The pool's scoring: the dirty ratio of a cleanable log, plus 1 when it is
 * due regardless of the ratio (max.compaction.lag.ms, tombstone horizon);
 * -1 when it is not cleanable. */
double log_cleaner_score(log_t *l, int64_t now_ms);
/* After a thread is done with l (cleaning cleared). */
void log_cleaner_release(log_t *l);

int log_cleaner_start(const log_cleaner_opts_t *o, log_cleaner_pick_fn pick, void *arg,
                      log_cleaner_t **out);
/* Stops the threads (aborting cleanings in progress) and frees c. */
void log_cleaner_stop(log_cleaner_t *c);
/* Wakes the threads (a config changed, a test wants a pass now). */
void log_cleaner_wake(log_cleaner_t *c);
/* Cleanings completed by the pool (tests wait on it). */
int64_t log_cleaner_runs(log_cleaner_t *c);

#endif
