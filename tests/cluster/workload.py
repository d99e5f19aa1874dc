"""Producer and consumer workloads that feed a History (history.py), with
confluent-kafka: every acknowledged record and every record read is recorded
with its partition, offset and payload id (the record's value). produce() and
read_all() run once; Load runs producers and readers in threads while faults
are injected."""

import threading
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)


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


class Load:
    """A continuous load on one topic while faults are injected: `producers`
    idempotent acks=all producers, each sending numbered records (value
    "NAME-i", NAME p1, p2, ...) at `rate` records per second, and `readers`
    consumers (r1, r2, ...) that have every partition assigned from the start
    and read until stopped. Every acknowledgement and every read goes to the
    History. Clients' errors are counted by name in `errors` (they retry
    internally). A fatal producer error makes a new producer take over (`recreated`,
    `abandoned`); records left neither acknowledged nor failed are in `fatal`.

    Readers use assigned partitions, not a consumer group: a group coordinator
    in a cluster is not part of this harness yet (docs/testing-cluster.md).

    States: created -> running (start) -> stopped (stop: producers flushed, so
    every record sent is acknowledged or failed; readers closed)."""

    def __init__(self, bootstrap, topic, partitions, history, producers=2, readers=2, rate=100,
                 message_timeout=120.0, producer_conf=None, reader_conf=None):
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = list(partitions)
        self.history = history
        self.n_producers = producers
        self.n_readers = readers
        self.rate = rate
        self.message_timeout = message_timeout
        self.producer_conf = dict(producer_conf or {})
        self.reader_conf = dict(reader_conf or {})
        self.sent = {}  # producer name -> records handed to the client
        self.failed = []  # (producer, value, error name): not acknowledged
        self.fatal = []  # (producer, error): records left neither acknowledged nor failed
        self.recreated = []  # (producer, fatal error): a new client took over (_produce)
        self.abandoned = 0  # records unacknowledged when their producer's error was fatal
        self.errors = {}  # client error name -> count
        self.reads = 0
        self._stopping = threading.Event()
        self._threads = []
        self._lock = threading.Lock()

    def _count(self, err):
        with self._lock:
            self.errors[err.name()] = self.errors.get(err.name(), 0) + 1

    @property
    def acked(self):
        return len(self.history.acks)

    def start(self):
        for i in range(1, self.n_producers + 1):
            self._spawn(self._produce, f"p{i}")
        for i in range(1, self.n_readers + 1):
            self._spawn(self._read, f"r{i}")
        return self

    def _spawn(self, fn, name):
        t = threading.Thread(target=fn, args=(name,), name=f"load-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _produce(self, name):
        """Producer `name` sends until stopped. On a fatal client error it does what an
        application must: the client is closed (its records not yet acknowledged are
        abandoned: they may or may not be in the log) and a new one, named name.2,
        name.3, ..., goes on with fresh payloads; each such restart is in `recreated`."""
        generation = 1
        while not self._stopping.is_set():
            pname = name if generation == 1 else f"{name}.{generation}"
            fatal = self._produce_with(pname)
            if not fatal:
                break
            with self._lock:
                self.recreated.append((pname, str(fatal)))
            generation += 1

    def _produce_with(self, name):
        fatal = []

        def on_error(err):
            self._count(err)
            if err.fatal():
                fatal.append(err)

        # request.timeout.ms is, in librdkafka, the broker's wait for acks=all; how long the
        # client waits for an answer is socket.timeout.ms (60 s by default, the Java
        # client's request.timeout.ms is 30 s): a paused leader held the in-flight requests,
        # and with them the partition, that long. 10 s bounds it well inside the nemesis's
        # reaction window (docs/testing-cluster.md).
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": int(self.message_timeout * 1000),
                      "request.timeout.ms": 5000, "socket.timeout.ms": 10000,
                      "topic.metadata.refresh.interval.ms": 5000,
                      "log_level": 2, "error_cb": on_error, **self.producer_conf})
        seq = {}

        def done(err, msg):
            v = msg.value().decode()
            if err is None:
                self.history.ack(msg.partition(), msg.offset(), v, producer=name, seq=seq.pop(v))
            elif fatal:
                seq.pop(v, None)
                with self._lock:
                    self.abandoned += 1
            else:
                seq.pop(v, None)
                self._count(err)
                self.failed.append((name, v, err.name()))

        i = 0
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stopping.is_set() and not fatal:
            v = f"{name}-{i}"
            seq[v] = i
            try:
                p.produce(self.topic, value=v.encode(), on_delivery=done)
            except BufferError:
                seq.pop(v)
                p.poll(0.1)
                continue
            except KafkaException as e:
                # Refused at once, e.g. _UNKNOWN_TOPIC after a broker's Metadata
                # said the topic does not exist: counted, the record is sent again.
                seq.pop(v)
                self._count(e.args[0])
                if e.args[0].fatal():
                    fatal.append(e.args[0])
                p.poll(0.1)
                continue
            i += 1
            self.sent[name] = i
            next_at += period
            while True:  # poll returns early when it served a callback
                wait = next_at - time.monotonic()
                p.poll(max(0.0, wait))
                if wait <= 0:
                    break
        if fatal:
            # Nothing more will be acknowledged: its records fail now, not at their timeout.
            p.purge(in_queue=True, in_flight=True, blocking=False)
        left = p.flush(self.message_timeout + 10)
        if left:
            self.fatal.append((name, f"{left} records neither acknowledged nor failed"))
        return fatal[0] if fatal else None

    def _read(self, name):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"harness-{name}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "isolation.level": "read_committed",
                      "topic.metadata.refresh.interval.ms": 5000, "log_level": 2,
                      "error_cb": self._count, **self.reader_conf})
        try:
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions])
            while not self._stopping.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self._count(msg.error())
                    continue
                self.history.read(msg.partition(), msg.offset(), msg.value().decode(), reader=name)
                self.reads += 1
        finally:
            c.close()

    def wait_acks(self, n, timeout, what="records acknowledged"):
        """Waits until n more records than now are acknowledged."""
        target = self.acked + n
        deadline = time.monotonic() + timeout
        while self.acked < target:
            if self.fatal:
                raise RuntimeError(f"a producer failed: {self.fatal}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {n} {what} "
                                   f"({self.acked - target + n} came)")
            time.sleep(0.1)

    def stop(self):
        self._stopping.set()
        for t in self._threads:
            t.join()
        self._threads = []

    def summary(self):
        return (f"sent {sum(self.sent.values())}, acknowledged {self.acked}, "
                f"failed {len(self.failed)}, fatal {len(self.fatal)}, "
                f"producers recreated after a fatal error {len(self.recreated)} "
                f"({self.abandoned} records abandoned), reads {self.reads}, "
                f"client errors {dict(sorted(self.errors.items()))}")
