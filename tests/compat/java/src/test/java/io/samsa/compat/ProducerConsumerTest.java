package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/** The Java producer with its default settings (idempotence on) and a consumer with assign + seek. */
class ProducerConsumerTest {
    static final int N = 2000;

    @Test
    void defaultProducerThenAssignAndSeekConsumer() throws Exception {
        try (SamsaServer server = new SamsaServer()) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < N; i++) {
                    ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>("java-topic", 0,
                            ("k" + i).getBytes(StandardCharsets.UTF_8),
                            i % 100 == 7 ? null : ("value-" + i).getBytes(StandardCharsets.UTF_8));
                    rec.headers().add("h", ("hv" + i).getBytes(StandardCharsets.UTF_8));
                    acks.add(producer.send(rec));
                }
                producer.flush();
                for (int i = 0; i < N; i++) {
                    assertEquals(i, acks.get(i).get().offset(), "offset of record " + i);
                }
            }

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("java-topic", 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 30_000;
                while (got.size() < N && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) got.add(r);
                }
                assertEquals(N, got.size(), "records consumed");
                for (int i = 0; i < N; i++) {
                    ConsumerRecord<byte[], byte[]> r = got.get(i);
                    assertEquals(i, r.offset());
                    assertArrayEquals(("k" + i).getBytes(StandardCharsets.UTF_8), r.key());
                    if (i % 100 == 7) {
                        assertNull(r.value());
                    } else {
                        assertArrayEquals(("value-" + i).getBytes(StandardCharsets.UTF_8), r.value());
                    }
                    Header h = r.headers().lastHeader("h");
                    assertArrayEquals(("hv" + i).getBytes(StandardCharsets.UTF_8), h.value());
                }
                /* seek to the middle: the fetch starts inside a batch */
                consumer.seek(tp, 1234);
                List<ConsumerRecord<byte[], byte[]>> tail = new ArrayList<>();
                deadline = System.currentTimeMillis() + 30_000;
                while (tail.size() < N - 1234 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) tail.add(r);
                }
                assertEquals(1234, tail.get(0).offset());
                assertTrue(consumer.endOffsets(List.of(tp)).get(tp) == N);
            }
        }
    }
}
