"""A partition whose log cannot be opened goes offline alone: the broker
still starts on that data directory, the topic's other partition is served,
and the log names the offline one."""

import os
import shutil

from helpers import ck_consume, ck_create_topic, ck_produce, ck_producer


def test_broker_starts_with_a_partition_that_cannot_open(broker):
    ck_create_topic(broker.bootstrap, "half", partitions=2)
    ck_produce(broker.bootstrap, "half", [(None, b"zero", None)], partition=0)
    ck_produce(broker.bootstrap, "half", [(None, b"one", None)], partition=1)
    assert broker.stop() == 0
    # The segment of half-0 becomes a directory: opening the log fails.
    seg = os.path.join(broker.data_dir, "half-0", "00000000000000000000.log")
    os.remove(seg)
    os.makedirs(seg)
    broker.start()
    got = ck_consume(broker.bootstrap, "half", [1], 1, timeout=30)
    assert [m.value() for m in got] == [b"one"]
    assert "half-0" in broker.read_log() and "partition is offline" in broker.read_log()
    # Produce to the offline partition fails instead of being acknowledged.
    p = ck_producer(broker.bootstrap, **{"message.timeout.ms": 3000})
    errors = []
    p.produce("half", b"lost", partition=0, on_delivery=lambda e, m: errors.append(e))
    p.flush(20)
    assert errors and errors[0] is not None, errors
    shutil.rmtree(seg)
