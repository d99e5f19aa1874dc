/*
 * Log segments (see segment.h): index views (in memory for pinned segments,
 * read-only mmaps loaded lazily for the others), scanning and validation of
 * .log files, lookups, and the bounded cache of descriptors and mapped indexes
 * of inactive segments. Knows nothing about the log as a whole.
 */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"

/* ------------------------------------------------------------ byte order */

static int32_t rd32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static int64_t rd64(const uint8_t *p) {
    return (int64_t)((uint64_t)(uint32_t)rd32(p) << 32 | (uint32_t)rd32(p + 4));
}

static void wr32(uint8_t *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

static void wr64(uint8_t *p, int64_t v) {
    wr32(p, (int32_t)((uint64_t)v >> 32));
    wr32(p + 4, (int32_t)(uint64_t)v);
}

/* ------------------------------------------------------------ counters */

static _Atomic int64_t bytes_read;

int seg_pread(int fd, void *buf, size_t len, int64_t off) {
    int rc = fio_pread_all(fd, buf, len, off);
    if (rc == SM_OK) atomic_fetch_add_explicit(&bytes_read, (int64_t)len, memory_order_relaxed);
    return rc;
}

int64_t seg_bytes_read(void) { return atomic_load(&bytes_read); }

/* ------------------------------------------------------------ the cache */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static log_segment_t *lru_head, *lru_tail;
static int cache_n;
static int cache_limit = 2048;

static void lru_remove(log_segment_t *s) {
    if (!s->in_lru) return;
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        lru_head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
    s->in_lru = false;
    cache_n--;
}

static void lru_push_head(log_segment_t *s) {
    s->lru_prev = NULL;
    s->lru_next = lru_head;
    if (lru_head) lru_head->lru_prev = s;
    lru_head = s;
    if (!lru_tail) lru_tail = s;
    s->in_lru = true;
    cache_n++;
}

static bool try_ref(log_segment_t *s) {
    int r = atomic_load(&s->refs);
    while (r > 0)
        if (atomic_compare_exchange_weak(&s->refs, &r, r + 1)) return true;
    return false;
}

static void index_free(seg_index_t *x) {
    if (x->cap)
        free(x->data);
    else if (x->map_len)
        munmap(x->data, x->map_len);
    memset(x, 0, sizeof(*x));
}

static void fd_closed(void);

/* Releases cached resources, least recently used first, until at most target
 * segments hold any: a descriptor not in use is closed (pinned segments too:
 * appends reopen it), an unpinned segment's index views are dropped (a pinned
 * one's in-memory index stays). Descriptors in use close at their last
 * release. */
static void cache_evict_to(int target) {
    for (int rounds = 0; rounds < 64; rounds++) {
        pthread_mutex_lock(&cache_mu);
        if (cache_n <= target) {
            pthread_mutex_unlock(&cache_mu);
            return;
        }
        log_segment_t *v = lru_tail;
        while (v && !try_ref(v))
            v = v->lru_prev;
        if (!v) {
            pthread_mutex_unlock(&cache_mu);
            return;
        }
        lru_remove(v);
        pthread_mutex_unlock(&cache_mu);
        pthread_mutex_lock(&v->imu);
        pthread_mutex_lock(&v->fmu);
        bool closed = v->fd >= 0 && v->fd_users == 0;
        if (closed) {
            close(v->fd);
            v->fd = -1;
        }
        if (!v->pinned && v->idx_loaded) {
            index_free(&v->idx);
            index_free(&v->tidx);
            v->idx_loaded = false;
        }
        pthread_mutex_unlock(&v->fmu);
        pthread_mutex_unlock(&v->imu);
        seg_unref(v);
        if (closed) fd_closed();
    }
}

static void cache_evict(void) {
    pthread_mutex_lock(&cache_mu);
    int limit = cache_limit;
    pthread_mutex_unlock(&cache_mu);
    cache_evict_to(limit);
}

/* Marks a segment as recently used (it holds a descriptor or, unpinned, a
 * mapped index). May evict others: the caller must not hold any segment's imu
 * or fmu (eviction takes them), unless evict is false. */
static void cache_touch_ex(log_segment_t *s, bool evict) {
    bool over = false;
    pthread_mutex_lock(&s->fmu);
    pthread_mutex_lock(&cache_mu);
    lru_remove(s);
    lru_push_head(s);
    over = cache_n > cache_limit;
    pthread_mutex_unlock(&cache_mu);
    pthread_mutex_unlock(&s->fmu);
    if (over && evict) cache_evict();
}

static void cache_touch(log_segment_t *s) { cache_touch_ex(s, true); }

/* Descriptors of .log files the segments hold (cached or in use), and how
 * many they may hold: the rest of the process's descriptors (connections,
 * other files) are never taken by a fetch of many partitions. */
static _Atomic int open_fds;
static _Atomic int fd_budget = INT_MAX;

/* Closes idle cached descriptors: a quarter of the cache, at least 8. */
static void shed_some(void) {
    pthread_mutex_lock(&cache_mu);
    int n = cache_n;
    pthread_mutex_unlock(&cache_mu);
    int drop = n / 4 > 8 ? n / 4 : 8;
    cache_evict_to(n > drop ? n - drop : 0);
}

/* Opens a segment's .log. At the budget, or when the process is out of
 * descriptors, and when shedding is allowed, closes idle cached ones and
 * tries once more. Returns the descriptor or -1 with errno set (EMFILE at the
 * budget). */
static int open_shedding(const char *path, int flags, bool shed) {
    int fd = -1;
    errno = EMFILE;
    if (atomic_load(&open_fds) < atomic_load(&fd_budget)) fd = open(path, flags, 0644);
    if (fd < 0 && shed && (errno == EMFILE || errno == ENFILE)) {
        shed_some();
        errno = EMFILE;
        if (atomic_load(&open_fds) < atomic_load(&fd_budget)) fd = open(path, flags, 0644);
    }
    if (fd >= 0) atomic_fetch_add(&open_fds, 1);
    return fd;
}

void seg_set_fd_budget(int n) { atomic_store(&fd_budget, n < 1 ? 1 : n); }

int seg_open_fds(void) { return atomic_load(&open_fds); }

/* Waiting for a descriptor: whoever closes one of the storage's descriptors
 * bumps closed_gen and wakes the waiters (only when there are some).
 * Descriptors held by others (sockets, files of other modules) give no
 * signal when they close: a waiter also wakes after a slice and tries
 * again. */
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cv; /* CLOCK_MONOTONIC, set up once */
static pthread_once_t wait_once = PTHREAD_ONCE_INIT;
static uint64_t closed_gen;
static _Atomic int fd_waiters;
static _Atomic int64_t fd_waits;

#define FD_WAIT_SLICE_MS 100

static void wait_init(void) { sm_cond_init_mono(&wait_cv); }

static void fd_closed(void) {
    atomic_fetch_sub(&open_fds, 1);
    if (atomic_load(&fd_waiters) == 0) return; /* a waiter set up wait_cv */
    pthread_mutex_lock(&wait_mu);
    closed_gen++;
    pthread_cond_broadcast(&wait_cv);
    pthread_mutex_unlock(&wait_mu);
}

int seg_status_of_errno(int err) {
    return err == EMFILE || err == ENFILE ? SM_ERR_LIMIT : SM_ERR_IO;
}

int seg_fd_wait(int64_t deadline_ms) {
    int64_t now = sm_mono_ms();
    if (now >= deadline_ms) return SM_ERR_LIMIT;
    pthread_once(&wait_once, wait_init);
    atomic_fetch_add(&fd_waits, 1);
    atomic_fetch_add(&fd_waiters, 1);
    pthread_mutex_lock(&wait_mu);
    uint64_t gen = closed_gen;
    pthread_mutex_unlock(&wait_mu);
    /* Every idle cached descriptor goes first (their segments reopen on
     * demand); a close among them or elsewhere in storage ends the wait. */
    cache_evict_to(0);
    int64_t until = now + FD_WAIT_SLICE_MS < deadline_ms ? now + FD_WAIT_SLICE_MS : deadline_ms;
    pthread_mutex_lock(&wait_mu);
    while (closed_gen == gen && sm_mono_ms() < until)
        sm_cond_wait_until(&wait_cv, &wait_mu, until);
    pthread_mutex_unlock(&wait_mu);
    atomic_fetch_sub(&fd_waiters, 1);
    return SM_OK;
}

int64_t seg_fd_waits(void) { return atomic_load(&fd_waits); }

void seg_cache_set_limit(int n) {
    pthread_mutex_lock(&cache_mu);
    cache_limit = n < 1 ? 1 : n;
    pthread_mutex_unlock(&cache_mu);
    cache_evict();
}

int seg_cache_size(void) {
    pthread_mutex_lock(&cache_mu);
    int n = cache_n;
    pthread_mutex_unlock(&cache_mu);
    return n;
}

/* ------------------------------------------------------------ lifecycle */

log_segment_t *seg_new(const char *dir, int64_t base) {
    log_segment_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    size_t n = strlen(dir) + 32;
    s->path = malloc(n);
    if (!s->path) {
        free(s);
        return NULL;
    }
    snprintf(s->path, n, "%s/%020" PRId64, dir, base);
    s->base = base;
    s->next_offset = base;
    s->fd = -1;
    s->max_ts = s->max_ts_offset = -1;
    atomic_init(&s->size, 0);
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->imu, NULL);
    pthread_mutex_init(&s->fmu, NULL);
    return s;
}

