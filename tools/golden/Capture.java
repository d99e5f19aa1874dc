// Golden-vector scenario for the Java client: AdminClient createTopics, a
// KafkaProducer with default settings (idempotent) sending records with
// headers, and a KafkaConsumer with assign + seekToBeginning reading them back.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Capture {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic("golden-java", 1, (short) 1))).all().get();
        }
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        pp.put("linger.ms", "50");
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 5; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>("golden-java", 0, "key-" + i,
                        i == 3 ? null : "value-" + i);
                r.headers().add("h" + i, ("hv" + i).getBytes(StandardCharsets.UTF_8));
                prod.send(r);
            }
            prod.flush();
        }
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> cons = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition("golden-java", 0);
            cons.assign(List.of(tp));
            cons.seekToBeginning(List.of(tp));
            int got = 0;
            long deadline = System.currentTimeMillis() + 20000;
            while (got < 5 && System.currentTimeMillis() < deadline) got += cons.poll(Duration.ofMillis(200)).count();
            if (got < 5) throw new IllegalStateException("consumed " + got);
        }
    }
}
