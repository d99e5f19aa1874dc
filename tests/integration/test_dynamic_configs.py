"""Dynamic configs through confluent-kafka's AdminClient take effect without a
restart: retention follows cleanup.policy (a compact-only topic loses nothing
by age), a broker-wide default changed at run time reaches existing topics, and
both survive a restart."""

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import ck_admin, ck_create_topic, wait_for

FAST_RETENTION = {"log.retention.check.interval.ms": "100", "log.segment.delete.delay.ms": "0"}


def low_watermark(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0]
    finally:
        c.close()


def fill(bootstrap, topic, n=3500):
    """Enough 1000-byte records for three of the smallest segments (1 MiB), with
    distinct keys (a compacted topic refuses records without a key)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(n):
        p.produce(topic, b"r" * 1000, key=str(i).encode(), partition=0)
        p.poll(0)
    assert p.flush(30) == 0


def alter(admin, rtype, name, entries):
    res = ConfigResource(rtype, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    admin.incremental_alter_configs([res])[res].result(30)


def describe(admin, rtype, name):
    res = ConfigResource(rtype, name)
    return admin.describe_configs([res])[res].result(30)


def test_cleanup_policy_governs_retention(make_broker):
    b = make_broker(FAST_RETENTION)
    small = {"segment.bytes": "1048576", "retention.ms": "1"}
    ck_create_topic(b.bootstrap, "deleting", 1, dict(small, **{"cleanup.policy": "delete"}))
    ck_create_topic(b.bootstrap, "compacted", 1, dict(small, **{"cleanup.policy": "compact"}))
    fill(b.bootstrap, "deleting")
    fill(b.bootstrap, "compacted")
    # Retention ran over the deleting topic; then new segments of it went too,
    # in a later pass that ran wholly after both topics were filled.
    first = wait_for(lambda: low_watermark(b.bootstrap, "deleting"), timeout=30, what="retention of 'deleting'")
    fill(b.bootstrap, "deleting")
    wait_for(lambda: low_watermark(b.bootstrap, "deleting") > first, timeout=30, what="a later retention pass")
    assert low_watermark(b.bootstrap, "compacted") == 0

    # Adding "delete" to the policy at run time turns retention on.
    admin = ck_admin(b.bootstrap)
    alter(admin, ResourceType.TOPIC, "compacted", [("cleanup.policy", "delete", AlterConfigOpType.APPEND)])
    assert describe(admin, ResourceType.TOPIC, "compacted")["cleanup.policy"].value == "compact,delete"
    wait_for(lambda: low_watermark(b.bootstrap, "compacted") > 0, timeout=30, what="retention after the change")


def test_dynamic_broker_default_reaches_existing_topics(make_broker):
    b = make_broker(FAST_RETENTION)
    ck_create_topic(b.bootstrap, "plain", 1, {"segment.bytes": "1048576"})
    fill(b.bootstrap, "plain")
    admin = ck_admin(b.bootstrap)
    assert describe(admin, ResourceType.TOPIC, "plain")["retention.ms"].value == "604800000"

    # This broker's dynamic log.retention.ms (hours in server.properties and
    # minutes stay below it), first one minute, then 1 ms.
    alter(admin, ResourceType.BROKER, "1", [("log.retention.ms", "60000", AlterConfigOpType.SET)])
    entry = describe(admin, ResourceType.TOPIC, "plain")["retention.ms"]
    assert (entry.value, entry.source) == ("60000", 2)  # DYNAMIC_BROKER_CONFIG
    assert low_watermark(b.bootstrap, "plain") == 0
    alter(admin, ResourceType.BROKER, "1", [("log.retention.ms", "1", AlterConfigOpType.SET)])
    entry = describe(admin, ResourceType.BROKER, "1")["log.retention.ms"]
    assert (entry.value, entry.source, entry.is_read_only) == ("1", 2, False)
    wait_for(lambda: low_watermark(b.bootstrap, "plain") > 0, timeout=30, what="retention from the broker default")

    # Read-only broker keys are refused, as Kafka refuses them.
    try:
        alter(admin, ResourceType.BROKER, "1", [("num.partitions", "3", AlterConfigOpType.SET)])
        raise AssertionError("num.partitions must not change at run time")
    except Exception as e:  # noqa: BLE001 - the KafkaException carries the error
        assert "INVALID_REQUEST" in str(e) or "dynamically" in str(e), e

    # Everything is in the metadata log: a restart keeps it.
    b.restart()
    admin = ck_admin(b.bootstrap)
    assert describe(admin, ResourceType.BROKER, "1")["log.retention.ms"].value == "1"
    assert describe(admin, ResourceType.TOPIC, "plain")["retention.ms"].source == 2
    alter(admin, ResourceType.BROKER, "1", [("log.retention.ms", None, AlterConfigOpType.DELETE)])
    entry = describe(admin, ResourceType.TOPIC, "plain")["retention.ms"]
    assert (entry.value, entry.source) == ("604800000", 5)  # back to DEFAULT_CONFIG