void seg_ref(log_segment_t *s) { atomic_fetch_add(&s->refs, 1); }

void seg_unref(log_segment_t *s) {
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    pthread_mutex_lock(&cache_mu);
    lru_remove(s);
    pthread_mutex_unlock(&cache_mu);
    if (s->fd >= 0) {
        close(s->fd);
        fd_closed();
    }
    index_free(&s->idx);
    index_free(&s->tidx);
    free(s->path);
    pthread_mutex_destroy(&s->imu);
    pthread_mutex_destroy(&s->fmu);
    free(s);
}

static void path_locked(const log_segment_t *s, const char *ext, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s", s->path, ext, s->deleted ? ".deleted" : "");
}

void seg_file_path(log_segment_t *s, const char *ext, char *buf, size_t cap) {
    pthread_mutex_lock(&s->fmu);
    path_locked(s, ext, buf, cap);
    pthread_mutex_unlock(&s->fmu);
}

int seg_create_files(log_segment_t *s) {
    char p[4200];
    seg_file_path(s, ".log", p, sizeof(p));
    int fd = open_shedding(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, true);
    if (fd < 0) return seg_status_of_errno(errno);
    pthread_mutex_lock(&s->imu);
    pthread_mutex_lock(&s->fmu);
    if (s->fd >= 0) {
        close(s->fd);
        fd_closed();
    }
    s->fd = fd;
    /* Index files of a segment that once had this base are stale. */
    path_locked(s, ".index", p, sizeof(p));
    unlink(p);
    path_locked(s, ".timeindex", p, sizeof(p));
    unlink(p);
    s->pinned = true;
    s->idx_loaded = true;
    s->ts_known = true;
    s->idx_files_stale = true;
    pthread_mutex_unlock(&s->fmu);
    pthread_mutex_unlock(&s->imu);
    cache_touch(s);
    return SM_OK;
}

