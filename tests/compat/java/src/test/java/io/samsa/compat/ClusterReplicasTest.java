package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.InvalidReplicaAssignmentException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.junit.jupiter.api.Test;

/**
 * The Java AdminClient against a three-node Samsa cluster (issues 12 and 13, the controller's half):
 * topics of replication factor 3 are described with three replicas on distinct brokers and the full ISR,
 * leaders spread; more replicas than brokers and bad manual assignments get Kafka's exceptions;
 * partition reassignments are altered, listed and cancelled; the preferred election answers
 * ElectionNotNeeded where the preferred replica leads.
 */
class ClusterReplicasTest {

    /** Three broker+controller nodes started as Kafka's KRaft nodes are, on empty directories. */
    static final class Cluster implements AutoCloseable {
        final List<SamsaServer> nodes = new ArrayList<>();

        /** extra: more settings for every node (key=value). */
        Cluster(String... extra) throws Exception {
            this(i -> extra);
        }

        /** extra(i): more settings of node i + 1 (broker.rack=..., group settings). */
        Cluster(java.util.function.IntFunction<String[]> extra) throws Exception {
            int[] ports = new int[3], ctrl = new int[3];
            for (int i = 0; i < 3; i++) {
                ports[i] = SamsaServer.freePort();
                ctrl[i] = SamsaServer.freePort();
            }
            StringBuilder voters = new StringBuilder();
            for (int i = 0; i < 3; i++) {
                voters.append(i == 0 ? "" : ",").append(i + 1).append("@127.0.0.1:").append(ctrl[i]);
            }
            try {
                for (int i = 0; i < 3; i++) {
                    List<String> settings = new ArrayList<>(List.of("node.id=" + (i + 1),
                            "process.roles=broker,controller",
                            "listeners=PLAINTEXT://127.0.0.1:" + ports[i] + ",CONTROLLER://127.0.0.1:" + ctrl[i],
                            "controller.listener.names=CONTROLLER", "controller.quorum.voters=" + voters,
                            "controller.quorum.election.timeout.ms=500", "broker.heartbeat.interval.ms=500"));
                    settings.addAll(List.of(extra.apply(i)));
                    nodes.add(SamsaServer.launchNode(ports[i], settings.toArray(new String[0])));
                }
                for (SamsaServer node : nodes) {
                    node.awaitStarted();
                }
            } catch (Exception e) {
                close();
                throw e;
            }
        }

        String bootstrap() {
            return nodes.stream().map(SamsaServer::bootstrap).collect(Collectors.joining(","));
        }

        Admin admin() {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
            return Admin.create(p);
        }

        @Override
        public void close() throws Exception {
            for (SamsaServer s : nodes) {
                s.close();
            }
        }
    }

    static void awaitBrokers(Admin admin, int n) throws Exception {
        AdminConfigTest.await(() -> admin.describeCluster().nodes().get().size() == n);
        assertEquals(n, admin.describeCluster().nodes().get().size());
    }

    static TopicDescription awaitTopic(Admin admin, String name, int partitions) throws Exception {
        AdminConfigTest.awaitTopic(admin, name, partitions);
        return admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
    }

    @Test
    void replicationFactorThreeIsPlacedWithTheFullIsr() throws Exception {
        try (Cluster c = new Cluster(); Admin admin = c.admin()) {
            awaitBrokers(admin, 3);
            admin.createTopics(List.of(new NewTopic("replicated", 6, (short) 3))).all().get();
            TopicDescription d = awaitTopic(admin, "replicated", 6);
            Map<Integer, Integer> leads = new java.util.HashMap<>();
            for (TopicPartitionInfo p : d.partitions()) {
                Set<Integer> replicas = p.replicas().stream().map(Node::id).collect(Collectors.toSet());
                assertEquals(Set.of(1, 2, 3), replicas, p.toString());
                assertEquals(p.replicas(), p.isr(), p.toString());
                assertEquals(p.replicas().get(0), p.leader(), p.toString());
                leads.merge(p.leader().id(), 1, Integer::sum);
            }
            assertEquals(Map.of(1, 2, 2, 2, 3, 2), leads);

            ExecutionException tooMany = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> admin.createTopics(List.of(new NewTopic("four", 1, (short) 4))).all().get());
            assertInstanceOf(InvalidReplicationFactorException.class, tooMany.getCause());
            assertTrue(tooMany.getCause().getMessage().contains("only 3 broker(s) are registered"),
                    tooMany.getCause().getMessage());

            admin.createTopics(List.of(new NewTopic("manual", Map.of(0, List.of(3, 1), 1, List.of(1, 2))))).all().get();
            TopicDescription m = awaitTopic(admin, "manual", 2);
            assertEquals(List.of(3, 1), m.partitions().get(0).replicas().stream().map(Node::id).toList());
            assertEquals(3, m.partitions().get(0).leader().id());
            ExecutionException bad = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> admin.createTopics(List.of(new NewTopic("bad", Map.of(0, List.of(1, 7))))).all().get());
            assertInstanceOf(InvalidReplicaAssignmentException.class, bad.getCause());

            // Reassignment: a pure removal completes at once.
            TopicPartition m0 = new TopicPartition("manual", 0), m1 = new TopicPartition("manual", 1);
            admin.alterPartitionReassignments(Map.of(m0, Optional.of(new NewPartitionReassignment(List.of(3)))))
                    .all().get();
            AdminConfigTest.await(() -> admin.describeTopics(List.of("manual")).allTopicNames().get().get("manual")
                    .partitions().get(0).replicas().size() == 1);
            assertEquals(List.of(3), admin.describeTopics(List.of("manual")).allTopicNames().get().get("manual")
                    .partitions().get(0).replicas().stream().map(Node::id).toList());

            TopicPartition tp = new TopicPartition("replicated", 0);
            Map<TopicPartition, Optional<Throwable>> r =
                    admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get();
            assertInstanceOf(ElectionNotNeededException.class, r.get(tp).orElseThrow());
            assertEquals(Map.of(), admin.electLeaders(ElectionType.PREFERRED, null).partitions().get());

            // A move to a broker that is down waits for it (listed with its adding and removing
            // replicas) until it is cancelled.
            c.nodes.get(2).kill();
            // Node 2 may have been the active controller: the broker the admin client talks to
            // sends the request again to the next one (as Kafka's brokers do), so the client
            // sees no NOT_CONTROLLER.
            admin.alterPartitionReassignments(Map.of(m1, Optional.of(new NewPartitionReassignment(List.of(1, 3)))))
                    .all().get();
            Map<TopicPartition, PartitionReassignment> ongoing = admin.listPartitionReassignments().reassignments().get();
            assertEquals(Set.of(m1), ongoing.keySet());
            assertEquals(List.of(3), ongoing.get(m1).addingReplicas());
            assertEquals(List.of(2), ongoing.get(m1).removingReplicas());
            assertEquals(List.of(1, 3, 2), ongoing.get(m1).replicas());
            admin.alterPartitionReassignments(Map.of(m1, Optional.empty())).all().get();
            assertEquals(Map.of(), admin.listPartitionReassignments().reassignments().get());
        }
    }
}
