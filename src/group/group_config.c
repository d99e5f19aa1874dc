/*
 * The group config table and its validation (see group_config.h). Ranges are
 * those Kafka 4.4 derives from the broker's settings
 * (group.consumer.min/max.session.timeout.ms and the like): the broker's own
 * where Samsa has the key, Kafka's defaults otherwise.
 */
#include "group/group_config.h"

#include "base/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOT_USED " Stored and reported; Samsa does not use it."

const group_config_def_t group_configs[] = {
    {"consumer.assignment.interval.ms", GROUP_CFG_INT, "1000",
     "group.consumer.assignment.interval.ms", 0, INT32_MAX, 0,
     "Minimum interval between assignments of a consumer group." NOT_USED},
    {"consumer.heartbeat.interval.ms", GROUP_CFG_INT, "5000",
     "group.consumer.heartbeat.interval.ms", 1, 15000, 5000,
     "Heartbeat interval of consumer group members."},
    {"consumer.session.timeout.ms", GROUP_CFG_INT, "45000", "group.consumer.session.timeout.ms", 1,
     60000, 45000, "Session timeout of consumer group members."},
    {"errors.deadletterqueue.copy.record.enable", GROUP_CFG_BOOL, "false",
     "errors.deadletterqueue.copy.record.enable", 0, 0, false,
     "Copy records to the dead-letter queue topic." NOT_USED},
    {"errors.deadletterqueue.topic.name", GROUP_CFG_STRING, "", "errors.deadletterqueue.topic.name",
     0, 0, 0, "The dead-letter queue topic of a share group." NOT_USED},
    {"share.assignment.interval.ms", GROUP_CFG_INT, "1000", "group.share.assignment.interval.ms", 0,
     INT32_MAX, 0, "Minimum interval between assignments of a share group." NOT_USED},
    {"share.auto.offset.reset", GROUP_CFG_STRING, "latest", "share.auto.offset.reset", 0, 0, 0,
     "Where a share group starts reading a partition." NOT_USED},
    {"share.delivery.count.limit", GROUP_CFG_INT, "5", "group.share.delivery.count.limit", 2, 10, 2,
     "Deliveries of a record to a share group before it is archived." NOT_USED},
    {"share.heartbeat.interval.ms", GROUP_CFG_INT, "5000", "group.share.heartbeat.interval.ms", 1,
     15000, 5000, "Heartbeat interval of share group members." NOT_USED},
    {"share.isolation.level", GROUP_CFG_STRING, "read_uncommitted", "share.isolation.level", 0, 0,
     0, "Which records a share group reads." NOT_USED},
    {"share.partition.max.record.locks", GROUP_CFG_INT, "2000",
     "group.share.partition.max.record.locks", 100, 4000, 100,
     "In-flight records per share partition." NOT_USED},
    {"share.record.lock.duration.ms", GROUP_CFG_INT, "30000", "group.share.record.lock.duration.ms",
     1, 60000, 15000, "How long a share group member holds a record." NOT_USED},
    {"share.renew.acknowledge.enable", GROUP_CFG_BOOL, "true", "share.renew.acknowledge.enable", 0,
     0, 0, "Share consumers may renew acquisition locks." NOT_USED},
    {"share.session.timeout.ms", GROUP_CFG_INT, "45000", "group.share.session.timeout.ms", 1, 60000,
     45000, "Session timeout of share group members." NOT_USED},
    {"streams.assignment.interval.ms", GROUP_CFG_INT, "1000",
     "group.streams.assignment.interval.ms", 0, INT32_MAX, 0,
     "Minimum interval between assignments of a streams group." NOT_USED},
    {"streams.assignor.name", GROUP_CFG_STRING, "sticky", "group.streams.assignors", 0, 0, 0,
     "The task assignor of a streams group." NOT_USED},
    {"streams.heartbeat.interval.ms", GROUP_CFG_INT, "5000", "group.streams.heartbeat.interval.ms",
     1, 15000, 5000, "Heartbeat interval of streams group members." NOT_USED},
    {"streams.initial.rebalance.delay.ms", GROUP_CFG_INT, "3000",
     "group.streams.initial.rebalance.delay.ms", 0, INT32_MAX, 0,
     "Delay of a streams group's first assignment." NOT_USED},
    {"streams.num.standby.replicas", GROUP_CFG_INT, "0", "group.streams.num.standby.replicas", 0, 2,
     0, "Standby replicas per task of a streams group." NOT_USED},
    {"streams.rack.aware.assignment.tags", GROUP_CFG_LIST, "",
     "group.streams.rack.aware.assignment.tags", 0, 0, 0,
     "Client tags a streams group spreads standby tasks over." NOT_USED},
    {"streams.session.timeout.ms", GROUP_CFG_INT, "45000", "group.streams.session.timeout.ms", 1,
     60000, 45000, "Session timeout of streams group members." NOT_USED},
};
const size_t group_configs_count = sizeof(group_configs) / sizeof(group_configs[0]);

const group_config_def_t *group_config_def(const char *name, size_t len) {
    for (size_t i = 0; i < group_configs_count; i++)
        if (strlen(group_configs[i].name) == len && memcmp(group_configs[i].name, name, len) == 0)
            return &group_configs[i];
    return NULL;
}

