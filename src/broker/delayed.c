/*
 * Parked fetches and the flusher (see delayed.h).
 *
 * A parked request has one waiter node on each of its partitions (under the
 * partition's mu). An append moves nothing: it marks the parked request woken
 * and queues it for the delayed thread, which alone evaluates and completes
 * parked requests, so no request is evaluated twice at once. Lock order:
 * a partition's mu, then d->mu.
 *
 * Life of a parked request (pk):
 *   registering: broker_park fills pk and links its waiter nodes; pk->queued
 *     is already true, so a wake leaves it alone, and it is on no list of d,
 *     so neither a deadline nor the stop can reach it;
 *   published: on d->all and on the ready queue (one evaluation is due: data
 *     may have arrived before the waiters were linked); from here on only
 *     the delayed thread evaluates, answers, unregisters and frees it.
 * Invariants: a pk on d->all has all its waiters linked; a pk on the ready
 * queue has queued == true; every pk on d->all is answered exactly once.
 *
 * Stopping: broker_delayed_stop answers everything parked and joins the
 * threads; each thread marks its side closed (parked_closed, flush_closed)
 * under d->mu when it leaves, and from then on broker_park and
 * broker_flush_then_finish complete on the caller's thread, so requests that
 * the event loops still dispatch while the network drains never wait on a
 * thread that is gone. broker_delayed_free runs after the loops stopped.
 */
#include "broker/delayed.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

typedef struct parked parked_t;

struct broker_waiter {
    broker_waiter_t *next;
    parked_t *pk;
};

struct parked {
    broker_req_t *r;
    broker_retry_fn retry; /* a request's, or NULL for a waiter's fn */
    broker_wait_fn fn;
    void *arg;
    int64_t deadline;
    int nparts;
    broker_partition_t **parts;
    broker_waiter_t *nodes; /* one per partition */
    bool queued;            /* on the ready queue (under d->mu) */
    parked_t *next_ready;
    parked_t *prev, *next;  /* all parked (under d->mu) */
};

typedef struct flush_job {
    broker_req_t *r;
    broker_partition_t **parts;
    int n;
    struct flush_job *next;
} flush_job_t;

struct broker_delayed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t flush_cv;
    parked_t *all;
    parked_t *ready;
    flush_job_t *flush_head, *flush_tail;
    bool stopping;
    bool parked_closed; /* the delayed thread has left: park answers inline */
    bool flush_closed;  /* the flusher has left: flush_then_finish flushes inline */
    pthread_t thread, flusher;
};

int64_t broker_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unregister(parked_t *pk) {
    for (int i = 0; i < pk->nparts; i++) {
        broker_partition_t *p = pk->parts[i];
        pthread_mutex_lock(&p->mu);
        broker_waiter_t **w = &p->waiters;
        while (*w && *w != &pk->nodes[i]) w = &(*w)->next;
        if (*w) *w = pk->nodes[i].next;
        pthread_mutex_unlock(&p->mu);
        broker_partition_put(p);
    }
    free(pk->parts);
    free(pk->nodes);
}

static bool check(parked_t *pk, bool final) {
    return pk->retry ? pk->retry(pk->r, final) : pk->fn(pk->arg, final);
}

/* Evaluates pk on the delayed thread; frees it once it has responded. pk is
 * not on the ready queue when called, but a wake may queue it again until its
 * waiters are gone, so they go first, then pk leaves both lists. */
static void evaluate(broker_delayed_t *d, parked_t *pk, bool final) {
    if (!check(pk, final)) return;
    unregister(pk);
    pthread_mutex_lock(&d->mu);
    if (pk->prev) pk->prev->next = pk->next;
    else d->all = pk->next;
    if (pk->next) pk->next->prev = pk->prev;
    if (pk->queued) {
        parked_t **q = &d->ready;
        while (*q && *q != pk) q = &(*q)->next_ready;
        if (*q) *q = pk->next_ready;
    }
    pthread_mutex_unlock(&d->mu);
    free(pk);
}

