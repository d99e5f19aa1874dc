"""The newest versions Kafka 4.4 serves, sent raw at exactly that version, and
what their new fields carry: Metadata v13's top-level error code, ApiVersions
v5's cluster/node check (KIP-1242), DescribeCluster v2's fenced brokers
(KIP-1073), DescribeLogDirs v5's capacity and cordon fields, ListOffsets v11's
earliest-pending-upload timestamp (KIP-1023), DeleteGroups v3's error message
and OffsetCommit/OffsetFetch v10's topic ids. Produce v13 and Fetch v18 (topic
ids) are what the Java client of 4.4 uses (tests/compat/java, golden vectors)."""

import os
import uuid

import raw_kafka
from helpers import ck_create_topic, ck_produce, wait_for

METADATA, OFFSET_COMMIT, OFFSET_FETCH, LIST_OFFSETS = 3, 8, 9, 2
API_VERSIONS, DELETE_GROUPS, DESCRIBE_LOG_DIRS, DESCRIBE_CLUSTER = 18, 42, 35, 60
REBOOTSTRAP_REQUIRED, UNKNOWN_TOPIC_ID, GROUP_ID_NOT_FOUND = 129, 100, 69


def W():
    return raw_kafka.Writer(True)


def metadata_v13(port, topic):
    """(top-level error code, cluster id, node ids, {topic: topic id bytes})."""
    body = W().array([topic], lambda w, t: w.out.extend(bytes(16)) or w.string(t).tags())
    body.raw("?", False).raw("?", False).tags()
    r = raw_kafka.exchange(port, METADATA, 13, body.out, True)
    r.raw("i")
    nodes = r.array(lambda r: (r.raw("i"), r.string(), r.raw("i"), r.string(), r.tags())[0])
    cluster_id = r.string()
    r.raw("i")

    def partition(r):
        r.raw("h"), r.raw("i"), r.raw("i"), r.raw("i")
        for _ in range(3):
            r.array(lambda r: r.raw("i"))
        r.tags()

    def topic_entry(r):
        err, name = r.raw("h"), r.string()
        tid = r.data[r.pos:r.pos + 16]
        r.pos += 16
        r.raw("?")
        r.array(partition)
        r.raw("i")
        r.tags()
        return name, (err, tid)

    topics = dict(r.array(topic_entry))
    err = r.raw("h")
    r.tags()
    return err, cluster_id, nodes, topics


def topic_id(port, topic):
    wait_for(lambda: metadata_v13(port, topic)[3][topic][0] == 0, what="topic in metadata")
    return metadata_v13(port, topic)[3][topic][1]


def test_metadata_v13_top_level_error_code(broker):
    ck_create_topic(broker.bootstrap, "m13", 1)
    err, cluster_id, nodes, topics = metadata_v13(broker.port, "m13")
    assert err == 0 and cluster_id and nodes == [1]
    assert topics["m13"][0] == 0 and topics["m13"][1] != bytes(16)


def api_versions_v5(port, cluster_id, node_id):
    body = W().string("raw").string("1").string(cluster_id).raw("i", node_id).tags()
    r = raw_kafka.exchange(port, API_VERSIONS, 5, body.out, True)
    r.flexible = True
    err = r.raw("h")
    keys = r.array(lambda r: (r.raw("h"), r.raw("h"), r.raw("h"), r.tags())[0])
    return err, keys


def test_api_versions_v5_checks_cluster_and_node(broker):
    _, cluster_id, _, _ = metadata_v13(broker.port, "x")
    err, keys = api_versions_v5(broker.port, cluster_id, 1)
    assert err == 0 and API_VERSIONS in keys
    # Not known yet (null cluster id, node -1): no check.
    assert api_versions_v5(broker.port, None, -1)[0] == 0
    # Another cluster, or another node of this one: look for the cluster again.
    assert api_versions_v5(broker.port, "another-cluster-id", 1) == (REBOOTSTRAP_REQUIRED, [])
    assert api_versions_v5(broker.port, cluster_id, 7) == (REBOOTSTRAP_REQUIRED, [])


def test_describe_cluster_v2_fenced_brokers(broker):
    for include_fenced in (False, True):
        body = W().raw("?", False).raw("b", 1).raw("?", include_fenced).tags()
        r = raw_kafka.exchange(broker.port, DESCRIBE_CLUSTER, 2, body.out, True)
        r.raw("i")
        assert (r.raw("h"), r.string(), r.raw("b")) == (0, None, 1)
        r.string()
        assert r.raw("i") == 1
        brokers = r.array(lambda r: (r.raw("i"), r.string(), r.raw("i"), r.string(), r.raw("?"), r.tags()))
        # One broker, serving, so unfenced; no fenced broker exists to add.
        assert [(b[0], b[2], b[4]) for b in brokers] == [(1, broker.port, False)]


