/*
 * server.properties parsing and the table of broker keys (see config.h).
 * Defaults are Kafka 4.x's, except where a single-node Samsa needs another
 * (listeners, log.dirs, node.id, replication factors of internal topics):
 * those rows say so in their doc.
 */
#include "base/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

#define I64MAX INT64_MAX
#define I32MAX INT32_MAX

static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const cleanup_policies[] = {"delete", "compact", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd",     "lz4", "snappy",
                                                "gzip",         "producer", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const migration_policies[] = {"bidirectional", "upgrade", "downgrade", "disabled",
                                                 NULL};

const sm_config_key_t sm_config_keys[] = {
    {"node.id", SM_CFG_INT, "1", 0, I32MAX, NULL,
     "This node's id (Kafka has no default; Samsa uses 1)."},
    {"broker.id", SM_CFG_INT, NULL, -1, I32MAX, NULL, "Alias of node.id."},
    {"process.roles", SM_CFG_LIST, "broker,controller", 0, 0, NULL,
     "broker, controller or both; with controller.quorum.voters this node joins a cluster."},
    {"listeners", SM_CFG_LIST, "PLAINTEXT://localhost:9092", 0, 0, NULL,
     "Listener URIs (Samsa default: PLAINTEXT://localhost:9092)."},
    {"advertised.listeners", SM_CFG_LIST, NULL, 0, 0, NULL,
     "Listeners given to clients; default: listeners."},
    {"controller.listener.names", SM_CFG_LIST, NULL, 0, 0, NULL,
     "Names the controller listener(s) in listeners (cluster mode)."},
    {"controller.quorum.voters", SM_CFG_LIST, NULL, 0, 0, NULL,
     "The static Raft quorum, id@host:port,... (unset: a single node alone)."},
    {"controller.quorum.bootstrap.servers", SM_CFG_LIST, NULL, 0, 0, NULL,
     "Dynamic quorums (KIP-853) are not supported yet; set controller.quorum.voters."},
    {"controller.quorum.election.timeout.ms", SM_CFG_INT, "1000", 1, I32MAX, NULL,
     "Time without a leader before a voter starts an election."},
    {"controller.quorum.fetch.timeout.ms", SM_CFG_INT, "2000", 1, I32MAX, NULL,
     "Time without a fetch answer before a follower looks for a new leader."},
    {"controller.quorum.election.backoff.max.ms", SM_CFG_INT, "1000", 1, I32MAX, NULL,
     "Upper bound of the backoff after a lost election."},
    {"controller.quorum.request.timeout.ms", SM_CFG_INT, "2000", 1, I32MAX, NULL,
     "Time before a quorum request is sent again."},
    {"controller.quorum.retry.backoff.ms", SM_CFG_INT, "20", 1, I32MAX, NULL,
     "Base backoff of quorum retries."},
    {"metadata.log.max.record.bytes.between.snapshots", SM_CFG_LONG, "20971520", 1, I64MAX,
     NULL, "Metadata log growth between snapshots (Samsa counts one record per 128 bytes)."},
    {"metadata.log.max.snapshot.interval.ms", SM_CFG_LONG, "3600000", 0, I64MAX, NULL,
     "Longest time between metadata snapshots (0: by size only)."},
    {"broker.heartbeat.interval.ms", SM_CFG_INT, "2000", 1, I32MAX, NULL,
     "Time between a broker's heartbeats to the controller."},
    {"broker.session.timeout.ms", SM_CFG_INT, "9000", 1, I32MAX, NULL,
     "Time without heartbeats after which the controller fences a broker."},
    {"broker.rack", SM_CFG_STRING, NULL, 0, 0, NULL, "This broker's rack, for clients."},
    {"listener.security.protocol.map", SM_CFG_LIST, "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", 0,
     0, NULL, "Listener name to security protocol; only PLAINTEXT is served."},
    {"inter.broker.listener.name", SM_CFG_STRING, NULL, 0, 0, NULL,
     "Not in effect: brokers do not replicate between them yet."},
    {"log.dirs", SM_CFG_LIST, NULL, 0, 0, NULL, "Log directories; default: log.dir."},
    {"log.dir", SM_CFG_STRING, "./data", 0, 0, NULL,
     "Log directory when log.dirs is unset (Samsa default ./data; Kafka /tmp/kafka-logs)."},
    {"num.partitions", SM_CFG_INT, "1", 1, I32MAX, NULL, "Partitions of auto-created topics."},
    {"default.replication.factor", SM_CFG_INT, "1", 1, 32767, NULL,
     "Replication factor of auto-created topics."},
    {"auto.create.topics.enable", SM_CFG_BOOL, "true", 0, 0, NULL,
     "Create topics on Metadata requests."},
    {"delete.topic.enable", SM_CFG_BOOL, "true", 0, 0, NULL, "Allow DeleteTopics."},
    {"log.retention.hours", SM_CFG_INT, "168", -1, I32MAX, NULL, "Retention time in hours."},
    {"log.retention.minutes", SM_CFG_INT, NULL, -1, I32MAX, NULL,
     "Retention in minutes (over hours)."},
    {"log.retention.ms", SM_CFG_LONG, NULL, -1, I64MAX, NULL,
     "Retention in ms (over minutes); -1 keeps forever."},
    {"log.retention.bytes", SM_CFG_LONG, "-1", -1, I64MAX, NULL,
     "Size bound per partition; -1 unbounded."},
    {"log.retention.check.interval.ms", SM_CFG_LONG, "300000", 1, I64MAX, NULL,
     "How often retention runs."},
    {"log.segment.bytes", SM_CFG_INT, "1073741824", 1048576, I32MAX, NULL, "Segment size."},
    {"log.roll.hours", SM_CFG_INT, "168", 1, I32MAX, NULL, "Roll a segment after this many hours."},
    {"log.roll.ms", SM_CFG_LONG, NULL, 1, I64MAX, NULL, "Roll time in ms (over hours)."},
    {"log.roll.jitter.hours", SM_CFG_INT, "0", 0, I32MAX, NULL,
     "Not in effect: segments roll without jitter."},
    {"log.index.interval.bytes", SM_CFG_INT, "4096", 0, I32MAX, NULL,
     "Bytes between offset index entries."},
    {"log.index.size.max.bytes", SM_CFG_INT, "10485760", 4, I32MAX, NULL,
     "Maximum index file size."},
    {"log.flush.interval.messages", SM_CFG_LONG, "9223372036854775807", 1, I64MAX, NULL,
     "fsync after this many messages."},
    {"log.flush.interval.ms", SM_CFG_LONG, NULL, 0, I64MAX, NULL,
     "fsync when unflushed data is older than this."},
    {"log.flush.scheduler.interval.ms", SM_CFG_LONG, "9223372036854775807", 0, I64MAX, NULL,
     "Not in effect: the flusher has its own schedule."},
    {"log.flush.offset.checkpoint.interval.ms", SM_CFG_INT, "60000", 0, I32MAX, NULL,
     "How often recovery points are checkpointed."},
    {"log.segment.delete.delay.ms", SM_CFG_LONG, "60000", 0, I64MAX, NULL,
     "Delay before deleting a retired segment's files."},
    {"log.cleanup.policy", SM_CFG_LIST, "delete", 0, 0, cleanup_policies, "delete or compact."},
    {"log.cleaner.enable", SM_CFG_BOOL, "true", 0, 0, NULL, "Run the log cleaner (compaction)."},
    {"log.cleaner.threads", SM_CFG_INT, "1", 0, 1024, NULL, "Log cleaner threads."},
    {"log.cleaner.backoff.ms", SM_CFG_LONG, "15000", 0, I64MAX, NULL,
     "Sleep of a cleaner thread when no log is cleanable."},
    {"log.cleaner.dedupe.buffer.size", SM_CFG_LONG, "134217728", 0, I64MAX, NULL,
     "Memory of the cleaners' key maps, shared by the threads."},
    {"log.cleaner.io.buffer.size", SM_CFG_INT, "524288", 0, I32MAX, NULL,
     "Cleaner read and write buffer size."},
    {"log.cleaner.io.buffer.load.factor", SM_CFG_DOUBLE, "0.9", 0, 0, NULL,
     "How full a cleaner's key map may get."},
    {"log.cleaner.io.max.bytes.per.second", SM_CFG_DOUBLE, "1.7976931348623157E308", 0, 0, NULL,
     "Cleaner I/O limit (read plus write), all threads together."},
    {"log.cleaner.min.cleanable.ratio", SM_CFG_DOUBLE, "0.5", 0, 0, NULL,
     "Default min.cleanable.dirty.ratio."},
    {"log.cleaner.min.compaction.lag.ms", SM_CFG_LONG, "0", 0, I64MAX, NULL,
     "Default min.compaction.lag.ms."},
    {"log.cleaner.max.compaction.lag.ms", SM_CFG_LONG, "9223372036854775807", 1, I64MAX, NULL,
     "Default max.compaction.lag.ms."},
    {"log.cleaner.delete.retention.ms", SM_CFG_LONG, "86400000", 0, I64MAX, NULL,
     "Default delete.retention.ms."},
    {"log.message.timestamp.type", SM_CFG_STRING, "CreateTime", 0, 0, timestamp_types,
     "CreateTime or LogAppendTime."},
    {"log.message.timestamp.before.max.ms", SM_CFG_LONG, "9223372036854775807", 0, I64MAX, NULL,
     "Largest allowed age of a record timestamp."},
    {"log.message.timestamp.after.max.ms", SM_CFG_LONG, "3600000", 0, I64MAX, NULL,
     "Largest allowed future skew of a record timestamp."},
    {"log.preallocate", SM_CFG_BOOL, "false", 0, 0, NULL, "Not in effect: never preallocated."},
    {"message.max.bytes", SM_CFG_INT, "1048588", 0, I32MAX, NULL, "Largest record batch."},
    {"replica.fetch.max.bytes", SM_CFG_INT, "1048576", 0, I32MAX, NULL,
     "Bytes a replica fetcher asks of each partition."},
    {"replica.fetch.response.max.bytes", SM_CFG_INT, "10485760", 0, I32MAX, NULL,
     "Bytes a replica fetcher asks for in one Fetch."},
    {"replica.fetch.wait.max.ms", SM_CFG_INT, "500", 0, I32MAX, NULL,
     "Long-poll wait of a replica fetcher's Fetch."},
    {"replica.fetch.min.bytes", SM_CFG_INT, "1", 0, I32MAX, NULL,
     "Bytes a replica fetcher's Fetch waits for."},
    {"replica.fetch.backoff.ms", SM_CFG_INT, "1000", 0, I32MAX, NULL,
     "Pause of a replica fetcher after an error."},
    {"replica.lag.time.max.ms", SM_CFG_LONG, "30000", 1, I64MAX, NULL,
     "A follower not caught up for this long leaves the ISR."},
    {"replica.socket.timeout.ms", SM_CFG_INT, "30000", 1, I32MAX, NULL,
     "Socket timeout of a replica fetcher's requests."},
    {"num.replica.fetchers", SM_CFG_INT, "1", 1, 1024, NULL,
     "Fetcher threads per source broker."},
    {"leader.replication.throttled.rate", SM_CFG_LONG, "9223372036854775807", 0, I64MAX, NULL,
     "Bytes/s this broker sends followers out of the ISR for the replicas of "
     "leader.replication.throttled.replicas (dynamic, per broker or cluster-wide)."},
    {"follower.replication.throttled.rate", SM_CFG_LONG, "9223372036854775807", 0, I64MAX, NULL,
     "Bytes/s this broker fetches, while out of the ISR, for the replicas of "
     "follower.replication.throttled.replicas (dynamic, per broker or cluster-wide)."},
    {"replication.quota.window.num", SM_CFG_INT, "11", 1, I32MAX, NULL,
     "Samples the replication throttles measure their rate over (at most 100 used)."},
    {"replication.quota.window.size.seconds", SM_CFG_INT, "1", 1, I32MAX, NULL,
     "Length of one sample of the replication throttles' rate."},
    {"replica.selector.class", SM_CFG_STRING, NULL, 0, 0, NULL,
     "org.apache.kafka.common.replica.RackAwareReplicaSelector: consumers with client.rack "
     "read from an in-sync replica in their rack (KIP-392); unset: from the leader."},
    {"max.incremental.fetch.session.cache.slots", SM_CFG_INT, "1000", 0, I32MAX, NULL,
     "Fetch sessions kept (KIP-227)."},
    {"fetch.max.bytes", SM_CFG_INT, "57671680", 1024, I32MAX, NULL, "Largest Fetch response."},
    {"socket.request.max.bytes", SM_CFG_INT, "104857600", 1, I32MAX, NULL,
     "Largest request frame."},
    {"socket.send.buffer.bytes", SM_CFG_INT, "102400", -1, I32MAX, NULL,
     "Not in effect: the kernel sizes socket buffers."},
    {"socket.receive.buffer.bytes", SM_CFG_INT, "102400", -1, I32MAX, NULL,
     "Not in effect: the kernel sizes socket buffers."},
    {"num.network.threads", SM_CFG_INT, "0", 0, 1024, NULL,
     "Event-loop threads; 0 = number of cores (Kafka's default is 3)."},
    {"num.io.threads", SM_CFG_INT, "8", 1, 1024, NULL,
     "Not in effect: requests run on the event loops."},
    {"num.recovery.threads.per.data.dir", SM_CFG_INT, "2", 1, 1024, NULL,
     "Log recovery threads per log dir (Kafka's default is 2 in 4.x)."},
    {"queued.max.requests", SM_CFG_INT, "500", 1, I32MAX, NULL,
     "In-flight requests per connection before reading pauses."},
    {"queued.max.request.bytes", SM_CFG_LONG, "-1", -1, I64MAX, NULL,
     "In-flight request bytes before reading pauses; -1: Samsa bounds it at 512 MiB."},
    {"max.connections", SM_CFG_INT, "2147483647", 0, I32MAX, NULL,
     "Connections the broker holds; beyond it new ones are accepted and closed at once."},
    {"max.connections.per.ip", SM_CFG_INT, "2147483647", 0, I32MAX, NULL,
     "Connections from one address; beyond it new ones are closed at once."},
    {"max.connections.per.ip.overrides", SM_CFG_STRING, "", 0, 0, NULL,
     "Per-address limits, \"address:count\" separated by commas."},
    {"connections.max.idle.ms", SM_CFG_LONG, "600000", -1, I64MAX, NULL,
     "Idle connections are closed after this."},
    {"offsets.topic.num.partitions", SM_CFG_INT, "50", 1, I32MAX, NULL,
     "Partitions of __consumer_offsets."},
    {"offsets.topic.segment.bytes", SM_CFG_INT, "104857600", 1, I32MAX, NULL,
     "Segment size of __consumer_offsets (compacted)."},
    {"offsets.topic.replication.factor", SM_CFG_INT, "3", 1, 32767, NULL,
     "Replicas of __consumer_offsets in a cluster (a single node keeps one)."},
    {"offsets.retention.minutes", SM_CFG_INT, "10080", 1, I32MAX, NULL,
     "Committed offsets of empty groups expire after this."},
    {"offsets.retention.check.interval.ms", SM_CFG_LONG, "600000", 1, I64MAX, NULL,
     "How often expired offsets are removed."},
    {"samsa.offsets.retention.ms", SM_CFG_LONG, NULL, 1, I64MAX, NULL,
     "Samsa: offsets retention in ms (over offsets.retention.minutes)."},
    {"offsets.commit.timeout.ms", SM_CFG_INT, "5000", 1, I32MAX, NULL,
     "How long an offset commit waits for the replicas (cluster mode)."},
    {"group.initial.rebalance.delay.ms", SM_CFG_INT, "3000", 0, I32MAX, NULL,
     "Delay of a new group's first rebalance."},
    {"group.min.session.timeout.ms", SM_CFG_INT, "6000", 0, I32MAX, NULL,
     "Smallest session timeout."},
    {"group.max.session.timeout.ms", SM_CFG_INT, "1800000", 0, I32MAX, NULL,
     "Largest session timeout."},
    {"group.max.size", SM_CFG_INT, "2147483647", 1, I32MAX, NULL, "Members per group."},
    {"group.consumer.assignors", SM_CFG_LIST, "uniform,range", 0, 0, NULL,
     "Server-side assignors of consumer groups (KIP-848), the first is the default."},
    {"group.consumer.session.timeout.ms", SM_CFG_INT, "45000", 1, I32MAX, NULL,
     "Consumer group member session timeout."},
    {"group.consumer.min.session.timeout.ms", SM_CFG_INT, "45000", 1, I32MAX, NULL,
     "Smallest group.consumer.session.timeout.ms."},
    {"group.consumer.max.session.timeout.ms", SM_CFG_INT, "60000", 1, I32MAX, NULL,
     "Largest group.consumer.session.timeout.ms."},
    {"group.consumer.heartbeat.interval.ms", SM_CFG_INT, "5000", 1, I32MAX, NULL,
     "Heartbeat interval told to consumer group members."},
    {"group.consumer.min.heartbeat.interval.ms", SM_CFG_INT, "5000", 1, I32MAX, NULL,
     "Smallest group.consumer.heartbeat.interval.ms."},
    {"group.consumer.max.heartbeat.interval.ms", SM_CFG_INT, "15000", 1, I32MAX, NULL,
     "Largest group.consumer.heartbeat.interval.ms."},
    {"group.consumer.max.size", SM_CFG_INT, "2147483647", 1, I32MAX, NULL,
     "Members per consumer group."},
    {"group.consumer.migration.policy", SM_CFG_STRING, "bidirectional", 0, 0, migration_policies,
     "Online upgrade (classic to consumer) and downgrade of groups with members."},
    {"transaction.state.log.num.partitions", SM_CFG_INT, "50", 1, I32MAX, NULL,
     "Partitions of __transaction_state."},
    {"transaction.state.log.replication.factor", SM_CFG_INT, "3", 1, 32767, NULL,
     "Replicas of __transaction_state in a cluster (a single node keeps one)."},
    {"transaction.state.log.min.isr", SM_CFG_INT, "1", 1, I32MAX, NULL,
     "Not in effect: one broker keeps one replica (Kafka's default is 2)."},
    {"transaction.state.log.segment.bytes", SM_CFG_INT, "104857600", 1048576, I32MAX, NULL,
     "Segment size of __transaction_state."},
    {"transaction.max.timeout.ms", SM_CFG_INT, "900000", 1, I32MAX, NULL,
     "Largest transaction.timeout.ms a producer may ask for."},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", SM_CFG_INT, "10000", 1, I32MAX,
     NULL, "How often timed-out transactions are looked for and aborted."},
    {"transaction.remove.expired.transaction.cleanup.interval.ms", SM_CFG_INT, "3600000", 1, I32MAX,
     NULL, "How often expired transactional ids are removed."},
    {"transactional.id.expiration.ms", SM_CFG_INT, "604800000", 1, I32MAX, NULL,
     "A transactional id idle this long is forgotten."},
    {"producer.id.expiration.ms", SM_CFG_INT, "86400000", 1, I32MAX, NULL,
     "Idle producer state expires after this."},
    {"min.insync.replicas", SM_CFG_INT, "1", 1, I32MAX, NULL,
     "acks=all needs this many in-sync replicas."},
    {"unclean.leader.election.enable", SM_CFG_BOOL, "false", 0, 0, NULL,
     "With no in-sync replica left to lead, elect another live replica (data may be lost)."},
    {"auto.leader.rebalance.enable", SM_CFG_BOOL, "true", 0, 0, NULL,
     "The controller moves leadership back to preferred replicas when brokers are imbalanced."},
    {"leader.imbalance.check.interval.seconds", SM_CFG_LONG, "300", 1, I64MAX, NULL,
     "How often the controller checks the leader imbalance."},
    {"leader.imbalance.per.broker.percentage", SM_CFG_INT, "10", 0, 100, NULL,
     "Share of a broker's preferred partitions led elsewhere above which it is rebalanced."},
    {"compression.type", SM_CFG_STRING, "producer", 0, 0, compression_types,
     "Stored as produced ('producer'); others accepted, not applied yet."},
    {"cluster.id", SM_CFG_STRING, NULL, 0, 0, NULL,
     "Samsa: cluster id for a new data dir (default: random)."},
    {"samsa.log.fsync.before.ack", SM_CFG_BOOL, "false", 0, 0, NULL,
     "Samsa: fsync a produce before acknowledging it (group commit)."},
    {"samsa.log.recovery.flush.bytes", SM_CFG_LONG, "4194304", 0, I64MAX, NULL,
     "Samsa: flush a partition in the background once this much is unflushed (0: never)."},
    {"samsa.log.recovery.flush.ms", SM_CFG_LONG, "1000", 0, I64MAX, NULL,
     "Samsa: flush data unflushed this long in the background; checkpoint recovery points as often "
     "(0: never)."},
    {"samsa.log.level", SM_CFG_STRING, "info", 0, 0, log_levels,
     "Samsa: debug, info, warn or error."},
};
const size_t sm_config_keys_count = sizeof(sm_config_keys) / sizeof(sm_config_keys[0]);

