/*
 * The log manager (see log_manager.h). Lock order: m->mu, then a log's own
 * mutex (taken inside log_* calls). Creating a partition (its folder,
 * partition.metadata, their fsyncs) and the directory fsync of a detach run
 * without m->mu; the checkpoint files are still written under it.
 *
 * A partition folder belongs to one topic id, written in its partition.metadata
 * (Kafka's file: version 0, topic_id) when the folder is created. The map holds
 * at most one live folder per "<topic>-<partition>" name; an entry serves only
 * the topic id it names (an entry without an id is a folder written before
 * partition.metadata existed and is adopted, with the file written, by the
 * first topic that asks for it). A folder of another id is never served: it is
 * set aside as "<topic>-<partition>.<uuid>-stray" with its data when a topic
 * needs the name. A deleted partition's folder is renamed to
 * "<topic>-<partition>.<uuid>-delete" at once (the name is free for a new
 * topic at once) while its log stays open for whoever still holds it; it is
 * closed and removed by the background thread once disposed. The background thread never holds
 * m->mu while it runs maintenance on a log: it copies the list of logs first. Threads: callers
 * (any), the background thread, the flusher pool, and at open a short-lived pool that recovers
 * partitions in parallel.
 *
 * Entry states: pending (log NULL: recovering after an unclean stop, deferred
 * recovery only; its checkpointed values are kept in the entry and written
 * back) -> served (log set, under m->mu, by its recovery job). npending counts
 * pending entries; m->cv is broadcast when one is served. Only a pending
 * entry's own recovery job makes it served or removes it.
 */
#include "storage/log_manager.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/map.h"
#include "storage/log_impl.h"

#define CLEAN_MARKER ".kafka_cleanshutdown"
#define RECOVERY_CHECKPOINT "recovery-point-offset-checkpoint"
#define START_CHECKPOINT "log-start-offset-checkpoint"
#define CLEANER_CHECKPOINT "cleaner-offset-checkpoint"
#define HW_CHECKPOINT "replication-offset-checkpoint"
#define CLEANER_STATE "samsa-cleaner-state"

typedef struct entry {
    char *topic;
    int32_t partition;
    int dir;     /* index into m->dirs */
    log_t *log;  /* NULL while recovering (pending) */
    bool has_id; /* partition.metadata read or written */
    uint8_t topic_id[16];
    /* While pending: the checkpointed values, written back unchanged. */
    int64_t rp, start, clean_point, hw;
} entry_t;

typedef struct doomed {
    char *path;
    log_t *log;
} doomed_t;

struct log_manager {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **dirs;
    int ndirs;
    int *dir_counts;
    log_config_t defaults;
    sm_map_t logs; /* "topic-partition" -> entry_t* */
    doomed_t *doomed;
    int ndoomed, cap_doomed;
    int64_t retention_check_ms;
    int64_t checkpoint_interval_ms;
    int64_t recovery_checkpoint_ms;
    int64_t *rp_written; /* per dir: sum of the recovery points last written */
    bool stopping;
    pthread_t thread;
    bool thread_started;
    log_flusher_t *flusher;
    log_cleaner_t *cleaner;
    log_cleaner_opts_t cleaner_opts;
    /* Partitions being created or adopted outside m->mu (their key -> a
     * non-NULL marker); whoever wants one of them waits on opened_cv. */
    sm_map_t opening;
    pthread_cond_t opened_cv;
    log_manager_open_hook_fn open_hook; /* tests: runs outside m->mu before a log is created */
    void *open_hook_arg;
    /* Deferred recovery (log_manager_start_recovery): the unclean logs' jobs,
     * opened by a pool while the broker serves the others. */
    struct load_pool *recovery;
    _Atomic int npending;
    /* KIP-966: the broker epoch every dir's clean-shutdown marker held at open (-1: a dir
     * had none or another epoch), and the one the markers written at close hold. */
    int64_t clean_broker_epoch;
    _Atomic int64_t broker_epoch;
};

static int64_t now_ms(void) { return sm_time_ms(); }

/* Closes a log the manager gives up (an error path, a stray, an unclaimed
 * folder): a failure is logged, there is no caller to hand it to. */
static void close_logged(log_t *l) {
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", log_dir(l));
    if (log_close(l)) sm_warn("storage", "%s: closing the log reported an error", dir);
}

bool log_manager_parse_dir_name(const char *name, char *topic, size_t topic_cap,
                                int32_t *partition) {
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1]) return false;
    char *end;
    long p = strtol(dash + 1, &end, 10);
    if (*end || p < 0 || p > INT32_MAX) return false;
    for (const char *c = dash + 1; *c; c++)
        if (*c < '0' || *c > '9') return false;
    size_t n = (size_t)(dash - name);
    if (n + 1 > topic_cap) return false;
    memcpy(topic, name, n);
    topic[n] = 0;
    *partition = (int32_t)p;
    return true;
}

static int key_of(char *buf, size_t cap, const char *topic, int32_t partition) {
    return snprintf(buf, cap, "%s-%d", topic, partition);
}

/* ---- checkpoint files: "0\n<count>\n<topic> <partition> <offset>\n..." ---- */

typedef struct ckpt {
    sm_map_t offsets; /* "topic-partition" -> int64_t* */
} ckpt_t;

static void ckpt_free(ckpt_t *c) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->offsets, &it, NULL, NULL, &v))
        free(v);
    sm_map_free(&c->offsets);
}

static void ckpt_read(const char *dir, const char *name, ckpt_t *c) {
    sm_map_init(&c->offsets);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    uint8_t *data;
    size_t len;
    if (fio_read_file(path, &data, &len, 256 << 20)) return;
    char *text = malloc(len + 1);
    if (!text) {
        free(data);
        return;
    }
    memcpy(text, data, len);
    text[len] = 0;
    free(data);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    int lineno = 0;
    long expected = -1, got = 0;
    for (; line; line = strtok_r(NULL, "\n", &save), lineno++) {
        if (lineno == 0) {
            if (strcmp(line, "0") != 0) break; /* unknown version: ignore the file */
            continue;
        }
        if (lineno == 1) {
            expected = strtol(line, NULL, 10);
            continue;
        }
        char topic[256];
        int32_t p;
        long long off;
        if (sscanf(line, "%255s %d %lld", topic, &p, &off) != 3) break;
        char key[300];
        key_of(key, sizeof(key), topic, p);
        int64_t *v = malloc(sizeof(*v));
        if (!v) break;
        *v = off;
        free(sm_map_get(&c->offsets, key, strlen(key)));
        sm_map_put(&c->offsets, key, strlen(key), v);
        got++;
    }
    if (expected >= 0 && got != expected)
        sm_warn("storage", "%s: checkpoint lists %ld entries but has %ld", path, expected, got);
    free(text);
}

