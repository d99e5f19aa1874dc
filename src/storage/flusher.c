/*
 * Group commit without blocking callers: a few flusher threads serve flush
 * requests for many logs. A log with waiting requests sits once in the run
 * queue; a thread takes it, runs one log_sync_to that covers every request
 * queued so far, and calls back each request it covered. Not a scheduler for
 * anything else.
 *
 * Threads: callers of log_flush_request (event loops), the flusher threads.
 * Locks: f->mu (the run queue, stopping), then l->wmu (the log's waiters and
 * its queued/busy flags). Callbacks run with no lock held.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/log.h"
#include "storage/log_impl.h"

struct log_flusher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    log_t *head, *tail;
    bool stopping;
    pthread_t *threads;
    int nthreads;
};

static void queue_push(log_flusher_t *f, log_t *l) {
    l->fq_next = NULL;
    if (f->tail)
        f->tail->fq_next = l;
    else
        f->head = l;
    f->tail = l;
    pthread_cond_signal(&f->cv);
}

static void run_callbacks(log_waiter_t *w, int status) {
    while (w) {
        log_waiter_t *next = w->next;
        if (w->cb) w->cb(w->arg, status);
        free(w);
        w = next;
    }
}

static void *flusher_main(void *arg) {
    log_flusher_t *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->head && !f->stopping)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->head) break; /* stopping and drained */
        log_t *l = f->head;
        f->head = l->fq_next;
        if (!f->head) f->tail = NULL;
        pthread_mutex_lock(&l->wmu);
        l->fq_queued = false;
        l->fq_busy = true;
        pthread_mutex_unlock(&l->wmu);
        pthread_mutex_unlock(&f->mu);

        /* One flush to the log end covers every request queued so far, and
         * finishes rolled segments and directory changes. */
        int rc = log_flush(l);

        pthread_mutex_lock(&f->mu);
        pthread_mutex_lock(&l->wmu);
        int64_t flushed = log_flushed_offset(l), end = log_end_offset(l);
        log_waiter_t *done = NULL, **dtail = &done, *left = NULL, **ltail = &left, *llast = NULL;
        log_waiter_t *failed = NULL, **ftail = &failed;
        for (log_waiter_t *w = l->waiters, *next; w; w = next) {
            next = w->next;
            w->next = NULL;
            if (rc == SM_OK && w->offset <= flushed) {
                *dtail = w;
                dtail = &w->next;
            } else if (rc != SM_OK || w->offset > end) {
                /* The log failed, or a truncation removed the offsets. */
                *ftail = w;
                ftail = &w->next;
            } else {
                *ltail = w;
                ltail = &w->next;
                llast = w;
            }
        }
        l->waiters = left;
        l->waiters_tail = llast;
        if (left) {
            l->fq_queued = true;
            queue_push(f, l);
        }
        l->fq_busy = false;
        pthread_cond_broadcast(&l->wcv);
        pthread_mutex_unlock(&l->wmu);
        pthread_mutex_unlock(&f->mu);
        run_callbacks(done, SM_OK);
        run_callbacks(failed, rc != SM_OK ? rc : SM_ERR_RANGE);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int log_flusher_start(int nthreads, log_flusher_t **out) {
    log_flusher_t *f = calloc(1, sizeof(*f));
    if (!f) return SM_ERR_NOMEM;
    if (nthreads < 1) nthreads = 1;
    f->threads = calloc((size_t)nthreads, sizeof(*f->threads));
    if (!f->threads) {
        free(f);
        return SM_ERR_NOMEM;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&f->threads[i], NULL, flusher_main, f)) break;
        f->nthreads++;
    }
    if (f->nthreads == 0) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f->threads);
        free(f);
        return SM_ERR;
    }
    *out = f;
    return SM_OK;
}

void log_flusher_stop(log_flusher_t *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->nthreads; i++)
        pthread_join(f->threads[i], NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->threads);
    free(f);
}

/* force: queue even when the offset is already durable (background work:
 * rolled segments, directory changes). */
static int flush_request(log_flusher_t *f, log_t *l, int64_t offset, log_flush_cb cb, void *arg,
                         bool force) {
    if (atomic_load(&l->offline)) return SM_ERR_IO;
    if (!force && log_flushed_offset(l) >= offset) return SM_OK;
    log_waiter_t *w = malloc(sizeof(*w));
    pthread_mutex_lock(&f->mu);
    if (f->stopping || !w) {
        /* Served here: the flusher is going away (or memory is short). */
        pthread_mutex_unlock(&f->mu);
        free(w);
        return force ? log_flush(l) : log_sync_to(l, offset);
    }
    *w = (log_waiter_t){offset, cb, arg, NULL};
    pthread_mutex_lock(&l->wmu);
    if (l->waiters_tail)
        l->waiters_tail->next = w;
    else
        l->waiters = w;
    l->waiters_tail = w;
    if (!l->fq_queued && !l->fq_busy) {
        l->fq_queued = true;
        queue_push(f, l);
    }
    pthread_mutex_unlock(&l->wmu);
    pthread_mutex_unlock(&f->mu);
    return SM_ERR_AGAIN;
}

int log_flush_request(log_flusher_t *f, log_t *l, int64_t offset, log_flush_cb cb, void *arg) {
    return flush_request(f, l, offset, cb, arg, false);
}

void log_attach_flusher(log_t *l, log_flusher_t *f) { l->flusher = f; }

void log_flush_async(log_t *l) {
    if (!l->flusher) return; /* maintenance or an explicit flush finishes the work */
    int rc = flush_request(l->flusher, l, 0, NULL, NULL, true);
    if (rc != SM_OK && rc != SM_ERR_AGAIN && rc != SM_ERR_IO)
        sm_warn("storage", "%s: background flush failed: %s", l->dir, sm_strerror(rc));
}

void log_flush_for_recovery(log_t *l, int64_t offset) {
    int rc = l->flusher ? flush_request(l->flusher, l, offset, NULL, NULL, false) : SM_OK;
    if (rc == SM_ERR_AGAIN) return; /* the flush that covers offset clears the mark */
    pthread_mutex_lock(&l->mu);
    l->recovery_flush_queued = false;
    pthread_mutex_unlock(&l->mu);
}

void log_flush_quiesce(log_t *l) {
    pthread_mutex_lock(&l->wmu);
    while (l->fq_queued || l->fq_busy || l->waiters)
        pthread_cond_wait(&l->wcv, &l->wmu);
    pthread_mutex_unlock(&l->wmu);
}
