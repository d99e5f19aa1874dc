package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/** Partitions far beyond the descriptor limit (issue 11 point 5b): under RLIMIT_NOFILE=256 the
 *  Java admin creates 2,000 partitions, the producer writes to 400 of them, and the consumer reads
 *  every record back, before and after a kill -9 and restart. */
class DescriptorLimitTest {
    static final int PARTITIONS = 2000;

    static Set<String> consumeAll(String bootstrap, List<TopicPartition> tps, int expected) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        Set<String> got = new TreeSet<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (got.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    got.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
        }
        return got;
    }

    @Test
    void thousandsOfPartitionsUnderALowDescriptorLimit() throws Exception {
        try (SamsaServer server = SamsaServer.withNofile(256)) {
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            try (Admin admin = Admin.create(ap)) {
                admin.createTopics(List.of(new NewTopic("wide-java", PARTITIONS, (short) 1))).all().get();
                assertEquals(PARTITIONS, admin.describeTopics(List.of("wide-java")).allTopicNames().get()
                        .get("wide-java").partitions().size());
            }
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            List<TopicPartition> tps = new ArrayList<>();
            Set<String> expected = new TreeSet<>();
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
                for (int p = 0; p < PARTITIONS; p += 5) {
                    tps.add(new TopicPartition("wide-java", p));
                    String v = "j-" + p;
                    expected.add(v);
                    acks.add(producer.send(new ProducerRecord<>("wide-java", p, null,
                            v.getBytes(StandardCharsets.UTF_8))));
                }
                producer.flush();
                for (Future<RecordMetadata> a : acks) {
                    assertEquals(0, a.get().offset());
                }
            }
            assertEquals(expected, consumeAll(server.bootstrap(), tps, expected.size()));
            server.killAndRestart();
            assertEquals(expected, consumeAll(server.bootstrap(), tps, expected.size()));
        }
    }
}
