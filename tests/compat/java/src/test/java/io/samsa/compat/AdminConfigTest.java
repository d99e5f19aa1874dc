package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConfigEntry.ConfigSource;
import org.apache.kafka.clients.admin.ConfigEntry.ConfigType;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * The Java AdminClient's config, partition, record-deletion and cluster APIs (DescribeConfigs,
 * IncrementalAlterConfigs, CreatePartitions, DeleteRecords, DescribeCluster, DescribeLogDirs,
 * ElectLeaders, DescribeProducers), every expectation taken from what Apache Kafka 4.4 answers.
 * With the environment variable SAMSA_TEST_AGAINST_KAFKA=PORT the tests run against a reference
 * Kafka started by bench/kafka-ref/kafka-ref.sh with
 * KAFKA_REF_PROPS='log.retention.check.interval.ms=100' instead of a samsa-server.
 */
class AdminConfigTest {
    /** The broker under test: a fresh samsa-server, or the running reference Kafka. */
    static final class Target implements AutoCloseable {
        final int port;
        private final SamsaServer server;

        Target() throws Exception {
            String kafka = System.getenv("SAMSA_TEST_AGAINST_KAFKA");
            if (kafka != null && !kafka.isEmpty()) {
                server = null;
                port = Integer.parseInt(kafka);
            } else {
                // What kafka-ref.sh puts in server.properties, so both describe the same settings.
                server = new SamsaServer("node.id=1", "num.partitions=1", "group.initial.rebalance.delay.ms=0",
                        "log.retention.check.interval.ms=100");
                port = server.port;
            }
        }

        String bootstrap() {
            return "127.0.0.1:" + port;
        }

        Admin admin() {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
            return Admin.create(p);
        }

        KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
            Map<String, Object> p = new HashMap<>(extra);
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            return new KafkaProducer<>(p);
        }

