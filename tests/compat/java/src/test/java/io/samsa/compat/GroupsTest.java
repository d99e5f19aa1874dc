package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/** Java consumer groups (classic protocol), a group mixing Java and librdkafka (kcat) members, and group admin. */
class GroupsTest {
    static void produce(SamsaServer s, String topic, int partitions, int n) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", s.bootstrap());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            for (int i = 0; i < n; i++) prod.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "v" + i));
            prod.flush();
        }
    }

    static KafkaConsumer<String, String> consumer(SamsaServer s, String group, String assignor) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Polls all consumers (one thread: KafkaConsumer is not thread-safe) until every value is seen and the
     *  assignment is spread as wanted. */
    static Set<String> consumeAll(List<KafkaConsumer<String, String>> cs, int n, int perMember) {
        Set<String> seen = new HashSet<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            for (KafkaConsumer<String, String> c : cs) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) seen.add(r.value());
                try {
                    c.commitSync();
                } catch (RebalanceInProgressException | CommitFailedException e) {
                    /* as with Kafka: a commit during a rebalance fails; the next poll completes it */
                }
            }
            boolean spread = cs.stream().allMatch(c -> c.assignment().size() == perMember);
            if (seen.size() == n && spread) break;
        }
        return seen;
    }

    void shareWith(String assignor) throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0")) {
            produce(s, "jg", 4, 400);
            List<KafkaConsumer<String, String>> cs = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                KafkaConsumer<String, String> c = consumer(s, "jg-" + assignor.hashCode(), assignor);
                c.subscribe(List.of("jg"));
                cs.add(c);
            }
            Set<String> seen = consumeAll(cs, 400, 2);
            assertEquals(400, seen.size());
            Set<Integer> parts = new TreeSet<>();
            for (KafkaConsumer<String, String> c : cs) {
                assertEquals(2, c.assignment().size(), "partitions per member with " + assignor);
                c.assignment().forEach(tp -> parts.add(tp.partition()));
            }
            assertEquals(Set.of(0, 1, 2, 3), parts);
            for (KafkaConsumer<String, String> c : cs) c.close();
        }
    }

    @Test
    void rangeAssignor() throws Exception {
        shareWith(RangeAssignor.class.getName());
    }

    @Test
    void cooperativeStickyAssignor() throws Exception {
        shareWith(CooperativeStickyAssignor.class.getName());
    }

    @Test
    void groupMixingJavaAndLibrdkafka() throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0")) {
            produce(s, "mixed", 4, 200);
            /* kcat -G is a librdkafka balanced consumer using the "range" protocol, like the Java one below. */
            Process kcat = new ProcessBuilder("kcat", "-b", s.bootstrap(), "-G", "mixed-group", "-X",
                    "auto.offset.reset=earliest", "-X", "partition.assignment.strategy=range", "-q", "mixed")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try (KafkaConsumer<String, String> c = consumer(s, "mixed-group", RangeAssignor.class.getName());
                 Admin admin = Admin.create(Map.of("bootstrap.servers", s.bootstrap()))) {
                c.subscribe(List.of("mixed"));
                long deadline = System.currentTimeMillis() + 60_000;
                ConsumerGroupDescription d = null;
                while (System.currentTimeMillis() < deadline) {
                    c.poll(Duration.ofMillis(100));
                    d = admin.describeConsumerGroups(List.of("mixed-group")).all().get().get("mixed-group");
                    if (d.groupState() == GroupState.STABLE && d.members().size() == 2 && c.assignment().size() == 2) break;
                }
                assertEquals(2, d.members().size());
                assertEquals(2, c.assignment().size(), "the Java member shares the partitions with librdkafka");
                Set<Integer> all = new TreeSet<>();
                d.members().forEach(m -> m.assignment().topicPartitions().forEach(tp -> all.add(tp.partition())));
                assertEquals(Set.of(0, 1, 2, 3), all);
            } finally {
                kcat.destroy();
                kcat.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void adminListDescribeDeleteGroupsAndOffsets() throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0")) {
            produce(s, "adm", 2, 20);
            try (Admin admin = Admin.create(Map.of("bootstrap.servers", s.bootstrap()))) {
                KafkaConsumer<String, String> c = consumer(s, "admin-group", RangeAssignor.class.getName());
                c.subscribe(List.of("adm"));
                consumeAll(List.of(c), 20, 2);
                c.commitSync(Map.of(new TopicPartition("adm", 0), new OffsetAndMetadata(7),
                        new TopicPartition("adm", 1), new OffsetAndMetadata(3)));
                Set<String> groups = new HashSet<>();
                for (GroupListing g : admin.listGroups().all().get()) groups.add(g.groupId());
                assertTrue(groups.contains("admin-group"), groups.toString());
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of("admin-group")).all().get().get("admin-group");
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals(1, d.members().size());
                ExecutionException busy = assertThrows(ExecutionException.class,
                        () -> admin.deleteConsumerGroups(List.of("admin-group")).all().get());
                assertInstanceOf(GroupNotEmptyException.class, busy.getCause());
                c.close();
                Map<TopicPartition, OffsetAndMetadata> offs = admin.listConsumerGroupOffsets("admin-group")
                        .partitionsToOffsetAndMetadata().get();
                assertEquals(7, offs.get(new TopicPartition("adm", 0)).offset());
                admin.deleteConsumerGroupOffsets("admin-group", Set.of(new TopicPartition("adm", 1))).all().get();
                offs = admin.listConsumerGroupOffsets("admin-group").partitionsToOffsetAndMetadata().get();
                assertFalse(offs.containsKey(new TopicPartition("adm", 1)), offs.toString());
                admin.deleteConsumerGroups(List.of("admin-group")).all().get();
                groups.clear();
                for (GroupListing g : admin.listGroups().all().get()) groups.add(g.groupId());
                assertFalse(groups.contains("admin-group"));
            }
        }
    }
}
