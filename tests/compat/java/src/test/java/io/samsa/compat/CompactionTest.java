package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * Log compaction seen by the Java client: an idempotent, zstd-compressing producer fills a
 * compacted topic with 1 MiB segments; DescribeLogDirs reports the size dropping; a consumer
 * from the beginning reads each key's latest value with its headers, offsets increasing; the
 * same idempotent producer keeps producing after the cleaning.
 */
class CompactionTest {
    @Test
    void compactedTopicReadsLatestValues() throws Exception {
        try (SamsaServer server = new SamsaServer("log.cleaner.backoff.ms=50");
                Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap()))) {
            String topic = "compacted-java";
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(Map.of(
                    "cleanup.policy", "compact", "segment.bytes", "1048576",
                    "min.cleanable.dirty.ratio", "0.01")))).all().get();
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            Map<String, byte[]> latest = new HashMap<>();
            Random rnd = new Random(11);
            int produced = 0;
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
                for (int round = 0; round < 10; round++) {
                    for (int k = 0; k < 200; k++) {
                        byte[] v = new byte[1500];
                        rnd.nextBytes(v);
                        String key = "k" + k;
                        latest.put(key, v);
                        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, 0,
                                key.getBytes(StandardCharsets.UTF_8), v);
                        r.headers().add("round", Integer.toString(round).getBytes(StandardCharsets.UTF_8));
                        producer.send(r);
                        produced++;
                    }
                }
                producer.flush();
                TopicPartition tp = new TopicPartition(topic, 0);
                // Uncompacted, the random values alone take produced * 1500 bytes.
                long first = produced * 1500L;
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                long now = first;
                while (now >= first / 2 && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                    now = replicaSize(admin, tp);
                }
                assertTrue(now < first / 2, "DescribeLogDirs size " + first + " -> " + now);

                Map<String, ConsumerRecord<byte[], byte[]>> seen = readAll(server, tp);
                assertEquals(latest.keySet(), seen.keySet());
                for (Map.Entry<String, byte[]> e : latest.entrySet()) {
                    ConsumerRecord<byte[], byte[]> r = seen.get(e.getKey());
                    assertArrayEquals(e.getValue(), r.value(), e.getKey());
                    assertNotNull(r.headers().lastHeader("round"));
                    assertEquals("9", new String(r.headers().lastHeader("round").value(), StandardCharsets.UTF_8));
                }
                // The idempotent producer goes on after its batches were cleaned.
                producer.send(new ProducerRecord<>(topic, 0, "k0".getBytes(StandardCharsets.UTF_8),
                        "after".getBytes(StandardCharsets.UTF_8))).get();
                assertArrayEquals("after".getBytes(StandardCharsets.UTF_8), readAll(server, tp).get("k0").value());
            }
            assertTrue(produced == 2000);
        }
    }

    private static long replicaSize(Admin admin, TopicPartition tp) throws Exception {
        ReplicaInfo r = admin.describeLogDirs(List.of(1)).allDescriptions().get().get(1).values().iterator()
                .next().replicaInfos().get(tp);
        return r.size();
    }

    /** Every record from offset 0 to the end offset; the last per key, offsets checked increasing. */
    private static Map<String, ConsumerRecord<byte[], byte[]>> readAll(SamsaServer server, TopicPartition tp) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Map<String, ConsumerRecord<byte[], byte[]>> last = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
            c.assign(Set.of(tp));
            c.seekToBeginning(Set.of(tp));
            long end = c.endOffsets(Set.of(tp)).get(tp);
            long prev = -1;
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (c.position(tp) < end && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    assertTrue(r.offset() > prev, "offsets increase");
                    prev = r.offset();
                    last.put(new String(r.key(), StandardCharsets.UTF_8), r);
                }
            }
            assertEquals(end, c.position(tp));
        }
        return last;
    }
}