/* Opens the .log outside fmu (a shedding open takes other segments' locks)
 * and installs the descriptor unless another thread did meanwhile. */
static int fd_acquire(log_segment_t *s, int *fd, bool evict) {
    pthread_mutex_lock(&s->fmu);
    for (int tries = 0; s->fd < 0; tries++) {
        char p[4200];
        path_locked(s, ".log", p, sizeof(p));
        pthread_mutex_unlock(&s->fmu);
        int nfd = open_shedding(p, O_RDWR | O_CLOEXEC, evict);
        int err = errno;
        pthread_mutex_lock(&s->fmu);
        if (nfd < 0) {
            char now[4200];
            path_locked(s, ".log", now, sizeof(now));
            /* Renamed meanwhile (retention, folder deletion): try the new name. */
            if (err == ENOENT && tries < 3 && strcmp(now, p) != 0) continue;
            pthread_mutex_unlock(&s->fmu);
            errno = err;
            return seg_status_of_errno(err);
        }
        if (s->fd < 0) {
            s->fd = nfd;
        } else {
            close(nfd);
            fd_closed();
        }
    }
    s->fd_users++;
    *fd = s->fd;
    pthread_mutex_unlock(&s->fmu);
    cache_touch_ex(s, evict);
    return SM_OK;
}

int seg_fd_acquire(log_segment_t *s, int *fd) { return fd_acquire(s, fd, true); }

void seg_fd_release(log_segment_t *s) {
    pthread_mutex_lock(&s->fmu);
    s->fd_users--;
    /* Evicted while in use: the last user closes it. */
    if (s->fd_users == 0 && s->fd >= 0) {
        pthread_mutex_lock(&cache_mu);
        bool cached = s->in_lru;
        pthread_mutex_unlock(&cache_mu);
        if (!cached) {
            close(s->fd);
            s->fd = -1;
            pthread_mutex_unlock(&s->fmu);
            fd_closed();
            return;
        }
    }
    pthread_mutex_unlock(&s->fmu);
}

/* ------------------------------------------------------------ indexes */

static int index_reserve(seg_index_t *x, size_t esz, int32_t more) {
    size_t need = ((size_t)x->n + (size_t)more) * esz;
    if (x->cap == 0 && x->map_len) {
        /* A mapped (read-only) view: copy it into memory first. */
        size_t cap = need > x->map_len ? need : x->map_len;
        uint8_t *d = malloc(cap);
        if (!d) return SM_ERR_NOMEM;
        memcpy(d, x->data, (size_t)x->n * esz);
        munmap(x->data, x->map_len);
        x->data = d;
        x->cap = cap;
        x->map_len = 0;
    }
    if (need <= x->cap) return SM_OK;
    size_t cap = x->cap ? x->cap * 2 : 64 * esz;
    while (cap < need)
        cap *= 2;
    uint8_t *d = realloc(x->data, cap);
    if (!d) return SM_ERR_NOMEM;
    x->data = d;
    x->cap = cap;
    return SM_OK;
}

static int idx_push(log_segment_t *s, int32_t rel, int32_t pos) {
    if (index_reserve(&s->idx, SEG_IDX_ENTRY, 1)) return SM_ERR_NOMEM;
    uint8_t *e = s->idx.data + (size_t)s->idx.n * SEG_IDX_ENTRY;
    wr32(e, rel);
    wr32(e + 4, pos);
    s->idx.n++;
    return SM_OK;
}

static int tidx_push(log_segment_t *s, int64_t ts, int32_t rel) {
    if (index_reserve(&s->tidx, SEG_TIDX_ENTRY, 1)) return SM_ERR_NOMEM;
    uint8_t *e = s->tidx.data + (size_t)s->tidx.n * SEG_TIDX_ENTRY;
    wr64(e, ts);
    wr32(e + 8, rel);
    s->tidx.n++;
    return SM_OK;
}