static int64_t ckpt_get(ckpt_t *c, const char *key, int64_t dflt) {
    int64_t *v = sm_map_get(&c->offsets, key, strlen(key));
    return v ? *v : dflt;
}

/* ---- loading ---- */

typedef struct load_job {
    char path[4096];
    char topic[256];
    int32_t partition;
    int dir;
    bool clean;
    bool has_id;
    uint8_t topic_id[16];
    int64_t recovery_point, log_start, clean_point, hw;
    log_t *log;
    int rc;
} load_job_t;

typedef struct load_pool {
    pthread_mutex_t mu;
    load_job_t *jobs;
    int njobs, next, done;
    const log_config_t *cfg;
    /* Deferred recovery only: */
    log_manager_t *m;
    log_manager_recovered_fn on_recovered;
    void *arg;
    pthread_t *threads;
    int nthreads;
    log_recovery_totals_t before;
    int64_t t0;
    _Atomic bool stop; /* the manager closes: a descriptor shortage is not waited out again */
} load_pool_t;

static void finish_pending(load_pool_t *p, load_job_t *j);

/* Test hook (SAMSA_TEST_RECOVERY_GATE=topic:path): the recovery of that
 * topic's partitions waits until the file exists, so a test can observe the
 * broker while a partition is still recovering. */
static void test_gate(const char *topic) {
    const char *g = getenv("SAMSA_TEST_RECOVERY_GATE");
    const char *colon = g ? strchr(g, ':') : NULL;
    if (!colon || strlen(topic) != (size_t)(colon - g) || strncmp(g, topic, strlen(topic)) != 0)
        return;
    sm_warn("storage", "%s: recovery held until %s exists (SAMSA_TEST_RECOVERY_GATE)", topic,
            colon + 1);
    while (access(colon + 1, F_OK) != 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void *load_worker(void *arg) {
    load_pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->next < p->njobs ? p->next++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (i < 0) return NULL;
        load_job_t *j = &p->jobs[i];
        if (!p->m) j->has_id = log_read_partition_metadata(j->path, j->topic_id) == SM_OK;
        if (p->m) test_gate(j->topic);
        j->rc = log_open(j->path, p->cfg, j->clean, j->recovery_point, j->log_start, &j->log);
        /* A deferred log stays pending through a descriptor shortage of any
         * length (clients are told to retry); only closing ends the wait. */
        while (p->m && j->rc == SM_ERR_LIMIT && !atomic_load(&p->stop)) {
            sm_warn("storage", "%s: still out of descriptors; the partition keeps recovering",
                    j->path);
            j->rc = log_open(j->path, p->cfg, j->clean, j->recovery_point, j->log_start, &j->log);
        }
        if (p->m) finish_pending(p, j);
    }
}

static int add_entry(log_manager_t *m, const char *topic, int32_t partition, int dir, log_t *l,
                     const uint8_t *topic_id) {
    entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->topic = strdup(topic))) {
        free(e);
        return SM_ERR_NOMEM;
    }
    e->partition = partition;
    e->dir = dir;
    e->log = l;
    if (topic_id) {
        e->has_id = true;
        memcpy(e->topic_id, topic_id, 16);
    }
    char key[300];
    key_of(key, sizeof(key), topic, partition);
    if (sm_map_put(&m->logs, key, strlen(key), e)) {
        free(e->topic);
        free(e);
        return SM_ERR_NOMEM;
    }
    m->dir_counts[dir]++;
    if (m->flusher) log_attach_flusher(l, m->flusher);
    return SM_OK;
}

static int push_doomed(log_manager_t *m, char *path, log_t *l) {
    if (m->ndoomed == m->cap_doomed) {
        int cap = m->cap_doomed ? m->cap_doomed * 2 : 8;
        doomed_t *n = realloc(m->doomed, sizeof(*n) * (size_t)cap);
        if (!n) return SM_ERR_NOMEM;
        m->doomed = n;
        m->cap_doomed = cap;
    }
    m->doomed[m->ndoomed++] = (doomed_t){path, l};
    return SM_OK;
}

/* One line for the operator: how the logs were found and what recovery did. */
static void report_load(int njobs, int unclean_dirs, const log_recovery_totals_t *before,
                        int64_t t0) {
    log_recovery_totals_t after;
    log_recovery_totals(&after);
    int64_t ms = sm_mono_ms() - t0;
    if (njobs == 0) {
        sm_info("storage", "no partition logs yet");
        return;
    }
    if (unclean_dirs == 0) {
        sm_info("storage", "opened %d partition logs in %" PRId64 " ms after a clean shutdown",
                njobs, ms);
        return;
    }
    sm_warn("storage",
            "recovery after an unclean shutdown (%d log dir(s)): %d partition logs opened, %" PRId64
            " segment(s) scanned (%" PRId64 " bytes, at most %" PRId64 " in one log), %" PRId64
            " bytes cut, in %" PRId64 " ms",
            unclean_dirs, njobs, after.segments - before->segments, after.bytes - before->bytes,
            after.max_log_bytes, after.cut_bytes - before->cut_bytes, ms);
}

/* The unclean logs' jobs, internal topics first (the group and transaction
 * coordinators wait for them). */
static int cmp_internal_first(const void *a, const void *b) {
    const load_job_t *x = a, *y = b;
    bool ix = strncmp(x->topic, "__", 2) == 0, iy = strncmp(y->topic, "__", 2) == 0;
    return ix == iy ? 0 : ix ? -1 : 1;
}

static int add_pending(log_manager_t *m, load_job_t *j) {
    entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->topic = strdup(j->topic))) {
        free(e);
        return SM_ERR_NOMEM;
    }
    e->partition = j->partition;
    e->dir = j->dir;
    e->has_id = j->has_id;
    memcpy(e->topic_id, j->topic_id, 16);
    e->rp = j->recovery_point;
    e->start = j->log_start;
    e->clean_point = j->clean_point;
    e->hw = j->hw;
    char key[300];
    key_of(key, sizeof(key), j->topic, j->partition);
    if (sm_map_put(&m->logs, key, strlen(key), e)) {
        free(e->topic);
        free(e);
        return SM_ERR_NOMEM;
    }
    m->dir_counts[j->dir]++;
    atomic_fetch_add(&m->npending, 1);
    return SM_OK;
}

