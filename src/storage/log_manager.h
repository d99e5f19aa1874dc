/*
 * All partition logs of a broker across its log.dirs: loading (with parallel
 * recovery after an unclean stop), creation and deletion of partition folders,
 * Kafka's checkpoint files (recovery-point-offset-checkpoint,
 * log-start-offset-checkpoint), the clean-shutdown marker, a pool of flusher
 * threads for group commit (log_flush_request), and one background thread
 * for retention, flush.ms, deferred deletions and checkpoints, and the log
 * cleaner's threads (compaction, cleaner-offset-checkpoint). Thread-safe.
 */
#ifndef STORAGE_LOG_MANAGER_H
#define STORAGE_LOG_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/cleaner.h"
#include "storage/log.h"

typedef struct log_manager log_manager_t;

typedef struct log_manager_opts {
    const char *const *dirs; /* log.dirs */
    int ndirs;
    log_config_t defaults;
    int recovery_threads;           /* num.recovery.threads.per.data.dir */
    int64_t retention_check_ms;     /* log.retention.check.interval.ms */
    int64_t checkpoint_interval_ms; /* log.flush.offset.checkpoint.interval.ms */
    int64_t recovery_checkpoint_ms; /* also the recovery points alone this often, when they
                                       moved (samsa.log.recovery.flush.ms); 0: not */
    int flush_threads;              /* flusher threads; 0: one per log dir */
    int max_open_segments;          /* segments with open files; 0: default */
    log_cleaner_opts_t cleaner;     /* log.cleaner.*; zeroed: no cleaner threads */
    bool defer_recovery;            /* after an unclean stop, recover the logs of unclean
                                       dirs in the background (log_manager_start_recovery) */
} log_manager_opts_t;

/* Segments (active ones too) that may hold a descriptor or a mapped index at
 * once, by default: a quarter of the soft RLIMIT_NOFILE (the rest is for
 * connections, descriptors in flight in fetch responses and transient files),
 * at least 16, at most LOG_MAX_DEFAULT_OPEN_SEGMENTS. */
#define LOG_MAX_DEFAULT_OPEN_SEGMENTS 8192
int log_manager_default_open_segments(void);
/* Segment descriptors (cached, or held by reads in flight such as fetch
 * responses) the storage holds at most: half the soft RLIMIT_NOFILE, so
 * connections and other files always have the other half; no bound when the
 * limit is unlimited or above 8 x LOG_MAX_DEFAULT_OPEN_SEGMENTS. */
int log_manager_default_descriptor_budget(void);
/*
 * Deferred recovery. With opts.defer_recovery, log_manager_open opens the
 * logs of cleanly stopped dirs and leaves each log of an unclean dir
 * *pending*: listed (its folder's name is taken, its checkpointed values are
 * written back unchanged) but without a log: log_manager_get returns NULL,
 * get_or_create and detach SM_ERR_AGAIN, foreach and close_unclaimed skip it.
 * log_manager_start_recovery then opens them on num.recovery.threads.per.data.dir
 * threads per dir, internal topics ("__" names) first, and calls fn(arg,
 * topic, partition) on that thread once each log is served (a log that cannot
 * open is logged and dropped). One line is logged when all are done.
 */
typedef void (*log_manager_recovered_fn)(void *arg, const char *topic, int32_t partition);
int log_manager_start_recovery(log_manager_t *m, log_manager_recovered_fn fn, void *arg);
/* True while topic-partition is pending. */
bool log_manager_pending(log_manager_t *m, const char *topic, int32_t partition);
/* Waits until no log of topic is pending. */
void log_manager_wait_topic(log_manager_t *m, const char *topic);
/* Waits until the deferred recovery has ended (log_manager_close does too). */
void log_manager_finish_recovery(log_manager_t *m);

int log_manager_open(const log_manager_opts_t *opts, log_manager_t **out);
/* Stops the background thread, flushes and closes every log, writes the
 * checkpoints and the clean-shutdown markers (`.kafka_cleanshutdown`, Kafka's JSON
 * {"version":0,"brokerEpoch":N} with the epoch last set, -1 by default). */