static int32_t idx_rel(const log_segment_t *s, int32_t i) {
    return rd32(s->idx.data + (size_t)i * SEG_IDX_ENTRY);
}
static int32_t idx_pos(const log_segment_t *s, int32_t i) {
    return rd32(s->idx.data + (size_t)i * SEG_IDX_ENTRY + 4);
}
static int64_t tidx_ts(const log_segment_t *s, int32_t i) {
    return rd64(s->tidx.data + (size_t)i * SEG_TIDX_ENTRY);
}
static int32_t tidx_rel(const log_segment_t *s, int32_t i) {
    return rd32(s->tidx.data + (size_t)i * SEG_TIDX_ENTRY + 8);
}

/* Indexes one batch; imu held. Kafka indexes a batch once index.interval.bytes
 * have passed since the previous entry; an entry maps the batch's last offset
 * to its start. The time index records the max timestamp so far and the offset
 * of the batch that holds it, whenever it grew. */
static int note_batch_locked(log_segment_t *s, int32_t interval, int64_t pos,
                             const proto_batch_header_t *h, int64_t *bytes_since_index) {
    int64_t last = proto_batch_last_offset(h);
    if (h->max_timestamp > s->max_ts) {
        s->max_ts = h->max_timestamp;
        s->max_ts_offset = last;
    }
    if (s->idx.n == 0 || *bytes_since_index >= interval) {
        if (idx_push(s, (int32_t)(last - s->base), (int32_t)pos)) return SM_ERR_NOMEM;
        if (s->max_ts >= 0 && (s->tidx.n == 0 || s->max_ts > tidx_ts(s, s->tidx.n - 1)) &&
            tidx_push(s, s->max_ts, (int32_t)(s->max_ts_offset - s->base)))
            return SM_ERR_NOMEM;
        *bytes_since_index = 0;
    }
    *bytes_since_index += (int64_t)proto_batch_total_size(h);
    return SM_OK;
}

int seg_note_batch(log_segment_t *s, int32_t interval, int64_t pos, const proto_batch_header_t *h) {
    pthread_mutex_lock(&s->imu);
    int rc = note_batch_locked(s, interval, pos, h, &s->bytes_since_index);
    pthread_mutex_unlock(&s->imu);
    if (rc == SM_OK) s->next_offset = proto_batch_last_offset(h) + 1;
    return rc;
}

int seg_close_time_index(log_segment_t *s) {
    int rc = SM_OK;
    pthread_mutex_lock(&s->imu);
    if (s->idx_loaded && s->max_ts >= 0 &&
        (s->tidx.n == 0 || s->max_ts > tidx_ts(s, s->tidx.n - 1)))
        rc = tidx_push(s, s->max_ts, (int32_t)(s->max_ts_offset - s->base));
    pthread_mutex_unlock(&s->imu);
    return rc;
}

static int write_synced(const char *path, const uint8_t *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return seg_status_of_errno(errno);
    int rc = fio_write_all(fd, data, len);
    if (rc == SM_OK) rc = fio_fsync(fd);
    if (close(fd) && rc == SM_OK) rc = SM_ERR_IO;
    return rc;
}

static int write_index_files_locked(log_segment_t *s) {
    char p[4200];
    seg_file_path(s, ".index", p, sizeof(p));
    int rc = write_synced(p, s->idx.data, (size_t)s->idx.n * SEG_IDX_ENTRY);
    if (rc) return rc;
    seg_file_path(s, ".timeindex", p, sizeof(p));
    rc = write_synced(p, s->tidx.data, (size_t)s->tidx.n * SEG_TIDX_ENTRY);
    if (rc == SM_OK) {
        s->idx_persisted = s->idx.n;
        s->tidx_persisted = s->tidx.n;
        s->idx_files_stale = false;
    }
    return rc;
}

/* Entries [from, n) of one index at their place in its file (from 0, the
 * file truncated, when whole). */
static int write_tail(const char *path, const uint8_t *data, size_t esz, int32_t from, int32_t n,
                      bool whole) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (whole ? O_TRUNC : 0), 0644);
    if (fd < 0) return seg_status_of_errno(errno);
    int rc = n > from ? fio_pwrite_all(fd, data + (size_t)from * esz, (size_t)(n - from) * esz,
                                       (int64_t)from * (int64_t)esz)
                      : SM_OK;
    if (close(fd) && rc == SM_OK) rc = SM_ERR_IO;
    return rc;
}

int seg_persist_index(log_segment_t *s) {
    int rc = SM_OK;
    pthread_mutex_lock(&s->imu);
    pthread_mutex_lock(&s->fmu);
    bool whole = s->idx_files_stale;
    int32_t from_i = whole ? 0 : s->idx_persisted, from_t = whole ? 0 : s->tidx_persisted;
    /* A renamed (deleted) segment's files are not recreated. */
    if (s->idx_loaded && !s->deleted && (whole || from_i < s->idx.n || from_t < s->tidx.n)) {
        char p[4200];
        path_locked(s, ".index", p, sizeof(p));
        rc = write_tail(p, s->idx.data, SEG_IDX_ENTRY, from_i, s->idx.n, whole);
        if (rc == SM_OK) {
            path_locked(s, ".timeindex", p, sizeof(p));
            rc = write_tail(p, s->tidx.data, SEG_TIDX_ENTRY, from_t, s->tidx.n, whole);
        }
        if (rc == SM_OK) {
            s->idx_persisted = s->idx.n;
            s->tidx_persisted = s->tidx.n;
        }
        s->idx_files_stale = rc != SM_OK;
    }
    pthread_mutex_unlock(&s->fmu);
    pthread_mutex_unlock(&s->imu);
    return rc;
}

