/*
 * The log cleaner's threads (log.cleaner.threads): each repeatedly takes the
 * dirtiest cleanable log from its owner (the log manager), cleans it with its
 * own key map (a share of log.cleaner.dedupe.buffer.size), and sleeps
 * log.cleaner.backoff.ms when nothing is cleanable. Not for the cleaning
 * itself (cleaner.c).
 *
 * Threads and state: c->mu guards stopping and each worker's current log;
 * the workers wait on c->cv (woken by log_cleaner_wake and at stop). A log is
 * cleaned by at most one worker (log->cleaning, set by the owner's pick).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "storage/cleaner_impl.h"

typedef struct worker {
    log_cleaner_t *c;
    pthread_t thread;
    bool started;
    clean_map_t *map;
    log_t *current; /* c->mu */
} worker_t;

struct log_cleaner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool kicked;
    log_cleaner_opts_t o;
    log_cleaner_pick_fn pick;
    void *pick_arg;
    clean_throttle_t *throttle;
    worker_t *workers;
    int nworkers;
    _Atomic int64_t runs;
};

void log_cleaner_opts_default(log_cleaner_opts_t *o) {
    o->enable = true;
    o->threads = 1;
    o->dedupe_buffer_size = 134217728;
    o->load_factor = 0.9;
    o->io_buffer_size = 524288;
    o->io_max_bytes_per_second = 1.7976931348623157e308;
    o->backoff_ms = 15000;
}

static double score_log(void *arg, log_t *l) { return log_cleaner_score(l, *(int64_t *)arg); }

static void *worker_main(void *arg) {
    worker_t *w = arg;
    log_cleaner_t *c = w->c;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        c->kicked = false;
        pthread_mutex_unlock(&c->mu);
        int64_t now = sm_time_ms();
        log_t *l = c->pick(c->pick_arg, score_log, &now);
        pthread_mutex_lock(&c->mu);
        if (l && !c->stopping) {
            w->current = l;
            pthread_mutex_unlock(&c->mu);
            log_clean_opts_t o = {.map = w->map,
                                  .throttle = c->throttle,
                                  .now_ms = sm_time_ms(),
                                  .io_buffer_size = (size_t)c->o.io_buffer_size,
                                  .marker_removed = c->o.marker_removed,
                                  .marker_arg = c->o.marker_arg};
            bool did = false;
            int rc = log_clean(l, &o, &did);
            if (rc && rc != SM_ERR_AGAIN)
                sm_warn("storage", "%s: cleaning failed: %s", log_dir(l), sm_strerror(rc));
            if (did) atomic_fetch_add(&c->runs, 1);
            pthread_mutex_lock(&c->mu);
            w->current = NULL;
            pthread_mutex_unlock(&c->mu);
            log_cleaner_release(l);
            pthread_mutex_lock(&c->mu);
            /* A failed log is not retried at once: the others go first. */
            if (rc == SM_OK && did) continue;
        } else if (l) {
            log_cleaner_release(l);
        }
        if (c->stopping || c->kicked) continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (c->o.backoff_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(c->o.backoff_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int log_cleaner_start(const log_cleaner_opts_t *o, log_cleaner_pick_fn pick, void *arg,
                      log_cleaner_t **out) {
    *out = NULL;
    if (!o->enable || o->threads <= 0) return SM_OK;
    log_cleaner_t *c = calloc(1, sizeof(*c));
    if (!c) return SM_ERR_NOMEM;
    c->o = *o;
    if (c->o.backoff_ms <= 0) c->o.backoff_ms = 1;
    c->pick = pick;
    c->pick_arg = arg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = clean_throttle_new(o->io_max_bytes_per_second, &c->throttle);
    c->workers = calloc((size_t)o->threads, sizeof(worker_t));
    if (rc || !c->workers) {
        log_cleaner_stop(c);
        return rc ? rc : SM_ERR_NOMEM;
    }
    size_t share = (size_t)(o->dedupe_buffer_size / o->threads);
    for (int i = 0; i < o->threads; i++) {
        worker_t *w = &c->workers[i];
        w->c = c;
        if ((rc = clean_map_new(share, o->load_factor, &w->map))) break;
        c->nworkers++;
        if (pthread_create(&w->thread, NULL, worker_main, w)) {
            rc = SM_ERR_NOMEM;
            break;
        }
        w->started = true;
    }
    if (rc) {
        log_cleaner_stop(c);
        return rc;
    }
    *out = c;
    return SM_OK;
}

void log_cleaner_stop(log_cleaner_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    for (int i = 0; i < c->nworkers; i++)
        if (c->workers[i].current) atomic_store(&c->workers[i].current->clean_abort, true);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nworkers; i++) {
        if (c->workers[i].started) pthread_join(c->workers[i].thread, NULL);
        clean_map_free(c->workers[i].map);
    }
    free(c->workers);
    clean_throttle_free(c->throttle);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void log_cleaner_wake(log_cleaner_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->kicked = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int64_t log_cleaner_runs(log_cleaner_t *c) { return c ? atomic_load(&c->runs) : 0; }
