"""Real clients (librdkafka through confluent-kafka, kafka-python, kcat)
against a real samsa-server: round trips, codecs, ordering, acks, offsets and
timestamps, auto-creation, deletion, restarts and crashes, idempotence."""

import os
import shutil
import subprocess
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka import Consumer as CkConsumer
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from helpers import ck_admin, ck_consume, ck_create_topic, ck_produce, wait_for

N = 100_000


def make_records(n, tag=""):
    recs = []
    for i in range(n):
        key = None if i % 10 == 3 else f"key-{i}".encode()
        value = None if i % 10 == 5 else (f"{tag}value-{i}-".encode() + bytes([i % 256]) * (i % 50))
        headers = [("idx", str(i).encode()), ("empty", None)] if i % 3 == 0 else None
        recs.append((key, value, headers))
    return recs


def check_records(msgs, recs, base_offset=0):
    assert len(msgs) == len(recs)
    for i, m in enumerate(msgs):
        k, v, h = recs[i]
        assert m.offset() == base_offset + i
        assert m.key() == k, i
        assert m.value() == v, i
        if h:
            assert m.headers() == [("idx", str(i).encode()), ("empty", None)], i
        else:
            assert not m.headers(), i


def test_confluent_kafka_round_trip_100k(broker):
    """100k records with keys, null keys, null values and headers survive a
    produce/consume round trip through librdkafka byte for byte, in order."""
    recs = make_records(N)
    ck_create_topic(broker.bootstrap, "rt", 1)
    reports = ck_produce(broker.bootstrap, "rt", recs, partition=0)
    assert [o for _, o in reports] == list(range(N))
    check_records(ck_consume(broker.bootstrap, "rt", [0], N), recs)


def test_kafka_python_round_trip_100k(broker):
    """kafka-python produces and consumes 100k records with keys, headers and
    null values."""
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, batch_size=65536)
    futures = []
    for i in range(N):
        key = None if i % 10 == 3 else f"k{i}".encode()
        value = None if i % 10 == 5 else f"v{i}".encode()
        headers = [("n", str(i).encode())] if i % 4 == 0 else []
        futures.append(prod.send("kp", key=key, value=value, headers=headers, partition=0))
    prod.flush(60)
    assert futures[-1].get(30).offset == N - 1
    prod.close()
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                         consumer_timeout_ms=10000, group_id=None)
    tp = KpTopicPartition("kp", 0)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 120
    while len(got) < N and time.monotonic() < deadline:
        for recs in cons.poll(timeout_ms=500, max_records=10000).values():
            got.extend(recs)
    cons.close()
    assert len(got) == N
    for i, r in enumerate(got):
        assert r.offset == i
        assert r.key == (None if i % 10 == 3 else f"k{i}".encode())
        assert r.value == (None if i % 10 == 5 else f"v{i}".encode())
        assert list(r.headers) == ([("n", str(i).encode())] if i % 4 == 0 else [])


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_compression_codec(broker, codec):
    """Batches compressed with each codec, by librdkafka and by kafka-python,
    are validated, stored as produced and consumed intact. (librdkafka turns
    lz4 on only when the broker serves FindCoordinator.)"""
    recs = make_records(5000, tag=codec)
    topic = f"codec-{codec}"
    ck_create_topic(broker.bootstrap, topic, 1)
    ck_produce(broker.bootstrap, topic, recs, partition=0, **{"compression.type": codec})
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec)
    for i in range(2000):
        prod.send(topic, key=b"kp", value=f"kp-{codec}-{i}".encode() * 4, partition=0)
    prod.flush(30)
    prod.close()
    msgs = ck_consume(broker.bootstrap, topic, [0], len(recs) + 2000)
    check_records(msgs[:len(recs)], recs)
    assert [m.value() for m in msgs[len(recs):]] == [f"kp-{codec}-{i}".encode() * 4 for i in range(2000)]
    # The stored batches keep their compression attribute (stored as produced).
    assert CODECS[codec] in codes_in_segment(broker.data_dir, topic)


