package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.HashSet;
import java.util.Properties;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;

/** Regex subscriptions of the Java consumer with group.protocol=consumer (KIP-848): the broker-side RE2J
 *  pattern (subscribe(SubscriptionPattern), sent as SubscribedTopicRegex) and the client-side
 *  java.util.regex one (subscribe(Pattern), sent as topic names). Both read the topics that match,
 *  including one created after the member joined, and nothing else. */
class RegexSubscriptionTest {
    static Set<String> poll(KafkaConsumer<String, String> c, Set<String> seen, int want) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen.size() < want && System.currentTimeMillis() < deadline)
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) seen.add(r.topic() + "/" + r.value());
        return seen;
    }

    static void picksUpLaterTopic(String prefix, Consumer<KafkaConsumer<String, String>> subscribe)
            throws Exception {
        try (SamsaServer s = new SamsaServer("group.initial.rebalance.delay.ms=0",
                "group.consumer.heartbeat.interval.ms=300", "group.consumer.min.heartbeat.interval.ms=100",
                "group.consumer.min.session.timeout.ms=1000")) {
            GroupsTest.produce(s, prefix + "-a", 2, 100);
            GroupsTest.produce(s, "other-" + prefix, 1, 50);
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap());
            p.put(ConsumerConfig.GROUP_ID_CONFIG, "g-" + prefix);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "500");
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
                subscribe.accept(c);
                Set<String> seen = poll(c, new HashSet<>(), 100);
                assertEquals(100, seen.size(), "records of the topic matching at the start");
                GroupsTest.produce(s, prefix + "-b", 2, 100);
                poll(c, seen, 200);
                assertEquals(200, seen.size(), "records of both matching topics");
                assertEquals(0, seen.stream().filter(v -> v.startsWith("other-")).count(), "non-matching topic read");
            }
        }
    }

    @Test
    void brokerSidePatternPicksUpTopicCreatedLater() throws Exception {
        picksUpLaterTopic("rxj", c -> c.subscribe(new SubscriptionPattern("rxj-.*")));
    }

    @Test
    void clientSidePatternPicksUpTopicCreatedLater() throws Exception {
        picksUpLaterTopic("rxc", c -> c.subscribe(Pattern.compile("rxc-.*")));
    }
}
