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
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;

/** The Java consumer with group.protocol=consumer (KIP-848): members join and leave one by one while
 *  consuming; each commits what it processed before its partitions go, so no record is read twice. */
class ConsumerGroupProtocolTest {
    static final class Member implements ConsumerRebalanceListener {
        final KafkaConsumer<String, String> c;
        final List<String> seen;
        boolean pending;

        Member(SamsaServer s, List<String> seen) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
            p.put(ConsumerConfig.GROUP_ID_CONFIG, "jg848");
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            this.c = new KafkaConsumer<>(p);
            this.seen = seen;
            c.subscribe(List.of("j848"), this);
        }

        void commit() {
            if (pending) {
                c.commitSync();
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
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen.size() < want && System.currentTimeMillis() < deadline) for (Member m : ms) m.step();
    }

    @Test
    void membersJoinAndLeaveOneByOne() throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0",
                "group.consumer.heartbeat.interval.ms=300", "group.consumer.session.timeout.ms=6000")) {
            int total = 6000;
            GroupsTest.produce(s, "j848", 6, total);
            List<String> seen = new ArrayList<>();
            List<Member> ms = new ArrayList<>();
            ms.add(new Member(s, seen));
            run(ms, seen, 1000);
            ms.add(new Member(s, seen));
            run(ms, seen, 2500);
            ms.add(new Member(s, seen));
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                for (Member m : ms) m.step();
                Set<TopicPartition> all = new HashSet<>();
                ms.forEach(m -> all.addAll(m.c.assignment()));
                if (all.size() == 6 && ms.stream().allMatch(m -> !m.c.assignment().isEmpty())) break;
            }
            Set<TopicPartition> owned = new HashSet<>();
            int count = 0;
            for (Member m : ms) {
                assertTrue(!m.c.assignment().isEmpty(), "every member owns partitions");
                owned.addAll(m.c.assignment());
                count += m.c.assignment().size();
            }
            assertEquals(6, owned.size());
            assertEquals(6, count, "no partition owned twice");
            run(ms, seen, 4000);
            for (int i = 0; i < 2; i++) {
                Member leaving = ms.remove(0);
                leaving.commit();
                leaving.c.close();
                run(ms, seen, i == 0 ? 5000 : total);
            }
            assertEquals(total, seen.size(), "records read");
            assertEquals(total, new HashSet<>(seen).size(), "distinct records read");
            for (Member m : ms) m.c.close();
        }
    }
}