/* The broker epoch in a clean-shutdown marker, Kafka's JSON
 * {"version":0,"brokerEpoch":N}; -1 when the file is missing, empty (written by an older
 * Samsa) or holds no epoch. */
static int64_t marker_broker_epoch(const char *path) {
    uint8_t *text;
    size_t len;
    if (fio_read_file(path, &text, &len, 4096) != SM_OK) return -1;
    int64_t epoch = -1;
    char buf[4097];
    memcpy(buf, text, len);
    buf[len] = 0;
    free(text);
    const char *k = strstr(buf, "\"brokerEpoch\"");
    if (k) {
        k += strlen("\"brokerEpoch\"");
        while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')
            k++;
        if (*k == ':') {
            char *end;
            long long v = strtoll(k + 1, &end, 10);
            if (end != k + 1 && v >= 0) epoch = v;
        }
    }
    return epoch;
}

/* Writes dir's clean-shutdown marker holding epoch, as Kafka's CleanShutdownFileHandler. */
static int write_marker(const char *dir, int64_t epoch) {
    char marker[4096], text[64];
    snprintf(marker, sizeof(marker), "%s/%s", dir, CLEAN_MARKER);
    int n = snprintf(text, sizeof(text), "{\"version\":0,\"brokerEpoch\":%lld}", (long long)epoch);
    return fio_write_file(marker, text, (size_t)n, true);
}

static int load_dirs(log_manager_t *m, int threads, bool defer) {
    load_job_t *jobs = NULL;
    int njobs = 0, cap = 0, rc = SM_OK, unclean_dirs = 0;
    log_recovery_totals_t before;
    log_recovery_reset_max();
    log_recovery_totals(&before);
    int64_t t0 = sm_mono_ms();
    m->clean_broker_epoch = -2;
    for (int d = 0; d < m->ndirs; d++) {
        char marker[4096];
        snprintf(marker, sizeof(marker), "%s/%s", m->dirs[d], CLEAN_MARKER);
        bool clean = access(marker, F_OK) == 0;
        /* Kafka's rule: every dir must hold the same epoch, else the stop counts as
         * unclean. */
        int64_t epoch = clean ? marker_broker_epoch(marker) : -1;
        if (m->clean_broker_epoch == -2 || m->clean_broker_epoch == epoch)
            m->clean_broker_epoch = epoch;
        else
            m->clean_broker_epoch = -1;
        int first_job = njobs;
        ckpt_t rp, ls, cl, hw;
        ckpt_read(m->dirs[d], RECOVERY_CHECKPOINT, &rp);
        ckpt_read(m->dirs[d], START_CHECKPOINT, &ls);
        ckpt_read(m->dirs[d], CLEANER_CHECKPOINT, &cl);
        ckpt_read(m->dirs[d], HW_CHECKPOINT, &hw);
        DIR *dir = opendir(m->dirs[d]);
        if (!dir) {
            ckpt_free(&rp);
            ckpt_free(&ls);
            ckpt_free(&cl);
            ckpt_free(&hw);
            return SM_ERR_IO;
        }
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", m->dirs[d], e->d_name);
            struct stat st;
            if (stat(path, &st) || !S_ISDIR(st.st_mode)) continue;
            size_t n = strlen(e->d_name);
            if (n > 7 && strcmp(e->d_name + n - 7, "-delete") == 0) {
                char *p = strdup(path);
                if (p) push_doomed(m, p, NULL);
                continue;
            }
            /* Set aside with its data: not ours to serve nor to delete. */
            if (n > 6 && strcmp(e->d_name + n - 6, "-stray") == 0) continue;
            char topic[256];
            int32_t part;
            if (!log_manager_parse_dir_name(e->d_name, topic, sizeof(topic), &part)) continue;
            /* The metadata log belongs to the controller, not to the manager. */
            if (strcmp(topic, "__cluster_metadata") == 0) continue;
            if (njobs == cap) {
                cap = cap ? cap * 2 : 64;
                load_job_t *nj = realloc(jobs, sizeof(*nj) * (size_t)cap);
                if (!nj) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                jobs = nj;
            }
            load_job_t *j = &jobs[njobs++];
            memset(j, 0, sizeof(*j));
            snprintf(j->path, sizeof(j->path), "%s", path);
            snprintf(j->topic, sizeof(j->topic), "%s", topic);
            j->partition = part;
            j->dir = d;
            char key[300];
            key_of(key, sizeof(key), topic, part);
            /* Without a checkpoint entry nothing is known to be flushed. */
            j->recovery_point = ckpt_get(&rp, key, 0);
            j->log_start = ckpt_get(&ls, key, -1);
            j->clean_point = ckpt_get(&cl, key, -1);
            j->hw = ckpt_get(&hw, key, -1);
            j->clean = clean && sm_map_get(&rp.offsets, key, strlen(key)) != NULL;
        }
        closedir(dir);
        ckpt_free(&rp);
        ckpt_free(&ls);
        if (!clean && njobs > first_job) unclean_dirs++;
        ckpt_free(&cl);
        ckpt_free(&hw);
        /* From now on a crash is an unclean stop. */
        unlink(marker);
        if (rc) break;
    }
    if (m->clean_broker_epoch == -2) m->clean_broker_epoch = -1;
    if (rc == SM_OK && defer && unclean_dirs) {
        /* Unclean logs become pending entries, recovered by
         * log_manager_start_recovery; clean ones open now (no data read). */
        int nclean = 0;
        load_job_t *later = malloc(sizeof(*later) * (size_t)njobs);
        load_pool_t *pool = calloc(1, sizeof(*pool));
        if (!later || !pool) rc = SM_ERR_NOMEM;
        int nlater = 0;
        for (int i = 0; rc == SM_OK && i < njobs; i++) {
            load_job_t *j = &jobs[i];
            j->has_id = log_read_partition_metadata(j->path, j->topic_id) == SM_OK;
            if (j->clean) {
                jobs[nclean++] = *j;
                continue;
            }
            later[nlater++] = *j;
            rc = add_pending(m, j);
        }
        if (rc == SM_OK && nlater) {
            qsort(later, (size_t)nlater, sizeof(*later), cmp_internal_first);
            pthread_mutex_init(&pool->mu, NULL);
            pool->jobs = later;
            pool->njobs = nlater;
            pool->cfg = &m->defaults;
            pool->m = m;
            pool->nthreads = threads < 1 ? 1 : threads > nlater ? nlater : threads;
            pool->before = before;
            pool->t0 = t0;
            m->recovery = pool;
            sm_warn("storage",
                    "unclean shutdown: %d partition log(s) recover in the background; %d opened "
                    "now",
                    nlater, nclean);
        } else {
            free(later);
            free(pool);
        }
        njobs = nclean;
    }
    if (rc == SM_OK && njobs) {
        load_pool_t pool = {.jobs = jobs, .njobs = njobs, .next = 0, .cfg = &m->defaults};
        pthread_mutex_init(&pool.mu, NULL);
        int nt = threads < 1 ? 1 : threads;
        if (nt > njobs) nt = njobs;
        pthread_t *tids = calloc((size_t)nt, sizeof(*tids));
        int started = 0;
        for (int i = 0; tids && i < nt; i++)
            if (pthread_create(&tids[i], NULL, load_worker, &pool) == 0) started++;
        if (!started) load_worker(&pool);
        for (int i = 0; i < started; i++)
            pthread_join(tids[i], NULL);
        free(tids);
        pthread_mutex_destroy(&pool.mu);
        for (int i = 0; i < njobs; i++) {
            if (jobs[i].rc) {
                /* Skipped: the partition is offline alone, the broker starts. */
                sm_error("storage", "%s: cannot open the log (%s); the partition is offline",
                         jobs[i].path, sm_strerror(jobs[i].rc));
                continue;
            }
            log_set_clean_point(jobs[i].log, jobs[i].clean_point);
            log_set_high_watermark(jobs[i].log, jobs[i].hw);
            if (rc == SM_OK)
                rc = add_entry(m, jobs[i].topic, jobs[i].partition, jobs[i].dir, jobs[i].log,
                               jobs[i].has_id ? jobs[i].topic_id : NULL);
            else
                close_logged(jobs[i].log);
        }
    }
    if (rc == SM_OK && !m->recovery) report_load(njobs, unclean_dirs, &before, t0);
    free(jobs);
    return rc;
}

