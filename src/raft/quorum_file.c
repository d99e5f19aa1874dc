/*
 * The `quorum-state` file's JSON line and snapshot file names, byte for byte as Kafka's
 * FileQuorumStateStore and Snapshots write them. A small strict scanner: the file is
 * written by a Raft node, so anything unexpected is a parse error, never a guess.
 */
#include "raft/quorum_file.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

int raft_quorum_file_format(const raft_quorum_state_t *st, const int32_t *voters, int n_voters,
                            char *buf, size_t cap, size_t *len) {
    size_t n = 0;
    int w;
    if (n_voters < 0) { /* KIP-853: the voter set lives in the log */
        w = snprintf(buf, cap,
                     "{\"leaderId\":%" PRId32 ",\"leaderEpoch\":%" PRId32 ",\"votedId\":%" PRId32
                     ",\"data_version\":1}\n",
                     st->leader_id, st->epoch, st->voted_id);
        if (w < 0 || (size_t)w >= cap) return SM_ERR_SPACE;
        *len = (size_t)w;
        return SM_OK;
    }
    w = snprintf(buf, cap,
                     "{\"clusterId\":\"\",\"leaderId\":%" PRId32 ",\"leaderEpoch\":%" PRId32
                     ",\"votedId\":%" PRId32 ",\"appliedOffset\":0,\"currentVoters\":[",
                     st->leader_id, st->epoch, st->voted_id);
    if (w < 0 || (size_t)w >= cap) return SM_ERR_SPACE;
    n = (size_t)w;
    for (int i = 0; i < n_voters; i++) {
        w = snprintf(buf + n, cap - n, "%s{\"voterId\":%" PRId32 "}", i ? "," : "", voters[i]);
        if (w < 0 || (size_t)w >= cap - n) return SM_ERR_SPACE;
        n += (size_t)w;
    }
    w = snprintf(buf + n, cap - n, "],\"data_version\":0}\n");
    if (w < 0 || (size_t)w >= cap - n) return SM_ERR_SPACE;
    *len = n + (size_t)w;
    return SM_OK;
}

typedef struct scan {
    const char *p, *end;
} scan_t;

static void ws(scan_t *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r'))
        s->p++;
}

static bool eat(scan_t *s, char c) {
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A string without escapes (Kafka's keys and base64 ids have none); returns its span. */
static bool str(scan_t *s, const char **b, size_t *n) {
    if (!eat(s, '"')) return false;
    *b = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' || *s->p == '\n') return false;
        s->p++;
    }
    if (s->p == s->end) return false;
    *n = (size_t)(s->p - *b);
    s->p++;
    return true;
}

static bool num(scan_t *s, int64_t *v) {
    ws(s);
    bool neg = s->p < s->end && *s->p == '-';
    if (neg) s->p++;
    if (s->p == s->end || *s->p < '0' || *s->p > '9') return false;
    int64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return false;
        x = x * 10 + (*s->p++ - '0');
    }
    *v = neg ? -x : x;
    return true;
}

static bool key_is(const char *b, size_t n, const char *k) {
    return strlen(k) == n && !memcmp(b, k, n);
}

static bool int32_val(scan_t *s, int32_t *out) {
    int64_t v;
    if (!num(s, &v) || v < INT32_MIN || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

/* [{"voterId":n}, ...] or null */
static bool voters_val(scan_t *s, int32_t *voters, int *n) {
    ws(s);
    if (s->end - s->p >= 4 && !memcmp(s->p, "null", 4)) {
        s->p += 4;
        *n = -1;
        return true;
    }
    if (!eat(s, '[')) return false;
    *n = 0;
    if (eat(s, ']')) return true;
    do {
        const char *k;
        size_t kn;
        if (*n == RAFT_MAX_VOTERS || !eat(s, '{') || !str(s, &k, &kn) ||
            !key_is(k, kn, "voterId") || !eat(s, ':') || !int32_val(s, &voters[*n]) || !eat(s, '}'))
            return false;
        (*n)++;
    } while (eat(s, ','));
    return eat(s, ']');
}

int raft_quorum_file_parse(const char *text, size_t len, raft_quorum_state_t *st,
                           int32_t voters[RAFT_MAX_VOTERS], int *n_voters) {
    scan_t s = {text, text + len};
    const char *nl = memchr(text, '\n', len);
    if (nl) s.end = nl;
    int64_t version = -1;
    st->epoch = -1;
    st->leader_id = st->voted_id = RAFT_NO_NODE;
    *n_voters = -1;
    if (!eat(&s, '{')) return SM_ERR_PARSE;
    if (!eat(&s, '}')) {
        do {
            const char *k, *sv;
            size_t kn, svn;
            int64_t v;
            if (!str(&s, &k, &kn) || !eat(&s, ':')) return SM_ERR_PARSE;
            bool ok;
            if (key_is(k, kn, "leaderId"))
                ok = int32_val(&s, &st->leader_id);
            else if (key_is(k, kn, "leaderEpoch"))
                ok = int32_val(&s, &st->epoch);
            else if (key_is(k, kn, "votedId"))
                ok = int32_val(&s, &st->voted_id);
            else if (key_is(k, kn, "appliedOffset"))
                ok = num(&s, &v);
            else if (key_is(k, kn, "data_version"))
                ok = num(&s, &version);
            else if (key_is(k, kn, "clusterId") || key_is(k, kn, "votedDirectoryId"))
                ok = str(&s, &sv, &svn);
            else if (key_is(k, kn, "currentVoters"))
                ok = voters_val(&s, voters, n_voters);
            else
                ok = false;
            if (!ok) return SM_ERR_PARSE;
        } while (eat(&s, ','));
        if (!eat(&s, '}')) return SM_ERR_PARSE;
    }
    ws(&s);
    if (s.p != s.end || version < 0 || version > 1 || st->epoch < 0) return SM_ERR_PARSE;
    if (st->leader_id < RAFT_NO_NODE || st->voted_id < RAFT_NO_NODE) return SM_ERR_PARSE;
    return SM_OK;
}

int raft_snapshot_file_name(raft_offset_epoch_t id, char *buf, size_t cap) {
    int w = snprintf(buf, cap, "%020" PRId64 "-%010" PRId32 ".checkpoint", id.offset, id.epoch);
    return (w < 0 || (size_t)w >= cap) ? SM_ERR_SPACE : SM_OK;
}
