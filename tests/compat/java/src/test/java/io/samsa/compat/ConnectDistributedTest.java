package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Supplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.runtime.Connect;
import org.junit.jupiter.api.Test;

/**
 * Kafka Connect in distributed mode (connect-runtime 4.4, in this JVM) against samsa-server: the
 * worker's config, offset and status topics are compacted (cleanup.policy=compact, small
 * segments so that the cleaner runs on them); a source connector is created through the REST
 * API and writes records; the worker is stopped and started again: the connector is still
 * there and running, and its task resumes after the offset Connect stored (no value written
 * twice from the start, no gap).
 */
class ConnectDistributedTest {
    static final List<String> TOPICS = List.of("connect-configs", "connect-offsets", "connect-status");

    @Test
    void connectorsAndOffsetsSurviveARestart() throws Exception {
        try (SamsaServer server = new SamsaServer("log.cleaner.backoff.ms=50",
                        "log.flush.offset.checkpoint.interval.ms=200");
                Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap()))) {
            // The worker's topics as an operator creates them: compacted, with segments rolled
            // every 200 ms so that the cleaner has inactive segments to clean.
            List<NewTopic> topics = new ArrayList<>();
            for (String t : TOPICS)
                topics.add(new NewTopic(t, 1, (short) 1).configs(Map.of("cleanup.policy", "compact",
                        "segment.ms", "200", "min.cleanable.dirty.ratio", "0.01")));
            admin.createTopics(topics).all().get();
            int restPort = SamsaServer.freePort();
            Map<String, String> worker = new HashMap<>();
            worker.put("bootstrap.servers", server.bootstrap());
            worker.put("group.id", "samsa-connect");
            worker.put("config.storage.topic", "connect-configs");
            worker.put("offset.storage.topic", "connect-offsets");
            worker.put("status.storage.topic", "connect-status");
            worker.put("config.storage.replication.factor", "1");
            worker.put("offset.storage.replication.factor", "1");
            worker.put("status.storage.replication.factor", "1");
            worker.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
            worker.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
            worker.put("offset.flush.interval.ms", "100");
            worker.put("listeners", "http://127.0.0.1:" + restPort);
            worker.put("plugin.discovery", "service_load");
            String rest = "http://127.0.0.1:" + restPort;
            HttpClient http = HttpClient.newHttpClient();

            Connect<?> connect = new ConnectDistributed().startConnect(worker);
            long before;
            try {
                waitFor(() -> get(http, rest + "/connectors").code == 200, "the REST API");
                Response created = send(http, HttpRequest.newBuilder(URI.create(rest + "/connectors"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"name\":\"counter\",\"config\":{"
                                + "\"connector.class\":\"io.samsa.compat.CountingSource\","
                                + "\"tasks.max\":\"1\",\"topic\":\"counted\"}}"))
                        .build());
                assertEquals(201, created.code, created.body);
                waitFor(() -> readValues(server, "counted").size() >= 300, "the connector's records");
                waitFor(() -> storedOffset(server) >= 100, "an offset stored in connect-offsets");
            } finally {
                connect.stop();
                connect.awaitStop();
            }
            List<Long> first = readValues(server, "counted");
            long stored = storedOffset(server);
            before = first.size();
            assertTrue(stored >= 100 && stored < before, stored + " of " + before);

            connect = new ConnectDistributed().startConnect(worker);
            try {
                waitFor(() -> get(http, rest + "/connectors").body.contains("\"counter\""),
                        "the connector after the restart");
                waitFor(() -> get(http, rest + "/connectors/counter/status").body
                        .matches("(?s).*\"tasks\":\\[\\{[^]]*\"state\":\"RUNNING\".*"), "its task running");
                waitFor(() -> readValues(server, "counted").size() >= before + 200,
                        "records written after the restart");
            } finally {
                connect.stop();
                connect.awaitStop();
            }
            // Values are 0, 1, 2, ... with no gap; after the restart the task went on after the
            // stored offset: only the values after it (not yet stored) may be written twice.
            List<Long> all = readValues(server, "counted");
            long max = all.stream().mapToLong(Long::longValue).max().orElse(-1);
            assertEquals(max + 1, all.stream().distinct().count());
            Map<Long, Integer> times = new HashMap<>();
            for (long v : all)
                times.merge(v, 1, Integer::sum);
            for (long v = 0; v <= stored; v++)
                assertEquals(1, times.get(v), "value " + v + " written once");

            // The worker's topics are compacted, and the cleaner ran on them.
            for (String t : TOPICS) {
                Config c = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, t)))
                        .all().get().values().iterator().next();
                assertEquals("compact", c.get("cleanup.policy").value(), t);
            }
            // A segment is cleanable once it is not the active one, and a segment rolls on the
            // next append after segment.ms: the worker (stopped now) may have left its last
            // writes of a topic in the active segment, so one more record per topic (a key the
            // worker ignores; no worker reads these topics again) rolls it.
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Thread.sleep(250); /* segment.ms: the roll needs this much age, not an event */
            try (KafkaProducer<String, String> roll = new KafkaProducer<>(pp)) {
                for (String t : TOPICS)
                    roll.send(new ProducerRecord<>(t, "samsa-test-roll", "x")).get();
            }
            waitFor(() -> cleanerRuns(server, "connect-offsets") >= 1 && cleanerRuns(server, "connect-status") >= 1
                    && cleanerRuns(server, "connect-configs") >= 1, "cleanings of the worker's topics");
        }
    }

    record Response(int code, String body) {}

    static Response send(HttpClient http, HttpRequest req) {
        try {
            HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
            return new Response(r.statusCode(), r.body());
        } catch (Exception e) {
            return new Response(-1, e.toString());
        }
    }

    static Response get(HttpClient http, String url) {
        return send(http, HttpRequest.newBuilder(URI.create(url)).GET().build());
    }

    static void waitFor(Supplier<Boolean> cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            if (cond.get()) return;
            Thread.sleep(100);
        }
        throw new AssertionError("timed out waiting for " + what);
    }

    static KafkaConsumer<String, String> consumer(SamsaServer server) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Every value of the topic's partition 0 up to its end, as numbers. */
    static List<Long> readValues(SamsaServer server, String topic) {
        List<Long> out = new ArrayList<>();
        for (ConsumerRecord<String, String> r : readAll(server, topic))
            out.add(Long.parseLong(r.value()));
        return out;
    }

    static List<ConsumerRecord<String, String>> readAll(SamsaServer server, String topic) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(server)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (c.position(tp) < end && System.nanoTime() < deadline)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    out.add(r);
        } catch (org.apache.kafka.common.errors.UnknownTopicOrPartitionException e) {
            return out;
        }
        return out;
    }

    /** The counter's latest stored source offset ("n") in connect-offsets, -1 none. */
    static long storedOffset(SamsaServer server) {
        long n = -1;
        for (ConsumerRecord<String, String> r : readAll(server, "connect-offsets")) {
            if (r.key() == null || !r.key().contains("counter") || r.value() == null) continue;
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"n\":(\\d+)").matcher(r.value());
            if (m.find()) n = Long.parseLong(m.group(1));
        }
        return n;
    }

    /** Cleanings of topic's partition 0, from the broker's samsa-cleaner-state file. */
    static long cleanerRuns(SamsaServer server, String topic) {
        try {
            Path state = server.dataDir.resolve("samsa-cleaner-state");
            if (!Files.exists(state)) return 0;
            for (String line : Files.readAllLines(state, StandardCharsets.UTF_8)) {
                String[] f = line.trim().split("\\s+");
                if (f.length >= 8 && f[0].equals(topic) && f[1].equals("0")) return Long.parseLong(f[7]);
            }
        } catch (Exception e) {
            return 0;
        }
        return 0;
    }
}
