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
    int flush_threads;              /* flusher threads; 0: one per log dir */
    int max_open_segments;          /* inactive segments with open files; 0: default */
    log_cleaner_opts_t cleaner;     /* log.cleaner.*; zeroed: no cleaner threads */
} log_manager_opts_t;

int log_manager_open(const log_manager_opts_t *opts, log_manager_t **out);
/* Stops the background thread, flushes and closes every log, writes the
 * checkpoints and the clean-shutdown markers. */
int log_manager_close(log_manager_t *m);

/* The log of topic-partition, or NULL. The pointer stays valid until the
 * partition is deleted or the manager closed. */
log_t *log_manager_get(log_manager_t *m, const char *topic, int32_t partition);
/* The log directories, in configuration order; returns their count. */
int log_manager_dirs(const log_manager_t *m, const char *const **dirs);
/* The flusher pool every log of the manager uses (for log_flush_request). */
log_flusher_t *log_manager_flusher(log_manager_t *m);
/* Opens or creates the log (in the log dir holding the fewest partitions). */
int log_manager_get_or_create(log_manager_t *m, const char *topic, int32_t partition,
                              const log_config_t *cfg, log_t **out);
/* Removes the partition: its folder is renamed to <topic>-<p>.<id>-delete at
 * once and deleted by the background thread. The caller guarantees no one
 * uses the log any more (pending reads keep their segment references). */
int log_manager_delete(log_manager_t *m, const char *topic, int32_t partition);

/* Calls fn for every loaded partition (under the manager's lock: fn must not
 * call back into the manager). */
void log_manager_foreach(log_manager_t *m,
                         void (*fn)(void *arg, const char *topic, int32_t partition, log_t *l),
                         void *arg);
int log_manager_write_checkpoints(log_manager_t *m);
/* The cleaner threads (NULL when log.cleaner.enable=false): wake them after
 * a config change; tests wait on log_cleaner_runs. */
log_cleaner_t *log_manager_cleaner(log_manager_t *m);
/* Runs one maintenance pass now (tests). */
void log_manager_run_maintenance(log_manager_t *m);

/* Splits a partition folder name "<topic>-<partition>"; false if it is not one. */
bool log_manager_parse_dir_name(const char *name, char *topic, size_t topic_cap,
                                int32_t *partition);

#endif