/* share.auto.offset.reset: earliest, latest or by_duration:<ISO-8601 duration>. */
static bool offset_reset_ok(const char *v) {
    if (strcmp(v, "earliest") == 0 || strcmp(v, "latest") == 0) return true;
    if (strncmp(v, "by_duration:", 12) != 0) return false;
    const char *d = v + 12;
    if (d[0] != 'P' || !d[1]) return false;
    for (d++; *d; d++)
        if (!strchr("0123456789.DTHMS", *d)) return false;
    return true;
}

/* Keys whose range Kafka takes from the broker's settings. */
static const struct {
    const char *name, *min_key, *max_key;
} broker_ranges[] = {
    {"consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms",
     "group.consumer.max.session.timeout.ms"},
    {"consumer.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms",
     "group.consumer.max.heartbeat.interval.ms"},
};

/* Session timeouts and the heartbeat intervals they must exceed. */
static const char *const session_pairs[][2] = {
    {"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"},
    {"share.session.timeout.ms", "share.heartbeat.interval.ms"},
    {"streams.session.timeout.ms", "streams.heartbeat.interval.ms"},
};

const char *group_config_default(const group_config_def_t *d, const sm_config_t *broker) {
    const char *v = broker && d->synonym ? sm_config_str(broker, d->synonym) : NULL;
    return v ? v : d->default_value;
}

/* The range of an INT key: the broker's bounds where Kafka uses them. */
static void int_range(const group_config_def_t *d, const sm_config_t *broker, int64_t *lo,
                      int64_t *hi) {
    *lo = d->range_min;
    *hi = d->max;
    for (size_t i = 0; broker && i < sizeof(broker_ranges) / sizeof(broker_ranges[0]); i++)
        if (strcmp(broker_ranges[i].name, d->name) == 0) {
            const char *a = sm_config_str(broker, broker_ranges[i].min_key);
            const char *b = sm_config_str(broker, broker_ranges[i].max_key);
            if (a) *lo = strtoll(a, NULL, 10);
            if (b) *hi = strtoll(b, NULL, 10);
        }
}

bool group_config_check_set(const sm_config_t *broker,
                            const char *(*value)(void *arg, const char *name), void *arg, char *err,
                            size_t errlen) {
    for (size_t i = 0; i < sizeof(session_pairs) / sizeof(session_pairs[0]); i++) {
        const char *sv = value(arg, session_pairs[i][0]), *hv = value(arg, session_pairs[i][1]);
        if (!sv && !hv) continue;
        const group_config_def_t *sd =
            group_config_def(session_pairs[i][0], strlen(session_pairs[i][0]));
        const group_config_def_t *hd =
            group_config_def(session_pairs[i][1], strlen(session_pairs[i][1]));
        if (!sd || !hd) continue;
        long long session = strtoll(sv ? sv : group_config_default(sd, broker), NULL, 10);
        long long heartbeat = strtoll(hv ? hv : group_config_default(hd, broker), NULL, 10);
        if (session <= heartbeat) {
            snprintf(err, errlen, "%s must be greater than %s", sd->name, hd->name);
            return false;
        }
    }
    return true;
}

bool group_config_validate(const group_config_def_t *d, const sm_config_t *broker,
                           const char *value, size_t len, char *err, size_t errlen) {
    char v[256];
    if (len >= sizeof(v) || memchr(value, 0, len)) {
        snprintf(err, errlen, "Invalid value for configuration %s: %s", d->name,
                 len >= sizeof(v) ? "too long" : "it holds a NUL byte");
        return false;
    }
    memcpy(v, value, len);
    v[len] = 0;
    switch (d->type) {
    case GROUP_CFG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < INT32_MIN || x > INT32_MAX) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: Not a number of type INT",
                     v, d->name);
            return false;
        }
        if (x < d->at_least) {
            snprintf(err, errlen,
                     "Invalid value %s for configuration %s: Value must be at least %lld", v,
                     d->name, (long long)d->at_least);
            return false;
        }
        int64_t lo, hi;
        int_range(d, broker, &lo, &hi);
        if (lo > 0 && (x < lo || x > hi)) {
            snprintf(err, errlen, "%s must be in the range %lld to %lld inclusive.", d->name,
                     (long long)lo, (long long)hi);
            return false;
        }
        if (x > hi) {
            snprintf(err, errlen, "%s must be less than or equal to %lld", d->name, (long long)hi);
            return false;
        }
        return true;
    }
    case GROUP_CFG_BOOL:
        if (strcasecmp(v, "true") && strcasecmp(v, "false")) {
            snprintf(
                err, errlen,
                "Invalid value %s for configuration %s: Expected value to be either true or false",
                v, d->name);
            return false;
        }
        return true;
    case GROUP_CFG_STRING:
        if (strcmp(d->name, "share.auto.offset.reset") == 0 && !offset_reset_ok(v)) {
            snprintf(
                err, errlen,
                "Invalid value %s for configuration %s: Invalid value `%s` for configuration %s. "
                "The value must "
                "be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                v, d->name, v, d->name);
            return false;
        }
        if (strcmp(d->name, "share.isolation.level") == 0 && strcmp(v, "read_committed") &&
            strcmp(v, "read_uncommitted")) {
            snprintf(
                err, errlen,
                "Invalid value %s for configuration %s: String must be one of: read_committed, "
                "read_uncommitted",
                v, d->name);
            return false;
        }
        return true;
    case GROUP_CFG_LIST: return true;
    }
    return true;
}
