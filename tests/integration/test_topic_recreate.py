"""A topic deleted while a long-poll fetch is parked on it, then re-created
under the same name: the parked fetch is answered at once with the
partition's error, and the new topic starts empty in a folder of its own
(partition.metadata names the new topic id); librdkafka reads only what was
produced to the new topic."""

import os
import socket
import struct

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import ck_consume, ck_create_topic, ck_produce, wait_for
from test_bad_input import header
from test_fetch_sessions import recv

UNKNOWN_TOPIC_OR_PARTITION = 3


def fetch_v4_frame(topic, offset, max_wait):
    body = struct.pack(">iiiib", -1, max_wait, 1, 1 << 20, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, offset, 1 << 20)
    frame = header(1, 4, corr=41) + body
    return struct.pack(">i", len(frame)) + frame


def delete_topics_v3_frame(topic):
    body = struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode()
    body += struct.pack(">i", 30000)
    frame = header(20, 3, corr=42) + body
    return struct.pack(">i", len(frame)) + frame


def read_response(s):
    n = struct.unpack(">i", recv(s, 4))[0]
    return recv(s, n)


def fetch_v4_partition_error(r):
    """Error code of the only partition of a Fetch v4 response."""
    i = 4 + 4  # correlation id, throttle time
    (nt,) = struct.unpack(">i", r[i:i + 4])
    assert nt == 1
    (tl,) = struct.unpack(">h", r[i + 4:i + 6])
    i += 6 + tl
    (np_,) = struct.unpack(">i", r[i:i + 4])
    assert np_ == 1
    _, err = struct.unpack(">ih", r[i + 4:i + 10])
    return err


def topic_exists(admin, name):
    md = admin.list_topics(timeout=10)
    t = md.topics.get(name)
    return t is not None and t.error is None


def test_recreate_while_a_fetch_is_parked(broker):
    ck_create_topic(broker.bootstrap, "again", partitions=1)
    ck_produce(broker.bootstrap, "again", [(None, b"old-%d" % i, None) for i in range(5)],
               partition=0)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        # Pipelined on one connection: the fetch (at the end of the log, for
        # up to a minute) is parked by the time the delete is handled.
        s.sendall(fetch_v4_frame("again", 5, 60000) + delete_topics_v3_frame("again"))
        # While the old partition is still held by the parked fetch (or was
        # just answered), the topic comes back under the same name.
        wait_for(lambda: not topic_exists(admin, "again"), what="topic gone")
        ck_create_topic(broker.bootstrap, "again", partitions=1)
        fetch = read_response(s)
        assert struct.unpack(">i", fetch[:4])[0] == 41
        assert fetch_v4_partition_error(fetch) == UNKNOWN_TOPIC_OR_PARTITION
        delete = read_response(s)
        assert struct.unpack(">i", delete[:4])[0] == 42
    ck_produce(broker.bootstrap, "again", [(None, b"new-%d" % i, None) for i in range(2)],
               partition=0)
    got = ck_consume(broker.bootstrap, "again", [0], 2, timeout=30)
    assert [m.value() for m in got] == [b"new-0", b"new-1"]
    assert [m.offset() for m in got] == [0, 1]
    # Nothing older in the log: the end offset is 2.
    lo, hi = admin_watermarks(broker.bootstrap, "again")
    assert (lo, hi) == (0, 2)
    meta = open(os.path.join(broker.data_dir, "again-0", "partition.metadata")).read()
    assert meta.startswith("version: 0\ntopic_id: ")


def admin_watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "samsa-test-unused"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()