static void *delayed_main(void *arg) {
    broker_t *b = arg;
    broker_delayed_t *d = b->delayed;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        if (d->stopping) break;
        int64_t now = broker_mono_ms();
        /* Expired ones join the ready queue. */
        int64_t next_deadline = INT64_MAX;
        for (parked_t *pk = d->all; pk; pk = pk->next) {
            if (pk->deadline <= now && !pk->queued) {
                pk->queued = true;
                pk->next_ready = d->ready;
                d->ready = pk;
            } else if (pk->deadline < next_deadline) {
                next_deadline = pk->deadline;
            }
        }
        if (!d->ready) {
            if (next_deadline == INT64_MAX) {
                pthread_cond_wait(&d->cv, &d->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t wait = next_deadline - now;
                ts.tv_sec += wait / 1000;
                ts.tv_nsec += (wait % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&d->cv, &d->mu, &ts);
            }
            continue;
        }
        /* One at a time: once unlocked, a wake may queue any parked request
         * again, so no list taken from the queue stays valid. */
        while (d->ready && !d->stopping) {
            parked_t *pk = d->ready;
            d->ready = pk->next_ready;
            pk->next_ready = NULL;
            pk->queued = false;
            pthread_mutex_unlock(&d->mu);
            evaluate(d, pk, pk->deadline <= broker_mono_ms());
            pthread_mutex_lock(&d->mu);
        }
    }
    /* Stopping: everything parked answers now. Each is taken off both lists
     * under the lock (a park may still publish meanwhile: it goes first). */
    while (d->all) {
        parked_t *pk = d->all;
        d->all = pk->next;
        if (d->all) d->all->prev = NULL;
        if (pk->queued) {
            parked_t **q = &d->ready;
            while (*q && *q != pk) q = &(*q)->next_ready;
            if (*q) *q = pk->next_ready;
        }
        pthread_mutex_unlock(&d->mu);
        check(pk, true);
        unregister(pk);
        free(pk);
        pthread_mutex_lock(&d->mu);
    }
    d->parked_closed = true;
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Flushes the logs of a list of jobs, then answers and frees the jobs. Group
 * commit: one fsync per log covers every job queued so far; log_flush returns
 * at once for logs already flushed past their end. */
static void run_flush_jobs(flush_job_t *jobs) {
    for (flush_job_t *j = jobs; j; j = j->next)
        for (int i = 0; i < j->n; i++)
            /* A failed fsync must not be acknowledged as durable. */
            if (log_flush(j->parts[i]->log) != SM_OK) broker_produce_unflushed(j->r, j->parts[i]);
    while (jobs) {
        flush_job_t *next = jobs->next;
        broker_req_finish(jobs->r);
        for (int i = 0; i < jobs->n; i++)
            broker_partition_put(jobs->parts[i]);
        free(jobs->parts);
        free(jobs);
        jobs = next;
    }
}

static void *flusher_main(void *arg) {
    broker_t *b = arg;
    broker_delayed_t *d = b->delayed;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->flush_head && !d->stopping) pthread_cond_wait(&d->flush_cv, &d->mu);
        if (!d->flush_head && d->stopping) {
            d->flush_closed = true;
            break;
        }
        flush_job_t *jobs = d->flush_head;
        d->flush_head = d->flush_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        run_flush_jobs(jobs);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int broker_delayed_start(broker_t *b) {
    broker_delayed_t *d = calloc(1, sizeof(*d));
    if (!d) return SM_ERR_NOMEM;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&d->flush_cv, NULL);
    b->delayed = d;
    if (pthread_create(&d->thread, NULL, delayed_main, b)) return SM_ERR;
    if (pthread_create(&d->flusher, NULL, flusher_main, b)) return SM_ERR;
    return SM_OK;
}

