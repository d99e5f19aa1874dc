"""Apache Kafka 4.4's own command-line tools against samsa-server: kafka-features
(FeatureCommand), kafka-acls (AclCommand), kafka-configs (ConfigCommand) for
client quotas, group configs and dynamic broker configs, and kafka-topics
(TopicCommand, which describes through DescribeTopicPartitions). The tools run
from the Kafka 4.4 jars that bench/kafka-ref/kafka-ref.sh resolves from Maven
Central; the expected output is what the same commands print against Kafka
4.4 (except where Samsa's features differ: see docs/broker.md). Skipped when
Java is missing."""

import shutil

import pytest

from helpers import ck_create_topic, kafka_tool_runner

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Java is missing")


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    """tool(main_class, *args) -> (exit code, stdout + stderr) of a Kafka tool."""
    run = kafka_tool_runner(tmp_path_factory.mktemp("tools"))

    def both(main, *args):
        rc, out, err = run(main, *args)
        return rc, out + err
    return both


FEATURES = "org.apache.kafka.tools.FeatureCommand"
ACLS = "org.apache.kafka.tools.AclCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"
TOPICS = "org.apache.kafka.tools.TopicCommand"


def feature_lines(out):
    """{feature: (supported min, supported max, finalized)} of kafka-features describe."""
    got = {}
    for line in out.splitlines():
        f = line.split()
        if line.startswith("Feature:"):
            got[f[1]] = (f[3], f[5], f[7])
    return got


def test_features_and_acls(make_broker, tool):
    b = make_broker({"node.id": "1"})
    boot = ["--bootstrap-server", b.bootstrap]
    rc, out = tool(FEATURES, *boot, "describe")
    assert rc == 0, out
    # Kafka 4.4 lists the same seven features; Samsa supports level 0 of all
    # but metadata.version, transaction.version and eligible.leader.replicas.version
    # (see docs/broker.md).
    assert feature_lines(out) == {
        "metadata.version": ("4.4-IV2", "4.4-IV2", "4.4-IV2"),
        "kraft.version": ("0", "0", "0"),
        "group.version": ("0", "0", "0"),
        "transaction.version": ("0", "2", "2"),
        "eligible.leader.replicas.version": ("0", "1", "1"),
        "share.version": ("0", "0", "0"),
        "streams.version": ("0", "0", "0"),
    }, out
    # A feature finalized by default can be turned off (a level 0 record is kept).
    rc, out = tool(FEATURES, *boot, "downgrade", "--feature", "eligible.leader.replicas.version=0")
    assert rc == 0, out
    rc, out = tool(FEATURES, *boot, "describe")
    assert feature_lines(out)["eligible.leader.replicas.version"] == ("0", "1", "0"), out
    rc, out = tool(FEATURES, *boot, "upgrade", "--feature", "group.version=1")
    assert rc != 0 and "Invalid update version 1 for feature group.version. " \
        "Controller supports versions 0-0" in out, out
    # Written as a FeatureLevelRecord; a release version would also ask for
    # group.version 1 and the like, which Samsa refuses as above.
    rc, out = tool(FEATURES, *boot, "upgrade", "--feature", "metadata.version=33")
    assert rc == 0 and "metadata.version was upgraded to 33" in out, out
    # As Kafka without an authorizer: SECURITY_DISABLED, not an unknown API.
    rc, out = tool(ACLS, *boot, "--list")
    assert rc != 0 and "SecurityDisabledException: No Authorizer is configured on the broker" in out, out
    rc, out = tool(ACLS, *boot, "--add", "--allow-principal", "User:alice", "--operation", "Read",
                   "--topic", "t")
    assert "SecurityDisabledException" in out, out


