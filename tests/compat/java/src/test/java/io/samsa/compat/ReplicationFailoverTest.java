package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/**
 * Replication with the Java client (issue 13): on a three-node Samsa cluster, an idempotent acks=all producer
 * writes numbered records to an RF=3 partition (min.insync.replicas=2) while a consumer reads it; the leader is
 * killed with SIGKILL and the producer and consumer move to the new leader (metadata refresh); the killed broker
 * returns, rejoins the ISR and is made leader again by a preferred election, so the producer, still sending to the
 * previous leader, is answered NOT_LEADER_OR_FOLLOWER, refreshes its metadata and carries on. Every acknowledged
 * record is read exactly once, at the offset it was acknowledged at, in send order.
 */
class ReplicationFailoverTest {
    static final String TOPIC = "failover";
    static final TopicPartition TP = new TopicPartition(TOPIC, 0);

    /** Everything written to System.err is kept as well (slf4j-simple logs the clients' warnings there). */
    static final class ErrTee extends OutputStream {
        final PrintStream original = System.err;
        final ByteArrayOutputStream copy = new ByteArrayOutputStream();

        @Override
        public synchronized void write(int b) {
            original.write(b);
            copy.write(b);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            original.write(b, off, len);
            copy.write(b, off, len);
        }

        synchronized String text() {
            return copy.toString(StandardCharsets.UTF_8);
        }
    }

    static void await(String what, long timeoutMs, Callable<Boolean> check) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        Exception last = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (check.call()) return;
            } catch (Exception notYet) {
                last = notYet;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("timed out waiting for " + what + (last != null ? " (last error: " + last + ")" : ""));
    }

    static TopicPartitionInfo partition(Admin admin) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC);
        return d.partitions().get(0);
    }

    static boolean fullIsr(Admin admin) throws Exception {
        TopicPartitionInfo p = partition(admin);
        return p.leader() != null && p.isr().size() == 3;
    }

    @Test
    void acknowledgedRecordsSurviveALeaderKillAndALeaderChange() throws Exception {
        ErrTee tee = new ErrTee();
        System.setErr(new PrintStream(tee, true, StandardCharsets.UTF_8));
        try (ClusterReplicasTest.Cluster c = new ClusterReplicasTest.Cluster("broker.session.timeout.ms=3000",
                "replica.lag.time.max.ms=2000", "controller.quorum.fetch.timeout.ms=1000");
                Admin admin = c.admin()) {
            ClusterReplicasTest.awaitBrokers(admin, 3);
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 3).configs(Map.of("min.insync.replicas", "2"))))
                    .all().get();
            await("the partition led with three in-sync replicas", 30_000, () -> fullIsr(admin));
            int leader = partition(admin).leader().id();
            int preferred = partition(admin).replicas().get(0).id();
            assertEquals(preferred, leader, "a new partition is led by its first replica");

            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrap());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
            pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrap());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);

            Map<Integer, Long> acked = new ConcurrentHashMap<>(); // record number -> offset
            List<Exception> failed = Collections.synchronizedList(new ArrayList<>());
            List<ConsumerRecord<String, String>> read = Collections.synchronizedList(new ArrayList<>());
            AtomicBoolean stopWriter = new AtomicBoolean(), stopReader = new AtomicBoolean();
            AtomicInteger sent = new AtomicInteger();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
                    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                Thread reader = new Thread(() -> {
                    consumer.assign(List.of(TP));
                    consumer.seekToBeginning(List.of(TP));
                    while (!stopReader.get()) {
                        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) read.add(r);
                    }
                });
                Thread writer = new Thread(() -> {
                    while (!stopWriter.get()) {
                        int i = sent.getAndIncrement();
                        producer.send(new ProducerRecord<>(TOPIC, 0, null, Integer.toString(i)), (md, e) -> {
                            if (e != null) failed.add(e);
                            else acked.put(i, md.offset());
                        });
                        try {
                            Thread.sleep(2);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                });
                reader.start();
                writer.start();
                try {
                    await("500 records acknowledged", 30_000, () -> acked.size() >= 500);

                    // kill -9 of the leader: an in-sync follower takes over.
                    c.nodes.get(leader - 1).kill();
                    await("a new leader", 30_000, () -> {
                        Node l = partition(admin).leader();
                        return l != null && l.id() != leader;
                    });
                    int second = partition(admin).leader().id();
                    int before = acked.size();
                    await("500 more records acknowledged after the kill", 60_000, () -> acked.size() >= before + 500);
                    // The producer's own metadata names the new leader.
                    assertEquals(second, producer.partitionsFor(TOPIC).get(0).leader().id());

                    // The killed broker returns, catches up, rejoins the ISR and leads again.
                    c.nodes.get(leader - 1).restart();
                    await("the restarted broker back in the ISR", 60_000, () -> fullIsr(admin));
                    admin.electLeaders(ElectionType.PREFERRED, Set.of(TP)).partitions().get();
                    await("the preferred replica leading again", 30_000,
                            () -> partition(admin).leader().id() == preferred);
                    int after = acked.size();
                    await("500 more records acknowledged after the leader change", 60_000,
                            () -> acked.size() >= after + 500);
                    assertEquals(preferred, producer.partitionsFor(TOPIC).get(0).leader().id());
                    stopWriter.set(true);
                    writer.join();
                    producer.flush();
                    assertEquals(List.of(), failed, "every record is acknowledged");
                    assertEquals(sent.get(), acked.size());
                    long end = Collections.max(acked.values()) + 1;
                    await("the consumer read up to offset " + end, 60_000,
                            () -> !read.isEmpty() && read.get(read.size() - 1).offset() + 1 >= end);
                } finally {
                    stopWriter.set(true);
                    stopReader.set(true);
                    writer.join();
                    reader.join();
                }
            }

            // Every acknowledged record read exactly once, at its offset, in send order.
            Map<Long, String> byOffset = new TreeMap<>();
            long prev = -1;
            synchronized (read) {
                for (ConsumerRecord<String, String> r : read) {
                    assertTrue(r.offset() > prev, "offsets went back: " + prev + " then " + r.offset());
                    prev = r.offset();
                    byOffset.put(r.offset(), r.value());
                }
            }
            assertEquals(acked.size(), byOffset.size(), "records read");
            assertEquals(acked.size(), Set.copyOf(byOffset.values()).size(), "a record was read twice");
            for (Map.Entry<Integer, Long> e : acked.entrySet())
                assertEquals(Integer.toString(e.getKey()), byOffset.get(e.getValue()),
                        "record " + e.getKey() + " at its acknowledged offset " + e.getValue());
            int last = -1;
            for (String v : byOffset.values()) {
                assertTrue(Integer.parseInt(v) > last, "record " + v + " after record " + last);
                last = Integer.parseInt(v);
            }
            // The previous leader answered the producer NOT_LEADER_OR_FOLLOWER and it refreshed its metadata.
            String log = tee.text();
            assertTrue(log.contains("NotLeaderOrFollowerException"), "the producer saw NOT_LEADER_OR_FOLLOWER");
            assertNotEquals(-1, log.indexOf("request metadata update"), "the producer refreshed its metadata");
        } finally {
            System.setErr(tee.original);
        }
    }
}
