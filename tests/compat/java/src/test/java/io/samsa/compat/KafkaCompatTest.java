package io.samsa.compat;

import static io.samsa.compat.AdminConfigTest.awaitTopic;
import static io.samsa.compat.AdminConfigTest.failure;
import static io.samsa.compat.AdminConfigTest.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.junit.jupiter.api.Test;

/**
 * Behaviours where Samsa once differed from Apache Kafka 4.4, seen through the Java client. With
 * SAMSA_TEST_AGAINST_KAFKA=PORT the tests run against a reference Kafka started by
 * bench/kafka-ref/kafka-ref.sh instead of a samsa-server.
 */
class KafkaCompatTest {
    /** KIP-467: a keyless record on a compacted topic fails with its own message, its batch-mates with the batch's. */
    @Test
    void compactedTopicRejectsKeylessRecordsPerRecord() throws Exception {
        try (AdminConfigTest.Target t = new AdminConfigTest.Target(); Admin admin = t.admin()) {
            String name = unique("compact-keys");
            admin.createTopics(List.of(new NewTopic(name, 1, (short) 1).configs(Map.of("cleanup.policy", "compact"))))
                    .all().get();
            awaitTopic(admin, name, 1);
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> p = t.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 1000,
                    ProducerConfig.RETRIES_CONFIG, 0, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false))) {
                acks.add(p.send(new ProducerRecord<>(name, 0, "k0".getBytes(), "v".getBytes())));
                acks.add(p.send(new ProducerRecord<>(name, 0, null, "v".getBytes())));
                acks.add(p.send(new ProducerRecord<>(name, 0, "k2".getBytes(), "v".getBytes())));
                p.flush();
            }
            Throwable keyless = failure(acks.get(1));
            assertInstanceOf(InvalidRecordException.class, keyless);
            assertEquals("Compacted topic cannot accept message without key in topic partition " + name + "-0",
                    keyless.getMessage());
            for (int i : new int[] {0, 2}) {
                Throwable other = failure(acks.get(i));
                assertInstanceOf(KafkaException.class, other);
                assertTrue(other.getMessage().startsWith("Failed to append record because it was part of a batch"),
                        other.getMessage());
            }
        }
    }

    /** KIP-848 group configs: Kafka's defaults, a dynamic value, Kafka's validation. */
    @Test
    void groupConfigs() throws Exception {
        try (AdminConfigTest.Target t = new AdminConfigTest.Target(); Admin admin = t.admin()) {
            ConfigResource g = new ConfigResource(ConfigResource.Type.GROUP, unique("cfg-group"));
            Config all = admin.describeConfigs(List.of(g)).all().get().get(g);
            assertEquals(21, all.entries().size(), all.toString());
            ConfigEntry session = all.get("consumer.session.timeout.ms");
            assertEquals("45000", session.value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, session.source());
            admin.incrementalAlterConfigs(Map.of(g, List.of(new AlterConfigOp(
                    new ConfigEntry("consumer.session.timeout.ms", "50000"), AlterConfigOp.OpType.SET)))).all().get();
            AdminConfigTest.await(() -> "50000".equals(
                    admin.describeConfigs(List.of(g)).all().get().get(g).get("consumer.session.timeout.ms").value()));
            session = admin.describeConfigs(List.of(g)).all().get().get(g).get("consumer.session.timeout.ms");
            assertEquals("50000", session.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_GROUP_CONFIG, session.source());
            Throwable bad = failure(admin.incrementalAlterConfigs(Map.of(g, List.of(new AlterConfigOp(
                    new ConfigEntry("consumer.session.timeout.ms", "1000"), AlterConfigOp.OpType.SET)))).all());
            assertInstanceOf(InvalidConfigurationException.class, bad);
            assertEquals("consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.", bad.getMessage());
        }
    }

    /** Client quotas round-trip (stored, not enforced by Samsa); ACLs answer SECURITY_DISABLED. */
    @Test
    void clientQuotasAndAcls() throws Exception {
        try (AdminConfigTest.Target t = new AdminConfigTest.Target(); Admin admin = t.admin()) {
            String user = unique("user");
            ClientQuotaEntity entity = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, user));
            admin.alterClientQuotas(List.of(new ClientQuotaAlteration(entity, List.of(
                    new ClientQuotaAlteration.Op("producer_byte_rate", 1024.0),
                    new ClientQuotaAlteration.Op("request_percentage", 12.5))))).all().get();
            AdminConfigTest.await(() -> !admin.describeClientQuotas(ClientQuotaFilter.contains(List.of(
                    org.apache.kafka.common.quota.ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, user))))
                    .entities().get().isEmpty());
            Map<ClientQuotaEntity, Map<String, Double>> got = admin.describeClientQuotas(ClientQuotaFilter.contains(
                    List.of(org.apache.kafka.common.quota.ClientQuotaFilterComponent.ofEntity(
                            ClientQuotaEntity.USER, user)))).entities().get();
            assertEquals(Map.of(entity, Map.of("producer_byte_rate", 1024.0, "request_percentage", 12.5)), got);
            assertInstanceOf(SecurityDisabledException.class,
                    failure(admin.describeAcls(AclBindingFilter.ANY).values()));
        }
    }

    /** Admin.describeTopics goes through DescribeTopicPartitions; describeFeatures through ApiVersions. */
    @Test
    void describeTopicsAndFeatures() throws Exception {
        try (AdminConfigTest.Target t = new AdminConfigTest.Target(); Admin admin = t.admin()) {
            String name = unique("described");
            AdminConfigTest.createTopic(admin, name, 3);
            TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
            assertEquals(List.of(0, 1, 2), d.partitions().stream().map(p -> p.partition()).collect(Collectors.toList()));
            FeatureMetadata f = admin.describeFeatures().featureMetadata().get();
            assertEquals((short) 33, f.finalizedFeatures().get("metadata.version").maxVersionLevel());
            assertTrue(f.finalizedFeaturesEpoch().isPresent() && f.finalizedFeaturesEpoch().get() >= 0);
            assertTrue(f.supportedFeatures().keySet().containsAll(List.of("metadata.version", "kraft.version",
                    "group.version", "transaction.version", "eligible.leader.replicas.version", "share.version",
                    "streams.version")), f.toString());
        }
    }
}