def test_configs_quotas_groups_brokers_survive_restart(make_broker, tool):
    b = make_broker({"node.id": "1"})
    boot = ["--bootstrap-server", b.bootstrap]

    def configs(*args):
        rc, out = tool(CONFIGS, *boot, *args)
        return rc, out

    # Client quotas (stored, not enforced).
    assert configs("--alter", "--entity-type", "users", "--entity-name", "bob", "--add-config",
                   "producer_byte_rate=1024,consumer_byte_rate=2048")[0] == 0
    assert configs("--alter", "--entity-type", "clients", "--entity-default", "--add-config",
                   "request_percentage=50.5")[0] == 0
    rc, out = configs("--alter", "--entity-type", "users", "--entity-name", "bob", "--add-config",
                      "producer_byte_rate=1.5")
    assert rc != 0 and "producer_byte_rate cannot be a fractional value." in out, out
    # Group configs (KIP-848): validated as Kafka does.
    assert configs("--alter", "--entity-type", "groups", "--entity-name", "g1", "--add-config",
                   "consumer.session.timeout.ms=50000")[0] == 0
    rc, out = configs("--alter", "--entity-type", "groups", "--entity-name", "g1", "--add-config",
                      "consumer.heartbeat.interval.ms=20000")
    assert rc != 0 and "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive." in out
    # Dynamic broker keys Kafka accepts; Samsa stores and reports them.
    assert configs("--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config",
                   "num.io.threads=4,log.cleaner.threads=2,"
                   "listener.name.plaintext.ssl.keystore.password=secret")[0] == 0
    rc, out = configs("--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config",
                      "ssl.keystore.password=x")
    assert rc != 0 and "only per-listener using the listener prefix: [ssl.keystore.password]" in out

    def check_stored():
        """What must survive a restart: quotas, group configs, broker configs."""
        rc, out = configs("--describe", "--entity-type", "users")
        assert rc == 0 and "Quota configs for user-principal 'bob' are consumer_byte_rate=2048.0, " \
            "producer_byte_rate=1024.0" in out, out
        rc, out = configs("--describe", "--entity-type", "groups", "--entity-name", "g1")
        assert rc == 0 and "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:" \
            "consumer.session.timeout.ms=50000, DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000}" in out, out
        rc, out = configs("--describe", "--entity-type", "brokers", "--entity-name", "1")
        assert rc == 0, out
        assert "num.io.threads=4 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:num.io.threads=4, " \
            "DEFAULT_CONFIG:num.io.threads=8}" in out, out
        assert "log.cleaner.threads=2 sensitive=false" in out, out
        assert "listener.name.plaintext.ssl.keystore.password=null sensitive=true" in out, out

    rc, out = configs("--describe", "--entity-type", "clients")
    assert rc == 0 and "Quota configs for the default client-id are request_percentage=50.5" in out, out
    rc, out = configs("--describe", "--entity-type", "groups", "--entity-name", "g2", "--all")
    assert rc == 0 and "share.auto.offset.reset=latest sensitive=false " \
        "synonyms={DEFAULT_CONFIG:share.auto.offset.reset=latest}" in out, out
    assert len([line for line in out.splitlines() if "synonyms=" in line]) == 21, out
    check_stored()
    b.restart()
    check_stored()


def test_topics_describe(make_broker, tool):
    """kafka-topics --describe goes through DescribeTopicPartitions in Kafka 4."""
    b = make_broker({"node.id": "1"})
    ck_create_topic(b.bootstrap, "described", 3, {"cleanup.policy": "compact"})
    rc, out = tool(TOPICS, "--bootstrap-server", b.bootstrap, "--describe", "--topic", "described")
    assert rc == 0, out
    lines = [line.split() for line in out.splitlines()]
    head = [f for f in lines if f and f[0] == "Topic:" and "PartitionCount:" in f][0]
    assert head[head.index("PartitionCount:") + 1] == "3" and "cleanup.policy=compact" in out, out
    parts = [f for f in lines if f and f[0] == "Topic:" and "Partition:" in f]
    assert [(f[3], f[5], f[7], f[9]) for f in parts] == [(str(p), "1", "1", "1") for p in range(3)], out
