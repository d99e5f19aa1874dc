package io.samsa.compat;

import static io.samsa.compat.AdminConfigTest.awaitTopic;
import static io.samsa.compat.AdminConfigTest.failure;
import static io.samsa.compat.AdminConfigTest.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.junit.jupiter.api.Test;

/**
 * Behaviours where Samsa once differed from Apache Kafka 4.4, seen through the Java client. With
 * SAMSA_TEST_AGAINST_KAFKA=PORT the tests run against a reference Kafka started by
 * bench/kafka-ref/kafka-ref.sh instead of a samsa-server.
 */
class KafkaCompatTest {
    /** KIP-467: a keyless record on a compacted topic fails with its own message, its batch-mates with the batch's. */
    @Test
    void compactedTopicRejectsKeylessRecordsPerRecord() throws Exception {
        try (AdminConfigTest.Target t = new AdminConfigTest.Target(); Admin admin = t.admin()) {
            String name = unique("compact-keys");
            admin.createTopics(List.of(new NewTopic(name, 1, (short) 1).configs(Map.of("cleanup.policy", "compact"))))
                    .all().get();
            awaitTopic(admin, name, 1);
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> p = t.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 1000,
                    ProducerConfig.RETRIES_CONFIG, 0, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false))) {
                acks.add(p.send(new ProducerRecord<>(name, 0, "k0".getBytes(), "v".getBytes())));
                acks.add(p.send(new ProducerRecord<>(name, 0, null, "v".getBytes())));
                acks.add(p.send(new ProducerRecord<>(name, 0, "k2".getBytes(), "v".getBytes())));
                p.flush();
            }
            Throwable keyless = failure(acks.get(1));
            assertInstanceOf(InvalidRecordException.class, keyless);
            assertEquals("Compacted topic cannot accept message without key in topic partition " + name + "-0",
                    keyless.getMessage());
            for (int i : new int[] {0, 2}) {
                Throwable other = failure(acks.get(i));
                assertInstanceOf(KafkaException.class, other);
                assertTrue(other.getMessage().startsWith("Failed to append record because it was part of a batch"),
                        other.getMessage());
            }
        }
    }
}
