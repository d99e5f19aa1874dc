package io.samsa.compat;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/**
 * A source connector for ConnectDistributedTest: one task writing "0", "1", "2"... to the topic
 * of its "topic" setting, with source offset {"n": value}; after a restart it resumes after the
 * offset Connect stored (from the worker's offset topic).
 */
public class CountingSource extends SourceConnector {
    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        this.props = props;
    }

    @Override
    public Class<? extends Task> taskClass() {
        return CountingTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        return List.of(props);
    }

    @Override
    public void stop() {}

    @Override
    public ConfigDef config() {
        return new ConfigDef().define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "target topic");
    }

    @Override
    public String version() {
        return "1";
    }

    /** The task: batches of 10 values, at most one batch per 20 ms. */
    public static class CountingTask extends SourceTask {
        static final Map<String, String> PARTITION = Map.of("source", "counter");
        private String topic;
        private long next;

        @Override
        public String version() {
            return "1";
        }

        @Override
        public void start(Map<String, String> props) {
            topic = props.get("topic");
            Map<String, Object> stored = context.offsetStorageReader().offset(PARTITION);
            next = stored == null ? 0 : ((Number) stored.get("n")).longValue() + 1;
        }

        @Override
        public List<SourceRecord> poll() throws InterruptedException {
            Thread.sleep(20); // a rate for the test's records, not synchronisation
            List<SourceRecord> out = new java.util.ArrayList<>();
            for (int i = 0; i < 10; i++, next++)
                out.add(new SourceRecord(PARTITION, Map.of("n", next), topic, 0, null, null,
                        Schema.STRING_SCHEMA, Long.toString(next)));
            return out;
        }

        @Override
        public void stop() {}
    }
}
