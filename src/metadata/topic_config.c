/*
 * The table of topic-level configs and their validation (see topic_config.h).
 * Defaults are Kafka 4.x's.
 */
#include "metadata/topic_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cleanup_policies[] = {"delete", "compact", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd",     "lz4", "snappy",
                                                "gzip",         "producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};

#define I64MAX "9223372036854775807"

const meta_topic_config_def_t meta_topic_configs[] = {
    {"cleanup.policy", META_CFG_LIST, "log.cleanup.policy", "delete", 0, cleanup_policies, true,
     "What happens to old segments: delete (by retention time or size) or compact (keep the newest "
     "record per key), or both."},
    {"compression.type", META_CFG_STRING, "compression.type", "producer", 0, compression_types,
     false, "Codec the broker stores batches with; producer keeps what the producer sent."},
    {"compression.gzip.level", META_CFG_INT, "compression.gzip.level", "-1", -1, NULL, false,
     "Level used when the topic compresses with gzip."},
    {"compression.lz4.level", META_CFG_INT, "compression.lz4.level", "9", 1, NULL, false,
     "Level used when the topic compresses with lz4."},
    {"compression.zstd.level", META_CFG_INT, "compression.zstd.level", "3", -131072, NULL, false,
     "Level used when the topic compresses with zstd."},
    {"delete.retention.ms", META_CFG_LONG, "log.cleaner.delete.retention.ms", "86400000", 0, NULL,
     false, "How long delete markers (tombstones) stay in a compacted topic."},
    {"file.delete.delay.ms", META_CFG_LONG, "log.segment.delete.delay.ms", "60000", 0, NULL, true,
     "Wait before a retired segment's files are removed from disk."},
    {"flush.messages", META_CFG_LONG, "log.flush.interval.messages", I64MAX, 1, NULL, true,
     "Force an fsync after this many records were appended."},
    {"flush.ms", META_CFG_LONG, "log.flush.interval.ms", I64MAX, 0, NULL, true,
     "Force an fsync when unflushed data is older than this many milliseconds."},
    {"index.interval.bytes", META_CFG_INT, "log.index.interval.bytes", "4096", 0, NULL, true,
     "Bytes of log between two entries of the offset index."},
    {"max.compaction.lag.ms", META_CFG_LONG, "log.cleaner.max.compaction.lag.ms", I64MAX, 1, NULL,
     false, "Longest time a record may stay uncompacted in a compacted topic."},
    {"max.message.bytes", META_CFG_INT, "message.max.bytes", "1048588", 0, NULL, true,
     "Largest record batch the topic accepts, after compression."},
    {"message.timestamp.after.max.ms", META_CFG_LONG, "log.message.timestamp.after.max.ms",
     "3600000", 0, NULL, true, "How far in the future a record timestamp may be, in milliseconds."},
    {"message.timestamp.before.max.ms", META_CFG_LONG, "log.message.timestamp.before.max.ms",
     I64MAX, 0, NULL, true, "How far in the past a record timestamp may be, in milliseconds."},
    {"message.timestamp.type", META_CFG_STRING, "log.message.timestamp.type", "CreateTime", 0,
     timestamp_types, true,
     "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's "
     "clock."},
    {"min.cleanable.dirty.ratio", META_CFG_DOUBLE, "log.cleaner.min.cleanable.ratio", "0.5", 0,
     NULL, false, "Share of uncompacted log that triggers compaction."},
    {"min.compaction.lag.ms", META_CFG_LONG, "log.cleaner.min.compaction.lag.ms", "0", 0, NULL,
     false, "Shortest time a record stays uncompacted."},
    {"min.insync.replicas", META_CFG_INT, "min.insync.replicas", "1", 1, NULL, true,
     "Replicas that must hold a write before acks=all succeeds."},
    {"preallocate", META_CFG_BOOL, "log.preallocate", "false", 0, NULL, false,
     "Preallocate segment files on disk when they are created."},
    {"remote.storage.enable", META_CFG_BOOL, NULL, "false", 0, NULL, false,
     "Tiered storage for this topic."},
    {"retention.bytes", META_CFG_LONG, "log.retention.bytes", "-1", -1, NULL, true,
     "Largest size of a partition's log before old segments go; -1 for no limit."},
    {"retention.ms", META_CFG_LONG, "log.retention.ms", "604800000", -1, NULL, true,
     "How long records are kept before their segment may be deleted; -1 for ever."},
    {"segment.bytes", META_CFG_INT, "log.segment.bytes", "1073741824", 1048576, NULL, true,
     "Size at which a log segment is closed and a new one started."},
    {"segment.index.bytes", META_CFG_INT, "log.index.size.max.bytes", "10485760", 4, NULL, true,
     "Size of the offset and time index files of a segment."},
    {"segment.jitter.ms", META_CFG_LONG, "log.roll.jitter.ms", "0", 0, NULL, false,
     "Random delay subtracted from segment.ms to spread segment rolls."},
    {"segment.ms", META_CFG_LONG, "log.roll.ms", "604800000", 1, NULL, true,
     "Age at which a segment is closed and a new one started, even if not full."},
    {"unclean.leader.election.enable", META_CFG_BOOL, "unclean.leader.election.enable", "false", 0,
     NULL, false, "Allow an out-of-sync replica to become leader, losing data."},
    {"local.retention.ms", META_CFG_LONG, "log.local.retention.ms", "-2", -2, NULL, false,
     "Retention of local segments when tiered storage is on."},
    {"local.retention.bytes", META_CFG_LONG, "log.local.retention.bytes", "-2", -2, NULL, false,
     "Local size bound when tiered storage is on."},
    {"follower.replication.throttled.replicas", META_CFG_LIST, NULL, "", 0, NULL, true,
     "Replicas throttled on the follower side: partition:broker pairs naming the "
     "fetching broker, or *; their bytes count against follower.replication.throttled.rate."},
    {"leader.replication.throttled.replicas", META_CFG_LIST, NULL, "", 0, NULL, true,
     "Replicas throttled on the leader side: partition:broker pairs naming the leading "
     "broker, or *; their bytes count against leader.replication.throttled.rate."},
    {"errors.deadletterqueue.group.enable", META_CFG_BOOL, NULL, "false", 0, NULL, false,
     "Whether share groups may send undeliverable records to a dead-letter queue."},
    {"max.decompressed.message.bytes", META_CFG_INT, NULL, "2147483639", 0, NULL, false,
     "Largest size a batch may decompress to."},
    {"remote.copy.lag.bytes", META_CFG_LONG, NULL, "-1", -1, NULL, false,
     "Bytes of local log allowed to wait before copying to tiered storage."},
    {"remote.copy.lag.ms", META_CFG_LONG, NULL, "0", 0, NULL, false,
     "Age of local log allowed to wait before copying to tiered storage."},
    {"remote.log.copy.disable", META_CFG_BOOL, NULL, "false", 0, NULL, false,
     "Stop copying segments to tiered storage."},
    {"remote.log.delete.on.disable", META_CFG_BOOL, NULL, "false", 0, NULL, false,
     "Delete tiered segments when tiered storage is turned off."},
};
const size_t meta_topic_configs_count = sizeof(meta_topic_configs) / sizeof(meta_topic_configs[0]);