/* Kafka keys an operator's file may carry that Samsa accepts without acting on. */
static const char *const ignored_prefixes[] = {
    "ssl.",
    "sasl.",
    "security.",
    "authorizer.",
    "super.users",
    "zookeeper.",
    "metric.",
    "metrics.",
    "kafka.metrics.",
    "confluent.",
    "remote.log.",
    "log.cleaner.",
    "quota.",
    "replica.",
    "controlled.shutdown.",
    "delegation.token.",
    "client.quota.",
    "principal.builder.",
    "sasl_",
    "listener.name.",
    "num.replica.",
    "group.coordinator.",
    "group.consumer.",
    "group.share.",
    "share.",
    "background.threads",
    "reserved.broker.max.id",
    "metadata.",
    "controller.",
    "initial.broker.registration.timeout.ms",
    "transaction.",
    "compression.",
    "log.local.retention.",
    "log.message.downconversion.",
    "connection.failed.authentication.delay.ms",
    "alter.",
    "create.topic.policy.",
    "offsets.",
    "telemetry.",
    "unstable.",
    "eligible.leader.replicas.",
    "num.replica.alter.log.dirs.threads",
    "log.dir.failure.timeout.ms",
    "socket.",
    "node.",
    "fetch.",
    "producer.",
    "request.timeout.ms",
    "queued.max.requests",
    NULL,
};