void broker_delayed_stop(broker_t *b) {
    broker_delayed_t *d = b->delayed;
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_broadcast(&d->cv);
    pthread_cond_broadcast(&d->flush_cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_join(d->flusher, NULL);
}

void broker_delayed_free(broker_t *b) {
    broker_delayed_t *d = b->delayed;
    if (!d) return;
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->flush_cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
    b->delayed = NULL;
}

static void park(broker_t *b, broker_req_t *r, broker_retry_fn retry, broker_wait_fn fn,
                 void *arg, broker_partition_t **parts, int nparts, int64_t deadline_ms) {
    broker_delayed_t *d = b->delayed;
    parked_t *pk = calloc(1, sizeof(*pk));
    broker_partition_t **ps = calloc((size_t)(nparts ? nparts : 1), sizeof(*ps));
    broker_waiter_t *nodes = calloc((size_t)(nparts ? nparts : 1), sizeof(*nodes));
    if (!pk || !ps || !nodes) {
        free(pk);
        free(ps);
        free(nodes);
        if (retry)
            retry(r, true);
        else
            fn(arg, true);
        return;
    }
    pk->r = r;
    pk->retry = retry;
    pk->fn = fn;
    pk->arg = arg;
    pk->deadline = deadline_ms;
    pk->nparts = nparts;
    pk->parts = ps;
    pk->nodes = nodes;
    /* Registering: queued keeps wakes off until pk is published below. */
    pk->queued = true;
    for (int i = 0; i < nparts; i++) {
        broker_partition_t *p = parts[i];
        atomic_fetch_add(&p->refs, 1);
        ps[i] = p;
        nodes[i].pk = pk;
        pthread_mutex_lock(&p->mu);
        nodes[i].next = p->waiters;
        p->waiters = &nodes[i];
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&d->mu);
    if (d->parked_closed) {
        /* The delayed thread is gone (broker stopping): answer now. */
        pthread_mutex_unlock(&d->mu);
        unregister(pk);
        check(pk, true);
        free(pk);
        return;
    }
    /* Published, with one evaluation due: data may have arrived between the
     * handler's evaluation and the registration. */
    pk->next = d->all;
    if (d->all) d->all->prev = pk;
    d->all = pk;
    pk->next_ready = d->ready;
    d->ready = pk;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void broker_park(broker_t *b, broker_req_t *r, broker_partition_t **parts, int nparts,
                 int64_t deadline_ms, broker_retry_fn retry) {
    park(b, r, retry, NULL, NULL, parts, nparts, deadline_ms);
}

void broker_park_wait(broker_t *b, broker_partition_t *p, int64_t deadline_ms, broker_wait_fn fn,
                      void *arg) {
    park(b, NULL, NULL, fn, arg, &p, 1, deadline_ms);
}

void broker_wake(broker_t *b, broker_partition_t *p) {
    broker_delayed_t *d = b->delayed;
    pthread_mutex_lock(&p->mu);
    if (!p->waiters) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_lock(&d->mu);
    for (broker_waiter_t *w = p->waiters; w; w = w->next) {
        parked_t *pk = w->pk;
        if (!pk->queued) {
            pk->queued = true;
            pk->next_ready = d->ready;
            d->ready = pk;
        }
    }
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&p->mu);
}

int broker_parked_on(broker_partition_t *p) {
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (broker_waiter_t *w = p->waiters; w; w = w->next)
        n++;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void broker_flush_then_finish(broker_t *b, broker_req_t *r, broker_partition_t **parts, int n) {
    broker_delayed_t *d = b->delayed;
    flush_job_t *j = calloc(1, sizeof(*j));
    broker_partition_t **ps = calloc((size_t)(n ? n : 1), sizeof(*ps));
    if (!j || !ps) {
        free(j);
        free(ps);
        for (int i = 0; i < n; i++)
            if (log_flush(parts[i]->log) != SM_OK) broker_produce_unflushed(r, parts[i]);
        broker_req_finish(r);
        return;
    }
    for (int i = 0; i < n; i++) {
        atomic_fetch_add(&parts[i]->refs, 1);
        ps[i] = parts[i];
    }
    j->r = r;
    j->parts = ps;
    j->n = n;
    pthread_mutex_lock(&d->mu);
    if (d->flush_closed) {
        /* The flusher is gone (broker stopping): flush on this thread. */
        pthread_mutex_unlock(&d->mu);
        run_flush_jobs(j);
        return;
    }
    if (d->flush_tail) d->flush_tail->next = j;
    else d->flush_head = j;
    d->flush_tail = j;
    pthread_cond_signal(&d->flush_cv);
    pthread_mutex_unlock(&d->mu);
}
