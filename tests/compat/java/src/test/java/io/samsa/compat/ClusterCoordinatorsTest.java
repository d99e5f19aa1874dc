package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/**
 * The group and transaction coordinators in a three-node cluster (issue 13 point 5): the Java client's
 * group commits its offsets to the broker leading the group's __consumer_offsets partition and a later
 * member resumes from them, and a member consuming and committing through kill -9 of its coordinator's broker
 * keeps its member id and generation without a rebalance (the new coordinator restores the group's members); a
 * transactional producer (transactions V2: partitions added by their
 * leaders through the coordinator) commits over partitions of every broker and a read_committed
 * consumer sees exactly the committed records.
 */
class ClusterCoordinatorsTest {
    /** Three broker+controller nodes started like Kafka 4.4 KRaft nodes, no format step. */
    static List<SamsaServer> startCluster() throws Exception {
        int[] ports = new int[3], ctrl = new int[3];
        for (int i = 0; i < 3; i++) {
            ports[i] = SamsaServer.freePort();
            ctrl[i] = SamsaServer.freePort();
        }
        String voters = "1@127.0.0.1:" + ctrl[0] + ",2@127.0.0.1:" + ctrl[1] + ",3@127.0.0.1:" + ctrl[2];
        List<SamsaServer> nodes = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            nodes.add(SamsaServer.launchNode(ports[i], "node.id=" + (i + 1), "process.roles=broker,controller",
                    "listeners=PLAINTEXT://127.0.0.1:" + ports[i] + ",CONTROLLER://127.0.0.1:" + ctrl[i],
                    "controller.listener.names=CONTROLLER", "controller.quorum.voters=" + voters,
                    "controller.quorum.election.timeout.ms=500", "controller.quorum.fetch.timeout.ms=1000",
                    "broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000"));
        }
        for (SamsaServer node : nodes) {
            node.awaitStarted();
        }
        return nodes;
    }

    static String bootstrap(List<SamsaServer> nodes) {
        return String.join(",", nodes.stream().map(SamsaServer::bootstrap).toList());
    }

    static Admin admin(List<SamsaServer> nodes) {
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap(nodes));
        return Admin.create(ap);
    }

    /** Creates the topic once all three brokers are registered (placement spreads over them). */
    static void createSpread(List<SamsaServer> nodes, String topic, int partitions) throws Exception {
        try (Admin admin = admin(nodes)) {
            createSpread(admin, topic, partitions);
        }
    }

    static void createSpread(Admin admin, String topic, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (admin.describeCluster().nodes().get().size() < 3) {
            assertTrue(System.currentTimeMillis() < deadline, "three registered brokers");
            Thread.sleep(100);
        }
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        while (true) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            Set<Integer> leaders = new HashSet<>();
            d.partitions().forEach(p -> leaders.add(p.leader() == null ? -1 : p.leader().id()));
            if (leaders.equals(Set.of(1, 2, 3))) return;
            assertTrue(System.currentTimeMillis() < deadline, "partitions led by all three brokers: " + leaders);
            Thread.sleep(100);
        }
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, boolean readCommitted) {
        return consumer(bootstrap, group, readCommitted, new Properties());
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, boolean readCommitted,
            Properties extra) {
        Properties p = new Properties();
        p.putAll(extra);
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (readCommitted) p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Kafka's partition of a group id: abs(hashCode) % partitions. */
    static int partitionFor(String group, int partitions) {
        int h = group.hashCode();
        return (h == Integer.MIN_VALUE ? 0 : Math.abs(h)) % partitions;
    }

    @Test
    void groupOffsetsLiveOnTheCoordinatorPartitionLeader() throws Exception {
        List<SamsaServer> nodes = startCluster();
        try {
            String boot = bootstrap(nodes);
            try (Admin admin = admin(nodes)) {
                createSpread(admin, "jorders", 6);
                Properties pp = new Properties();
                pp.put("bootstrap.servers", boot);
                pp.put("key.serializer", StringSerializer.class.getName());
                pp.put("value.serializer", StringSerializer.class.getName());
                try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
                    for (int i = 0; i < 600; i++) prod.send(new ProducerRecord<>("jorders", i % 6, "k" + i, "v" + i));
                    prod.flush();
                }

                String group = "jbilling";
                Map<TopicPartition, OffsetAndMetadata> committed;
                try (KafkaConsumer<String, String> c = consumer(nodes.get(1).bootstrap(), group, false)) {
                    c.subscribe(List.of("jorders"));
                    int seen = 0;
                    long deadline = System.currentTimeMillis() + 60_000;
                    while (seen < 200 && System.currentTimeMillis() < deadline) seen += c.poll(Duration.ofMillis(200)).count();
                    assertTrue(seen >= 200, "read " + seen);
                    c.commitSync();
                    committed = c.committed(c.assignment());
                }
                long total = committed.values().stream().filter(o -> o != null).mapToLong(OffsetAndMetadata::offset).sum();
                assertTrue(total >= 200, committed.toString());

                // The coordinator is the leader of the group's __consumer_offsets partition.
                int part = partitionFor(group, 50);
                TopicDescription offsets = admin.describeTopics(List.of("__consumer_offsets")).allTopicNames().get()
                        .get("__consumer_offsets");
                int owner = offsets.partitions().get(part).leader().id();
                int coordinator = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get()
                        .coordinator().id();
                assertEquals(owner, coordinator);

                // A later member starts each partition at the committed offset and reads the rest.
                Map<Integer, Long> first = new HashMap<>();
                int n = 0;
                try (KafkaConsumer<String, String> c = consumer(nodes.get(2).bootstrap(), group, false)) {
                    c.subscribe(List.of("jorders"));
                    long deadline = System.currentTimeMillis() + 60_000;
                    while (n < 600 - total && System.currentTimeMillis() < deadline) {
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                            first.putIfAbsent(r.partition(), r.offset());
                            n++;
                        }
                    }
                }
                assertEquals(600 - total, n);
                for (Map.Entry<Integer, Long> e : first.entrySet()) {
                    OffsetAndMetadata o = committed.get(new TopicPartition("jorders", e.getKey()));
                    assertEquals(o == null ? 0L : o.offset(), (long) e.getValue(), "partition " + e.getKey());
                }
            }
        } finally {
            for (SamsaServer s : nodes) s.close();
        }
    }

    @Test
    void classicMemberKeepsItsPlaceWhenTheCoordinatorDies() throws Exception {
        List<SamsaServer> nodes = startCluster();
        try (Admin admin = admin(nodes)) {
            long deadline = System.currentTimeMillis() + 60_000;
            while (admin.describeCluster().nodes().get().size() < 3) {
                assertTrue(System.currentTimeMillis() < deadline, "three registered brokers");
                Thread.sleep(100);
            }
            admin.createTopics(List.of(new NewTopic("jsteady", 3, (short) 3))).all().get();
            Properties pp = new Properties();
            pp.put("bootstrap.servers", bootstrap(nodes));
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 300; i++) prod.send(new ProducerRecord<>("jsteady", i % 3, "k" + i, "v" + i));
                prod.flush();
            }
            String group = "jsteady-group";
            List<String> events = new ArrayList<>();
            Properties cp = new Properties();
            cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
            cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
            try (KafkaConsumer<String, String> c = consumer(bootstrap(nodes), group, false, cp)) {
                c.subscribe(List.of("jsteady"), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        events.add("revoked " + parts.size());
                    }

                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        events.add("assigned " + parts.size());
                    }

                    public void onPartitionsLost(Collection<TopicPartition> parts) {
                        events.add("lost " + parts.size());
                    }
                });
                int seen = 0;
                while (seen < 150 && System.currentTimeMillis() < deadline) seen += c.poll(Duration.ofMillis(200)).count();
                assertTrue(seen >= 150, "read " + seen);
                c.commitSync();
                assertEquals(List.of("assigned 3"), events);
                ConsumerGroupMetadata before = c.groupMetadata();

                // kill -9 of the broker leading the group's __consumer_offsets partition.
                int part = partitionFor(group, 50);
                int owner = admin.describeTopics(List.of("__consumer_offsets")).allTopicNames().get()
                        .get("__consumer_offsets").partitions().get(part).leader().id();
                nodes.get(owner - 1).kill();
                try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
                    for (int i = 0; i < 150; i++) prod.send(new ProducerRecord<>("jsteady", i % 3, "k" + i, "w" + i));
                    prod.flush();
                }
                deadline = System.currentTimeMillis() + 60_000;
                while (seen < 450 && System.currentTimeMillis() < deadline) seen += c.poll(Duration.ofMillis(200)).count();
                assertEquals(450, seen);
                // The commit goes to the new coordinator, which knows the member.
                c.commitSync(Duration.ofSeconds(60));
                long end = System.currentTimeMillis() + 3_000;
                while (System.currentTimeMillis() < end) seen += c.poll(Duration.ofMillis(200)).count();
                assertEquals(450, seen);
                assertEquals(List.of("assigned 3"), events);
                assertEquals(before.memberId(), c.groupMetadata().memberId());
                assertEquals(before.generationId(), c.groupMetadata().generationId());
                long total = c.committed(c.assignment()).values().stream().mapToLong(OffsetAndMetadata::offset).sum();
                assertEquals(450, total);
            }
        } finally {
            for (SamsaServer s : nodes) s.close();
        }
    }

    @Test
    void transactionOverPartitionsOfEveryBroker() throws Exception {
        List<SamsaServer> nodes = startCluster();
        try {
            createSpread(nodes, "jtx", 6);
            String boot = bootstrap(nodes);
            Properties pp = new Properties();
            pp.put("bootstrap.servers", boot);
            pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "jtx-1");
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
                prod.initTransactions();
                prod.beginTransaction();
                for (int i = 0; i < 60; i++) prod.send(new ProducerRecord<>("jtx", i % 6, "k" + i, "committed-" + i));
                prod.commitTransaction();
                prod.beginTransaction();
                for (int i = 0; i < 12; i++) prod.send(new ProducerRecord<>("jtx", i % 6, "x", "aborted"));
                prod.flush();
                prod.abortTransaction();
                prod.beginTransaction();
                prod.send(new ProducerRecord<>("jtx", 0, "end", "committed-end"));
                prod.commitTransaction();
            }
            List<String> values = new ArrayList<>();
            try (KafkaConsumer<String, String> c = consumer(boot, "jtx-reader", true)) {
                c.subscribe(List.of("jtx"));
                long deadline = System.currentTimeMillis() + 60_000;
                while (values.size() < 61 && System.currentTimeMillis() < deadline)
                    c.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
                // Nothing more arrives: the aborted records never do.
                long end = System.currentTimeMillis() + 2_000;
                while (System.currentTimeMillis() < end) c.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
            }
            assertEquals(61, values.size(), values.toString());
            assertTrue(values.stream().allMatch(v -> v.startsWith("committed-")), values.toString());
        } finally {
            for (SamsaServer s : nodes) s.close();
        }
    }
}