typedef struct entry {
    char *value;
    sm_config_source_t source;
} entry_t;

struct sm_config {
    entry_t *values; /* parallel to sm_config_keys */
};

static int key_index(const char *name) {
    for (size_t i = 0; i < sm_config_keys_count; i++)
        if (strcmp(sm_config_keys[i].name, name) == 0) return (int)i;
    return -1;
}

const sm_config_key_t *sm_config_key(const char *key) {
    int i = key_index(key);
    return i < 0 ? NULL : &sm_config_keys[i];
}

/* Broker keys whose changes take effect at run time: the defaults of topic
 * configs and the replication throttles' rates, read again whenever the
 * dynamic configs change. */
static const char *const dynamic_keys[] = {
    "log.retention.ms",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.segment.delete.delay.ms",
    "log.cleanup.policy",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "message.max.bytes",
    "compression.type",
    "min.insync.replicas",
    "log.preallocate",
    "unclean.leader.election.enable",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    NULL,
};

static const char *const stored_only_keys[] = {
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.local.retention.ms",
    "log.local.retention.bytes",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.connection.creation.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
    "metric.reporters",
    "producer.id.expiration.ms",
    "transaction.partition.verification.enable",
    NULL,
};

/* Prefixes of the SSL, SASL and per-listener settings Kafka reconfigures. */
static const char *const stored_only_prefixes[] = {"ssl.", "sasl.", "listener.name.", NULL};