        /** Reads from the beginning of one partition until count records arrived (60 s at most). */
        List<ConsumerRecord<byte[], byte[]>> readFromBeginning(TopicPartition tp, int count) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long deadline = System.currentTimeMillis() + 60_000;
                while (out.size() < count && System.currentTimeMillis() < deadline) {
                    c.poll(Duration.ofMillis(200)).forEach(out::add);
                }
            }
            return out;
        }

        @Override
        public void close() throws Exception {
            if (server != null) server.close();
        }
    }

    static String unique(String name) {
        return name + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static ConfigResource topic(String name) {
        return new ConfigResource(ConfigResource.Type.TOPIC, name);
    }

    static final ConfigResource BROKER = new ConfigResource(ConfigResource.Type.BROKER, "1");

    static Config describe(Admin admin, ConfigResource res, boolean synonymsAndDocs) throws Exception {
        DescribeConfigsOptions o = new DescribeConfigsOptions().includeSynonyms(synonymsAndDocs)
                .includeDocumentation(synonymsAndDocs);
        return admin.describeConfigs(List.of(res), o).all().get().get(res);
    }

    static Map<String, String> overrides(Admin admin, String name) throws Exception {
        return describe(admin, topic(name), false).entries().stream()
                .filter(e -> e.source() == ConfigSource.DYNAMIC_TOPIC_CONFIG)
                .collect(Collectors.toMap(ConfigEntry::name, ConfigEntry::value));
    }

    static AlterConfigOp op(String key, String value, AlterConfigOp.OpType type) {
        return new AlterConfigOp(new ConfigEntry(key, value), type);
    }

    static void alter(Admin admin, String name, boolean validateOnly, AlterConfigOp... ops) throws Exception {
        ConfigResource res = topic(name);
        admin.incrementalAlterConfigs(Map.of(res, List.of(ops)), new AlterConfigsOptions().validateOnly(validateOnly))
                .values().get(res).get();
    }

    /** The exception a future failed with. */
    static Throwable failure(Future<?> f) {
        return assertThrows(ExecutionException.class, f::get).getCause();
    }

    static List<String> synonyms(ConfigEntry e) {
        return e.synonyms().stream().map(s -> s.name() + "=" + s.value() + "@" + s.source())
                .collect(Collectors.toList());
    }

    /** Polls until check holds (10 s at most); a Kafka broker applies what its controller committed shortly
     *  after the controller answered, so changes are awaited before they are looked at. */
    static void await(Callable<Boolean> check) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (check.call()) return;
            } catch (ExecutionException notYet) {
                /* e.g. the topic not yet known to the broker */
            }
            Thread.sleep(20);
        }
    }

    /** Waits until the broker describes the topic with that many partitions, each with a leader. */
    static void awaitTopic(Admin admin, String name, int partitions) throws Exception {
        await(() -> {
            var d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
            return d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null);
        });
    }

    static void awaitOverrides(Admin admin, String name, Map<String, String> want) throws Exception {
        await(() -> overrides(admin, name).equals(want));
        assertEquals(want, overrides(admin, name));
    }

    static void createTopic(Admin admin, String name, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
        awaitTopic(admin, name, partitions);
    }

    static long earliest(Admin admin, TopicPartition tp) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get().offset();
    }

    @Test
    void describeTopicConfigsWithSynonymsTypesAndDocumentation() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin()) {
            String name = unique("described");
            CreateTopicsResult created = admin.createTopics(
                    List.of(new NewTopic(name, 1, (short) 1).configs(Map.of("retention.ms", "123456"))));
            created.all().get();
            awaitTopic(admin, name, 1);
            // CreateTopics v5+ answers with the new topic's configs.
            Config fromCreate = created.config(name).get();
            assertEquals(ConfigSource.DYNAMIC_TOPIC_CONFIG, fromCreate.get("retention.ms").source());
            assertEquals("123456", fromCreate.get("retention.ms").value());
            assertEquals(ConfigSource.DEFAULT_CONFIG, fromCreate.get("cleanup.policy").source());

            Config full = describe(admin, topic(name), true);
            assertEquals(fromCreate.entries().stream().map(ConfigEntry::name).sorted().collect(Collectors.toList()),
                    full.entries().stream().map(ConfigEntry::name).sorted().collect(Collectors.toList()));
            for (ConfigEntry e : full.entries()) {
                assertNotNull(e.documentation(), e.name());
                assertFalse(e.documentation().isEmpty(), e.name());
                assertNotNull(e.type(), e.name());
                assertFalse(e.isReadOnly() || e.isSensitive(), e.name());
            }
            // Kafka 4.4's synonyms, types and values, in its order.
            Map<String, Object[]> want = Map.of(
                    "retention.ms", new Object[] {ConfigType.LONG, "123456", List.of("retention.ms=123456@DYNAMIC_TOPIC_CONFIG")},
                    "cleanup.policy", new Object[] {ConfigType.LIST, "delete", List.of("log.cleanup.policy=delete@DEFAULT_CONFIG")},
                    "max.message.bytes", new Object[] {ConfigType.INT, "1048588", List.of("message.max.bytes=1048588@DEFAULT_CONFIG")},
                    "segment.bytes", new Object[] {ConfigType.INT, "1073741824", List.of("log.segment.bytes=1073741824@DEFAULT_CONFIG")},
                    "retention.bytes", new Object[] {ConfigType.LONG, "-1", List.of("log.retention.bytes=-1@DEFAULT_CONFIG")},
                    "preallocate", new Object[] {ConfigType.BOOLEAN, "false", List.of("log.preallocate=false@DEFAULT_CONFIG")},
                    "min.cleanable.dirty.ratio", new Object[] {ConfigType.DOUBLE, "0.5", List.of("log.cleaner.min.cleanable.ratio=0.5@DEFAULT_CONFIG")},
                    "compression.type", new Object[] {ConfigType.STRING, "producer", List.of("compression.type=producer@DEFAULT_CONFIG")},
                    "file.delete.delay.ms", new Object[] {ConfigType.LONG, "60000", List.of("log.segment.delete.delay.ms=60000@DEFAULT_CONFIG")},
                    "follower.replication.throttled.replicas", new Object[] {ConfigType.LIST, "", List.of()});
            assertAll(want.entrySet().stream().map(w -> () -> {
                ConfigEntry e = full.get(w.getKey());
                assertNotNull(e, w.getKey());
                assertEquals(w.getValue()[0], e.type(), w.getKey());
                assertEquals(w.getValue()[1], e.value(), w.getKey());
                assertEquals(w.getValue()[2], synonyms(e), w.getKey());
            }));

            // Without the flags: no synonyms and no documentation, the type still given.
            Config plain = describe(admin, topic(name), false);
            ConfigEntry retention = plain.get("retention.ms");
            assertEquals(List.of(), retention.synonyms());
            assertNull(retention.documentation());
            assertEquals(ConfigType.LONG, retention.type());

            Throwable missing = failure(admin.describeConfigs(List.of(topic(unique("missing")))).all());
            assertInstanceOf(UnknownTopicOrPartitionException.class, missing);
            // Kafka 4.4 has 37 topic configs (the Python test lists them).
            assertEquals(37, fromCreate.entries().size(),
                    fromCreate.entries().stream().map(ConfigEntry::name).sorted().collect(Collectors.toList()).toString());
        }
    }

    @Test
    void describeBrokerConfigs() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin()) {
            Config c = describe(admin, BROKER, true);
            for (ConfigEntry e : c.entries()) {
                assertNotNull(e.documentation(), e.name());
                assertFalse(e.documentation().isEmpty(), e.name());
            }
            // name -> value, source, read-only, type, synonyms as Kafka 4.4 answers.
            Map<String, Object[]> want = Map.of(
                    "log.retention.hours", new Object[] {"168", ConfigSource.DEFAULT_CONFIG, true, ConfigType.INT,
                        List.of("log.retention.hours=168@DEFAULT_CONFIG")},
                    "log.retention.ms", new Object[] {null, ConfigSource.DEFAULT_CONFIG, false, ConfigType.LONG, List.of()},
                    "num.partitions", new Object[] {"1", ConfigSource.STATIC_BROKER_CONFIG, true, ConfigType.INT,
                        List.of("num.partitions=1@STATIC_BROKER_CONFIG", "num.partitions=1@DEFAULT_CONFIG")},
                    "log.segment.bytes", new Object[] {"1073741824", ConfigSource.DEFAULT_CONFIG, false, ConfigType.INT,
                        List.of("log.segment.bytes=1073741824@DEFAULT_CONFIG")},
                    "message.max.bytes", new Object[] {"1048588", ConfigSource.DEFAULT_CONFIG, false, ConfigType.INT,
                        List.of("message.max.bytes=1048588@DEFAULT_CONFIG")},
                    "log.cleanup.policy", new Object[] {"delete", ConfigSource.DEFAULT_CONFIG, false, ConfigType.LIST,
                        List.of("log.cleanup.policy=delete@DEFAULT_CONFIG")},
                    "node.id", new Object[] {"1", ConfigSource.STATIC_BROKER_CONFIG, true, ConfigType.INT,
                        List.of("node.id=1@STATIC_BROKER_CONFIG")},
                    "log.retention.check.interval.ms", new Object[] {"100", ConfigSource.STATIC_BROKER_CONFIG, true,
                        ConfigType.LONG, List.of("log.retention.check.interval.ms=100@STATIC_BROKER_CONFIG",
                            "log.retention.check.interval.ms=300000@DEFAULT_CONFIG")});
            assertAll(want.entrySet().stream().map(w -> () -> {
                ConfigEntry e = c.get(w.getKey());
                assertNotNull(e, w.getKey());
                Object[] v = w.getValue();
                assertEquals(v[0], e.value(), w.getKey());
                assertEquals(v[1], e.source(), w.getKey());
                assertEquals(v[2], e.isReadOnly(), w.getKey());
                assertEquals(v[3], e.type(), w.getKey());
                assertEquals(v[4], synonyms(e), w.getKey());
            }));
            ConfigEntry dirs = c.get("log.dirs");
            assertEquals(ConfigSource.STATIC_BROKER_CONFIG, dirs.source());
            assertEquals(ConfigType.LIST, dirs.type());
        }
    }

    @Test
    void incrementalAlterConfigs() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin()) {
            String name = unique("altered");
            createTopic(admin, name, 1);
            alter(admin, name, true, op("retention.ms", "1000", AlterConfigOp.OpType.SET));
            awaitOverrides(admin, name, Map.of());

            alter(admin, name, false, op("retention.ms", "1000", AlterConfigOp.OpType.SET),
                    op("max.message.bytes", "2000", AlterConfigOp.OpType.SET),
                    op("cleanup.policy", "compact", AlterConfigOp.OpType.APPEND));
            awaitOverrides(admin, name,
                    Map.of("retention.ms", "1000", "max.message.bytes", "2000", "cleanup.policy", "delete,compact"));
            alter(admin, name, false, op("cleanup.policy", "delete", AlterConfigOp.OpType.SUBTRACT),
                    op("retention.ms", null, AlterConfigOp.OpType.DELETE));
            awaitOverrides(admin, name, Map.of("max.message.bytes", "2000", "cleanup.policy", "compact"));
            ConfigEntry retention = describe(admin, topic(name), true).get("retention.ms");
            assertEquals("604800000", retention.value());
            assertEquals(ConfigSource.DEFAULT_CONFIG, retention.source());

            Function<AlterConfigOp, Throwable> refused = o -> failure(
                    admin.incrementalAlterConfigs(Map.of(topic(name), List.of(o))).all());
            assertInstanceOf(InvalidConfigurationException.class, refused.apply(op("retention.ms", "abc", AlterConfigOp.OpType.SET)));
            assertInstanceOf(InvalidConfigurationException.class, refused.apply(op("no.such.key", "1", AlterConfigOp.OpType.SET)));
            assertInstanceOf(InvalidConfigurationException.class, refused.apply(op("retention.ms", "5", AlterConfigOp.OpType.APPEND)));
            assertInstanceOf(InvalidConfigurationException.class, refused.apply(op("segment.bytes", "1024", AlterConfigOp.OpType.SET)));
            awaitOverrides(admin, name, Map.of("max.message.bytes", "2000", "cleanup.policy", "compact"));

            ConfigResource absent = topic(unique("absent"));
            Throwable unknown = failure(admin.incrementalAlterConfigs(
                    Map.of(absent, List.of(op("retention.ms", "1", AlterConfigOp.OpType.SET)))).all());
            assertInstanceOf(UnknownTopicOrPartitionException.class, unknown);
        }
    }

    @Test
    void maxMessageBytesTakesEffectAtOnce() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin();
                KafkaProducer<byte[], byte[]> prod = t.producer(Map.of(ProducerConfig.RETRIES_CONFIG, 0))) {
            String name = unique("small");
            createTopic(admin, name, 1);
            prod.send(new ProducerRecord<>(name, 0, null, new byte[2000])).get();
            alter(admin, name, false, op("max.message.bytes", "1000", AlterConfigOp.OpType.SET));
            awaitOverrides(admin, name, Map.of("max.message.bytes", "1000"));
            Throwable tooLarge = failure(prod.send(new ProducerRecord<>(name, 0, null, new byte[2000])));
            assertInstanceOf(RecordTooLargeException.class, tooLarge);
            assertEquals(1, prod.send(new ProducerRecord<>(name, 0, null, new byte[500])).get().offset());
        }
    }

    @Test
    void createPartitions() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin(); KafkaProducer<byte[], byte[]> prod = t.producer(Map.of())) {
            String name = unique("growing");
            createTopic(admin, name, 1);
            admin.createPartitions(Map.of(name, NewPartitions.increaseTo(3)), new CreatePartitionsOptions().validateOnly(true))
                    .all().get();
            assertEquals(1, admin.describeTopics(List.of(name)).allTopicNames().get().get(name).partitions().size());
            admin.createPartitions(Map.of(name, NewPartitions.increaseTo(3))).all().get();
            awaitTopic(admin, name, 3);
            var parts = admin.describeTopics(List.of(name)).allTopicNames().get().get(name).partitions();
            assertEquals(List.of(0, 1, 2), parts.stream().map(p -> p.partition()).collect(Collectors.toList()));
            parts.forEach(p -> assertEquals(1, p.leader().id()));

            RecordMetadata md = prod.send(new ProducerRecord<>(name, 2, null, "two".getBytes())).get();
            assertEquals(2, md.partition());
            assertEquals(0, md.offset());
            var read = t.readFromBeginning(new TopicPartition(name, 2), 1);
            assertEquals(1, read.size());
            assertEquals("two", new String(read.get(0).value()));

            for (int count : new int[] {3, 2}) {
                Throwable e = failure(admin.createPartitions(Map.of(name, NewPartitions.increaseTo(count))).all());
                assertInstanceOf(InvalidPartitionsException.class, e, "increase to " + count);
            }
            Throwable unknown = failure(admin.createPartitions(Map.of(unique("absent"), NewPartitions.increaseTo(2))).all());
            assertInstanceOf(UnknownTopicOrPartitionException.class, unknown);
        }
    }

    @Test
    void deleteRecords() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin(); KafkaProducer<byte[], byte[]> prod = t.producer(Map.of())) {
            String name = unique("trimmed");
            createTopic(admin, name, 1);
            for (int i = 0; i < 10; i++) prod.send(new ProducerRecord<>(name, 0, null, ("r" + i).getBytes()));
            prod.flush();
            TopicPartition tp = new TopicPartition(name, 0);

            Function<RecordsToDelete, Future<?>> delete = r -> admin.deleteRecords(Map.of(tp, r)).lowWatermarks().get(tp);
            var low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(5))).lowWatermarks().get(tp).get();
            assertEquals(5, low.lowWatermark());
            assertEquals(5, earliest(admin, tp));
            var read = t.readFromBeginning(tp, 5);
            assertEquals(List.of(5L, 6L, 7L, 8L, 9L), read.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
            assertEquals("r5", new String(read.get(0).value()));

            assertInstanceOf(OffsetOutOfRangeException.class, failure(delete.apply(RecordsToDelete.beforeOffset(11))));
            var all = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp).get();
            assertEquals(10, all.lowWatermark());
            assertEquals(10, earliest(admin, tp));
        }
    }

    @Test
    void describeClusterAndLogDirs() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin(); KafkaProducer<byte[], byte[]> prod = t.producer(Map.of())) {
            DescribeClusterResult c = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            assertFalse(c.clusterId().get().isEmpty());
            Node controller = c.controller().get();
            assertEquals(1, controller.id());
            Collection<Node> nodes = c.nodes().get();
            assertEquals(List.of("1@127.0.0.1:" + t.port),
                    nodes.stream().map(n -> n.id() + "@" + n.host() + ":" + n.port()).collect(Collectors.toList()));
            // No authorizer: every cluster operation is allowed.
            assertEquals(Set.of(AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
                    AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE),
                    c.authorizedOperations().get());

            String name = unique("sized");
            createTopic(admin, name, 2);
            for (int i = 0; i < 5; i++) prod.send(new ProducerRecord<>(name, 0, null, new byte[100]));
            prod.flush();
            Map<Integer, Map<String, LogDirDescription>> dirs = admin.describeLogDirs(List.of(1)).allDescriptions().get();
            assertEquals(Set.of(1), dirs.keySet());
            assertEquals(1, dirs.get(1).size(), dirs.toString());
            LogDirDescription d = dirs.get(1).values().iterator().next();
            assertNull(d.error());
            assertTrue(d.totalBytes().isPresent() && d.totalBytes().getAsLong() > 0, d.toString());
            assertTrue(d.usableBytes().isPresent() && d.usableBytes().getAsLong() > 0, d.toString());
            ReplicaInfo p0 = d.replicaInfos().get(new TopicPartition(name, 0));
            ReplicaInfo p1 = d.replicaInfos().get(new TopicPartition(name, 1));
            assertNotNull(p0, d.replicaInfos().toString());
            assertTrue(p0.size() > 500, p0.toString());
            assertEquals(0, p0.offsetLag());
            assertFalse(p0.isFuture());
            assertNotNull(p1);
            assertEquals(0, p1.size());
        }
    }

    @Test
    void electLeaders() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin()) {
            String name = unique("elected");
            createTopic(admin, name, 2);
            TopicPartition absent = new TopicPartition(unique("absent"), 0);
            Set<TopicPartition> asked = Set.of(new TopicPartition(name, 0), new TopicPartition(name, 1), absent);
            for (ElectionType type : ElectionType.values()) {
                Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(type, asked).partitions().get();
                assertEquals(asked, r.keySet());
                assertInstanceOf(ElectionNotNeededException.class, r.get(new TopicPartition(name, 0)).orElseThrow(), type.name());
                assertInstanceOf(ElectionNotNeededException.class, r.get(new TopicPartition(name, 1)).orElseThrow(), type.name());
                assertInstanceOf(UnknownTopicOrPartitionException.class, r.get(absent).orElseThrow(), type.name());
            }
            // Every partition: none needs an election, none is listed.
            assertEquals(Map.of(), admin.electLeaders(ElectionType.PREFERRED, null).partitions().get());
        }
    }

    @Test
    void describeProducers() throws Exception {
        try (Target t = new Target(); Admin admin = t.admin();
                KafkaProducer<byte[], byte[]> prod = t.producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true))) {
            String name = unique("produced");
            createTopic(admin, name, 2);
            long before = System.currentTimeMillis();
            for (int i = 0; i < 3; i++) prod.send(new ProducerRecord<>(name, 0, null, new byte[10])).get();
            TopicPartition p0 = new TopicPartition(name, 0);
            TopicPartition p1 = new TopicPartition(name, 1);
            var states = admin.describeProducers(List.of(p0, p1)).all().get();
            assertEquals(List.of(), states.get(p1).activeProducers());
            List<ProducerState> active = states.get(p0).activeProducers();
            assertEquals(1, active.size(), active.toString());
            ProducerState s = active.get(0);
            assertTrue(s.producerId() >= 0, s.toString());
            assertEquals(0, s.producerEpoch());
            assertEquals(2, s.lastSequence());
            assertTrue(s.lastTimestamp() >= before, s.toString());
            assertTrue(s.coordinatorEpoch().isEmpty(), s.toString());
            assertTrue(s.currentTransactionStartOffset().isEmpty(), s.toString());
        }
    }
}
