package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/**
 * After kill -9 the broker answers while a partition still recovers (held by the test hook
 * SAMSA_TEST_RECOVERY_GATE): the Java admin sees it without a leader, a recovered partition is
 * written and read, and a record sent to the recovering one is delivered once it is back, with
 * nothing acknowledged lost.
 */
class RecoveryTest {
    @Test
    void recoveredPartitionsAreServedWhileOneRecovers() throws Exception {
        try (SamsaServer server = new SamsaServer()) {
            try (Admin admin = admin(server)) {
                admin.createTopics(List.of(new NewTopic("jfast", 1, (short) 1),
                        new NewTopic("jslow", 1, (short) 1))).all().get();
            }
            try (KafkaProducer<String, String> p = producer(server)) {
                for (int i = 0; i < 500; i++) {
                    p.send(new ProducerRecord<>("jfast", 0, null, "v" + i));
                    p.send(new ProducerRecord<>("jslow", 0, null, "v" + i));
                }
                p.flush();
            }
            Path gate = server.dataDir.resolveSibling(server.dataDir.getFileName() + ".gate");
            server.killAndRestart(Map.of("SAMSA_TEST_RECOVERY_GATE", "jslow:" + gate));
            try (Admin admin = admin(server); KafkaProducer<String, String> p = producer(server)) {
                Map<String, TopicDescription> d = admin.describeTopics(List.of("jfast", "jslow"))
                        .allTopicNames().get(30, TimeUnit.SECONDS);
                assertEquals(1, d.get("jfast").partitions().get(0).leader().id());
                assertNull(d.get("jslow").partitions().get(0).leader(), "no leader while recovering");
                Future<RecordMetadata> late = p.send(new ProducerRecord<>("jslow", 0, null, "late"));
                RecordMetadata fast = p.send(new ProducerRecord<>("jfast", 0, null, "after")).get(60, TimeUnit.SECONDS);
                assertEquals(500, fast.offset());
                assertEquals(501, consume(server, "jfast", 501).size());
                assertFalse(late.isDone(), "delivered before the partition recovered");
                assertTrue(server.log().contains("recovery held until"));
                Files.writeString(gate, "");
                assertEquals(500, late.get(90, TimeUnit.SECONDS).offset());
                List<String> slow = consume(server, "jslow", 501);
                assertEquals(501, slow.size());
                assertEquals("v0", slow.get(0));
                assertEquals("late", slow.get(500));
            } finally {
                Files.deleteIfExists(gate);
            }
        }
    }

    private static Admin admin(SamsaServer s) {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap()));
    }

    private static KafkaProducer<String, String> producer(SamsaServer s) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "1");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        pp.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "20");
        return new KafkaProducer<>(pp);
    }

    private static List<String> consume(SamsaServer s, String topic, int n) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            c.seekToBeginning(List.of(new TopicPartition(topic, 0)));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (out.size() < n && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    out.add(r.value());
                }
            }
        }
        return out;
    }
}
