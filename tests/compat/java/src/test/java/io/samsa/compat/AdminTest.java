package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;
import org.junit.jupiter.api.Test;

/** AdminClient createTopics / describeTopics / deleteTopics. */
class AdminTest {
    @Test
    void createDescribeDeleteTopics() throws Exception {
        try (SamsaServer server = new SamsaServer()) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, server.bootstrap());
            try (Admin admin = Admin.create(p)) {
                admin.createTopics(List.of(new NewTopic("orders", 3, (short) 1),
                        new NewTopic("audit", 1, (short) 1).configs(Map.of("retention.ms", "3600000")))).all().get();
                ExecutionException dup = assertThrows(ExecutionException.class,
                        () -> admin.createTopics(List.of(new NewTopic("orders", 1, (short) 1))).all().get());
                assertInstanceOf(TopicExistsException.class, dup.getCause());

                Set<String> names = admin.listTopics().names().get();
                assertTrue(names.containsAll(Set.of("orders", "audit")), names.toString());

                Map<String, TopicDescription> desc = admin.describeTopics(List.of("orders")).allTopicNames().get();
                TopicDescription d = desc.get("orders");
                assertEquals(3, d.partitions().size());
                d.partitions().forEach(tp -> {
                    assertEquals(1, tp.leader().id());
                    assertEquals(1, tp.replicas().size());
                    assertEquals(1, tp.isr().size());
                });
                assertFalse(d.isInternal());

                admin.deleteTopics(List.of("orders")).all().get();
                Set<String> after = admin.listTopics().names().get();
                assertFalse(after.contains("orders"), after.toString());
                assertTrue(after.contains("audit"));
                assertFalse(after.contains("__consumer_offsets"), "internal topics are listed only when asked");

                // The offsets topic is internal, as Kafka's.
                Set<String> all = admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
                assertTrue(all.contains("__consumer_offsets"), all.toString());
                TopicDescription offsets = admin.describeTopics(List.of("__consumer_offsets"))
                        .allTopicNames().get().get("__consumer_offsets");
                assertTrue(offsets.isInternal());
                assertEquals(50, offsets.partitions().size());
            }
        }
    }
}