def test_describe_log_dirs_v5_capacity(broker):
    ck_create_topic(broker.bootstrap, "dirs5", 1)
    body = W().length(None, "i").tags()
    r = raw_kafka.exchange(broker.port, DESCRIBE_LOG_DIRS, 5, body.out, True)
    r.raw("i")
    assert r.raw("h") == 0

    def result(r):
        err, log_dir = r.raw("h"), r.string()
        topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.raw("i"), r.raw("q"), r.raw("q"),
                                                                     r.raw("?"), r.tags())), r.tags())[0])
        total, usable, cordoned = r.raw("q"), r.raw("q"), r.raw("?")
        r.tags()
        return err, log_dir, topics, total, usable, cordoned

    [(err, log_dir, topics, total, usable, cordoned)] = r.array(result)
    assert err == 0 and "dirs5" in topics and cordoned is False
    st = os.statvfs(log_dir)
    assert total == st.f_blocks * st.f_frsize
    assert 0 < usable <= total


def test_list_offsets_v11_earliest_pending_upload(broker):
    ck_create_topic(broker.bootstrap, "lo11", 1)
    ck_produce(broker.bootstrap, "lo11", [(None, b"a", None), (None, b"b", None)], partition=0)

    def list_offsets(ts):
        part = lambda w, _: w.raw("i", 0).raw("i", -1).raw("q", ts).tags()
        body = W().raw("i", -1).raw("b", 0).array(["lo11"], lambda w, t: w.string(t).array([0], part).tags())
        body.raw("i", 5000).tags()
        r = raw_kafka.exchange(broker.port, LIST_OFFSETS, 11, body.out, True)
        r.raw("i")
        [[p]] = r.array(lambda r: (r.string(), r.array(lambda r: (r.raw("i"), r.raw("h"), r.raw("q"), r.raw("q"),
                                                                  r.raw("i"), r.tags())), r.tags())[1])
        return p[1], p[3]

    assert list_offsets(-1) == (0, 2)
    assert list_offsets(-2) == (0, 0)
    # No tiered storage: nothing pends upload (Kafka answers -1 too).
    assert list_offsets(-6) == (0, -1)
    # An unknown special timestamp is refused.
    assert list_offsets(-7)[0] == 42  # INVALID_REQUEST


def test_offset_commit_and_fetch_v10_by_topic_id(broker):
    ck_create_topic(broker.bootstrap, "oc10", 2)
    tid = topic_id(broker.port, "oc10")
    unknown = uuid.uuid4().bytes

    def commit(topics):
        part = lambda w, p: w.raw("i", p[0]).raw("q", p[1]).raw("i", -1).string("m").tags()
        body = W().string("g10").raw("i", -1).string("").string(None)
        body.array(topics, lambda w, t: w.out.extend(t[0]) or w.array(t[1], part).tags()).tags()
        r = raw_kafka.exchange(broker.port, OFFSET_COMMIT, 10, body.out, True)
        r.raw("i")

        def topic(r):
            t = r.data[r.pos:r.pos + 16]
            r.pos += 16
            parts = r.array(lambda r: (r.raw("i"), r.raw("h"), r.tags())[:2])
            r.tags()
            return t, parts

        return r.array(topic)

    assert commit([(tid, [(0, 5), (1, 7)]), (unknown, [(0, 1)])]) == \
        [(tid, [(0, 0), (1, 0)]), (unknown, [(0, UNKNOWN_TOPIC_ID)])]

    def fetch(topics):
        body = W().array(["g10"], lambda w, g: w.string(g).string(None).raw("i", -1).array(
            topics, lambda w, t: w.out.extend(t[0]) or w.array(t[1], lambda w, p: w.raw("i", p)).tags()).tags())
        body.raw("?", False).tags()
        r = raw_kafka.exchange(broker.port, OFFSET_FETCH, 10, body.out, True)
        r.raw("i")

        def topic(r):
            t = r.data[r.pos:r.pos + 16]
            r.pos += 16
            parts = r.array(lambda r: (r.raw("i"), r.raw("q"), r.raw("i"), r.string(), r.raw("h"), r.tags())[:5])
            r.tags()
            return t, parts

        [(group, topics_out, err)] = r.array(lambda r: (r.string(), r.array(topic), r.raw("h"), r.tags())[:3])
        assert (group, err) == ("g10", 0)
        return topics_out

    assert fetch([(tid, [0, 1]), (unknown, [0])]) == \
        [(tid, [(0, 5, -1, "m", 0), (1, 7, -1, "m", 0)]), (unknown, [(0, -1, -1, "", UNKNOWN_TOPIC_ID)])]
    # All of the group's offsets (null topics): by topic id.
    got = fetch(None)
    assert sorted((t, p[0][:2]) for t, p in got) == [(tid, (0, 5)), (tid, (1, 7))]


def test_delete_groups_v3_error_message(broker):
    body = W().array(["no-such-group"], lambda w, g: w.string(g)).tags()
    r = raw_kafka.exchange(broker.port, DELETE_GROUPS, 3, body.out, True)
    r.raw("i")
    [res] = r.array(lambda r: (r.string(), r.raw("h"), r.string(), r.tags())[:3])
    assert res == ("no-such-group", GROUP_ID_NOT_FOUND, "Group no-such-group not found.")