/* A deferred job is done: its entry gets the log (or goes, if it cannot
 * open), then the owner hears of it. */
static void finish_pending(load_pool_t *p, load_job_t *j) {
    log_manager_t *m = p->m;
    char key[300];
    key_of(key, sizeof(key), j->topic, j->partition);
    pthread_mutex_lock(&m->mu);
    entry_t *e = sm_map_get(&m->logs, key, strlen(key));
    if (j->rc) {
        sm_error("storage", "%s: cannot open the log (%s); the partition is offline", j->path,
                 sm_strerror(j->rc));
        if (e && !e->log) {
            sm_map_del(&m->logs, key, strlen(key));
            m->dir_counts[e->dir]--;
            free(e->topic);
            free(e);
        }
    } else if (e && !e->log) {
        log_set_clean_point(j->log, j->clean_point);
        log_set_high_watermark(j->log, j->hw);
        e->log = j->log;
        if (m->flusher) log_attach_flusher(j->log, m->flusher);
    } else {
        close_logged(j->log); /* cannot happen: pending entries stay */
        j->rc = SM_ERR;
    }
    atomic_fetch_sub(&m->npending, 1);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (j->rc == SM_OK && p->on_recovered) p->on_recovered(p->arg, j->topic, j->partition);
    pthread_mutex_lock(&p->mu);
    bool last = ++p->done == p->njobs;
    pthread_mutex_unlock(&p->mu);
    if (last) report_load(p->njobs, 1, &p->before, p->t0);
}

int log_manager_start_recovery(log_manager_t *m, log_manager_recovered_fn fn, void *arg) {
    load_pool_t *p = m->recovery;
    if (!p || p->threads) return SM_OK;
    p->on_recovered = fn;
    p->arg = arg;
    p->threads = calloc((size_t)p->nthreads, sizeof(pthread_t));
    int started = 0;
    for (int i = 0; p->threads && i < p->nthreads; i++)
        if (pthread_create(&p->threads[i], NULL, load_worker, p) == 0) started++;
    p->nthreads = started;
    if (!started) load_worker(p); /* no thread: recover here */
    return SM_OK;
}

bool log_manager_pending(log_manager_t *m, const char *topic, int32_t partition) {
    if (atomic_load(&m->npending) == 0) return false;
    char key[300];
    key_of(key, sizeof(key), topic, partition);
    pthread_mutex_lock(&m->mu);
    entry_t *e = sm_map_get(&m->logs, key, strlen(key));
    bool pending = e && !e->log;
    pthread_mutex_unlock(&m->mu);
    return pending;
}

void log_manager_wait_topic(log_manager_t *m, const char *topic) {
    pthread_mutex_lock(&m->mu);
    for (;;) {
        bool pending = false;
        size_t it = 0;
        void *v;
        while (!pending && atomic_load(&m->npending) && sm_map_next(&m->logs, &it, NULL, NULL, &v))
            pending = !((entry_t *)v)->log && strcmp(((entry_t *)v)->topic, topic) == 0;
        if (!pending) break;
        pthread_cond_wait(&m->cv, &m->mu);
    }
    pthread_mutex_unlock(&m->mu);
}

/* Waits for the deferred recovery to end and frees its pool. */
static void join_recovery(log_manager_t *m) {
    load_pool_t *p = m->recovery;
    if (!p) return;
    if (!p->threads) {
        /* Never started: recover now, so the checkpoints and the clean
         * marker describe checked logs. */
        p->nthreads = 0;
        load_worker(p);
    }
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->jobs);
    pthread_mutex_destroy(&p->mu);
    free(p);
    m->recovery = NULL;
}

/* ---- background work ---- */

