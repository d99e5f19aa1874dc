package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/** Java transactional producers, read_committed consumers and consume-transform-produce across a kill -9. */
class TransactionsTest {
    static void createTopic(SamsaServer s, String topic, int partitions) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", s.bootstrap());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
    }

    static KafkaProducer<String, String> txnProducer(SamsaServer s, String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        KafkaProducer<String, String> prod = new KafkaProducer<>(p);
        prod.initTransactions();
        return prod;
    }

    static KafkaConsumer<String, String> consumer(SamsaServer s, String group, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Every value of the topic's partitions up to their end as the isolation level sees it. */
    static List<String> readAll(SamsaServer s, String topic, int partitions, String isolation, int atLeast)
            throws Exception {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(s, "reader-" + System.nanoTime(), isolation)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (System.nanoTime() < deadline) {
                boolean done = out.size() >= atLeast;
                for (TopicPartition tp : tps) done &= c.position(tp) >= end.get(tp);
                if (done) break;
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r.value());
            }
        }
        return out;
    }

    @Test
    void committedAndAbortedTransactionsAsEachIsolationLevelSeesThem() throws Exception {
        try (SamsaServer s = new SamsaServer()) {
            createTopic(s, "jtx", 3);
            List<String> committed = new ArrayList<>();
            try (KafkaProducer<String, String> p = txnProducer(s, "jtx-1")) {
                for (int t = 0; t < 10; t++) {
                    p.beginTransaction();
                    for (int i = 0; i < 30; i++) {
                        String v = "t" + t + "-" + i;
                        p.send(new ProducerRecord<>("jtx", i % 3, null, v));
                        if (t % 2 == 0) committed.add(v);
                    }
                    if (t % 2 == 0) p.commitTransaction();
                    else {
                        p.flush();
                        p.abortTransaction();
                    }
                }
            }
            List<String> rc = readAll(s, "jtx", 3, "read_committed", committed.size());
            assertEquals(new java.util.TreeSet<>(committed), new java.util.TreeSet<>(rc));
            assertEquals(committed.size(), rc.size());
            List<String> ru = readAll(s, "jtx", 3, "read_uncommitted", 300);
            assertEquals(300, ru.size());
            // The admin view: the id is listed, its last transaction completed.
            Properties ap = new Properties();
            ap.put("bootstrap.servers", s.bootstrap());
            try (Admin admin = Admin.create(ap)) {
                boolean listed = false;
                for (TransactionListing l : admin.listTransactions().all().get())
                    listed |= l.transactionalId().equals("jtx-1");
                assertTrue(listed);
                var d = admin.describeTransactions(List.of("jtx-1")).all().get().get("jtx-1");
                assertEquals("COMPLETE_ABORT", d.state().name());
                // Transactions V2 (transaction.version 2, KIP-890 part 2): one epoch per transaction.
                assertTrue(d.producerEpoch() >= 10, "epoch " + d.producerEpoch() + " after 10 transactions");
            }
        }
    }

    /**
     * Consume-transform-produce with sendOffsetsToTransaction while the broker is killed -9 and restarted
     * half way: the output holds every input exactly once.
     */
    @Test
    void consumeTransformProduceIsExactlyOnceAcrossKill() throws Exception {
        final int n = 2000;
        try (SamsaServer s = new SamsaServer("transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
                "group.initial.rebalance.delay.ms=0")) {
            createTopic(s, "in", 2);
            createTopic(s, "out", 2);
            Properties pp = new Properties();
            pp.put("bootstrap.servers", s.bootstrap());
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            pp.put("acks", "all");
            try (KafkaProducer<String, String> plain = new KafkaProducer<>(pp)) {
                for (int i = 0; i < n; i++) plain.send(new ProducerRecord<>("in", i % 2, null, "r" + i));
                plain.flush();
            }
            int copied = 0;
            boolean killed = false;
            long deadline = System.nanoTime() + Duration.ofSeconds(150).toNanos();
            while (System.nanoTime() < deadline) {
                // One application instance: a consumer and a transactional producer, recreated after failures.
                try (KafkaConsumer<String, String> c = consumer(s, "ctp", "read_committed");
                        KafkaProducer<String, String> p = txnProducer(s, "ctp-app")) {
                    c.subscribe(List.of("in"));
                    while (System.nanoTime() < deadline && committedOffsets(s, n)) {
                        ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                        if (recs.isEmpty()) continue;
                        p.beginTransaction();
                        Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                        for (ConsumerRecord<String, String> r : recs) {
                            p.send(new ProducerRecord<>("out", r.partition(), null, r.value().toUpperCase()));
                            offs.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                        }
                        p.sendOffsetsToTransaction(offs, c.groupMetadata());
                        if (!killed && copied >= n / 2) {
                            // Mid-transaction: records sent, offsets added, not committed.
                            killed = true;
                            p.flush();
                            s.killAndRestart();
                            throw new KafkaException("broker killed on purpose");
                        }
                        p.commitTransaction();
                        copied += recs.count();
                    }
                    if (!committedOffsets(s, n)) break;
                } catch (KafkaException e) {
                    // The instance restarts from the committed offsets; the open transaction is
                    // aborted by the successor's initTransactions (or its timeout).
                    if (!(e instanceof ProducerFencedException) && !killed) throw e;
                }
            }
            assertTrue(killed, "the broker was killed during the run");
            List<String> out = readAll(s, "out", 2, "read_committed", n);
            Map<String, Integer> counts = new TreeMap<>();
            for (String v : out) counts.merge(v, 1, Integer::sum);
            for (int i = 0; i < n; i++) assertEquals(1, counts.getOrDefault("R" + i, 0), "R" + i + " exactly once");
            assertEquals(n, out.size());
        }
    }

    /** True while the group's committed offsets have not reached the end of the input. */
    static boolean committedOffsets(SamsaServer s, int n) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", s.bootstrap());
        try (Admin admin = Admin.create(p)) {
            Map<TopicPartition, OffsetAndMetadata> m =
                    admin.listConsumerGroupOffsets("ctp").partitionsToOffsetAndMetadata().get();
            long total = 0;
            for (OffsetAndMetadata o : m.values()) if (o != null) total += o.offset();
            return total < n;
        } catch (Exception e) {
            return true;
        }
    }
}