static bool ignored_key(const char *key);
static int key_index(const char *name);

/* A key neither Samsa's table nor its lists of Kafka keys know: Kafka stores
 * such custom keys too (and describes them as sensitive). */
static bool custom_key(const char *key) { return *key && key_index(key) < 0 && !ignored_key(key); }

static bool listed_stored_only(const char *key) {
    for (const char *const *k = stored_only_keys; *k; k++)
        if (strcmp(*k, key) == 0) return true;
    for (const char *const *p = stored_only_prefixes; *p; p++)
        if (strncmp(key, *p, strlen(*p)) == 0 && key[strlen(*p)]) return true;
    return false;
}

bool sm_config_key_stored_only(const char *key) {
    return listed_stored_only(key) || custom_key(key);
}

bool sm_config_key_listener_only(const char *key) {
    static const char *const keys[] = {"ssl.keystore.type",
                                       "ssl.keystore.location",
                                       "ssl.keystore.password",
                                       "ssl.key.password",
                                       "ssl.truststore.type",
                                       "ssl.truststore.location",
                                       "ssl.truststore.password",
                                       "ssl.keystore.key",
                                       "ssl.keystore.certificate.chain",
                                       "ssl.truststore.certificates",
                                       NULL};
    for (const char *const *k = keys; *k; k++)
        if (strcmp(*k, key) == 0) return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool sm_config_key_sensitive(const char *key) {
    return ends_with(key, "password") || ends_with(key, "jaas.config") ||
           ends_with(key, "keystore.key") || (custom_key(key) && !listed_stored_only(key));
}

bool sm_config_key_dynamic(const char *key) {
    for (const char *const *k = dynamic_keys; *k; k++)
        if (strcmp(*k, key) == 0) return true;
    return false;
}

sm_config_t *sm_config_dup(const sm_config_t *c) {
    sm_config_t *d = sm_config_new();
    if (!d) return NULL;
    for (size_t i = 0; i < sm_config_keys_count; i++) {
        if (!c->values[i].value) continue;
        d->values[i].value = strdup(c->values[i].value);
        d->values[i].source = c->values[i].source;
        if (!d->values[i].value) {
            sm_config_free(d);
            return NULL;
        }
    }
    return d;
}

void sm_config_unset(sm_config_t *c, const char *key) {
    int i = key_index(key);
    if (i < 0) return;
    free(c->values[i].value);
    c->values[i].value = NULL;
    c->values[i].source = SM_CONFIG_DEFAULT;
}

sm_config_t *sm_config_new(void) {
    sm_config_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->values = calloc(sm_config_keys_count, sizeof(entry_t));
    if (!c->values) {
        free(c);
        return NULL;
    }
    return c;
}

void sm_config_free(sm_config_t *c) {
    if (!c) return;
    for (size_t i = 0; i < sm_config_keys_count; i++)
        free(c->values[i].value);
    free(c->values);
    free(c);
}

static bool ignored_key(const char *key) {
    for (const char *const *p = ignored_prefixes; *p; p++)
        if (strncmp(key, *p, strlen(*p)) == 0) return true;
    return false;
}

static int validate(const sm_config_key_t *k, const char *v, char *err, size_t errlen) {
    switch (k->type) {
    case SM_CFG_INT:
    case SM_CFG_LONG: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            snprintf(err, errlen, "config: %s: value \"%s\" is not an integer", k->name, v);
            return -1;
        }
        if (x < k->min || x > k->max) {
            snprintf(err, errlen, "config: %s: value %s is outside %lld..%lld", k->name, v,
                     (long long)k->min, (long long)k->max);
            return -1;
        }
        return 0;
    }
    case SM_CFG_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(err, errlen, "config: %s: value \"%s\" is not true or false", k->name, v);
            return -1;
        }
        return 0;
    case SM_CFG_DOUBLE: {
        char *end;
        strtod(v, &end);
        if (end == v || *end) {
            snprintf(err, errlen, "config: %s: value \"%s\" is not a number", k->name, v);
            return -1;
        }
        return 0;
    }
    case SM_CFG_STRING:
    case SM_CFG_LIST:
        if (k->choices) {
            char buf[512];
            snprintf(buf, sizeof(buf), "%s", v);
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                    t++;
                bool ok = false;
                for (const char *const *ch = k->choices; *ch; ch++)
                    if (strcasecmp(*ch, t) == 0) ok = true;
                if (!ok) {
                    snprintf(err, errlen,
                             "config: %s: value \"%s\" is not one of the allowed values", k->name,
                             t);
                    return -1;
                }
                if (k->type == SM_CFG_STRING) break;
            }
        }
        return 0;
    }
    return 0;
}