static void maintenance_pass(log_manager_t *m, bool retention, bool checkpoint) {
    pthread_mutex_lock(&m->mu);
    size_t n = sm_map_size(&m->logs), it = 0, i = 0;
    log_t **logs = calloc(n + 1, sizeof(*logs));
    void *v;
    while (logs && sm_map_next(&m->logs, &it, NULL, NULL, &v))
        if (((entry_t *)v)->log) logs[i++] = ((entry_t *)v)->log;
    /* Folders of deleted partitions go now (their logs are closed here). */
    doomed_t *doomed = m->doomed;
    int ndoomed = m->ndoomed;
    m->doomed = NULL;
    m->ndoomed = m->cap_doomed = 0;
    pthread_mutex_unlock(&m->mu);
    int64_t now = now_ms();
    for (size_t k = 0; k < i; k++) {
        if (retention) log_run_retention(logs[k], now);
        log_run_flush_policy(logs[k], now);
    }
    free(logs);
    for (int k = 0; k < ndoomed; k++) {
        if (doomed[k].log && atomic_load(&doomed[k].log->cleaning)) {
            /* A cleaner thread is still on it (aborting): next pass. */
            pthread_mutex_lock(&m->mu);
            push_doomed(m, doomed[k].path, doomed[k].log);
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        if (doomed[k].log) log_abandon(doomed[k].log);
        if (fio_remove_tree(doomed[k].path))
            sm_warn("storage", "%s: cannot remove: %s", doomed[k].path, strerror(errno));
        free(doomed[k].path);
    }
    free(doomed);
    if (checkpoint) log_manager_write_checkpoints(m);
}

/* An entry's checkpointed values: its log's, or while it recovers the ones
 * read at start. */
static int64_t rp_of(const entry_t *e) { return e->log ? log_flushed_offset(e->log) : e->rp; }
static int64_t start_of(const entry_t *e) { return e->log ? log_start_offset(e->log) : e->start; }
static int64_t hw_of(const entry_t *e) { return e->log ? log_high_watermark(e->log) : e->hw; }
static int64_t clean_point_of(const entry_t *e) {
    return e->log ? log_clean_point(e->log) : e->clean_point;
}

static int write_ckpt(log_manager_t *m, int d, const char *name, int64_t (*value)(const entry_t *),
                      bool skip_neg);

/* The recovery-point checkpoint of every dir whose recovery points moved
 * since it was last written (the recovery bound: a crash rescans only what
 * the file does not cover). */
static void write_recovery_checkpoints(log_manager_t *m) {
    pthread_mutex_lock(&m->mu);
    for (int d = 0; d < m->ndirs; d++) {
        int64_t sum = 0;
        size_t it = 0;
        void *v;
        while (sm_map_next(&m->logs, &it, NULL, NULL, &v))
            if (((entry_t *)v)->dir == d) sum += rp_of(v);
        if (sum != m->rp_written[d] && write_ckpt(m, d, RECOVERY_CHECKPOINT, rp_of, false) == SM_OK)
            m->rp_written[d] = sum;
    }
    pthread_mutex_unlock(&m->mu);
}

static void *background(void *arg) {
    log_manager_t *m = arg;
    int64_t next_retention = now_ms() + m->retention_check_ms;
    int64_t next_ckpt = now_ms() + m->checkpoint_interval_ms;
    int64_t next_rp =
        m->recovery_checkpoint_ms > 0 ? now_ms() + m->recovery_checkpoint_ms : INT64_MAX;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        int64_t now = now_ms();
        /* flush.ms needs a finer tick than retention: check each second. */
        int64_t wake = next_retention < next_ckpt ? next_retention : next_ckpt;
        if (next_rp < wake) wake = next_rp;
        if (wake > now + 1000) wake = now + 1000;
        if (m->ndoomed) wake = now;
        struct timespec ts = {wake / 1000, (wake % 1000) * 1000000};
        if (wake > now) pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        if (m->stopping) break;
        now = now_ms();
        bool ckpt = now >= next_ckpt;
        pthread_mutex_unlock(&m->mu);
        maintenance_pass(m, now >= next_retention, ckpt);
        if (!ckpt && now >= next_rp) write_recovery_checkpoints(m);
        pthread_mutex_lock(&m->mu);
        if (now >= next_retention) next_retention = now + m->retention_check_ms;
        if (ckpt) next_ckpt = now + m->checkpoint_interval_ms;
        if (now >= next_rp) next_rp = now + m->recovery_checkpoint_ms;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* The cleaner pool's pick: the best-scored log not being cleaned, marked as
 * being cleaned under m->mu (so log_manager_delete sees it). */
static log_t *cleaner_pick(void *arg, log_cleaner_score_fn score, void *sarg) {
    log_manager_t *m = arg;
    log_t *best = NULL;
    double best_score = -1;
    pthread_mutex_lock(&m->mu);
    size_t it = 0;
    void *v;
    while (!m->stopping && sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        log_t *l = ((entry_t *)v)->log;
        if (!l || atomic_load(&l->cleaning)) continue;
        double s = score(sarg, l);
        if (s >= 0 && s > best_score) {
            best = l;
            best_score = s;
        }
    }
    if (best) {
        atomic_store(&best->clean_abort, false);
        atomic_store(&best->cleaning, true);
    }
    pthread_mutex_unlock(&m->mu);
    return best;
}

log_cleaner_t *log_manager_cleaner(log_manager_t *m) { return m->cleaner; }

int log_manager_start_cleaner(log_manager_t *m) {
    if (m->cleaner) return SM_OK;
    return log_cleaner_start(&m->cleaner_opts, cleaner_pick, m, &m->cleaner);
}

int log_manager_default_open_segments(void) {
    struct rlimit rl;
    rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    if (n == RLIM_INFINITY || n > 4 * LOG_MAX_DEFAULT_OPEN_SEGMENTS)
        return LOG_MAX_DEFAULT_OPEN_SEGMENTS;
    return n / 4 < 16 ? 16 : (int)(n / 4);
}

int log_manager_default_descriptor_budget(void) {
    struct rlimit rl;
    rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    if (n == RLIM_INFINITY || n > 8 * (rlim_t)LOG_MAX_DEFAULT_OPEN_SEGMENTS) return INT_MAX;
    return n / 2 < 16 ? 16 : (int)(n / 2);
}

int log_manager_open(const log_manager_opts_t *o, log_manager_t **out) {
    log_manager_t *m = calloc(1, sizeof(*m));
    if (!m) return SM_ERR_NOMEM;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&m->opened_cv, NULL);
    sm_map_init(&m->logs);
    sm_map_init(&m->opening);
    m->defaults = o->defaults;
    m->retention_check_ms = o->retention_check_ms > 0 ? o->retention_check_ms : 300000;
    m->checkpoint_interval_ms = o->checkpoint_interval_ms > 0 ? o->checkpoint_interval_ms : 60000;
    m->recovery_checkpoint_ms = o->recovery_checkpoint_ms;
    m->ndirs = o->ndirs;
    m->clean_broker_epoch = -1;
    atomic_store(&m->broker_epoch, -1);
    m->dirs = calloc((size_t)o->ndirs, sizeof(char *));
    m->dir_counts = calloc((size_t)o->ndirs, sizeof(int));
    m->rp_written = calloc((size_t)o->ndirs, sizeof(int64_t));
    int rc = SM_ERR_NOMEM;
    if (!m->dirs || !m->dir_counts || !m->rp_written) goto fail;
    for (int i = 0; i < o->ndirs; i++) {
        if (!(m->dirs[i] = strdup(o->dirs[i]))) goto fail;
        if (mkdir(m->dirs[i], 0755) && errno != EEXIST) {
            sm_error("storage", "%s: cannot create the log dir: %s", m->dirs[i], strerror(errno));
            rc = SM_ERR_IO;
            goto fail;
        }
    }
    log_set_open_segment_limit(o->max_open_segments > 0 ? o->max_open_segments
                                                        : log_manager_default_open_segments());
    log_set_descriptor_budget(log_manager_default_descriptor_budget());
    if ((rc = log_flusher_start(o->flush_threads > 0 ? o->flush_threads : o->ndirs, &m->flusher)))
        goto fail;
    if ((rc = load_dirs(m, o->recovery_threads * o->ndirs, o->defer_recovery))) goto fail;
    if (pthread_create(&m->thread, NULL, background, m) == 0) m->thread_started = true;
    m->cleaner_opts = o->cleaner;
    *out = m;
    return SM_OK;
fail:
    log_manager_close(m);
    return rc;
}

/* Samsa's cleaner-state file (read by `samsa logs`): one line per compacted
 * log of dir d with what log_clean_info reports; m->mu held. Best effort. */
static void write_cleaner_state(log_manager_t *m, int d) {
    size_t cap = 256 + sm_map_size(&m->logs) * 400, n = 0;
    char *buf = malloc(cap);
    if (!buf) return;
    int64_t now = now_ms();
    n += (size_t)snprintf(buf, cap,
                          "# written_ms=%" PRId64
                          "\n# topic partition clean_point first_uncleanable "
                          "clean_bytes dirty_bytes dirty_ratio runs last_run_ms last_duration_ms "
                          "bytes_read bytes_written records_removed\n",
                          now);
    size_t it = 0;
    void *v;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        log_clean_info_t ci;
        if (e->dir != d || !e->log) continue;
        log_clean_info(e->log, now, &ci);
        if (!ci.compact || n + 400 > cap) continue;
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %.4f %" PRId64
                              " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
                              e->topic, e->partition, ci.clean_point, ci.first_uncleanable,
                              ci.clean_bytes, ci.dirty_bytes, ci.dirty_ratio, ci.last.runs,
                              ci.last.last_run_ms, ci.last.last_duration_ms, ci.last.bytes_read,
                              ci.last.bytes_written, ci.last.records_removed);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", m->dirs[d], CLEANER_STATE);
    /* Best effort: only `samsa logs cleaner` reads it. */
    if (fio_write_file(path, buf, n, true))
        sm_warn("storage", "%s: cannot write: %s", path, strerror(errno));
    free(buf);
}

