package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.Test;

/** Kafka Streams word count with exactly_once_v2: exact counts across a kill -9 of the broker. */
class StreamsEosTest {
    static final String[] WORDS = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"};

    static void produceLines(SamsaServer s, int from, int to, Map<String, Long> expected) {
        Properties p = new Properties();
        p.put("bootstrap.servers", s.bootstrap());
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            for (int i = from; i < to; i++) {
                String line = WORDS[i % WORDS.length] + " " + WORDS[(i * 3 + 1) % WORDS.length];
                for (String w : line.split(" ")) expected.merge(w, 1L, Long::sum);
                prod.send(new ProducerRecord<>("wc-in", "k" + i, line));
            }
            prod.flush();
        }
    }

    /** The latest committed count of every word in the output topic. */
    static Map<String, Long> latestCounts(SamsaServer s) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "wc-reader-" + System.nanoTime());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        Map<String, Long> out = new TreeMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = List.of(new TopicPartition("wc-out", 0), new TopicPartition("wc-out", 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (System.nanoTime() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) done &= c.position(tp) >= end.get(tp);
                if (done) break;
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) out.put(r.key(), r.value());
            }
        } catch (Exception e) {
            return out;
        }
        return out;
    }

    static boolean waitFor(java.util.function.BooleanSupplier cond, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (cond.getAsBoolean()) return true;
            Thread.sleep(200);
        }
        return cond.getAsBoolean();
    }

    @Test
    void wordCountExactlyOnceAcrossKill() throws Exception {
        Path state = Files.createTempDirectory("samsa-streams-");
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0",
                "transaction.abort.timed.out.transaction.cleanup.interval.ms=500")) {
            Properties ap = new Properties();
            ap.put("bootstrap.servers", s.bootstrap());
            try (Admin admin = Admin.create(ap)) {
                admin.createTopics(List.of(new NewTopic("wc-in", 2, (short) 1), new NewTopic("wc-out", 2, (short) 1)))
                        .all().get();
            }
            Map<String, Long> expected = new HashMap<>();
            produceLines(s, 0, 600, expected);

            StreamsBuilder b = new StreamsBuilder();
            b.<String, String>stream("wc-in")
                    .flatMapValues(v -> Arrays.asList(v.split(" ")))
                    .groupBy((k, w) -> w)
                    .count()
                    .toStream()
                    .to("wc-out", Produced.with(Serdes.String(), Serdes.Long()));
            Properties sp = new Properties();
            sp.put(StreamsConfig.APPLICATION_ID_CONFIG, "wc-eos");
            sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
            sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
            sp.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass());
            sp.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass());
            sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
            sp.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
            sp.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
            sp.put(StreamsConfig.producerPrefix("transaction.timeout.ms"), 10000);
            sp.put(StreamsConfig.producerPrefix("request.timeout.ms"), 5000);
            sp.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 10000);
            try (KafkaStreams streams = new KafkaStreams(b.build(), sp)) {
                // A thread that dies on the broker's disappearance is replaced, as an application would.
                streams.setUncaughtExceptionHandler(
                        e -> StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD);
                streams.start();
                assertTrue(waitFor(() -> latestCounts(s).size() == WORDS.length, Duration.ofSeconds(90)),
                        "first counts appear");
                s.killAndRestart();
                produceLines(s, 600, 1200, expected);
                Map<String, Long> want = new TreeMap<>(expected);
                boolean exact = waitFor(() -> latestCounts(s).equals(want), Duration.ofSeconds(120));
                assertEquals(want, latestCounts(s), "exact counts after the restart");
                assertTrue(exact);
            }
        } finally {
            try (var files = Files.walk(state)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