int seg_write_index_files(log_segment_t *s) {
    pthread_mutex_lock(&s->imu);
    int rc = s->idx_loaded ? write_index_files_locked(s) : SM_OK;
    pthread_mutex_unlock(&s->imu);
    return rc;
}

/* Entries of a possibly preallocated (zero-padded, as Kafka leaves them after
 * a crash) index: the non-zero entries form a prefix; find its end. */
static int32_t nonzero_prefix(const uint8_t *d, int32_t n, size_t esz) {
    static const uint8_t zero[SEG_TIDX_ENTRY];
    int32_t lo = 1, hi = n; /* entry 0 may legitimately be all zero (rel 0, pos 0) */
    if (n == 0) return 0;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (memcmp(d + (size_t)mid * esz, zero, esz) != 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int map_index_file(log_segment_t *s, const char *ext, size_t esz, seg_index_t *x) {
    char p[4200];
    seg_file_path(s, ext, p, sizeof(p));
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SM_ERR_NOTFOUND : seg_status_of_errno(errno);
    struct stat st;
    int rc = SM_OK;
    if (fstat(fd, &st))
        rc = SM_ERR_IO;
    else if (st.st_size % (off_t)esz || st.st_size / (off_t)esz > INT32_MAX)
        rc = SM_ERR_CORRUPT;
    else if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            rc = SM_ERR_IO;
        } else {
            x->data = m;
            x->map_len = (size_t)st.st_size;
            x->cap = 0;
            x->n = nonzero_prefix(m, (int32_t)(st.st_size / (off_t)esz), esz);
        }
    }
    close(fd);
    return rc;
}

/* Cheap consistency checks (a full check would touch every page): entries
 * lie inside the segment and the ends are ordered. Reads that find garbage
 * where an entry points mark the index corrupt (seg_mark_index_corrupt). */
static bool index_plausible(const log_segment_t *s, int64_t size) {
    if (s->idx.n > 0) {
        int32_t n = s->idx.n;
        if (idx_rel(s, 0) < 0 || idx_pos(s, 0) < 0 || idx_rel(s, n - 1) < idx_rel(s, 0) ||
            idx_pos(s, n - 1) < idx_pos(s, 0) || idx_pos(s, n - 1) >= size)
            return false;
    }
    if (s->tidx.n > 0) {
        int32_t n = s->tidx.n;
        if (tidx_rel(s, 0) < 0 || tidx_rel(s, n - 1) < 0 || tidx_ts(s, n - 1) < tidx_ts(s, 0))
            return false;
    }
    return true;
}

typedef struct scan_state {
    int64_t valid_end;
    int64_t next_offset;
    int64_t bytes_since_index;
} scan_state_t;

/* Scans from position pos on, extending the indexes and st (set up by the
 * caller); prev_last: the last offset before pos. imu held. */
static int scan_from_locked(log_segment_t *s, int fd, int32_t interval, bool validate,
                            int64_t file_size, int64_t pos, int64_t prev_last, scan_state_t *st) {
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) return SM_ERR_NOMEM;
    int64_t bstart = 0, blen = 0;
    int rc = SM_OK;
    if (file_size > INT32_MAX) file_size = INT32_MAX; /* positions are int32 */
    while (pos + PROTO_BATCH_HEADER_SIZE <= file_size) {
        /* Keep [pos, pos + need) in the buffer. */
        int64_t need = PROTO_BATCH_HEADER_SIZE;
        proto_batch_header_t h;
        for (int pass = 0; pass < 2; pass++) {
            if (pos < bstart || pos + need > bstart + blen) {
                if ((size_t)need > cap) {
                    uint8_t *n = realloc(buf, (size_t)need);
                    if (!n) {
                        rc = SM_ERR_NOMEM;
                        goto out;
                    }
                    buf = n;
                    cap = (size_t)need;
                }
                int64_t want = file_size - pos < (int64_t)cap ? file_size - pos : (int64_t)cap;
                if ((rc = seg_pread(fd, buf, (size_t)want, pos))) goto out;
                bstart = pos;
                blen = want;
            }
            if (pass == 0) {
                if (proto_batch_parse_header(buf + (pos - bstart), (size_t)need, &h)) goto out;
                need = (int64_t)proto_batch_total_size(&h);
                if (pos + need > file_size) goto out; /* torn */
                if (!validate) break;
            }
        }
        if (h.base_offset <= prev_last || h.base_offset < s->base ||
            proto_batch_last_offset(&h) - s->base > INT32_MAX)
            goto out;
        /* Recovery checks what Kafka's does: size and CRC. Record-level rules
         * are the producer's contract and do not hold for compacted batches. */
        if (validate && proto_batch_compute_crc(buf + (pos - bstart), (size_t)need) != h.crc)
            goto out;
        if ((rc = note_batch_locked(s, interval, pos, &h, &st->bytes_since_index))) goto out;
        prev_last = proto_batch_last_offset(&h);
        st->next_offset = prev_last + 1;
        pos += need;
    }
