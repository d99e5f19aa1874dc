"""kafka-python's admin client (its own protocol code, separate from librdkafka
and the Java client) drives the admin API: cluster, legacy AlterConfigs of a
broker default seen through a topic's DescribeConfigs with synonyms,
CreatePartitions, DeleteRecords, DescribeLogDirs, ElectLeaders and
DescribeProducers."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic


def test_kafka_python_admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        a.create_topics([NewTopic("kpa", 1, 1)])
        cluster = a.describe_cluster()
        assert cluster["controller_id"] == 1
        assert [(x["broker_id"], x["port"]) for x in cluster["brokers"]] == [(1, broker.port)]

        assert a.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1",
                                               configs={"log.retention.ms": "60000"})]) == {"broker": {"1": "OK"}}
        d = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kpa")], include_synonyms=True,
                               config_filter="all")["topic"]["kpa"]
        ret = d["retention.ms"]
        assert (ret["value"], ret["config_source"]) == ("60000", "DYNAMIC_BROKER_CONFIG")
        assert {"name": "log.retention.ms", "value": "60000", "source": "DYNAMIC_BROKER_CONFIG"} in ret["synonyms"]
        assert d["segment.bytes"]["value"] == "1073741824"

        a.create_partitions({"kpa": NewPartitions(3)})
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        for _ in range(10):
            p.send("kpa", b"x" * 100, partition=2)
        p.flush()
        p.close()

        low = a.delete_records({TopicPartition("kpa", 2): 4})[TopicPartition("kpa", 2)]
        assert (low["error_code"], low["low_watermark"]) == (0, 4)
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap)
        assert c.beginning_offsets([TopicPartition("kpa", 2)])[TopicPartition("kpa", 2)] == 4
        c.close()

        dirs = a.describe_log_dirs()[0]["log_dirs"]
        assert len(dirs) == 1 and dirs[0]["error_code"] == 0 and dirs[0]["usable_bytes"] > 0
        sizes = {(t["name"], q["partition_index"]): q["partition_size"] for t in dirs[0]["topics"]
                 for q in t["partitions"]}
        assert sizes[("kpa", 2)] > 1000 and sizes[("kpa", 0)] == 0

        producers = a.describe_producers([TopicPartition("kpa", 2)])[TopicPartition("kpa", 2)].active_producers
        assert len(producers) == 1 and producers[0].last_sequence == 9
    finally:
        a.close()