int sm_config_set(sm_config_t *c, const char *key, const char *value, sm_config_source_t src,
                  char *err, size_t errlen) {
    int i = key_index(key);
    if (i < 0) {
        if (ignored_key(key)) {
            sm_warn("config", "%s: Kafka setting Samsa does not act on; ignored", key);
            return 0;
        }
        snprintf(err, errlen, "config: %s: unknown key", key);
        return -1;
    }
    if (validate(&sm_config_keys[i], value, err, errlen)) return -1;
    char *v = strdup(value);
    if (!v) {
        snprintf(err, errlen, "config: %s: out of memory", key);
        return -1;
    }
    free(c->values[i].value);
    c->values[i].value = v;
    c->values[i].source = src;
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\f')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* Splits a properties line at the first unescaped '=' or ':' (or whitespace). */
static int split_kv(char *line, char **key, char **value) {
    char *p = line;
    while (*p && *p != '=' && *p != ':' && *p != ' ' && *p != '\t') {
        if (*p == '\\' && p[1]) p++;
        p++;
    }
    char *k_end = p;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '=' || *p == ':') p++;
    *k_end = 0;
    *key = trim(line);
    *value = trim(p);
    return **key ? 0 : -1;
}

/* Drops backslash escapes (\t \n \\ and line continuations were handled). */
static void unescape(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 't' ? '\t' : *p == 'n' ? '\n' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

int sm_config_load_file(sm_config_t *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config: %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char line[8192], logical[65536];
    size_t ll = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        char *t = trim(line);
        if (ll == 0 && (*t == '#' || *t == '!' || *t == 0)) continue;
        size_t n = strlen(t);
        bool cont = n && t[n - 1] == '\\' && (n < 2 || t[n - 2] != '\\');
        if (cont) t[--n] = 0;
        if (ll + n + 1 >= sizeof(logical)) {
            snprintf(err, errlen, "config: %s: line too long", path);
            rc = -1;
            break;
        }
        memcpy(logical + ll, t, n);
        ll += n;
        logical[ll] = 0;
        if (cont) continue;
        char *key, *value;
        ll = 0;
        if (split_kv(logical, &key, &value)) continue;
        unescape(key);
        unescape(value);
        if (sm_config_set(c, key, value, SM_CONFIG_FILE, err, errlen)) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int sm_config_set_override(sm_config_t *c, const char *kv, char *err, size_t errlen) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        snprintf(err, errlen, "config: --override %s: expected key=value", kv);
        return -1;
    }
    char key[256];
    size_t n = (size_t)(eq - kv);
    if (n >= sizeof(key)) {
        snprintf(err, errlen, "config: --override: key too long");
        return -1;
    }
    memcpy(key, kv, n);
    key[n] = 0;
    return sm_config_set(c, trim(key), eq + 1, SM_CONFIG_OVERRIDE, err, errlen);
}