out:
    free(buf);
    st->valid_end = pos;
    return rc;
}

/* The scanner behind seg_scan: the whole segment from 0; imu held. */
static int scan_locked(log_segment_t *s, int fd, int32_t interval, bool validate, int64_t file_size,
                       scan_state_t *st) {
    index_free(&s->idx);
    index_free(&s->tidx);
    s->max_ts = s->max_ts_offset = -1;
    s->idx_loaded = true;
    s->ts_known = true;
    s->idx_corrupt = false;
    st->bytes_since_index = 0;
    st->next_offset = s->base;
    return scan_from_locked(s, fd, interval, validate, file_size, 0, s->base - 1, st);
}

int seg_scan(log_segment_t *s, int fd, int32_t interval, bool validate, int64_t file_size,
             int64_t *valid_end) {
    scan_state_t st;
    pthread_mutex_lock(&s->imu);
    int rc = scan_locked(s, fd, interval, validate, file_size, &st);
    pthread_mutex_unlock(&s->imu);
    *valid_end = st.valid_end;
    s->next_offset = st.next_offset;
    s->bytes_since_index = st.bytes_since_index;
    return rc;
}

/* Copies the first n entries of a mapped index into s's (malloc'd) x. */
static int keep_prefix(seg_index_t *x, const seg_index_t *from, int32_t n, size_t esz) {
    index_free(x);
    if (index_reserve(x, esz, n > 0 ? n : 1)) return SM_ERR_NOMEM;
    if (n > 0) memcpy(x->data, from->data, (size_t)n * esz);
    x->n = n;
    return SM_OK;
}

/*
 * Index points below rp: entries i < k of the offset index with increasing
 * relative offsets below rp - base and increasing positions inside the file.
 * The scan restarts at entry j = k - 2 (its batch is re-read and indexed
 * again); kept are the offset entries before j and the time entries pushed at
 * points up to j, those with a relative offset <= entry j's: the time index
 * grows only at index points, with the batch holding the new maximum, so an
 * entry pushed at a later point names a later batch. The largest timestamp
 * up to entry j's batch is then the last kept time entry's.
 */
static int recover_from_locked(log_segment_t *s, int fd, int32_t interval, int64_t rp,
                               int64_t file_size, scan_state_t *st, int64_t *scan_from) {
    seg_index_t x = {0}, tx = {0};
    int rc = map_index_file(s, ".index", SEG_IDX_ENTRY, &x);
    if (rc == SM_OK) rc = map_index_file(s, ".timeindex", SEG_TIDX_ENTRY, &tx);
    int32_t k = 0;
    int64_t limit = rp - s->base;
    for (; rc == SM_OK && k < x.n; k++) {
        const uint8_t *e = x.data + (size_t)k * SEG_IDX_ENTRY;
        int32_t rel = rd32(e), pos = rd32(e + 4);
        if (rel < 0 || rel >= limit || pos < 0 || pos >= file_size) break;
        if (k > 0 && (rel <= rd32(e - SEG_IDX_ENTRY) || pos <= rd32(e - SEG_IDX_ENTRY + 4))) break;
    }
    if (rc != SM_OK || k < 2) {
        rc = SM_ERR_NOTFOUND;
        goto out;
    }
    int32_t j = k - 2;
    const uint8_t *ej = x.data + (size_t)j * SEG_IDX_ENTRY;
    int32_t rel_j = rd32(ej), pos_j = rd32(ej + 4);
    int32_t t = 0;
    for (; t < tx.n; t++) {
        const uint8_t *e = tx.data + (size_t)t * SEG_TIDX_ENTRY;
        int32_t rel = rd32(e + 8);
        if (rel < 0 || rel > rel_j) break;
        if (t > 0 && (rel <= rd32(e - SEG_TIDX_ENTRY + 8) || rd64(e) < rd64(e - SEG_TIDX_ENTRY)))
            break;
    }
    if ((rc = keep_prefix(&s->idx, &x, j, SEG_IDX_ENTRY)) ||
        (rc = keep_prefix(&s->tidx, &tx, t, SEG_TIDX_ENTRY)))
        goto out;
    s->max_ts = t ? tidx_ts(s, t - 1) : -1;
    s->max_ts_offset = t ? s->base + tidx_rel(s, t - 1) : -1;
    s->idx_loaded = true;
    s->ts_known = true;
    s->idx_corrupt = false;
    st->bytes_since_index = interval; /* entry j is pushed again */
    int64_t prev_last = j ? s->base + idx_rel(s, j - 1) : s->base - 1;
    st->next_offset = prev_last + 1;
    *scan_from = pos_j;
    rc = scan_from_locked(s, fd, interval, true, file_size, pos_j, prev_last, st);
    /* The batch at entry j must check and be indexed as before. */
    if (rc == SM_OK && (s->idx.n <= j || idx_rel(s, j) != rel_j || idx_pos(s, j) != pos_j))
        rc = SM_ERR_CORRUPT;
out:
    index_free(&x);
    index_free(&tx);
    return rc;
}

