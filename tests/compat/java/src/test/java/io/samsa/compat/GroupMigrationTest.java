package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;

/** Online upgrade and downgrade of a group between the classic and the consumer protocol (KIP-848):
 *  the members of a consuming group are restarted one by one with the other group.protocol; the group
 *  changes type while members of both protocols are in it, and no record is lost. */
class GroupMigrationTest {
    static final class Member implements ConsumerRebalanceListener {
        final KafkaConsumer<String, String> c;
        final List<String> seen;
        boolean pending;

        Member(SamsaServer s, String group, String topic, String protocol, List<String> seen) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
            if (protocol.equals("classic")) {
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
            }
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            this.c = new KafkaConsumer<>(p);
            this.seen = seen;
            c.subscribe(List.of(topic), this);
        }

        void commit() {
            if (pending) {
                try {
                    c.commitSync();
                } catch (RuntimeException e) {
                    // A commit refused during a rebalance: the records are read again, never lost.
                }
                pending = false;
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            commit();
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {}

        void step() {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                seen.add(r.value());
                pending = true;
            }
            commit();
        }
    }

    static void run(List<Member> ms, List<String> seen, int want) {
        long deadline = System.currentTimeMillis() + 90_000;
        while (new HashSet<>(seen).size() < want && System.currentTimeMillis() < deadline)
            for (Member m : ms) m.step();
    }

    /** The group's description, or null while it does not exist yet. */
    static ConsumerGroupDescription describe(SamsaServer s, String group) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", s.bootstrap());
        try (Admin admin = Admin.create(p)) {
            return admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof org.apache.kafka.common.errors.GroupIdNotFoundException) return null;
            throw e;
        }
    }

    /** Steps the members until the group has `members` members and is of `type`. */
    static ConsumerGroupDescription await(SamsaServer s, List<Member> ms, String group, GroupType type,
                                         int members) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        ConsumerGroupDescription d = describe(s, group);
        while (System.currentTimeMillis() < deadline
                && (d == null || d.type() != type || d.members().size() != members)) {
            for (Member m : ms) m.step();
            d = describe(s, group);
        }
        assertTrue(d != null, "group " + group + " exists");
        return d;
    }

    /** Two members of protocol `from` consume; each is restarted in turn with protocol `to`. */
    static void migrate(String from, String to, GroupType fromType, GroupType toType) throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0",
                "group.consumer.heartbeat.interval.ms=300", "group.consumer.min.heartbeat.interval.ms=100",
                "group.consumer.min.session.timeout.ms=1000", "group.consumer.session.timeout.ms=10000")) {
            String group = "jmig-" + from, topic = "jmigt-" + from;
            int total = 6000;
            GroupsTest.produce(s, topic, 4, total);
            List<String> seen = new ArrayList<>();
            List<Member> ms = new ArrayList<>();
            ms.add(new Member(s, group, topic, from, seen));
            ms.add(new Member(s, group, topic, from, seen));
            assertEquals(fromType, await(s, ms, group, fromType, 2).type());
            run(ms, seen, 1500);

            Member first = ms.remove(0);
            first.commit();
            first.c.close();
            ms.add(new Member(s, group, topic, to, seen));
            run(ms, seen, 3000);
            // One member of each protocol: the group is a consumer group either way.
            ConsumerGroupDescription mixed = await(s, ms, group, GroupType.CONSUMER, 2);
            assertEquals(GroupType.CONSUMER, mixed.type(), "mixed group type");
            assertEquals(2, mixed.members().size(), "mixed group members");
            // KIP-1099: ConsumerGroupDescribe tells each member's protocol (Admin's upgraded()).
            assertEquals(Set.of(true, false), mixed.members().stream()
                    .map(m -> m.upgraded().orElseThrow(() -> new AssertionError("member type unknown: " + m)))
                    .collect(Collectors.toSet()), "one member of each protocol");

            Member second = ms.remove(0);
            second.commit();
            second.c.close();
            ms.add(new Member(s, group, topic, to, seen));
            run(ms, seen, total);
            ConsumerGroupDescription end = await(s, ms, group, toType, 2);
            assertEquals(toType, end.type(), "group type at the end");
            assertEquals(2, end.members().size(), "members at the end");
            assertTrue(new HashSet<>(seen).size() == total,
                    "every record read: " + new HashSet<>(seen).size() + " of " + total);
            for (Member m : ms) m.c.close();
        }
    }

    @Test
    void classicGroupUpgradedOnline() throws Exception {
        migrate("classic", "consumer", GroupType.CLASSIC, GroupType.CONSUMER);
    }

    @Test
    void consumerGroupDowngradedOnline() throws Exception {
        migrate("consumer", "classic", GroupType.CONSUMER, GroupType.CLASSIC);
    }
}