const char *sm_config_str(const sm_config_t *c, const char *key) {
    int i = key_index(key);
    if (i < 0) return NULL;
    return c->values[i].value ? c->values[i].value : sm_config_keys[i].default_value;
}

int64_t sm_config_long(const sm_config_t *c, const char *key) {
    const char *v = sm_config_str(c, key);
    return v ? strtoll(v, NULL, 10) : -1;
}

int32_t sm_config_int(const sm_config_t *c, const char *key) {
    return (int32_t)sm_config_long(c, key);
}

bool sm_config_bool(const sm_config_t *c, const char *key) {
    const char *v = sm_config_str(c, key);
    return v && strcmp(v, "true") == 0;
}

bool sm_config_is_set(const sm_config_t *c, const char *key) {
    int i = key_index(key);
    return i >= 0 && c->values[i].value != NULL;
}

sm_config_source_t sm_config_source(const sm_config_t *c, const char *key) {
    int i = key_index(key);
    return i >= 0 && c->values[i].value ? c->values[i].source : SM_CONFIG_DEFAULT;
}

bool sm_config_key_inert(const char *key) {
    const sm_config_key_t *k = sm_config_key(key);
    return k && k->doc && strncmp(k->doc, SM_CONFIG_INERT_DOC, strlen(SM_CONFIG_INERT_DOC)) == 0;
}