def test_corrupt_compressed_batch_is_refused(broker):
    """A gzip batch whose compressed bytes are damaged (CRC recomputed so only
    decompression can tell) gets CORRUPT_MESSAGE and is not stored."""
    import socket
    import struct
    import zlib
    ck_create_topic(broker.bootstrap, "badgz", 1)
    rec = bytes([0x10, 0, 0, 0, 0x02, ord("k"), 0x02, ord("v"), 0])
    comp = bytearray(zlib.compress(rec))
    comp[len(comp) // 2] ^= 0xFF
    body = struct.pack(">hiqqqhii", 1, 0, 0, 0, -1, -1, -1, 1) + bytes(comp)
    crc = crc32c(body)
    batch = struct.pack(">qiibI", 0, len(body) + 9, 0, 2, crc) + body
    resp = raw_produce(broker.port, "badgz", batch)
    assert resp == 2  # CORRUPT_MESSAGE
    lo, hi = CkConsumer({"bootstrap.servers": broker.bootstrap, "group.id": "x"}).get_watermark_offsets(
        TopicPartition("badgz", 0), timeout=10)
    assert hi == 0


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def raw_produce(port, topic, batch):
    """Sends Produce v7 with one batch; returns the partition's error code."""
    import socket
    import struct
    t = topic.encode()
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch
    hdr = struct.pack(">hhih", 0, 7, 99, 4) + b"test"
    frame = hdr + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        n = struct.unpack(">i", recv_exact(s, 4))[0]
        resp = recv_exact(s, n)
    # corr(4) topics(4) name(2+len) parts(4) index(4) error(2)
    off = 4 + 4 + 2 + len(t) + 4 + 4
    return struct.unpack(">h", resp[off:off + 2])[0]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise ConnectionError("closed")
        buf += d
    return buf


CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def codes_in_segment(data_dir, topic):
    """The compression codecs of the batches in the topic's first segment."""
    import struct
    with open(os.path.join(data_dir, f"{topic}-0", "00000000000000000000.log"), "rb") as f:
        data = f.read()
    pos, codes = 0, set()
    while pos + 61 <= len(data):
        length = struct.unpack(">i", data[pos + 8:pos + 12])[0]
        codes.add(data[pos + 22] & 7)
        pos += 12 + length
    return codes


def test_kafka_python_gzip(broker):
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip")
    for i in range(1000):
        prod.send("kpgz", value=f"gz{i}".encode(), partition=0)
    prod.flush(30)
    prod.close()
    msgs = ck_consume(broker.bootstrap, "kpgz", [0], 1000)
    assert [m.value() for m in msgs] == [f"gz{i}".encode() for i in range(1000)]


def test_ordering_per_partition(broker):
    """Records with the same key land in one partition in send order."""
    ck_create_topic(broker.bootstrap, "ordered", 6)
    recs = [(f"user-{i % 17}".encode(), f"{i}".encode(), None) for i in range(6000)]
    reports = ck_produce(broker.bootstrap, "ordered", recs)
    by_key = {}
    for (k, v, _), (p, o) in zip(recs, reports):
        by_key.setdefault(k, []).append((p, o, int(v)))
    for k, lst in by_key.items():
        assert len({p for p, _, _ in lst}) == 1, k
        assert [o for _, o, _ in lst] == sorted(o for _, o, _ in lst)
    msgs = ck_consume(broker.bootstrap, "ordered", range(6), 6000)
    assert len(msgs) == 6000
    seen = {}
    for m in msgs:
        seen.setdefault(m.key(), []).append(int(m.value()))
    for k, vals in seen.items():
        assert vals == sorted(vals), k


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, acks):
    recs = [(None, f"a{i}".encode(), None) for i in range(2000)]
    ck_create_topic(broker.bootstrap, f"acks-{acks}", 1)
    ck_produce(broker.bootstrap, f"acks-{acks}", recs, partition=0, acks=acks)
    msgs = ck_consume(broker.bootstrap, f"acks-{acks}", [0], 2000)
    assert [m.value() for m in msgs] == [v for _, v, _ in recs]


def test_consume_from_offset_and_timestamp(broker):
    ck_create_topic(broker.bootstrap, "ts", 1)
    base = int(time.time() * 1000) - 100_000
    recs = [(None, f"t{i}".encode(), None) for i in range(1000)]
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i, (_, v, _) in enumerate(recs):
        p.produce("ts", value=v, partition=0, timestamp=base + i * 10)
    assert p.flush(30) == 0
    # from an offset inside a batch
    msgs = ck_consume(broker.bootstrap, "ts", [0], 500, offset=500)
    assert msgs[0].offset() == 500 and msgs[0].value() == b"t500"
    # from a timestamp
    c = CkConsumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    res = c.offsets_for_times([TopicPartition("ts", 0, base + 7005)], timeout=10)
    assert res[0].offset == 701  # first record with timestamp >= base+7005
    lo, hi = c.get_watermark_offsets(TopicPartition("ts", 0), timeout=10)
    assert (lo, hi) == (0, 1000)
    c.close()


