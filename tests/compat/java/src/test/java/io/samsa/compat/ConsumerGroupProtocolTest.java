package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/** The Java consumer with group.protocol=consumer (KIP-848): members join and leave one by one while
 *  consuming; each commits what it processed before its partitions go, so no record is read twice. */
class ConsumerGroupProtocolTest {
    static void run(List<GroupMigrationTest.Member> ms, List<String> seen, int want) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen.size() < want && System.currentTimeMillis() < deadline) for (GroupMigrationTest.Member m : ms) m.step();
    }

    @Test
    void membersJoinAndLeaveOneByOne() throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0",
                "group.consumer.heartbeat.interval.ms=300", "group.consumer.min.heartbeat.interval.ms=100",
                "group.consumer.min.session.timeout.ms=1000", "group.consumer.session.timeout.ms=6000")) {
            int total = 6000;
            GroupsTest.produce(s, "j848", 6, total);
            List<String> seen = new ArrayList<>();
            List<GroupMigrationTest.Member> ms = new ArrayList<>();
            ms.add(new GroupMigrationTest.Member(s, "jg848", "j848", "consumer", seen));
            run(ms, seen, 1000);
            ms.add(new GroupMigrationTest.Member(s, "jg848", "j848", "consumer", seen));
            run(ms, seen, 2500);
            ms.add(new GroupMigrationTest.Member(s, "jg848", "j848", "consumer", seen));
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                for (GroupMigrationTest.Member m : ms) m.step();
                Set<TopicPartition> all = new HashSet<>();
                ms.forEach(m -> all.addAll(m.c.assignment()));
                if (all.size() == 6 && ms.stream().allMatch(m -> !m.c.assignment().isEmpty())) break;
            }
            Set<TopicPartition> owned = new HashSet<>();
            int count = 0;
            for (GroupMigrationTest.Member m : ms) {
                assertTrue(!m.c.assignment().isEmpty(), "every member owns partitions");
                owned.addAll(m.c.assignment());
                count += m.c.assignment().size();
            }
            assertEquals(6, owned.size());
            assertEquals(6, count, "no partition owned twice");
            run(ms, seen, 4000);
            for (int i = 0; i < 2; i++) {
                GroupMigrationTest.Member leaving = ms.remove(0);
                leaving.commit();
                leaving.c.close();
                run(ms, seen, i == 0 ? 5000 : total);
            }
            assertEquals(total, seen.size(), "records read");
            assertEquals(total, new HashSet<>(seen).size(), "distinct records read");
            for (GroupMigrationTest.Member m : ms) m.c.close();
        }
    }
}