/* Kafka's checks between keys (GroupCoordinatorConfig): the consumer group
 * session timeout and heartbeat interval lie within their bounds, and a
 * heartbeat comes before the session ends. */
int sm_config_check(const sm_config_t *c, char *err, size_t errlen) {
    static const struct {
        const char *key, *other;
        bool at_most; /* key <= other; otherwise key >= other */
    } rules[] = {
        {"group.consumer.max.session.timeout.ms", "group.consumer.min.session.timeout.ms", false},
        {"group.consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms", false},
        {"group.consumer.session.timeout.ms", "group.consumer.max.session.timeout.ms", true},
        {"group.consumer.max.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms",
         false},
        {"group.consumer.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms", false},
        {"group.consumer.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms", true},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        int64_t k = sm_config_long(c, rules[i].key), o = sm_config_long(c, rules[i].other);
        if (rules[i].at_most ? k > o : k < o) {
            snprintf(err, errlen, "config: %s must be %s %s", rules[i].key,
                     rules[i].at_most ? "less than or equal to" : "greater than or equal to",
                     rules[i].other);
            return -1;
        }
    }
    if (sm_config_long(c, "group.consumer.heartbeat.interval.ms") >=
        sm_config_long(c, "group.consumer.session.timeout.ms")) {
        snprintf(err, errlen,
                 "config: group.consumer.heartbeat.interval.ms must be less than "
                 "group.consumer.session.timeout.ms");
        return -1;
    }
    return 0;
}

