/*
 * The aborted-transaction index (see aborted_index.h).
 */
#include "txn/aborted_index.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fileio.h"

void txn_aborted_index_init(txn_aborted_index_t *x) { memset(x, 0, sizeof(*x)); }

void txn_aborted_index_free(txn_aborted_index_t *x) {
    free(x->v);
    memset(x, 0, sizeof(*x));
}

static int push(txn_aborted_index_t *x, const txn_aborted_t *e) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        txn_aborted_t *v = realloc(x->v, cap * sizeof(*v));
        if (!v) return SM_ERR_NOMEM;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = *e;
    return SM_OK;
}

static void encode(const txn_aborted_t *e, uint8_t out[TXN_ABORTED_ENTRY_SIZE]) {
    sm_writer_t w = sm_writer_make(out, TXN_ABORTED_ENTRY_SIZE);
    sm_wr_i16(&w, 0);
    sm_wr_i64(&w, e->producer_id);
    sm_wr_i64(&w, e->first_offset);
    sm_wr_i64(&w, e->last_offset);
    sm_wr_i64(&w, e->last_stable_offset);
}

static void file_path(const char *dir, int64_t base, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%020lld.txnindex", dir, (long long)base);
}

int txn_aborted_index_add(txn_aborted_index_t *x, const txn_aborted_t *e, const char *dir,
                          int64_t segment_base) {
    if (x->n && x->v[x->n - 1].last_offset >= e->last_offset) return SM_ERR_RANGE;
    if (push(x, e)) return SM_ERR_NOMEM;
    char path[4096];
    file_path(dir, segment_base, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return SM_ERR_IO;
    uint8_t buf[TXN_ABORTED_ENTRY_SIZE];
    encode(e, buf);
    int rc = fio_write_all(fd, buf, sizeof(buf));
    close(fd);
    return rc;
}

size_t txn_aborted_index_first_ending(const txn_aborted_index_t *x, int64_t from) {
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->v[mid].last_offset < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void txn_aborted_index_collect(const txn_aborted_index_t *x, int64_t from, int64_t upto,
                               void (*fn)(void *arg, const txn_aborted_t *e), void *arg) {
    /* Entries are sorted by last offset: skip to the first ending at or after
     * from, then take those that began before upto. */
    for (size_t i = txn_aborted_index_first_ending(x, from); i < x->n; i++)
        if (x->v[i].first_offset < upto) fn(arg, &x->v[i]);
}

void txn_aborted_index_remove(txn_aborted_index_t *x, int64_t producer_id, int64_t last_offset) {
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i].last_offset == last_offset && x->v[i].producer_id == producer_id) {
            memmove(x->v + i, x->v + i + 1, (x->n - i - 1) * sizeof(*x->v));
            x->n--;
            return;
        }
}

void txn_aborted_index_drop_before(txn_aborted_index_t *x, int64_t log_start) {
    size_t k = 0;
    while (k < x->n && x->v[k].last_offset < log_start)
        k++;
    if (!k) return;
    memmove(x->v, x->v + k, (x->n - k) * sizeof(*x->v));
    x->n -= k;
}

static int cmp_last(const void *a, const void *b) {
    int64_t x = ((const txn_aborted_t *)a)->last_offset,
            y = ((const txn_aborted_t *)b)->last_offset;
    return x < y ? -1 : x > y;
}

/* One entry of a file; false when it is not a valid one. */
static bool decode(const uint8_t *p, txn_aborted_t *e) {
    sm_reader_t r = sm_reader_make(p, TXN_ABORTED_ENTRY_SIZE);
    int16_t version = -1;
    sm_rd_i16(&r, &version);
    sm_rd_i64(&r, &e->producer_id);
    sm_rd_i64(&r, &e->first_offset);
    sm_rd_i64(&r, &e->last_offset);
    sm_rd_i64(&r, &e->last_stable_offset);
    return version == 0 && e->first_offset <= e->last_offset;
}

/* Reads one file; keeps entries below `below`; rewrites it when it held
 * anything else (entries to be replayed, a torn tail). */
static int load_file(txn_aborted_index_t *x, const char *path, int64_t below) {
    uint8_t *buf;
    size_t len;
    int rc = fio_read_file(path, &buf, &len, 256u << 20);
    if (rc) return rc;
    size_t kept = 0, total = len / TXN_ABORTED_ENTRY_SIZE;
    for (size_t i = 0; i < total && rc == SM_OK; i++) {
        txn_aborted_t e;
        if (!decode(buf + i * TXN_ABORTED_ENTRY_SIZE, &e)) break;
        if (e.last_offset >= below) continue;
        memmove(buf + kept * TXN_ABORTED_ENTRY_SIZE, buf + i * TXN_ABORTED_ENTRY_SIZE,
                TXN_ABORTED_ENTRY_SIZE);
        kept++;
        rc = push(x, &e);
    }
    if (rc == SM_OK && kept * TXN_ABORTED_ENTRY_SIZE != len)
        rc = kept ? fio_write_file(path, buf, kept * TXN_ABORTED_ENTRY_SIZE, true)
                  : (unlink(path) ? SM_ERR_IO : SM_OK);
    free(buf);
    return rc;
}

/* The valid prefix of one file, added to x (below unused); the file is left
 * as it is. */
static int read_file(txn_aborted_index_t *x, const char *path, int64_t below) {
    (void)below;
    uint8_t *buf;
    size_t len;
    int rc = fio_read_file(path, &buf, &len, 256u << 20);
    if (rc) return rc == SM_ERR_NOTFOUND ? SM_OK : rc; /* deleted meanwhile */
    for (size_t i = 0; rc == SM_OK && i + TXN_ABORTED_ENTRY_SIZE <= len;
         i += TXN_ABORTED_ENTRY_SIZE) {
        txn_aborted_t e;
        if (!decode(buf + i, &e)) break;
        rc = push(x, &e);
    }
    free(buf);
    return rc;
}

/* Calls fn for every "<20 digits>.txnindex" of dir; stops at a failure. */
static int each_file(const char *dir,
                     int (*fn)(txn_aborted_index_t *x, const char *path, int64_t below),
                     txn_aborted_index_t *x, int64_t below) {
    DIR *d = opendir(dir);
    if (!d) return SM_ERR_IO;
    struct dirent *de;
    int rc = SM_OK;
    while (rc == SM_OK && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n != 29 || strcmp(de->d_name + 20, ".txnindex") != 0) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        rc = fn(x, path, below);
    }
    closedir(d);
    return rc;
}

int txn_aborted_index_read_dir(txn_aborted_index_t *x, const char *dir) {
    x->n = 0;
    int rc = each_file(dir, read_file, x, 0);
    if (x->n > 1) qsort(x->v, x->n, sizeof(*x->v), cmp_last);
    return rc;
}

int txn_aborted_index_write_file(const txn_aborted_t *v, size_t n, const char *path) {
    uint8_t *buf = malloc(n ? n * TXN_ABORTED_ENTRY_SIZE : 1);
    if (!buf) return SM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        encode(&v[i], buf + i * TXN_ABORTED_ENTRY_SIZE);
    int rc = fio_write_file(path, buf, n * TXN_ABORTED_ENTRY_SIZE, true);
    free(buf);
    return rc;
}

int txn_aborted_index_load(txn_aborted_index_t *x, const char *dir, int64_t below) {
    x->n = 0;
    int rc = each_file(dir, load_file, x, below);
    if (x->n > 1) qsort(x->v, x->n, sizeof(*x->v), cmp_last);
    return rc;
}