int seg_recover_from(log_segment_t *s, int fd, int32_t interval, int64_t rp, int64_t file_size,
                     int64_t *valid_end, int64_t *scan_from) {
    scan_state_t st;
    if (file_size > INT32_MAX) file_size = INT32_MAX;
    pthread_mutex_lock(&s->imu);
    int rc = recover_from_locked(s, fd, interval, rp, file_size, &st, scan_from);
    if (rc == SM_ERR_NOTFOUND || rc == SM_ERR_CORRUPT) {
        *scan_from = 0;
        rc = scan_locked(s, fd, interval, true, file_size, &st);
    }
    pthread_mutex_unlock(&s->imu);
    *valid_end = st.valid_end;
    s->next_offset = st.next_offset;
    s->bytes_since_index = st.bytes_since_index;
    return rc;
}

/* Makes the index usable; imu held. Inactive segments map their files; when
 * those are missing or implausible the index is rebuilt from the .log (and
 * the files rewritten, best effort). */
static int ensure_index_locked(log_segment_t *s, int32_t interval) {
    if (s->idx_loaded && !s->idx_corrupt) return SM_OK;
    int64_t size = atomic_load(&s->size);
    if (!s->idx_corrupt) {
        int rc = map_index_file(s, ".index", SEG_IDX_ENTRY, &s->idx);
        if (rc == SM_OK) rc = map_index_file(s, ".timeindex", SEG_TIDX_ENTRY, &s->tidx);
        if (rc == SM_ERR_LIMIT) {
            /* Out of descriptors: not a missing index, try again later. */
            index_free(&s->idx);
            index_free(&s->tidx);
            return rc;
        }
        if (rc == SM_OK && index_plausible(s, size)) {
            s->idx_loaded = true;
            if (!s->ts_known) {
                s->ts_known = true;
                s->max_ts = s->tidx.n ? tidx_ts(s, s->tidx.n - 1) : -1;
                s->max_ts_offset = s->tidx.n ? s->base + tidx_rel(s, s->tidx.n - 1) : -1;
            }
            return SM_OK;
        }
        index_free(&s->idx);
        index_free(&s->tidx);
    }
    char p[4200];
    seg_file_path(s, ".index", p, sizeof(p));
    sm_warn("storage", "%s: index missing or corrupt, rebuilding it from the segment", p);
    int fd;
    int rc = fd_acquire(s, &fd, false); /* imu is held: no eviction here */
    if (rc) return rc;
    scan_state_t st;
    rc = scan_locked(s, fd, interval, false, size, &st);
    seg_fd_release(s);
    if (rc) {
        index_free(&s->idx);
        index_free(&s->tidx);
        s->idx_loaded = false;
        return rc;
    }
    if (!s->pinned && write_index_files_locked(s))
        sm_warn("storage", "%s: cannot rewrite the index: %s", p, strerror(errno));
    return SM_OK;
}

int seg_pin_active(log_segment_t *s, int32_t interval) {
    pthread_mutex_lock(&s->imu);
    int rc = ensure_index_locked(s, interval);
    if (rc == SM_OK) rc = index_reserve(&s->idx, SEG_IDX_ENTRY, 1);
    if (rc == SM_OK) rc = index_reserve(&s->tidx, SEG_TIDX_ENTRY, 1);
    if (rc == SM_OK) {
        pthread_mutex_lock(&s->fmu);
        s->pinned = true;
        pthread_mutex_unlock(&s->fmu);
        /* Appends resume the index interval where the last entry left it. */
        int64_t size = atomic_load(&s->size);
        s->bytes_since_index = s->idx.n ? size - idx_pos(s, s->idx.n - 1) : size;
        /* The files may hold entries memory no longer has (a cut tail). */
        s->idx_files_stale = true;
    }
    pthread_mutex_unlock(&s->imu);
    return rc;
}

void seg_unpin(log_segment_t *s) {
    pthread_mutex_lock(&s->imu);
    pthread_mutex_lock(&s->fmu);
    s->pinned = false;
    pthread_mutex_unlock(&s->fmu);
    pthread_mutex_unlock(&s->imu);
    cache_touch(s);
}

void seg_mark_index_corrupt(log_segment_t *s) {
    pthread_mutex_lock(&s->imu);
    if (!s->pinned) s->idx_corrupt = true; /* a pinned index is built in memory by us */
    pthread_mutex_unlock(&s->imu);
}

