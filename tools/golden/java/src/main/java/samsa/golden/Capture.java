// Golden-vector scenario for the Java client, run by tools/golden/capture.sh
// through the recording proxy: AdminClient createTopics, a KafkaProducer with
// default settings (idempotent, so InitProducerId) sending keyed records with
// headers and one null value, and a KafkaConsumer with assign +
// seekToBeginning polling them back. Not a test: it only drives the traffic.
package samsa.golden;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class Capture {
    private static final String TOPIC = "golden-java";
    private static final int RECORDS = 5;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];

        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get();
        }

        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<String, String> r =
                        new ProducerRecord<>(TOPIC, 0, "key-" + i, i == 3 ? null : "value-" + i);
                r.headers().add("h" + i, ("hv" + i).getBytes(StandardCharsets.UTF_8));
                producer.send(r);
            }
            producer.flush();
        }

        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            int got = 0;
            int nulls = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (got < RECORDS && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got++;
                    if (r.value() == null) nulls++;
                }
            }
            if (got != RECORDS || nulls != 1) {
                throw new IllegalStateException("consumed " + got + " records, " + nulls + " null");
            }
        }
        System.out.println("java scenario: produced and consumed " + RECORDS + " records");
    }
}