const meta_topic_config_def_t *meta_topic_config_def(const char *name, size_t len) {
    for (size_t i = 0; i < meta_topic_configs_count; i++)
        if (strlen(meta_topic_configs[i].name) == len &&
            memcmp(meta_topic_configs[i].name, name, len) == 0)
            return &meta_topic_configs[i];
    return NULL;
}

static bool in_choices(const char *const *choices, const char *v, size_t len) {
    for (; *choices; choices++)
        if (strlen(*choices) == len && strncmp(*choices, v, len) == 0) return true;
    return false;
}

/* Steps over the next comma-separated item of list (spaces around it trimmed;
 * empty items included, as Kafka's split keeps them); false at the end. */
static bool next_list_item(const char **list, const char **item, size_t *len) {
    const char *p = *list;
    if (!p) return false;
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    *list = c ? c + 1 : NULL;
    while (n && *p == ' ')
        p++, n--;
    while (n && p[n - 1] == ' ')
        n--;
    *item = p;
    *len = n;
    return true;
}

/* "partition:broker", both decimal (Kafka's [0-9]+:[0-9]+). */
static bool replica_item(const char *s, size_t n, int64_t *part, int64_t *broker) {
    int64_t v[2] = {0, 0};
    int k = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':' && k == 0 && digits > 0) {
            k = 1;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9' && digits < 10) {
            v[k] = v[k] * 10 + (s[i] - '0');
            digits++;
        } else {
            return false;
        }
    }
    if (k != 1 || digits == 0) return false;
    *part = v[0];
    *broker = v[1];
    return true;
}

