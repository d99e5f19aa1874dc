/*
 * The in-memory metadata log of a Raft node (see raft_log.h), and the deep copies of
 * messages the outbox and a simulated network need. Not a storage engine: the caller
 * persists what the outbox tells it to.
 */
#include "raft/raft_log.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void raft_log_init(raft_log_t *l, raft_offset_epoch_t snapshot) {
    memset(l, 0, sizeof(*l));
    l->start = snapshot.offset;
    l->start_epoch = snapshot.epoch;
}

static void entries_free(raft_entry_t *e, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        free(e[i].data);
}

void raft_log_destroy(raft_log_t *l) {
    entries_free(l->e, l->n);
    free(l->e);
    memset(l, 0, sizeof(*l));
}

int32_t raft_log_last_epoch(const raft_log_t *l) {
    return l->n ? l->e[l->n - 1].epoch : l->start_epoch;
}

int32_t raft_log_epoch_before(const raft_log_t *l, int64_t offset) {
    if (offset < l->start || offset > raft_log_end_offset(l)) return -1;
    if (offset == l->start) return l->start_epoch;
    return l->e[offset - 1 - l->start].epoch;
}

int raft_entry_copy(raft_entry_t *dst, const raft_entry_t *src) {
    *dst = *src;
    dst->data = NULL;
    if (src->len) {
        dst->data = malloc(src->len);
        if (!dst->data) return SM_ERR_NOMEM;
        memcpy(dst->data, src->data, src->len);
    }
    return SM_OK;
}

int raft_log_append(raft_log_t *l, const raft_entry_t *e) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        raft_entry_t *ne = realloc(l->e, (size_t)cap * sizeof(*ne));
        if (!ne) return SM_ERR_NOMEM;
        l->e = ne;
        l->cap = cap;
    }
    int rc = raft_entry_copy(&l->e[l->n], e);
    if (rc == SM_OK) l->n++;
    return rc;
}

void raft_log_truncate(raft_log_t *l, int64_t offset) {
    if (offset < l->start) offset = l->start;
    int64_t keep = offset - l->start;
    if (keep >= l->n) return;
    entries_free(l->e + keep, l->n - keep);
    l->n = keep;
}

void raft_log_drop_prefix(raft_log_t *l, int64_t offset, int32_t epoch) {
    if (offset <= l->start) return;
    int64_t drop = offset - l->start;
    if (drop > l->n) drop = l->n;
    entries_free(l->e, drop);
    memmove(l->e, l->e + drop, (size_t)(l->n - drop) * sizeof(*l->e));
    l->n -= drop;
    l->start = offset;
    l->start_epoch = epoch;
}

void raft_log_reset(raft_log_t *l, raft_offset_epoch_t snapshot) {
    entries_free(l->e, l->n);
    l->n = 0;
    l->start = snapshot.offset;
    l->start_epoch = snapshot.epoch;
}

const raft_entry_t *raft_log_at(const raft_log_t *l, int64_t offset) {
    if (offset < l->start || offset >= raft_log_end_offset(l)) return NULL;
    return &l->e[offset - l->start];
}

bool raft_log_end_for_epoch(const raft_log_t *l, int32_t epoch, raft_offset_epoch_t *out) {
    if (l->start > 0 && epoch < l->start_epoch) return false;
    /* first index whose epoch is above `epoch` (epochs never decrease along the log) */
    int64_t lo = 0, hi = l->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (l->e[mid].epoch <= epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    out->offset = l->start + lo;
    out->epoch = lo > 0 ? l->e[lo - 1].epoch : l->start_epoch;
    return true;
}

int raft_msg_clone(raft_msg_t *dst, const raft_msg_t *src) {
    *dst = *src;
    if (src->kind == RAFT_MSG_FETCH_RESP && src->u.fetch_resp.n_entries > 0) {
        int n = src->u.fetch_resp.n_entries;
        raft_entry_t *e = calloc((size_t)n, sizeof(*e));
        if (!e) goto nomem;
        for (int i = 0; i < n; i++) {
            if (raft_entry_copy(&e[i], &src->u.fetch_resp.entries[i]) != SM_OK) {
                entries_free(e, i);
                free(e);
                goto nomem;
            }
        }
        dst->u.fetch_resp.entries = e;
    } else if (src->kind == RAFT_MSG_FETCH_SNAPSHOT_RESP && src->u.snap_resp.len > 0) {
        uint8_t *d = malloc(src->u.snap_resp.len);
        if (!d) goto nomem;
        memcpy(d, src->u.snap_resp.data, src->u.snap_resp.len);
        dst->u.snap_resp.data = d;
    }
    return SM_OK;
nomem:
    memset(dst, 0, sizeof(*dst));
    return SM_ERR_NOMEM;
}

void raft_msg_release(raft_msg_t *m) {
    if (m->kind == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.entries) {
        entries_free(m->u.fetch_resp.entries, m->u.fetch_resp.n_entries);
        free(m->u.fetch_resp.entries);
        m->u.fetch_resp.entries = NULL;
        m->u.fetch_resp.n_entries = 0;
    } else if (m->kind == RAFT_MSG_FETCH_SNAPSHOT_RESP && m->u.snap_resp.data) {
        free(m->u.snap_resp.data);
        m->u.snap_resp.data = NULL;
        m->u.snap_resp.len = 0;
    }
}

const char *raft_msg_kind_name(raft_msg_kind_t k) {
    switch (k) {
    case RAFT_MSG_VOTE_REQ: return "Vote";
    case RAFT_MSG_VOTE_RESP: return "VoteResponse";
    case RAFT_MSG_BEGIN_EPOCH_REQ: return "BeginQuorumEpoch";
    case RAFT_MSG_BEGIN_EPOCH_RESP: return "BeginQuorumEpochResponse";
    case RAFT_MSG_END_EPOCH_REQ: return "EndQuorumEpoch";
    case RAFT_MSG_END_EPOCH_RESP: return "EndQuorumEpochResponse";
    case RAFT_MSG_FETCH_REQ: return "Fetch";
    case RAFT_MSG_FETCH_RESP: return "FetchResponse";
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: return "FetchSnapshot";
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: return "FetchSnapshotResponse";
    }
    return "?";
}

const char *raft_state_name(raft_state_kind_t s) {
    switch (s) {
    case RAFT_UNATTACHED: return "Unattached";
    case RAFT_PROSPECTIVE: return "Prospective";
    case RAFT_CANDIDATE: return "Candidate";
    case RAFT_LEADER: return "Leader";
    case RAFT_FOLLOWER: return "Follower";
    case RAFT_RESIGNED: return "Resigned";
    }
    return "?";
}