int sm_config_warn_inert(const sm_config_t *c) {
    int n = 0;
    for (size_t i = 0; i < sm_config_keys_count; i++) {
        const sm_config_key_t *k = &sm_config_keys[i];
        if (!c->values[i].value || !sm_config_key_inert(k->name)) continue;
        const char *why = k->doc + strlen(SM_CONFIG_INERT_DOC ": ");
        size_t wl = strlen(why);
        if (wl && why[wl - 1] == '.') wl--;
        sm_warn("config", "%s: Kafka setting Samsa does not act on; ignored (%.*s)", k->name,
                (int)wl, why);
        n++;
    }
    const char *ct = sm_config_str(c, "compression.type");
    if (sm_config_is_set(c, "compression.type") && strcasecmp(ct, "producer") != 0) {
        sm_warn("config", "compression.type=%s: Samsa stores batches as produced; not recompressed",
                ct);
        n++;
    }
    return n;
}

int64_t sm_config_retention_ms(const sm_config_t *c) {
    if (sm_config_is_set(c, "log.retention.ms")) return sm_config_long(c, "log.retention.ms");
    if (sm_config_is_set(c, "log.retention.minutes")) {
        int64_t m = sm_config_long(c, "log.retention.minutes");
        return m < 0 ? -1 : m * 60000;
    }
    int64_t h = sm_config_long(c, "log.retention.hours");
    return h < 0 ? -1 : h * 3600000;
}

int64_t sm_config_roll_ms(const sm_config_t *c) {
    if (sm_config_is_set(c, "log.roll.ms")) return sm_config_long(c, "log.roll.ms");
    return sm_config_long(c, "log.roll.hours") * 3600000;
}
