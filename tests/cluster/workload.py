"""Producer and consumer workloads that feed a History (history.py), with
confluent-kafka: every acknowledged record and every record read is recorded
with its partition, offset and payload id (the record's value)."""

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def produce(bootstrap, topic, history, ids, producer="p", conf=None, timeout=60.0):
    """Sends one record per id (value = id) with acks=all and idempotence;
    records each acknowledgement. Returns the ids that failed."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": int(timeout * 1000), "log_level": 2, **(conf or {})})
    failed = []
    seq = {}

    def done(err, msg):
        v = msg.value().decode()
        if err is None:
            history.ack(msg.partition(), msg.offset(), v, producer=producer, seq=seq[v])
        else:
            failed.append(v)

    for i, v in enumerate(ids):
        seq[v] = i
        while True:
            try:
                p.produce(topic, value=v.encode(), on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout + 5)
    if left:
        raise RuntimeError(f"{left} records neither acknowledged nor failed")
    return failed


def read_all(bootstrap, topic, history, partitions, reader="final", final=True, timeout=60.0):
    """Reads every partition from the beginning up to its high watermark at
    the start of the read; records every record. Returns the count."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"harness-{reader}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "log_level": 2})
    try:
        ends = {}
        for p in partitions:
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            ends[p] = high
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        pos = {p: 0 for p in partitions}
        n = 0
        deadline = time.monotonic() + timeout
        while any(pos[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read_all: positions {pos}, ends {ends}")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"read_all: {msg.error()}")
            history.read(msg.partition(), msg.offset(), msg.value().decode(), reader=reader,
                         final=final)
            pos[msg.partition()] = msg.offset() + 1
            n += 1
        return n
    finally:
        c.close()