def test_auto_create_on_and_off(make_broker):
    on = make_broker({"num.partitions": "3"})
    ck_produce(on.bootstrap, "auto-made", [(None, b"x", None)])
    md = ck_admin(on.bootstrap).list_topics(timeout=10)
    assert len(md.topics["auto-made"].partitions) == 3
    off = make_broker({"auto.create.topics.enable": "false"})
    md = ck_admin(off.bootstrap).list_topics("never-made", timeout=10)
    assert md.topics["never-made"].error is not None
    assert "never-made" not in ck_admin(off.bootstrap).list_topics(timeout=10).topics


def test_delete_and_recreate_topic(broker):
    admin = ck_admin(broker.bootstrap)
    ck_create_topic(broker.bootstrap, "gone", 2)
    ck_produce(broker.bootstrap, "gone", [(None, b"old", None)] * 10, partition=1)
    admin.delete_topics(["gone"])["gone"].result(30)
    wait_for(lambda: "gone" not in admin.list_topics(timeout=10).topics, what="topic deletion")
    # the data folder goes off the request path
    wait_for(lambda: not any(d.startswith("gone-") and not d.endswith("-delete")
                             for d in os.listdir(broker.data_dir)), what="folder removal")
    ck_create_topic(broker.bootstrap, "gone", 1)
    ck_produce(broker.bootstrap, "gone", [(None, b"new", None)], partition=0)
    msgs = ck_consume(broker.bootstrap, "gone", [0], 1)
    assert msgs[0].offset() == 0 and msgs[0].value() == b"new"


def test_restart_keeps_every_record(broker):
    recs = make_records(20000)
    ck_create_topic(broker.bootstrap, "durable", 2)
    ck_produce(broker.bootstrap, "durable", recs, partition=1, **{"enable.idempotence": False})
    assert broker.stop() == 0
    # A producer-state snapshot at the log end, though no idempotent producer
    # wrote: the restart replays nothing (Kafka writes one at shutdown too).
    assert os.path.exists(os.path.join(broker.data_dir, "durable-1", "%020d.snapshot" % len(recs)))
    assert not os.path.exists(os.path.join(broker.data_dir, "durable-0", "%020d.snapshot" % 0))  # empty log
    broker.start()
    check_records(ck_consume(broker.bootstrap, "durable", [1], len(recs)), recs)
    # appends continue after the old end
    rep = ck_produce(broker.bootstrap, "durable", [(None, b"after", None)], partition=1)
    assert rep[0][1] == len(recs)


def test_kill9_keeps_acknowledged_records(make_broker):
    """With fsync-before-ack every acknowledged record survives kill -9."""
    b = make_broker({"samsa.log.fsync.before.ack": "true"})
    ck_create_topic(b.bootstrap, "crash", 1)
    from confluent_kafka import Producer
    acked = []
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 1, "acks": "all"})

    def cb(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))

    # Until 3000 records are acknowledged (a loaded disk makes fsyncs slow:
    # a deadline, not a record count, bounds the loop).
    deadline = time.monotonic() + 120
    i = 0
    while len(acked) < 3000 and time.monotonic() < deadline:
        try:
            p.produce("crash", value=f"c{i}".encode(), partition=0, on_delivery=cb)
            i += 1
        except BufferError:
            p.poll(0.01)
        p.poll(0)
    p.poll(0.5)
    b.kill()
    del p
    b.start()
    acked.sort()
    msgs = ck_consume(b.bootstrap, "crash", [0], len(acked), timeout=60)
    stored = {m.offset(): m.value() for m in msgs}
    missing = [o for o, v in acked if stored.get(o) != v]
    assert len(acked) >= 3000
    assert not missing, missing[:10]


def test_idempotent_producer_with_retries(broker):
    recs = [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(10000)]
    ck_create_topic(broker.bootstrap, "idem", 1)
    reports = ck_produce(broker.bootstrap, "idem", recs, partition=0,
                         **{"enable.idempotence": True, "retries": 5, "max.in.flight.requests.per.connection": 5})
    assert [o for _, o in reports] == list(range(10000))
    msgs = ck_consume(broker.bootstrap, "idem", [0], 10000)
    assert [m.value() for m in msgs] == [v for _, v, _ in recs]


def test_kcat_lists_broker_and_topics(broker):
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed")
    ck_create_topic(broker.bootstrap, "listed", 4)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-m", "10"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"broker 1 at 127.0.0.1:{broker.port}" in out.stdout
    assert 'topic "listed" with 4 partitions' in out.stdout