/* Kafka's ThrottledReplicaListValidator: "*", or partition:broker items
 * (empty ones allowed). */
static bool throttled_list_valid(const char *list) {
    const char *item;
    size_t n;
    const char *p = list;
    bool star = false, pairs = true;
    size_t nonempty = 0;
    while (next_list_item(&p, &item, &n)) {
        int64_t a, b;
        if (n == 0) continue;
        nonempty++;
        if (n == 1 && *item == '*')
            star = true;
        else if (!replica_item(item, n, &a, &b))
            pairs = false;
    }
    return star ? nonempty == 1 : pairs;
}

bool meta_throttled_replica(const char *list, int32_t partition, int32_t broker) {
    const char *item;
    size_t n;
    const char *p = list;
    while (p && next_list_item(&p, &item, &n)) {
        int64_t a, b;
        if (n == 1 && *item == '*') return true;
        if (replica_item(item, n, &a, &b) && a == partition && b == broker) return true;
    }
    return false;
}

bool meta_topic_config_validate(const char *name, size_t name_len, const char *value,
                                size_t value_len, char *err, size_t errlen) {
    const meta_topic_config_def_t *d = meta_topic_config_def(name, name_len);
    if (!d) {
        snprintf(err, errlen, "Unknown topic config name: %.*s", (int)name_len, name);
        return false;
    }
    char buf[256];
    if (value_len >= sizeof(buf)) {
        snprintf(err, errlen, "Invalid value for configuration %s: too long", d->name);
        return false;
    }
    if (memchr(value, 0, value_len)) {
        snprintf(err, errlen, "Invalid value for configuration %s: it holds a NUL byte", d->name);
        return false;
    }
    memcpy(buf, value, value_len);
    buf[value_len] = 0;
    switch (d->type) {
    case META_CFG_BOOL:
        if (strcasecmp(buf, "true") && strcasecmp(buf, "false")) {
            snprintf(
                err, errlen,
                "Invalid value %s for configuration %s: Expected value to be either true or false",
                buf, d->name);
            return false;
        }
        return true;
    case META_CFG_INT:
    case META_CFG_LONG: {
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        bool bad = errno || end == buf || *end;
        if (!bad && d->type == META_CFG_INT && (x < INT32_MIN || x > INT32_MAX)) bad = true;
        if (bad) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: Not a number of type %s",
                     buf, d->name, d->type == META_CFG_INT ? "INT" : "LONG");
            return false;
        }
        if (x < d->min) {
            snprintf(err, errlen,
                     "Invalid value %s for configuration %s: Value must be at least %lld", buf,
                     d->name, (long long)d->min);
            return false;
        }
        return true;
    }
    case META_CFG_DOUBLE: {
        char *end;
        double x = strtod(buf, &end);
        if (end == buf || *end || x < 0 || x > 1) {
            snprintf(err, errlen,
                     "Invalid value %s for configuration %s: Value must be between 0 and 1", buf,
                     d->name);
            return false;
        }
        return true;
    }
    case META_CFG_STRING:
        if (d->choices && !in_choices(d->choices, buf, value_len)) {
            snprintf(
                err, errlen,
                "Invalid value %s for configuration %s: String must be one of the allowed values",
                buf, d->name);
            return false;
        }
        return true;
    case META_CFG_LIST:
        if (strstr(d->name, ".replication.throttled.replicas") && !throttled_list_valid(buf)) {
            snprintf(err, errlen,
                     "Invalid value %s for configuration %s: %s must be the literal '*' or a list "
                     "of replicas in the following format: [partitionId]:[brokerId],"
                     "[partitionId]:[brokerId],...",
                     buf, d->name, d->name);
            return false;
        }
        if (d->choices) {
            const char *p = *buf ? buf : NULL, *item;
            size_t n;
            while (next_list_item(&p, &item, &n)) {
                if (n == 0 && !p) break; /* after a trailing comma */
                if (!in_choices(d->choices, item, n)) {
                    snprintf(err, errlen,
                             "Invalid value %s for configuration %s: List must contain only "
                             "allowed values",
                             buf, d->name);
                    return false;
                }
            }
        }
        return true;
    case META_CFG_CLASS: return true;
    }
    return true;
}