int log_manager_close(log_manager_t *m);
/* KIP-966: the broker epoch the clean-shutdown markers held when the manager opened (they
 * are removed then), or -1 after an unclean stop (a dir without a marker, a marker without
 * an epoch, dirs that disagree). A broker registers with it as PreviousBrokerEpoch. */
int64_t log_manager_clean_broker_epoch(const log_manager_t *m);
/* The broker epoch the markers written at close hold (the broker's registration). */
void log_manager_set_broker_epoch(log_manager_t *m, int64_t epoch);

/* The log of topic-partition, or NULL. The pointer stays valid until the
 * partition is deleted or the manager closed. */
log_t *log_manager_get(log_manager_t *m, const char *topic, int32_t partition);
/* The log directories, in configuration order; returns their count. */
int log_manager_dirs(const log_manager_t *m, const char *const **dirs);
/* The flusher pool every log of the manager uses (for log_flush_request). */
log_flusher_t *log_manager_flusher(log_manager_t *m);
/* Opens or creates the log of topic-partition for topic_id (16 bytes; NULL
 * for a log without an id: tests). A new folder gets a partition.metadata
 * naming topic_id (in the log dir holding the fewest partitions). A folder of
 * the same name but another topic id is never served: it is moved aside to
 * <topic>-<p>.<uuid>-stray with its data and a fresh folder created. The
 * file work runs without the manager's lock: lookups and creations of other
 * partitions are not held up; concurrent callers for this one wait for it. */
int log_manager_get_or_create(log_manager_t *m, const char *topic, int32_t partition,
                              const uint8_t *topic_id, const log_config_t *cfg, log_t **out);
/* Tests: fn runs on the creating thread, without the manager's lock, before a
 * partition's log is created or adopted (NULL: none). */
typedef void (*log_manager_open_hook_fn)(void *arg, const char *topic, int32_t partition);
void log_manager_set_open_hook(log_manager_t *m, log_manager_open_hook_fn fn, void *arg);
/* Takes the partition of topic_id (NULL: whatever id) out of the manager:
 * its folder is renamed to <topic>-<p>.<uuid>-delete at once, so the name is
 * free for a new topic, but the log stays open for those still using it
 * until log_manager_dispose. SM_ERR_NOTFOUND if there is no such partition. */
int log_manager_detach(log_manager_t *m, const char *topic, int32_t partition,
                       const uint8_t *topic_id, log_t **out);
/* Closes and removes a detached log on the background thread; the caller
 * guarantees no one uses it any more (pending reads keep their segments). */
void log_manager_dispose(log_manager_t *m, log_t *l);
/* Detach and dispose at once. */
int log_manager_delete(log_manager_t *m, const char *topic, int32_t partition);
/* Closes every loaded partition that claimed() does not recognise (topic id,
 * or name when the folder has no id) and leaves its folder on disk as it is,
 * logged; returns how many. At start, once the metadata image is known. */
int log_manager_close_unclaimed(log_manager_t *m,
                                bool (*claimed)(void *arg, const char *topic, int32_t partition,
                                                const uint8_t *topic_id),
                                void *arg);

/* Calls fn for every loaded partition (under the manager's lock: fn must not
 * call back into the manager). */
void log_manager_foreach(log_manager_t *m,
                         void (*fn)(void *arg, const char *topic, int32_t partition, log_t *l),
                         void *arg);
int log_manager_write_checkpoints(log_manager_t *m);
/* Starts the cleaner threads of opts.cleaner (after log_manager_close_unclaimed:
 * a log a thread cleans is never closed under it). */
int log_manager_start_cleaner(log_manager_t *m);
/* The cleaner threads (NULL when not started or log.cleaner.enable=false): wake them after
 * a config change; tests wait on log_cleaner_runs. */
log_cleaner_t *log_manager_cleaner(log_manager_t *m);
/* Runs one maintenance pass now (tests). */
void log_manager_run_maintenance(log_manager_t *m);

/* Splits a partition folder name "<topic>-<partition>"; false if it is not one. */
bool log_manager_parse_dir_name(const char *name, char *topic, size_t topic_cap,
                                int32_t *partition);

#endif