/* A checkpoint file's text for dir d: "0", the count, then one line per
 * log holding value(log) (logs for which it is < 0 are left out when skip_neg).
 * m->mu held. */
static int ckpt_text(log_manager_t *m, int d, int64_t (*value)(const entry_t *), bool skip_neg,
                     char **out, size_t *len) {
    size_t cap = 64 + sm_map_size(&m->logs) * 300, n = 0;
    char *buf = malloc(cap);
    if (!buf) return SM_ERR_NOMEM;
    int count = 0;
    size_t it = 0;
    void *v;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        if (e->dir == d && (!skip_neg || value(e) >= 0)) count++;
    }
    n += (size_t)snprintf(buf + n, cap - n, "0\n%d\n", count);
    it = 0;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        int64_t x = e->dir == d ? value(e) : -1;
        if (e->dir == d && (!skip_neg || x >= 0))
            n += (size_t)snprintf(buf + n, cap - n, "%s %d %" PRId64 "\n", e->topic, e->partition,
                                  x);
    }
    *out = buf;
    *len = n;
    return SM_OK;
}

/* Writes one checkpoint file of dir d; m->mu held. */
static int write_ckpt(log_manager_t *m, int d, const char *name, int64_t (*value)(const entry_t *),
                      bool skip_neg) {
    char *text;
    size_t n;
    int rc = ckpt_text(m, d, value, skip_neg, &text, &n);
    if (rc) return rc;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", m->dirs[d], name);
    if (fio_write_file(path, text, n, true)) rc = SM_ERR_IO;
    free(text);
    return rc;
}

int log_manager_write_checkpoints(log_manager_t *m) {
    int rc = SM_OK;
    pthread_mutex_lock(&m->mu);
    for (int d = 0; d < m->ndirs; d++) {
        int64_t sum = 0;
        bool compacted = false;
        size_t it = 0;
        void *v;
        while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
            entry_t *e = v;
            if (e->dir != d) continue;
            sum += rp_of(e);
            if (clean_point_of(e) >= 0) compacted = true;
        }
        int r = write_ckpt(m, d, RECOVERY_CHECKPOINT, rp_of, false);
        if (r == SM_OK) m->rp_written[d] = sum;
        if (r == SM_OK) r = write_ckpt(m, d, START_CHECKPOINT, start_of, false);
        /* Kafka's replication-offset-checkpoint: the high watermarks replication kept. */
        if (r == SM_OK) r = write_ckpt(m, d, HW_CHECKPOINT, hw_of, true);
        /* Kafka's cleaner-offset-checkpoint: the first dirty offset of each
         * compacted log. */
        if (r == SM_OK && compacted) {
            r = write_ckpt(m, d, CLEANER_CHECKPOINT, clean_point_of, true);
            write_cleaner_state(m, d);
        }
        if (r == SM_ERR_NOMEM) {
            rc = r;
            break;
        }
        if (r) rc = SM_ERR_IO;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void log_manager_finish_recovery(log_manager_t *m) { join_recovery(m); }

int log_manager_close(log_manager_t *m) {
    if (m->recovery) atomic_store(&m->recovery->stop, true);
    join_recovery(m);
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (m->thread_started) pthread_join(m->thread, NULL);
    log_cleaner_stop(m->cleaner);
    m->cleaner = NULL;
    /* Pending flush requests are served before the logs close. */
    log_flusher_stop(m->flusher);
    m->flusher = NULL;
    int rc = SM_OK;
    size_t it = 0;
    void *v;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v))
        log_attach_flusher(((entry_t *)v)->log, NULL);
    /* Flush everything so the recovery points cover all data. */
    it = 0;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v))
        if (log_flush(((entry_t *)v)->log)) rc = SM_ERR_IO;
    if (m->dirs && rc == SM_OK && m->thread_started) rc = log_manager_write_checkpoints(m);
    it = 0;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        if (log_close(e->log)) rc = SM_ERR_IO;
        free(e->topic);
        free(e);
    }
    for (int k = 0; k < m->ndoomed; k++) {
        if (m->doomed[k].log) log_abandon(m->doomed[k].log);
        fio_remove_tree(m->doomed[k].path);
        free(m->doomed[k].path);
    }
    free(m->doomed);
    if (m->thread_started && rc == SM_OK) {
        int64_t epoch = atomic_load(&m->broker_epoch);
        for (int d = 0; d < m->ndirs; d++) {
            /* Without the marker the next start recovers as after a crash. */
            if (write_marker(m->dirs[d], epoch))
                sm_warn("storage", "%s/%s: cannot write: %s", m->dirs[d], CLEAN_MARKER,
                        strerror(errno));
        }
    }
    for (int d = 0; m->dirs && d < m->ndirs; d++)
        free(m->dirs[d]);
    free(m->dirs);
    free(m->dir_counts);
    free(m->rp_written);
    sm_map_free(&m->logs);
    sm_map_free(&m->opening);
    pthread_cond_destroy(&m->opened_cv);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
    return rc;
}