int seg_lookup_position(log_segment_t *s, int32_t interval, int64_t offset, int64_t *pos) {
    *pos = 0;
    if (offset <= s->base) return SM_OK;
    pthread_mutex_lock(&s->imu);
    int rc = ensure_index_locked(s, interval);
    if (rc == SM_OK) {
        /* Entries map a batch's last offset to its start: the batch holding
         * offset starts at or after the entry with the largest rel < target. */
        int64_t target = offset - s->base;
        int32_t lo = 0, hi = s->idx.n - 1, best = -1;
        while (lo <= hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (idx_rel(s, mid) < target) {
                best = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (best >= 0) *pos = idx_pos(s, best);
    }
    pthread_mutex_unlock(&s->imu);
    cache_touch(s);
    return SM_OK;
}

int seg_lookup_time(log_segment_t *s, int32_t interval, int64_t ts, int64_t *offset) {
    *offset = s->base;
    pthread_mutex_lock(&s->imu);
    int rc = ensure_index_locked(s, interval);
    if (rc == SM_OK) {
        /* Records up to an entry's batch have timestamps <= its timestamp: a
         * search for ts may start at the last entry below ts. */
        int32_t lo = 0, hi = s->tidx.n - 1, best = -1;
        while (lo <= hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (tidx_ts(s, mid) < ts) {
                best = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (best >= 0) *offset = s->base + tidx_rel(s, best);
    }
    pthread_mutex_unlock(&s->imu);
    cache_touch(s);
    return SM_OK;
}

int seg_max_timestamp(log_segment_t *s, int32_t interval, int64_t *ts, int64_t *offset) {
    pthread_mutex_lock(&s->imu);
    bool loaded = false;
    int rc = SM_OK;
    if (!s->ts_known) {
        rc = ensure_index_locked(s, interval);
        loaded = true;
    }
    *ts = s->max_ts;
    *offset = s->max_ts_offset;
    pthread_mutex_unlock(&s->imu);
    if (loaded) cache_touch(s);
    return rc;
}

int seg_truncate_indexes(log_segment_t *s, int fd, int64_t offset, int64_t pos) {
    pthread_mutex_lock(&s->imu);
    int32_t n = s->idx.n;
    while (n > 0 && idx_pos(s, n - 1) >= pos)
        n--;
    s->idx.n = n;
    int32_t t = s->tidx.n;
    while (t > 0 && s->base + tidx_rel(s, t - 1) >= offset)
        t--;
    s->tidx.n = t;
    s->max_ts = t ? tidx_ts(s, t - 1) : -1;
    s->max_ts_offset = t ? s->base + tidx_rel(s, t - 1) : -1;
    /* Batches after the last kept offset index entry may hold a larger
     * timestamp than the time index recorded: read their headers. */
    int64_t p = n ? idx_pos(s, n - 1) : 0;
    int rc = SM_OK;
    while (p < pos) {
        uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
        proto_batch_header_t h;
        if ((rc = seg_pread(fd, hdr, sizeof(hdr), p))) break;
        if ((rc = proto_batch_parse_header(hdr, sizeof(hdr), &h))) break;
        if (h.max_timestamp > s->max_ts) {
            s->max_ts = h.max_timestamp;
            s->max_ts_offset = proto_batch_last_offset(&h);
        }
        p += (int64_t)proto_batch_total_size(&h);
    }
    s->bytes_since_index = n ? pos - idx_pos(s, n - 1) : 0;
    s->idx_files_stale = true;
    pthread_mutex_unlock(&s->imu);
    s->next_offset = offset;
    return rc;
}

/* ------------------------------------------------------------ files */

/* .txnindex: the aborted-transaction index (txn/aborted_index.c) shares the
 * segment's life: renamed and unlinked with it. */
static const char *const seg_exts[] = {".log", ".index", ".timeindex", ".txnindex"};
#define SEG_NEXTS ((int)(sizeof(seg_exts) / sizeof(seg_exts[0])))

int seg_rename_deleted(log_segment_t *s, int64_t delete_after_ms) {
    int rc = SM_OK;
    pthread_mutex_lock(&s->fmu);
    if (!s->deleted) {
        for (int i = 0; i < SEG_NEXTS; i++) {
            char from[4200], to[4300];
            snprintf(from, sizeof(from), "%s%s", s->path, seg_exts[i]);
            snprintf(to, sizeof(to), "%s%s.deleted", s->path, seg_exts[i]);
            if (rename(from, to) && errno != ENOENT && i == 0) rc = SM_ERR_IO;
        }
        if (rc == SM_OK) s->deleted = true;
        s->delete_after_ms = delete_after_ms;
    }
    pthread_mutex_unlock(&s->fmu);
    return rc;
}

bool seg_retired(log_segment_t *s) {
    pthread_mutex_lock(&s->fmu);
    bool d = s->deleted;
    pthread_mutex_unlock(&s->fmu);
    return d;
}

void seg_unlink_files(log_segment_t *s) {
    pthread_mutex_lock(&s->fmu);
    for (int i = 0; i < SEG_NEXTS; i++) {
        char p[4200];
        path_locked(s, seg_exts[i], p, sizeof(p));
        unlink(p);
    }
    pthread_mutex_unlock(&s->fmu);
}

int seg_set_dir(log_segment_t *s, const char *dir) {
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (!p) return SM_ERR_NOMEM;
    snprintf(p, n, "%s/%020" PRId64, dir, s->base);
    pthread_mutex_lock(&s->fmu);
    free(s->path);
    s->path = p;
    pthread_mutex_unlock(&s->fmu);
    return SM_OK;
}
