/*
 * The leader-epoch cache and its checkpoint file (see leader_epochs.h).
 */
#include "storage/leader_epochs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"

#define EPOCHS_FILE "leader-epoch-checkpoint"
#define EPOCHS_MAX_FILE (16u << 20)

static int save(log_epochs_t *e) {
    if (!e->path[0]) return SM_OK;
    size_t cap = 32 + e->n * 48;
    char *buf = malloc(cap);
    if (!buf) return SM_ERR_NOMEM;
    size_t used = (size_t)snprintf(buf, cap, "0\n%zu\n", e->n);
    for (size_t i = 0; i < e->n; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%d %lld\n", e->v[i].epoch,
                                 (long long)e->v[i].start_offset);
    int rc = fio_write_file(e->path, buf, used, true);
    free(buf);
    return rc;
}

static int push(log_epochs_t *e, int32_t epoch, int64_t start) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        log_epoch_entry_t *v = realloc(e->v, cap * sizeof(*v));
        if (!v) return SM_ERR_NOMEM;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (log_epoch_entry_t){epoch, start};
    return SM_OK;
}

int log_epochs_load(log_epochs_t *e, const char *dir, int64_t log_end) {
    memset(e, 0, sizeof(*e));
    snprintf(e->path, sizeof(e->path), "%s/" EPOCHS_FILE, dir);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fio_read_file(e->path, &data, &len, EPOCHS_MAX_FILE);
    if (rc == SM_ERR_NOTFOUND) return SM_OK;
    if (rc) return rc;
    char *text = malloc(len + 1);
    if (!text) {
        free(data);
        return SM_ERR_NOMEM;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    char *save_ptr = NULL;
    char *line = strtok_r(text, "\n", &save_ptr);
    long version = line ? strtol(line, NULL, 10) : -1;
    line = strtok_r(NULL, "\n", &save_ptr);
    long count = line ? strtol(line, NULL, 10) : -1;
    rc = version == 0 && count >= 0 ? SM_OK : SM_ERR_CORRUPT;
    for (long i = 0; rc == SM_OK && i < count; i++) {
        line = strtok_r(NULL, "\n", &save_ptr);
        int epoch;
        long long start;
        if (!line || sscanf(line, "%d %lld", &epoch, &start) != 2 || epoch < 0 || start < 0 ||
            (e->n && (epoch <= e->v[e->n - 1].epoch || start < e->v[e->n - 1].start_offset))) {
            rc = SM_ERR_CORRUPT;
            break;
        }
        rc = push(e, epoch, start);
    }
    free(text);
    if (rc) {
        e->n = 0;
        return rc;
    }
    while (e->n && e->v[e->n - 1].start_offset >= log_end)
        e->n--;
    return SM_OK;
}

void log_epochs_free(log_epochs_t *e) {
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

int32_t log_epochs_latest(const log_epochs_t *e) { return e->n ? e->v[e->n - 1].epoch : -1; }

int64_t log_epochs_latest_start(const log_epochs_t *e) {
    return e->n ? e->v[e->n - 1].start_offset : -1;
}

int log_epochs_assign(log_epochs_t *e, int32_t epoch, int64_t start_offset) {
    if (epoch < 0 || (e->n && epoch <= e->v[e->n - 1].epoch)) return SM_OK;
    while (e->n && e->v[e->n - 1].start_offset >= start_offset)
        e->n--;
    int rc = push(e, epoch, start_offset);
    return rc ? rc : save(e);
}

int log_epochs_truncate_from_end(log_epochs_t *e, int64_t end) {
    size_t n = e->n;
    while (e->n && e->v[e->n - 1].start_offset >= end)
        e->n--;
    return n == e->n ? SM_OK : save(e);
}

int log_epochs_truncate_from_start(log_epochs_t *e, int64_t start) {
    size_t drop = 0;
    while (drop + 1 < e->n && e->v[drop + 1].start_offset <= start)
        drop++;
    bool changed = drop > 0;
    if (drop) {
        memmove(e->v, e->v + drop, (e->n - drop) * sizeof(*e->v));
        e->n -= drop;
    }
    if (e->n && e->v[0].start_offset < start) {
        e->v[0].start_offset = start;
        changed = true;
    }
    return changed ? save(e) : SM_OK;
}

int log_epochs_clear(log_epochs_t *e) {
    if (!e->n) return SM_OK;
    e->n = 0;
    return save(e);
}

void log_epochs_end_offset(const log_epochs_t *e, int32_t epoch, int64_t log_end,
                           int32_t *out_epoch, int64_t *out_end) {
    *out_epoch = -1;
    *out_end = -1;
    if (epoch < 0 || e->n == 0) return;
    if (epoch == e->v[e->n - 1].epoch) {
        *out_epoch = epoch;
        *out_end = log_end;
        return;
    }
    /* The first entry newer than epoch, and the newest at or below it. */
    size_t hi = 0;
    while (hi < e->n && e->v[hi].epoch <= epoch)
        hi++;
    if (hi == e->n) return; /* newer than anything written */
    *out_epoch = hi == 0 ? epoch : e->v[hi - 1].epoch;
    *out_end = e->v[hi].start_offset;
}