int64_t log_manager_clean_broker_epoch(const log_manager_t *m) { return m->clean_broker_epoch; }

void log_manager_set_broker_epoch(log_manager_t *m, int64_t epoch) {
    atomic_store(&m->broker_epoch, epoch);
}

log_t *log_manager_get(log_manager_t *m, const char *topic, int32_t partition) {
    char key[300];
    key_of(key, sizeof(key), topic, partition);
    pthread_mutex_lock(&m->mu);
    entry_t *e = sm_map_get(&m->logs, key, strlen(key));
    log_t *l = e ? e->log : NULL;
    pthread_mutex_unlock(&m->mu);
    return l;
}

/* "<dir>/<key>.<32 hex digits>-<suffix>": a random UUID without dashes, as
 * Kafka names the folders of deleted and stray partitions. */
static void aside_path(char *path, size_t cap, const char *dir, const char *key,
                       const char *suffix) {
    uint8_t rnd[16] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) < 0)
        for (int i = 0; i < 16; i++)
            rnd[i] = (uint8_t)(now_ms() >> (i % 8));
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(path, cap, "%s/%s.%s-%s", dir, key, hex, suffix);
}

static void id_text(const uint8_t *id, char out[33]) {
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* Moves a folder that belongs to another topic id out of the way of a new
 * partition, data kept. The caller owns the name (it is in m->opening). */
static int set_aside(log_manager_t *m, int dir, const char *key, const char *why) {
    char from[4096], to[4200];
    snprintf(from, sizeof(from), "%s/%s", m->dirs[dir], key);
    aside_path(to, sizeof(to), m->dirs[dir], key, "stray");
    if (rename(from, to)) {
        sm_error("storage", "%s: %s; cannot move it aside: %s", from, why, strerror(errno));
        return SM_ERR_IO;
    }
    if (fio_fsync_dir(m->dirs[dir]))
        sm_warn("storage", "%s: cannot fsync after moving %s aside: %s", m->dirs[dir], key,
                strerror(errno));
    sm_warn("storage", "%s: %s; moved aside to %s, not served", from, why, to);
    return SM_OK;
}

void log_manager_set_open_hook(log_manager_t *m, log_manager_open_hook_fn fn, void *arg) {
    pthread_mutex_lock(&m->mu);
    m->open_hook = fn;
    m->open_hook_arg = arg;
    pthread_mutex_unlock(&m->mu);
}

/* Waits (m->mu held) until no thread is creating or adopting key. */
static void wait_not_opening(log_manager_t *m, const char *key) {
    while (sm_map_get(&m->opening, key, strlen(key)))
        pthread_cond_wait(&m->opened_cv, &m->mu);
}

/* partition.metadata written, a descriptor shortage waited out until deadline. */
static int write_metadata(const char *dir, const uint8_t *topic_id, int64_t deadline) {
    int rc;
    while (log_descriptor_retry(rc = log_write_partition_metadata(dir, topic_id), deadline))
        ;
    return rc;
}

/* The file work of creating a partition (m->mu not held; the caller owns the
 * name through m->opening): a stray loaded at start is closed and set aside, a
 * folder left on disk of another id too, then the log is opened, its
 * partition.metadata written and the log dir fsynced. Each step out of
 * descriptors waits for one (log_descriptor_retry) until deadline; a folder
 * whose partition.metadata cannot be read for want of one (or for an I/O
 * error) is not set aside: the creation fails instead. */
static int create_unlocked(log_manager_t *m, const char *key, const char *idt, entry_t *stray,
                           int best, const uint8_t *topic_id, const log_config_t *cfg,
                           log_t **out) {
    int rc = SM_OK;
    int64_t deadline = log_descriptor_deadline();
    if (stray) {
        close_logged(stray->log);
        char why[128];
        snprintf(why, sizeof(why), "belongs to another topic id than %s", idt);
        rc = set_aside(m, stray->dir, key, why);
        free(stray->topic);
        free(stray);
        if (rc) return rc;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", m->dirs[best], key);
    /* A folder left on disk that the manager does not serve (closed as
     * unclaimed at start) is adopted only if its partition.metadata names
     * this very id. */
    struct stat st;
    if (stat(path, &st) == 0) {
        uint8_t found[16];
        int r = SM_ERR_NOTFOUND;
        while (topic_id &&
               log_descriptor_retry(r = log_read_partition_metadata(path, found), deadline))
            ;
        if (r == SM_ERR_LIMIT || r == SM_ERR_IO) {
            sm_error("storage", "%s: cannot read partition.metadata (%s)", path, sm_strerror(r));
            return r;
        }
        bool same = r == SM_OK && memcmp(found, topic_id, 16) == 0;
        if (!same && (rc = set_aside(m, best, key, "left by another topic"))) return rc;
    }
    log_t *l;
    if ((rc = log_open(path, cfg, false, 0, -1, &l))) return rc;
    if (topic_id && (rc = write_metadata(path, topic_id, deadline))) {
        close_logged(l);
        return rc;
    }
    while (log_descriptor_retry(rc = fio_fsync_dir(m->dirs[best]), deadline))
        ;
    if (rc) {
        sm_error("storage", "%s: cannot fsync the log dir after creating %s: %s", m->dirs[best],
                 key, sm_strerror(rc));
        close_logged(l);
        return rc;
    }
    *out = l;
    return SM_OK;
}

/* Holds m->mu only to look up and to publish: the folder's creation, its
 * partition.metadata and the fsyncs run with the name marked as opening, so
 * lookups and creations of other partitions go on meanwhile (issue 11 point
 * 8); callers for the same name wait for the outcome. */
int log_manager_get_or_create(log_manager_t *m, const char *topic, int32_t partition,
                              const uint8_t *topic_id, const log_config_t *cfg, log_t **out) {
    char key[300], idt[33] = "";
    key_of(key, sizeof(key), topic, partition);
    size_t klen = strlen(key);
    if (topic_id) id_text(topic_id, idt);
    pthread_mutex_lock(&m->mu);
    wait_not_opening(m, key);
    entry_t *e = sm_map_get(&m->logs, key, klen);
    int rc = SM_OK;
    if (e && !e->log) {
        pthread_mutex_unlock(&m->mu);
        return SM_ERR_AGAIN; /* still recovering */
    }
    if (e && (!topic_id || (e->has_id && memcmp(e->topic_id, topic_id, 16) == 0))) {
        *out = e->log;
        pthread_mutex_unlock(&m->mu);
        return SM_OK;
    }
    if ((rc = sm_map_put(&m->opening, key, klen, m))) {
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    log_manager_open_hook_fn hook = m->open_hook;
    void *hook_arg = m->open_hook_arg;
    entry_t *stray = NULL;
    int best = 0;
    if (e && e->has_id) {
        /* Loaded at start but of another topic id: a stray. */
        sm_map_del(&m->logs, key, klen);
        m->dir_counts[e->dir]--;
        stray = e;
        e = NULL;
    }
    if (!e) {
        for (int d = 1; d < m->ndirs; d++)
            if (m->dir_counts[d] < m->dir_counts[best]) best = d;
        m->dir_counts[best]++; /* reserved while it is created */
    }
    pthread_mutex_unlock(&m->mu);

    if (hook) hook(hook_arg, topic, partition);
    log_t *l = NULL;
    if (e)
        /* A folder from before partition.metadata: the topic of its name
         * adopts it, as Kafka does with logs older than topic ids. */
        rc = write_metadata(log_dir(e->log), topic_id, log_descriptor_deadline());
    else
        rc = create_unlocked(m, key, idt, stray, best, topic_id, cfg ? cfg : &m->defaults, &l);

    pthread_mutex_lock(&m->mu);
    if (e && rc == SM_OK) {
        e->has_id = true;
        memcpy(e->topic_id, topic_id, 16);
        *out = e->log;
    } else if (!e) {
        m->dir_counts[best]--;
        if (rc == SM_OK && (rc = add_entry(m, topic, partition, best, l, topic_id)))
            close_logged(l);
        if (rc == SM_OK) *out = l;
    }
    sm_map_del(&m->opening, key, klen);
    pthread_cond_broadcast(&m->opened_cv);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int log_manager_detach(log_manager_t *m, const char *topic, int32_t partition,
                       const uint8_t *topic_id, log_t **out) {
    char key[300];
    key_of(key, sizeof(key), topic, partition);
    pthread_mutex_lock(&m->mu);
    wait_not_opening(m, key);
    entry_t *e = sm_map_get(&m->logs, key, strlen(key));
    int rc = SM_OK;
    if (!e || (topic_id && e->has_id && memcmp(e->topic_id, topic_id, 16) != 0)) {
        rc = SM_ERR_NOTFOUND;
        goto out;
    }
    if (!e->log) {
        rc = SM_ERR_AGAIN; /* still recovering */
        goto out;
    }
    sm_map_del(&m->logs, key, strlen(key));
    m->dir_counts[e->dir]--;
    atomic_store(&e->log->clean_abort, true); /* a cleaning in progress stops */
    char path[4200];
    aside_path(path, sizeof(path), m->dirs[e->dir], key, "delete");
    /* Renamed under m->mu (the name is free the moment the entry goes);
     * the directory fsync waits until the mutex is released. */
    int renamed_in = -1;
    if (log_rename_for_delete(e->log, path))
        sm_warn("storage", "%s: cannot rename for deletion: %s", key, strerror(errno));
    else
        renamed_in = e->dir;
    *out = e->log;
    free(e->topic);
    free(e);
    pthread_mutex_unlock(&m->mu);
    if (renamed_in >= 0 && fio_fsync_dir(m->dirs[renamed_in]))
        sm_warn("storage", "%s: cannot fsync after renaming %s for deletion: %s",
                m->dirs[renamed_in], key, strerror(errno));
    return SM_OK;
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void log_manager_dispose(log_manager_t *m, log_t *l) {
    pthread_mutex_lock(&m->mu);
    char *p = strdup(log_dir(l));
    if (!p || push_doomed(m, p, l)) {
        free(p);
        sm_warn("storage", "%s: out of memory: left on disk", log_dir(l));
        log_abandon(l);
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

int log_manager_delete(log_manager_t *m, const char *topic, int32_t partition) {
    log_t *l;
    int rc = log_manager_detach(m, topic, partition, NULL, &l);
    if (rc == SM_OK) log_manager_dispose(m, l);
    return rc;
}

int log_manager_close_unclaimed(log_manager_t *m,
                                bool (*claimed)(void *arg, const char *topic, int32_t partition,
                                                const uint8_t *topic_id),
                                void *arg) {
    pthread_mutex_lock(&m->mu);
    int n = 0;
    size_t it = 0;
    void *v;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        if (!e->log || claimed(arg, e->topic, e->partition, e->has_id ? e->topic_id : NULL))
            continue;
        sm_warn("storage", "%s: no topic of this %s in the metadata: left on disk, not served",
                log_dir(e->log), e->has_id ? "id" : "name");
        char key[300];
        key_of(key, sizeof(key), e->topic, e->partition);
        sm_map_del(&m->logs, key, strlen(key));
        m->dir_counts[e->dir]--;
        close_logged(e->log);
        free(e->topic);
        free(e);
        it = 0; /* the map changed: start over */
        n++;
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

void log_manager_foreach(log_manager_t *m,
                         void (*fn)(void *arg, const char *topic, int32_t partition, log_t *l),
                         void *arg) {
    pthread_mutex_lock(&m->mu);
    size_t it = 0;
    void *v;
    while (sm_map_next(&m->logs, &it, NULL, NULL, &v)) {
        entry_t *e = v;
        if (e->log) fn(arg, e->topic, e->partition, e->log);
    }
    pthread_mutex_unlock(&m->mu);
}

void log_manager_run_maintenance(log_manager_t *m) { maintenance_pass(m, true, false); }

int log_manager_dirs(const log_manager_t *m, const char *const **dirs) {
    *dirs = (const char *const *)m->dirs;
    return m->ndirs;
}

log_flusher_t *log_manager_flusher(log_manager_t *m) { return m->flusher; }
