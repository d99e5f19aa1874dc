"""Replication throttles (issue 13, KIP-73) on a three-node cluster: Kafka 4.4's
kafka-reassign-partitions.sh --execute --throttle adds a replica to a partition holding
32 MiB and sets the leader and follower rates of the brokers and the throttled-replicas
lists of the topic; the new replica then receives no more than rate x elapsed (plus a few
fetches of burst) for as long as it is measured, whatever the machine's speed; the configs
are described as Kafka describes them (per broker, cluster-wide default) and bad lists are
refused; once the rates are removed (confluent-kafka's AdminClient, kafka-configs.sh) the
replica joins the ISR, the move completes, and --verify clears the throttle configs."""

import json
import os
import shutil
import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigResource, ConfigSource,
                                   NewTopic, ResourceType)

from helpers import kafka_tool_runner, wait_for
from test_dynamic_configs import alter, describe
from test_replication import cluster, log_bytes, partition_md  # noqa: F401 (the fixture)

RATE = 1 << 20           # bytes/s, leader and follower
FETCH_MAX = 1 << 20      # replica.fetch.max.bytes: what one admitted fetch may bring
BURST = 3 * FETCH_MAX    # the fetches admitted before the measured rate crosses the bound
DATA = 32 << 20          # what the partition holds
MEASURE_S = 12           # how long the new replica is watched under the throttle
LEADER_LIST = "leader.replication.throttled.replicas"
FOLLOWER_LIST = "follower.replication.throttled.replicas"
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE


def fill(c, topic):
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                  "compression.type": "none", "message.timeout.ms": 120000})
    chunk = 100 << 10
    for _ in range(DATA // chunk):
        while True:
            try:
                p.produce(topic, os.urandom(chunk), partition=0)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_reassignment_throttled_then_released(cluster, tmp_path):  # noqa: F811
    tools = kafka_tool_runner(tmp_path)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("thr", 1, replica_assignment=[[1, 2]])])["thr"].result(20)
    wait_for(lambda: (partition_md(cluster, "thr") or (0, [], []))[2] == [1, 2], timeout=30,
             what="thr-0 on brokers 1 and 2, both in sync")
    fill(cluster, "thr")
    held = log_bytes(cluster, 1, "thr")
    assert held >= DATA - (100 << 10), held

    # The rates are dynamic broker configs, per broker or cluster-wide, described with
    # their source; a throttled-replicas list must be '*' or partition:broker pairs.
    def configs(*args):
        return tools("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server",
                     cluster.node(2).bootstrap, "--entity-type", "brokers", *args)
    code, out, err = configs("--entity-default", "--alter", "--add-config",
                             f"{FOLLOWER_RATE}=2097152")
    assert code == 0, (out, err)
    got = wait_for(lambda: (lambda e: e.value == "2097152" and e)(
        describe(admin, ResourceType.BROKER, "3")[FOLLOWER_RATE]), timeout=10,
        what="the cluster-wide rate on broker 3")
    assert got.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, got
    assert describe(admin, ResourceType.BROKER, "3")[LEADER_RATE].value == str(2**63 - 1)
    with pytest.raises(KafkaException) as e:
        alter(admin, ResourceType.TOPIC, "thr", [(LEADER_LIST, "0:one", SET)])
    assert e.value.args[0].code() == 40, e.value  # INVALID_CONFIG
    assert "must be the literal '*' or a list of replicas" in e.value.args[0].str()
    with pytest.raises(KafkaException) as e:
        alter(admin, ResourceType.BROKER, "3", [(FOLLOWER_RATE, "-1", SET)])
    assert FOLLOWER_RATE in e.value.args[0].str(), e.value  # below its minimum, 0

    def reassign(*args):
        return tools("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                     "--bootstrap-server", cluster.node(1).bootstrap, *args)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "thr", "partition": 0, "replicas": [1, 2, 3]}]}))
    start = time.monotonic()  # before the tool sets anything: elapsed is never understated
    code, out, err = reassign("--reassignment-json-file", str(plan), "--execute",
                              "--throttle", str(RATE))
    assert code == 0 and "The inter-broker throttle limit was set to 1048576 B/s" in out, (
        out, err)
    assert "Successfully started partition reassignment for thr-0" in out, (out, err)

    # What the tool set: each broker's rates, the sources (1, 2) and the new replica (3).
    for broker in ("1", "2", "3"):
        cfg = describe(admin, ResourceType.BROKER, broker)
        for key in (LEADER_RATE, FOLLOWER_RATE):
            assert cfg[key].value == str(RATE), (broker, key, cfg[key])
            assert cfg[key].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, cfg[key]
    topic_cfg = describe(admin, ResourceType.TOPIC, "thr")
    assert topic_cfg[LEADER_LIST].value == "0:1,0:2", topic_cfg[LEADER_LIST]
    assert topic_cfg[FOLLOWER_LIST].value == "0:3", topic_cfg[FOLLOWER_LIST]

    # The upper bound, sampled until MEASURE_S have passed: a slow machine copies less,
    # never more; unthrottled, the 32 MiB would be there within a few seconds.
    wait_for(lambda: log_bytes(cluster, 3, "thr") > 0, timeout=60,
             what="broker 3 fetching thr-0")
    worst = None
    while True:
        copied = log_bytes(cluster, 3, "thr")
        elapsed = time.monotonic() - start
        bound = RATE * max(elapsed, 1.0) + BURST
        assert copied <= bound, (
            f"{copied} bytes on broker 3 after {elapsed:.1f} s; at most {bound:.0f} expected")
        worst = max(worst or 0, copied / (RATE * elapsed))
        if elapsed >= MEASURE_S:
            break
        time.sleep(0.2)  # the next sample; nothing waits on it
    assert 3 not in partition_md(cluster, "thr")[2]
    print(f"throttled: {copied} bytes on broker 3 after {elapsed:.1f} s "
          f"(highest ratio to rate x elapsed {worst:.2f})")

    # The rates removed: the replica catches up and joins the ISR, the move completes.
    for broker in ("1", "2", "3"):
        alter(admin, ResourceType.BROKER, broker, [(LEADER_RATE, None, DELETE),
                                                   (FOLLOWER_RATE, None, DELETE)])
    code, out, err = configs("--entity-default", "--alter", "--delete-config", FOLLOWER_RATE)
    assert code == 0, (out, err)
    wait_for(lambda: (lambda m: m and m[1] == [1, 2, 3] and sorted(m[2]) == [1, 2, 3])(
        partition_md(cluster, "thr")), timeout=180, interval=0.5,
        what="broker 3 in the ISR of thr-0")
    wait_for(lambda: log_bytes(cluster, 3, "thr") == held, timeout=30,
             what="broker 3 holding the leader's bytes")

    code, out, err = reassign("--reassignment-json-file", str(plan), "--verify")
    assert code == 0 and "Reassignment of partition thr-0 is completed" in out, (out, err)
    assert "Clearing broker-level throttles on brokers 1,2,3" in out, (out, err)
    assert "Clearing topic-level throttles on topic thr" in out, (out, err)
    topic_cfg = describe(admin, ResourceType.TOPIC, "thr")
    for key in (LEADER_LIST, FOLLOWER_LIST):
        assert topic_cfg[key].value == "", topic_cfg[key]
        assert topic_cfg[key].source == ConfigSource.DEFAULT_CONFIG.value, topic_cfg[key]
    cfg = describe(admin, ResourceType.BROKER, "2")
    assert cfg[LEADER_RATE].source == ConfigSource.DEFAULT_CONFIG.value, cfg[LEADER_RATE]
