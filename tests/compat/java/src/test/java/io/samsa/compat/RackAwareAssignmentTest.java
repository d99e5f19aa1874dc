package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Rack-aware server-side assignment (KIP-848) with the Java consumer: three brokers in racks r1, r2,
 *  r3, a topic with one replica per partition, three consumers with client.rack r1, r2, r3 and
 *  group.protocol=consumer: each is given exactly the partitions held in its rack. Needs the group
 *  coordinator running in cluster mode; skipped on a build without it. */
class RackAwareAssignmentTest {
    @Test
    void consumersGetThePartitionsOfTheirRack() throws Exception {
        try (ClusterReplicasTest.Cluster c = new ClusterReplicasTest.Cluster(i -> new String[] {
                "broker.rack=r" + (i + 1), "group.initial.rebalance.delay.ms=0",
                "group.consumer.heartbeat.interval.ms=300", "group.consumer.min.heartbeat.interval.ms=100",
                "group.consumer.min.session.timeout.ms=1000", "group.consumer.session.timeout.ms=10000"});
             Admin admin = c.admin()) {
            ClusterReplicasTest.awaitBrokers(admin, 3);
            Map<Integer, String> rackOf = admin.describeCluster().nodes().get().stream()
                    .collect(Collectors.toMap(Node::id, Node::rack));
            admin.createTopics(List.of(new NewTopic("jracked", 6, (short) 1))).all().get();
            TopicDescription d = ClusterReplicasTest.awaitTopic(admin, "jracked", 6);
            Map<String, Set<Integer>> want = new HashMap<>();
            for (TopicPartitionInfo p : d.partitions())
                want.computeIfAbsent(rackOf.get(p.leader().id()), r -> new TreeSet<>()).add(p.partition());
            Assumptions.assumeTrue(coordinatorServes(admin, "jg-rack"),
                    "no group coordinator runs in cluster mode on this build");
            List<KafkaConsumer<String, String>> consumers = new ArrayList<>();
            try {
                for (int i = 1; i <= 3; i++) {
                    Properties p = new Properties();
                    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrap());
                    p.put(ConsumerConfig.GROUP_ID_CONFIG, "jg-rack");
                    p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
                    p.put(ConsumerConfig.CLIENT_RACK_CONFIG, "r" + i);
                    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                    KafkaConsumer<String, String> k = new KafkaConsumer<>(p);
                    k.subscribe(List.of("jracked"));
                    consumers.add(k);
                }
                Map<String, Set<Integer>> got = new HashMap<>();
                long deadline = System.currentTimeMillis() + 60_000;
                while (!got.equals(want) && System.currentTimeMillis() < deadline) {
                    got.clear();
                    for (int i = 0; i < 3; i++) {
                        consumers.get(i).poll(Duration.ofMillis(50));
                        got.put("r" + (i + 1), consumers.get(i).assignment().stream()
                                .map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new)));
                    }
                }
                assertEquals(want, got, "each consumer holds its rack's partitions");
            } finally {
                for (KafkaConsumer<String, String> k : consumers) k.close(Duration.ofSeconds(5));
            }
        }
    }

    /** True once a group coordinator answers for the group (the first FindCoordinator creates
     *  __consumer_offsets); false after 45 s of COORDINATOR_NOT_AVAILABLE. */
    static boolean coordinatorServes(Admin admin, String group) throws Exception {
        long deadline = System.currentTimeMillis() + 45_000;
        while (System.currentTimeMillis() < deadline) {
            try {
                admin.describeConsumerGroups(List.of(group)).all().get(15, TimeUnit.SECONDS);
                return true;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof GroupIdNotFoundException) return true;
            } catch (java.util.concurrent.TimeoutException e) {
                // still not available
            }
        }
        return false;
    }
}
