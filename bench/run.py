#!/usr/bin/env python3
"""Samsa against Apache Kafka 4.4, side by side on one machine in one run.

`make bench` (full run) and `make bench-quick` (a short subset) call this. It
starts build/bin/samsa-server and the reference Kafka (bench/kafka-ref) with the
same equalised settings, drives both with Kafka's own perf tools (java -cp) and
`samsa perf` (librdkafka), alternating the brokers round by round, measures the
machine's own limits (dd, iperf3) in the same run, and writes raw results to
bench/results/<mode>/ and the report section of docs/BENCHMARKS.md with plots.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "build", "bin", "samsa-server")
SAMSA = os.path.join(ROOT, "build", "bin", "samsa")
KREF = os.path.join(ROOT, "bench", "kafka-ref", "kafka-ref.sh")
LOG4J = os.path.join(ROOT, "bench", "kafka-ref", "log4j2.properties")
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
BROKER_CPU = "1"
CLIENT_CPU = "0"
MIB = 1 << 20
SEGMENT_BYTES = 1 << 30
# Scenario 10: how often an idle cleaner thread looks for work (Kafka's default
# is 15 s, which would dominate a timing of one cleaning), and the segment size
# of the compacted topic.
CLEANER_BACKOFF_MS = 100
CLEAN_SEGMENT_BYTES = 16 * MIB
BEGIN = "<!-- broker-comparison:begin (written by bench/run.py) -->"
END = "<!-- broker-comparison:end -->"

# Sizes per mode. Produce cases: (record size, partitions, acks).
PRODUCE_CASES = [(s, p, a) for s in (1024, 100) for p in (1, 16) for a in ("1", "all")]
MODES = {
    "full": dict(
        rounds=3,
        produce_cases=PRODUCE_CASES,
        produce_bytes=96 * MIB,
        consume_bytes=2048 * MIB,
        e2e_seconds=10,
        startup_bytes=10240 * MIB,
        startup_partitions=1000,
        recovery_load_s=5,
        many_partitions=10000,
        many_records=50000,
        txn_sizes=(10, 100, 1000),
        txn_transactions=300,
        group_members=50,
        group_partitions=200,
        clean_bytes=512 * MIB,
        clean_keys=10000,
    ),
    "quick": dict(
        rounds=1,
        produce_cases=[(1024, 1, "1"), (100, 16, "all")],
        produce_bytes=24 * MIB,
        consume_bytes=128 * MIB,
        e2e_seconds=4,
        startup_bytes=0,
        startup_partitions=0,
        recovery_load_s=2,
        many_partitions=1000,
        many_records=20000,
        txn_sizes=(10, 1000),
        txn_transactions=60,
        group_members=50,
        group_partitions=100,
        clean_bytes=48 * MIB,
        clean_keys=2000,
    ),
}

T0 = time.monotonic()
STEP = [0, 0]


def progress(msg):
    """One progress line per step on stderr: elapsed time, step count, what."""
    STEP[0] += 1
    el = int(time.monotonic() - T0)
    total = f"/{STEP[1]}" if STEP[1] else ""
    print(f"[bench {el // 60:02d}:{el % 60:02d}] {STEP[0]}{total} {msg}", file=sys.stderr, flush=True)


def free_port():
    """A free port whose successor is free too (Kafka's controller uses PORT+1)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65000:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def raise_nofile():
    """Child set-up: as many descriptors as the hard limit allows (10,000 partitions)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 200000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def metadata_ok(port, timeout=1.0):
    """True once the broker on port answers a Metadata v12 request listing a broker."""
    cid = b"bench"
    # Request header v2 (api 3, version 12, correlation 7, client id, no tags);
    # body: empty topic list, no auto-creation, no authorized operations, no tags.
    req = struct.pack(">hhih", 3, 12, 7, len(cid)) + cid + b"\x00" + b"\x01\x00\x00\x00"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(req)) + req)
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
                d = s.recv(65536)
                if not d:
                    return False
                buf += d
        return struct.unpack(">i", buf[4:8])[0] == 7 and buf[13] >= 2
    except (OSError, IndexError, struct.error):
        return False


def wait_for(cond, timeout, what, interval=0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def proc_stat(pid):
    """(rss bytes, cpu seconds user+system) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmRSS:"))
        tck = os.sysconf("SC_CLK_TCK")
        return rss, (int(fields[11]) + int(fields[12])) / tck
    except (OSError, StopIteration, IndexError, ValueError):
        return None


class Broker:
    """One broker under test, pinned to BROKER_CPU."""

    def __init__(self, name, workdir):
        self.name = name
        self.port = free_port()
        self.data = os.path.join(workdir, name)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        self.pid = None
        os.makedirs(self.data, exist_ok=True)

    def cpu_rss(self):
        return proc_stat(self.pid) if self.pid else None

    def alive(self):
        return self.pid is not None and proc_stat(self.pid) is not None


class Samsa(Broker):
    def __init__(self, workdir):
        super().__init__("samsa", workdir)
        self.log = open(os.path.join(workdir, "samsa.log"), "ab")

    def fsyncs(self):
        return ("page cache (Kafka's default flush policy: no log.flush.interval.*); fsyncs a "
                "rolled segment and its indexes shortly after the roll, the checkpoint files "
                "and the KRaft metadata log; everything at clean shutdown")

    def launch(self):
        cmd = ["taskset", "-c", BROKER_CPU, SERVER,
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
               "--override", f"log.dirs={self.data}/logs",
               "--override", "num.partitions=1",
               "--override", "default.replication.factor=1",
               "--override", f"log.segment.bytes={SEGMENT_BYTES}",
               # as kafka-ref.sh sets them for a single node
               "--override", "group.initial.rebalance.delay.ms=0",
               "--override", "offsets.topic.num.partitions=1",
               "--override", "transaction.state.log.num.partitions=1",
               "--override", f"log.cleaner.backoff.ms={CLEANER_BACKOFF_MS}",
               "--override", "samsa.log.level=info"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, preexec_fn=raise_nofile)
        self.pid = self.proc.pid
        return self.proc

    def start(self):
        t = time.monotonic()
        self.launch()
        done = wait_for(lambda: self.proc.poll() is not None or metadata_ok(self.port), 120,
                        "samsa metadata")
        if self.proc.poll() is not None:
            raise RuntimeError(f"samsa-server exited with {self.proc.returncode}")
        return done - t

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)
        self.proc = self.pid = None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = self.pid = None


class Kafka(Broker):
    def __init__(self, workdir):
        super().__init__("kafka", workdir)
        self.env = dict(os.environ,
                        KAFKA_REF_HEAP="-Xmx1G -Xms1G",  # kafka-server-start.sh's default
                        KAFKA_REF_LOG_LEVEL="WARN",
                        KAFKA_REF_STOP_TIMEOUT="120",
                        KAFKA_REF_PROPS=f"log.segment.bytes={SEGMENT_BYTES}\n"
                                        "default.replication.factor=1\n"
                                        f"log.cleaner.backoff.ms={CLEANER_BACKOFF_MS}")

    def fsyncs(self):
        return ("page cache (default log.flush.interval.messages=Long.MAX, no flush.ms); fsyncs "
                "a rolled segment and its indexes asynchronously after the roll, the checkpoint "
                "files, the KRaft metadata log; everything at clean shutdown")

    def launch(self):
        cmd = ["taskset", "-c", BROKER_CPU, KREF, "start", str(self.port), self.data]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=raise_nofile)
        self.pid = None
        return self.proc

    def _pid(self):
        try:
            with open(os.path.join(self.data, "kafka.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        t = time.monotonic()
        self.launch()
        done = wait_for(lambda: self.proc.poll() not in (None, 0) or metadata_ok(self.port), 300,
                        "kafka metadata")
        if self.proc.poll() not in (None, 0):
            raise RuntimeError("kafka-ref start failed: " + self.proc.stderr.read().decode())
        self.proc.wait(timeout=300)  # the script exits once it has seen Metadata too
        self.pid = self._pid()
        return done - t

    def stop(self):
        subprocess.run([KREF, "stop", self.data], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        self.pid = None

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: proc_stat(self.pid) is None, 60, "kafka to die", 0.01)
        self.pid = None


class Sampler(threading.Thread):
    """Samples the brokers' RSS and CPU time every 0.2 s; keeps per-scenario peaks."""

    def __init__(self, brokers):
        super().__init__(daemon=True)
        self.brokers = brokers
        self.label = None
        self.peak = {}  # (label, broker) -> peak rss
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.2):
            with self.lock:
                label = self.label
            if not label:
                continue
            for b in self.brokers:
                st = b.cpu_rss()
                if st:
                    key = (label, b.name)
                    with self.lock:
                        self.peak[key] = max(self.peak.get(key, 0), st[0])

    def begin(self, label):
        with self.lock:
            self.label = label
        self.cpu0 = {b.name: (b.pid, (b.cpu_rss() or (0, 0))[1]) for b in self.brokers}

    def end(self):
        """(label -> broker -> {peak_rss, cpu_s}) for the scenario just run."""
        with self.lock:
            label = self.label
            self.label = None
        out = {}
        for b in self.brokers:
            st = b.cpu_rss()
            out[b.name] = {
                "peak_rss": self.peak.get((label, b.name), st[0] if st else 0),
                # a restart inside the scenario makes the difference meaningless
                "cpu_s": (st[1] - self.cpu0[b.name][1]) if st and b.pid == self.cpu0[b.name][0]
                else None,
            }
        return label, out


def run(cmd, timeout=1800, cpu=CLIENT_CPU, env=None):
    """Runs a client pinned to the client CPU; returns stdout; raises with stderr on failure."""
    full = (["taskset", "-c", cpu] if cpu else []) + cmd
    p = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout


class Clients:
    """Kafka's perf tools (java) and samsa perf, with the same settings."""

    def __init__(self, classpath):
        self.cp = classpath
        self.jenv = dict(os.environ, KAFKA_REF_LOG_LEVEL="WARN")

    def java(self, cls, args):
        return run(["java", "-Xmx512M", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", self.cp,
                    f"org.apache.kafka.tools.{cls}"] + args, env=self.jenv)

    @staticmethod
    def producer_props(acks):
        # Idempotence off for both clients: acks=1 requires it off, so acks=all matches.
        return [f"acks={acks}", "linger.ms=5", "batch.size=65536", "enable.idempotence=false"]

    def produce(self, client, broker, topic, n, size, acks, rate=-1):
        if client == "java":
            out = self.java("ProducerPerformance", [
                "--topic", topic, "--num-records", str(n), "--record-size", str(size),
                "--throughput", str(rate), "--producer-props", f"bootstrap.servers={broker.bootstrap}",
                *self.producer_props(acks)])
            line = [ln for ln in out.splitlines() if "records sent" in ln and "50th" in ln][-1]
            num = [float(x) for x in re.findall(r"[-\d.]+(?= (?:records/sec|MB/sec|ms))", line)]
            # rec/s, MB/s, avg, max, p50, p95, p99, p999
            return {"records_per_sec": num[0], "mb_per_sec": num[1], "avg_latency_ms": num[2],
                    "max_latency_ms": num[3], "p50_ms": num[4], "p95_ms": num[5],
                    "p99_ms": num[6], "p999_ms": num[7]}
        # librdkafka names batch.size too; queue limits are raised so that the
        # application queue, not the 64 KiB batches, never limits throughput.
        props = self.producer_props(acks)
        out = run([SAMSA, "perf", "produce", "--bootstrap-server", broker.bootstrap,
                   "--topic", topic, "--num-records", str(n), "--record-size", str(size),
                   "--throughput", str(rate), "--acks", acks, "--output", "json",
                   "--producer-props", *props])
        return json.loads(out.strip().splitlines()[-1])

    def produce_txn(self, broker, topic, per_txn, transactions, size, txn_id):
        """samsa perf produce in transactions of per_txn records (librdkafka's
        transactional producer: idempotent, acks=all); records/s and commit latency."""
        out = run([SAMSA, "perf", "produce", "--bootstrap-server", broker.bootstrap,
                   "--topic", topic, "--num-records", str(per_txn * transactions),
                   "--record-size", str(size), "--throughput", "-1", "--output", "json",
                   "--transaction-records", str(per_txn), "--transactional-id", txn_id,
                   "--producer-props", "linger.ms=5", "batch.size=65536"])
        lines = [json.loads(ln) for ln in out.strip().splitlines() if ln.startswith("{")]
        return {**lines[-2], **lines[-1]}

    def consume(self, client, broker, topic, n, group):
        if client == "java":
            out = self.java("ConsumerPerformance", [
                "--bootstrap-server", broker.bootstrap, "--topic", topic,
                "--num-records", str(n), "--group", group, "--timeout", "60000"])
            lines = out.splitlines()
            i = max(j for j, ln in enumerate(lines) if ln.startswith("start.time"))
            hdr = [h.strip() for h in lines[i].split(",")]
            val = [v.strip() for v in lines[i + 1].split(",")]
            row = dict(zip(hdr, val))
            return {"mb_per_sec": float(row["MB.sec"]), "records_per_sec": float(row["nMsg.sec"]),
                    "records": int(row["data.consumed.in.nMsg"]),
                    "fetch_mb_per_sec": float(row["fetch.MB.sec"])}
        out = run([SAMSA, "perf", "consume", "--bootstrap-server", broker.bootstrap,
                   "--topic", topic, "--messages", str(n), "--group", group,
                   "--timeout-ms", "60000", "--output", "json"])
        return json.loads(out.strip().splitlines()[-1])

    def e2e(self, broker, topic, n, size, rate, csv_path):
        out = run([SAMSA, "perf", "e2e", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                   "--num-records", str(n), "--record-size", str(size), "--throughput", str(rate),
                   "--producer-props", "acks=1", "linger.ms=0", "enable.idempotence=false",
                   "--output", "json", "--latency-csv", csv_path])
        return json.loads(out.strip().splitlines()[-1])


def admin(broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap})


# Kafka's controller refuses an operation of more than 10,000 metadata records
# ("excessively large batch"): bigger topics are created, then grown, in steps.
PARTITIONS_PER_OP = 5000


def create_topic(broker, name, partitions):
    from confluent_kafka.admin import NewPartitions, NewTopic

    a = admin(broker)
    have = min(partitions, PARTITIONS_PER_OP)
    fut = a.create_topics([NewTopic(name, num_partitions=have, replication_factor=1)],
                          operation_timeout=300, request_timeout=300)
    fut[name].result(timeout=600)
    while have < partitions:
        have = min(partitions, have + PARTITIONS_PER_OP)
        fut = a.create_partitions([NewPartitions(name, have)], operation_timeout=300,
                                  request_timeout=300)
        fut[name].result(timeout=600)

    def ready():
        md = a.list_topics(name, timeout=30)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))

    wait_for(ready, 600, f"{name} on {broker.name} to have leaders", 0.2)


FAILURES = []


def guarded(b, what, fn):
    """Runs one measurement; a failure is recorded (and a crashed broker restarted)
    instead of ending the run. Returns fn's result or None."""
    try:
        return fn()
    except Exception as e:  # any failure of a tool or broker is a finding, not a stop
        alive = b.alive()
        FAILURES.append({"broker": b.name, "what": what, "error": str(e)[-600:],
                         "broker_crashed": not alive})
        progress(f"FAILED: {what} on {b.name}{' (broker crashed)' if not alive else ''}: "
                 f"{str(e)[-200:]}")
        if not alive:
            b.pid = None
            b.start()
        return None


def pick(rows, field, **match):
    """The field of every row whose keys equal match's values."""
    return [r[field] for r in rows if all(r.get(k) == v for k, v in match.items())]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


# ---------------------------------------------------------------- machine


def machine_info():
    def sh(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p'"),
        "cores": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
        "disk": sh(f"df -T {ROOT} | tail -1 | awk '{{print $1\" \"$2}}'"),
        "java": sh("java -version 2>&1 | head -1"),
        "samsa_commit": sh(f"git -C {ROOT} rev-parse --short HEAD"),
        "load_at_start": sh("cut -d' ' -f1-3 /proc/loadavg"),
    }


def disk_speed(workdir, mib):
    """Sequential write speed of the data disk: dd of mib MiB, fdatasync inside the timing."""
    path = os.path.join(workdir, "dd.bin")
    t = time.monotonic()
    run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fdatasync"], cpu=None)
    secs = time.monotonic() - t
    os.unlink(path)
    return mib / secs


def loopback_speed(seconds):
    """Loopback TCP throughput with iperf3, server on the broker CPU, client on the client CPU."""
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", BROKER_CPU, "iperf3", "-s", "-1", "-B", "127.0.0.1",
                            "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # a test connection would use up the one-off server: look at the listen table instead
        wait_for(lambda: subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                        text=True).stdout.strip() != "", 10, "iperf3", 0.05)
        out = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"])
        bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
        return bps / 8 / MIB
    finally:
        srv.wait(timeout=30)


# ---------------------------------------------------------------- scenarios


def sc_produce(cfg, brokers, clients, sampler, R):
    res = []
    for rnd in range(cfg["rounds"]):
        for size, parts, acks in cfg["produce_cases"]:
            n = cfg["produce_bytes"] // size
            for client in ("java", "samsa"):
                for b in brokers:  # A B A B
                    topic = f"p{size}-{parts}-{acks}-{client}-r{rnd}"
                    progress(f"produce {size} B x{parts} acks={acks} {client} client -> {b.name}"
                             f" (round {rnd + 1})")
                    r = guarded(b, f"produce {topic}", lambda: (
                        create_topic(b, topic, parts),
                        clients.produce(client, b, topic, n, size, acks))[1])
                    if r:
                        res.append({"round": rnd, "size": size, "partitions": parts, "acks": acks,
                                    "client": client, "broker": b.name, **r})
    R["produce"] = res


def ab_order(rounds, brokers):
    """Round by round, each client against Samsa then Kafka (A B A B)."""
    for rnd in range(rounds):
        for client in ("java", "samsa"):
            for b in brokers:
                yield rnd, client, b


def sc_consume(cfg, brokers, clients, sampler, R):
    size, parts = 1024, 16
    n = cfg["consume_bytes"] // size
    for b in brokers:
        progress(f"consume: filling {cfg['consume_bytes'] // MIB} MiB on {b.name}")
        guarded(b, "consume: fill", lambda: (
            create_topic(b, "consume", parts),
            clients.produce("samsa", b, "consume", n, size, "1")))
    res = []
    for rnd, client, b in ab_order(cfg["rounds"], brokers):
        progress(f"consume {cfg['consume_bytes'] // MIB} MiB {client} client <- {b.name}"
                 f" (round {rnd + 1})")
        r = guarded(b, f"consume {client} round {rnd + 1}", lambda: clients.consume(
            client, b, "consume", n, f"g-{client}-{rnd}-{time.time_ns()}"))
        if r:
            res.append({"round": rnd, "client": client, "broker": b.name, **r})
    R["consume"] = {"bytes": n * size, "records": n, "partitions": parts, "runs": res}


def sc_transactions(cfg, brokers, clients, sampler, R):
    """Transactional produce, 100 B records, N records per transaction, the
    same librdkafka client against both brokers (A B A B)."""
    res = []
    for rnd in range(cfg["rounds"]):
        for per in cfg["txn_sizes"]:
            for b in brokers:
                topic = f"txn{per}-r{rnd}"
                progress(f"transactions of {per} records -> {b.name} (round {rnd + 1})")
                r = guarded(b, f"transactions {topic}", lambda: (
                    create_topic(b, topic, 1),
                    clients.produce_txn(b, topic, per, cfg["txn_transactions"], 100,
                                        f"bench-{topic}-{time.time_ns()}"))[1])
                if r:
                    res.append({"round": rnd, "per_txn": per, "broker": b.name, **r})
    R["transactions"] = res


def segment_bytes(broker, topic):
    """Bytes of the .log segment files of partition 0 of topic (not .deleted,
    .cleaned or .swap files), and how many there are."""
    d = os.path.join(broker.data, "logs", f"{topic}-0")
    n = total = 0
    try:
        for f in os.listdir(d):
            if f.endswith(".log"):
                try:
                    total += os.path.getsize(os.path.join(d, f))
                    n += 1
                except OSError:
                    pass
    except OSError:
        pass
    return total, n


def keyed_produce(broker, topic, nbytes, keys, size):
    """nbytes of size-byte records over `keys` keys, round robin (librdkafka)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1", "linger.ms": 5,
                  "batch.size": 65536, "compression.type": "none", "log_level": 3})
    value = os.urandom(size)
    for i in range(nbytes // size):
        while True:
            try:
                p.produce(topic, key=f"key-{i % keys:08d}".encode(), value=value, partition=0)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    if p.flush(300):
        raise RuntimeError("records not delivered")


class LatencyLoad(threading.Thread):
    """A fixed-rate acks=1 producer of 1 KiB records (librdkafka, linger 0) on
    another topic, recording each record's send time and send-to-ack latency,
    so that the latency of a time window (the cleaning) can be taken apart."""

    def __init__(self, broker, topic, rate):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1", "linger.ms": 0,
                           "enable.idempotence": False, "socket.nagle.disable": True,
                           "log_level": 3})
        self.topic, self.rate = topic, rate
        self.samples = []  # (send time, latency s)
        self.failed = 0
        self.stopping = threading.Event()

    def run(self):
        value = os.urandom(1024)
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stopping.is_set():
            t = time.monotonic()
            if t < nxt:
                # librdkafka's poll timeout is in whole milliseconds: waits at
                # least 1 ms (returning early on an acknowledgement) rather
                # than spinning, which would take the CPU the client's own
                # network thread needs.
                self.p.poll(0.001)
                continue
            nxt += period

            def done(err, msg, t_send=t):
                if err is None:
                    self.samples.append((t_send, time.monotonic() - t_send))
                else:
                    self.failed += 1
            try:
                self.p.produce(self.topic, value=value, partition=0, on_delivery=done)
            except BufferError:
                self.failed += 1
            self.p.poll(0)
        self.p.flush(30)

    def stop(self):
        self.stopping.set()
        self.join(60)

    def p99_ms(self, t_from, t_to):
        lat = sorted(x for t, x in self.samples if t_from <= t < t_to)
        if len(lat) < 100:
            return None, len(lat)
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, len(lat)


CLEAN_LOAD_RATE = 2000  # records/s of the latency load while cleaning
CLEAN_BASELINE_S = 5


def clean_once(cfg, b, topic):
    """Fills a topic with cleanup.policy=delete, then switches it to compact
    (a dynamic config change) and times the cleaner until the segment files
    stop shrinking. A fixed-rate producer on another topic runs through a
    baseline window before the switch and through the cleaning: the p99 of
    its send-to-ack latency in each window."""
    from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic)

    a = admin(b)
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "delete", "segment.bytes": str(CLEAN_SEGMENT_BYTES),
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})])[topic].result(60)
    keyed_produce(b, topic, cfg["clean_bytes"], cfg["clean_keys"], 1024)
    before, nseg = segment_bytes(b, topic)
    lat_topic = topic + "-latency"
    create_topic(b, lat_topic, 1)
    load = LatencyLoad(b, lat_topic, CLEAN_LOAD_RATE)
    load.start()
    try:
        # the load's first records (connection set-up) are not in the baseline
        wait_for(lambda: len(load.samples) >= CLEAN_LOAD_RATE // 10, 60, "the latency load", 0.05)
        t_base = time.monotonic()
        time.sleep(CLEAN_BASELINE_S)  # the baseline window's length, not synchronisation
        res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
            ConfigEntry("cleanup.policy", "compact",
                        incremental_operation=AlterConfigOpType.SET)])
        t0 = time.monotonic()
        a.incremental_alter_configs([res])[res].result(60)
        last_size, last_change = before, t0
        deadline = t0 + 600
        # Done when the size has not changed for 5 s after it first changed; the
        # time is that of the last change.
        while time.monotonic() < deadline:
            size, _ = segment_bytes(b, topic)
            now = time.monotonic()
            if size != last_size:
                last_size, last_change = size, now
            elif last_change > t0 and now - last_change > 5:
                break
            time.sleep(0.02)  # polling interval of the size, not synchronisation
    finally:
        load.stop()
    if last_change == t0:
        raise RuntimeError("the log was not cleaned")
    secs = last_change - t0
    base_p99, base_n = load.p99_ms(t_base, t0)
    # at least one second of samples when the cleaning is shorter than that
    clean_p99, clean_n = load.p99_ms(t0, max(last_change, t0 + 1.0))
    return {"bytes_before": before, "segments_before": nseg, "bytes_after": last_size,
            "seconds": secs, "mb_s": before / MIB / secs, "load_rate": CLEAN_LOAD_RATE,
            "baseline_p99_ms": base_p99, "baseline_samples": base_n,
            "cleaning_p99_ms": clean_p99, "cleaning_samples": clean_n,
            "load_failed": load.failed}


def sc_cleaner(cfg, brokers, clients, sampler, R):
    res = []
    for rnd, b in ((r, b) for r in range(cfg["rounds"]) for b in brokers):
        progress(f"cleaner: {cfg['clean_bytes'] // MIB} MiB over {cfg['clean_keys']} keys, "
                 f"{b.name} (round {rnd + 1})")
        r = guarded(b, f"cleaner round {rnd + 1}", lambda: clean_once(cfg, b, f"clean-r{rnd}"))
        if r:
            res.append({"round": rnd, "broker": b.name, **r})
    R["cleaner"] = res


def produce_rate(R, broker, client):
    """Median records/s of the 1 KiB, 1 partition, acks=1 case."""
    return med([r["records_per_sec"] for r in R["produce"] if r["broker"] == broker and
                r["client"] == client and r["size"] == 1024 and r["partitions"] == 1 and
                r["acks"] == "1"])


def sc_latency(cfg, brokers, clients, sampler, R, outdir):
    size = 1024
    # 50% of the slower broker's max throughput, measured with samsa perf (the
    # e2e tool's client) in scenario 1, and with the Java client for its run.
    rates = {}
    for client in ("samsa", "java"):
        rs = [produce_rate(R, b.name, client) for b in brokers]
        rs = [r for r in rs if r]
        rates[client] = max(100, int(min(rs) * 0.5)) if rs else 1000
    res = []
    for rnd in range(cfg["rounds"]):
        for b in brokers:
            rate = rates["samsa"]
            n = rate * cfg["e2e_seconds"]
            topic = f"e2e-r{rnd}"
            progress(f"e2e latency at {rate} rec/s, samsa client, {b.name} (round {rnd + 1})")
            path = os.path.join(outdir, f"e2e-{b.name}-r{rnd}.csv")
            r = guarded(b, f"e2e round {rnd + 1}", lambda: (
                create_topic(b, topic, 1), clients.e2e(b, topic, n, size, rate, path))[1])
            if r:
                res.append({"round": rnd, "client": "samsa", "kind": "e2e", "broker": b.name,
                            "rate": rate, "csv": os.path.relpath(path, ROOT), **r})
        for b in brokers:
            rate = rates["java"]
            n = rate * cfg["e2e_seconds"]
            topic = f"lat-java-r{rnd}"
            progress(f"produce latency at {rate} rec/s, java client, {b.name} (round {rnd + 1})")
            r = guarded(b, f"send-to-ack latency round {rnd + 1}", lambda: (
                create_topic(b, topic, 1), clients.produce("java", b, topic, n, size, "1", rate))[1])
            if not r:
                continue
            res.append({"round": rnd, "client": "java", "kind": "send-to-ack", "broker": b.name,
                        "rate": rate, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                        "p999_ms": r["p999_ms"], "max_ms": r["max_latency_ms"],
                        "avg_ms": r["avg_latency_ms"]})
    R["latency"] = {"rates": rates, "runs": res}


def du(path):
    # blocks in use: Kafka's preallocated (sparse) index files would inflate apparent sizes
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out else 0


def sc_startup(cfg, brokers, clients, sampler, R, workdir, kind):
    """Start-up to first Metadata answer: empty data dirs, or the current ones."""
    res = []
    if kind == "loaded" and cfg["startup_partitions"]:
        size = 1024
        for b in brokers:
            progress(f"start-up data: {cfg['startup_bytes'] // MIB} MiB in "
                     f"{cfg['startup_partitions']} partitions on {b.name}")
            guarded(b, "start-up data fill", lambda: (
                create_topic(b, "startup", cfg["startup_partitions"]),
                clients.produce("samsa", b, "startup", cfg["startup_bytes"] // size, size, "1")))
    info = {}
    for rnd in range(cfg["rounds"]):
        for b in brokers:
            if kind == "empty":
                tmp = type(b)(workdir + f"/empty-r{rnd}")
                if isinstance(tmp, Kafka):  # format first: the format is not start-up
                    tmp.start()
                    tmp.stop()
                progress(f"start-up, empty data dir, {b.name} (round {rnd + 1})")
                secs = tmp.start()
                st = tmp.cpu_rss()
                tmp.stop()
                res.append({"round": rnd, "broker": b.name, "seconds": secs,
                            "idle_rss": st[0] if st else None})
            else:
                progress(f"start-up with data, {b.name} (round {rnd + 1})")
                logs = os.path.join(b.data, "logs")
                info[b.name] = {"bytes": du(logs), "partitions": sum(
                    1 for d in os.listdir(logs) if re.search(r"-\d+$", d) and
                    not d.startswith("__cluster_metadata"))}
                b.stop()
                secs = b.start()
                res.append({"round": rnd, "broker": b.name, "seconds": secs})
    R[f"startup_{kind}"] = {"runs": res, "data": info}


def first_produce(b, topic, timeout=300):
    """Time until a fresh producer gets an acknowledgement from b."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "1", "linger.ms": 0,
                  "reconnect.backoff.ms": 5, "reconnect.backoff.max.ms": 50,
                  "retry.backoff.ms": 5, "retry.backoff.max.ms": 50,
                  "message.timeout.ms": timeout * 1000, "topic.metadata.refresh.interval.ms": 100,
                  "log_level": 3})
    ok = []
    p.produce(topic, b"recovered", on_delivery=lambda err, msg: ok.append(err is None))
    deadline = time.monotonic() + timeout
    while not ok and time.monotonic() < deadline:
        p.poll(0.001)
    t = time.monotonic()
    if not ok or not ok[0]:
        raise RuntimeError(f"no acknowledgement from {b.name} after restart")
    return t


def recover_once(cfg, b, topic):
    """Kills b with SIGKILL under a produce load and restarts it; the times from the kill."""
    create_topic(b, topic, 16)
    load = subprocess.Popen(
        ["taskset", "-c", CLIENT_CPU, SAMSA, "perf", "produce", "--bootstrap-server",
         b.bootstrap, "--topic", topic, "--num-records", "100000000", "--record-size",
         "1024", "--throughput", "-1", "--acks", "1", "--output", "json",
         "--producer-props", "linger.ms=5", "batch.size=65536",
         "enable.idempotence=false", "message.timeout.ms=600000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        logs = os.path.join(b.data, "logs")
        base = du(logs)
        # under load once 32 MiB more are on disk, then for the load duration
        wait_for(lambda: du(logs) > base + 32 * MIB or load.poll() is not None, 120,
                 "the load to write", 0.2)
        if load.poll() is not None:
            raise RuntimeError("the load generator exited early")
        time.sleep(cfg["recovery_load_s"])  # load duration, not synchronisation
        t_kill = time.monotonic()
        b.kill9()
        t_start = time.monotonic()
        b.launch()
        t_meta = wait_for(lambda: metadata_ok(b.port), 600, f"{b.name} after kill")
        if isinstance(b, Kafka):
            b.proc.wait(timeout=300)
            b.pid = b._pid()
        t_prod = first_produce(b, topic)
    finally:
        load.kill()
        load.wait()
    return {"metadata_s": t_meta - t_kill, "produce_s": t_prod - t_kill,
            "restart_s": t_meta - t_start}


def sc_recovery(cfg, brokers, clients, sampler, R):
    res = []
    for rnd in range(cfg["rounds"]):
        for b in brokers:
            progress(f"recovery: kill -9 {b.name} under load (round {rnd + 1})")
            r = guarded(b, f"recovery round {rnd + 1}",
                        lambda: recover_once(cfg, b, f"recovery-r{rnd}"))
            if r:
                res.append({"round": rnd, "broker": b.name, **r})
    R["recovery"] = res


def sc_many(cfg, brokers, clients, sampler, R):
    parts = cfg["many_partitions"]
    res = []
    idle = {}
    for b in brokers:
        progress(f"many partitions: creating {parts} partitions on {b.name}")
        t = time.monotonic()
        guarded(b, "many partitions: create", lambda: create_topic(b, "many", parts))
        st = b.cpu_rss()
        idle[b.name] = {"create_s": time.monotonic() - t, "rss_after_create": st[0] if st else None}
    for rnd, client, b in ab_order(cfg["rounds"], brokers):
        progress(f"many partitions: produce over {parts} partitions, {client} client -> "
                 f"{b.name} (round {rnd + 1})")
        r = guarded(b, f"many partitions {client} round {rnd + 1}", lambda: clients.produce(
            client, b, "many", cfg["many_records"], 1024, "1"))
        if not r:
            continue
        st = b.cpu_rss()
        res.append({"round": rnd, "client": client, "broker": b.name,
                    "rss_after": st[0] if st else None, **r})
    R["many"] = {"partitions": parts, "records": cfg["many_records"], "create": idle, "runs": res}


# ---------------------------------------------------------------- group rebalance (KIP-848)


class GroupWire:
    """A minimal ConsumerGroupHeartbeat/ConsumerGroupDescribe client over one
    socket: the scenario drives many members from one thread, each answering
    its assignment at once (it owns what it was given, releases what was taken)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.corr = 0

    def close(self):
        self.sock.close()

    @staticmethod
    def uvarint(n):
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    @classmethod
    def cstr(cls, s):
        if s is None:
            return b"\x00"
        b = s.encode()
        return cls.uvarint(len(b) + 1) + b

    def call(self, api, version, body):
        self.corr += 1
        head = struct.pack(">hhih", api, version, self.corr, 5) + b"bench" + b"\x00"
        frame = head + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            d = self.sock.recv(1 << 20)
            if not d:
                raise ConnectionError("the broker closed the connection")
            buf += d
        return Rd(buf[4:])

    def heartbeat(self, group, member, epoch, topics, owned):
        """owned: {topic id bytes: [partitions]} or None. Returns (error, member id,
        epoch, assignment {topic id: [partitions]} or None)."""
        b = self.cstr(group) + self.cstr(member) + struct.pack(">i", epoch) + b"\x00\x00"
        b += struct.pack(">i", 30000 if epoch == 0 else -1)
        b += (self.uvarint(len(topics) + 1) + b"".join(self.cstr(t) for t in topics)
              if topics is not None else b"\x00")
        b += b"\x00"  # server assignor: the broker's default
        if owned is None:
            b += b"\x00"
        else:
            b += self.uvarint(len(owned) + 1)
            for tid, parts in owned.items():
                b += tid + self.uvarint(len(parts) + 1) + b"".join(struct.pack(">i", p) for p in parts)
                b += b"\x00"
        b += b"\x00"
        r = self.call(68, 0, b)
        r.tags()
        r.i32()
        err = r.i16()
        r.str()
        mid = r.str()
        ep = r.i32()
        r.i32()
        assignment = None
        if r.i8() >= 0:
            assignment = {}
            for _ in range(r.uvarint() - 1):
                tid = r.take(16)
                assignment[tid] = [r.i32() for _ in range(r.uvarint() - 1)]
                r.tags()
            r.tags()
        return err, mid, ep, assignment

    def find_coordinator(self, group):
        """FindCoordinator v4 (Kafka creates __consumer_offsets on the first one).
        Returns the key's error code."""
        r = self.call(10, 4, b"\x00" + self.uvarint(2) + self.cstr(group) + b"\x00")
        r.tags()
        r.i32()
        r.uvarint()
        r.str()
        r.i32()
        r.str()
        r.i32()
        return r.i16()

    def state(self, group):
        r = self.call(69, 0, self.uvarint(2) + self.cstr(group) + b"\x00" + b"\x00")
        r.tags()
        r.i32()
        r.uvarint()
        r.i16()
        r.str()
        r.str()
        return r.str()


class Rd:
    def __init__(self, data):
        self.d, self.p = data, 4  # past the correlation id

    def take(self, n):
        v = self.d[self.p:self.p + n]
        self.p += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def str(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.p += self.uvarint()


def group_rebalance_once(b, topic, members, rnd):
    """members consumer-protocol members join and settle; one more joins. Returns
    the time from that join until the group is Stable again with the newcomer
    owning partitions, and the heartbeats it took."""
    w = GroupWire(b.port)
    group = f"bench-848-r{rnd}"
    ms = []  # [member id, epoch, owned]
    total = [0]

    def settle(deadline_s):
        beats = 0
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            for m in ms:
                err, _, ep, asg = w.heartbeat(group, m[0], m[1], None, m[2])
                beats += 1
                if err:
                    raise RuntimeError(f"heartbeat error {err}")
                m[1] = ep
                if asg is not None:
                    m[2] = asg
            if ms[-1][2] and w.state(group) == "Stable":
                total[0] += beats
                return beats
        raise RuntimeError("the group did not stabilise")

    try:
        # Kafka answers COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR until its
        # offsets topic is up and loaded: the first member joins once it is.
        wait_for(lambda: w.find_coordinator(group) == 0, 120, "the group coordinator", 0.1)
        first = []
        wait_for(lambda: first.append(w.heartbeat(group, "", 0, [topic], {})) or
                 first[-1][0] not in (14, 15, 16), 120, "the group coordinator to serve", 0.1)
        for i in range(members):
            err, mid, ep, asg = first[-1] if i == 0 else w.heartbeat(group, "", 0, [topic], {})
            if err:
                raise RuntimeError(f"join error {err}")
            ms.append([mid, ep, asg or {}])
        settle(120)
        t = time.monotonic()
        err, mid, ep, asg = w.heartbeat(group, "", 0, [topic], {})
        if err:
            raise RuntimeError(f"join error {err}")
        ms.append([mid, ep, asg or {}])
        beats = settle(120)
        return {"stabilise_s": time.monotonic() - t, "heartbeats": beats,
                "heartbeats_total": total[0] + members + 1}
    finally:
        w.close()


def sc_groups(cfg, brokers, clients, sampler, R):
    members, parts = cfg["group_members"], cfg["group_partitions"]
    for b in brokers:
        progress(f"group rebalance: creating {parts} partitions on {b.name}")
        guarded(b, "group rebalance: create", lambda: create_topic(b, "groups848", parts))
    res = []
    for rnd in range(cfg["rounds"]):
        for b in brokers:
            progress(f"group rebalance: {members} members + 1 joining on {b.name} (round {rnd + 1})")
            st0 = b.cpu_rss()
            r = guarded(b, f"group rebalance round {rnd + 1}",
                        lambda: group_rebalance_once(b, "groups848", members, rnd))
            st1 = b.cpu_rss()
            if r:
                if st0 and st1:
                    # the whole round: 50 joins, settling, the join, settling again
                    r["broker_cpu_s"] = st1[1] - st0[1]
                    r["cpu_us_per_heartbeat"] = 1e6 * r["broker_cpu_s"] / r["heartbeats_total"]
                res.append({"round": rnd, "broker": b.name, **r})
    R["groups"] = {"members": members, "partitions": parts, "runs": res}


# ---------------------------------------------------------------- report


def fmt(x, nd=1):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def cell(xs, nd=1):
    s = summary(xs)
    if s["median"] is None:
        return "-"
    if len(s["runs"]) == 1:
        return fmt(s["median"], nd)
    return f"{fmt(s['median'], nd)} ({fmt(s['min'], nd)}–{fmt(s['max'], nd)})"


def plots(R, outdir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []

    def save(fig, ax, title, name):
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(outdir, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    # throughput bars: produce cases x clients, both brokers
    cases = []
    for r in R["produce"]:
        k = (r["size"], r["partitions"], r["acks"], r["client"])
        if k not in cases:
            cases.append(k)
    fig, ax = plt.subplots(figsize=(max(8, len(cases) * 0.9), 4.5))
    w = 0.4
    for i, bname in enumerate(("samsa", "kafka")):
        ys, lo, hi = [], [], []
        for k in cases:
            xs = pick(R["produce"], "mb_per_sec", size=k[0], partitions=k[1], acks=k[2],
                      client=k[3], broker=bname)
            s = summary(xs)
            ys.append(s["median"] or 0)
            lo.append((s["median"] or 0) - (s["min"] or 0))
            hi.append((s["max"] or 0) - (s["median"] or 0))
        ax.bar([j + (i - 0.5) * w for j in range(len(cases))], ys, w, yerr=[lo, hi], capsize=3,
               label=bname.capitalize())
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{s} B\n{p}p acks={a}\n{c}" for s, p, a, c in cases], fontsize=7)
    ax.set_ylabel("MiB/s (median, min–max)")
    save(fig, ax, "Produce throughput", "produce-throughput.png")
    # consume bars
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, bname in enumerate(("samsa", "kafka")):
        ys = []
        for client in ("java", "samsa"):
            ys.append(med(pick(R["consume"]["runs"], "mb_per_sec", client=client, broker=bname))
                      or 0)
        ax.bar([j + (i - 0.5) * w for j in range(2)], ys, w, label=bname.capitalize())
    ax.set_xticks(range(2))
    ax.set_xticklabels(["Kafka ConsumerPerformance", "samsa perf consume"])
    ax.set_ylabel("MiB/s (median)")
    save(fig, ax, "Consume throughput, cold consumer", "consume-throughput.png")
    # latency percentile curves (samsa perf e2e CSVs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in R["latency"]["runs"]:
        if r["kind"] != "e2e":
            continue
        path = os.path.join(ROOT, r["csv"])
        pts = []
        with open(path) as f:
            for row in csv.reader(f):
                try:
                    pts.append((float(row[0]), float(row[1])))
                except (ValueError, IndexError):
                    continue
        pts = [(pc, v) for pc, v in pts if pc < 100]
        xs = [1 / (1 - pc / 100) for pc, _ in pts]
        ax.plot(xs, [v for _, v in pts], color="C0" if r["broker"] == "samsa" else "C1",
                alpha=0.8, label=f"{r['broker'].capitalize()} round {r['round'] + 1}")
    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0", "50", "90", "99", "99.9", "99.99"])
    ax.set_xlabel("percentile")
    ax.set_ylabel("end-to-end latency, ms")
    ax.set_yscale("log")
    save(fig, ax, f"End-to-end latency at {R['latency']['rates']['samsa']} records/s (1 KiB)",
         "latency-percentiles.png")
    return made


def report(R, mode, outdir, cmdline):
    m = R["machine"]
    L = []
    a = L.append
    rel = os.path.relpath(outdir, os.path.join(ROOT, "docs"))
    a(BEGIN)
    a("## Samsa and Apache Kafka 4.4, side by side\n")
    a(f"Written by `{cmdline}` ({mode} run) on {m['date']}; raw results: "
      f"`bench/results/{mode}/results.json` and CSVs beside it.\n")
    if R.get("noisy"):
        a("**This run was on a shared, noisy machine**: the VM's 2 cores were shared with other "
          f"engineers' builds and tests (load average at start: {m['load_at_start']}). Treat "
          "ratios as indicative; the min–max spread shows the noise.\n")
    if mode == "quick":
        a("**This is a `make bench-quick` run**: one round per scenario and small sizes; it is "
          "an inner-loop check, not the full comparison.\n")
    a("### Machine and set-up\n")
    a(f"- {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, data disk {m['disk']}, "
      f"Linux {m['kernel']}, {m['java']}; Samsa at commit {m['samsa_commit']}.")
    a(f"- Placement: each broker pinned to CPU {BROKER_CPU} (`taskset -c {BROKER_CPU}`, the JVM "
      f"included), every client pinned to CPU {CLIENT_CPU}. Both brokers run for the whole run "
      "(the idle one costs little); they are measured one after the other, alternating "
      "Samsa, Kafka, Samsa, Kafka, with each client.")
    a("- Equalised settings: replication factor 1, the same explicit partition counts per topic, "
      f"`log.segment.bytes={SEGMENT_BYTES}` (Kafka's default), no flush interval on either "
      "(Kafka's default flush policy), `group.initial.rebalance.delay.ms=0`, "
      "`offsets.topic.num.partitions=1` and `transaction.state.log.num.partitions=1` on both "
      "(kafka-ref.sh sets them for a single node; Samsa creates `__consumer_offsets` at start, "
      "Kafka on first use). Kafka otherwise runs with its defaults and "
      "kafka-server-start.sh's heap (`-Xmx1G -Xms1G`, G1); Samsa with its defaults.")
    a(f"- What each fsyncs: **Samsa**: {R['fsync']['samsa']}. **Kafka**: {R['fsync']['kafka']}. "
      "Neither fsyncs before acknowledging, so an acknowledged record survives a broker crash "
      "(kill -9) on both, not a machine crash.")
    a("- Clients: Kafka 4.4's `ProducerPerformance` / `ConsumerPerformance` (kafka-tools, "
      "`java -Xmx512M -cp ...`) and `samsa perf` (librdkafka), both against both brokers, with "
      "`linger.ms=5 batch.size=65536 enable.idempotence=false` and the case's acks.")
    lim = R["limits"]
    a(f"- Machine limits measured in this run: data disk sequential write **{fmt(lim['disk_mb_s'])} "
      f"MiB/s** (`dd bs=1M count={lim['disk_mib']} conv=fdatasync`, the fdatasync inside the "
      f"timing), loopback TCP **{fmt(lim['loopback_mb_s'])} MiB/s** (`iperf3 -t "
      f"{lim['iperf_s']}`, server on CPU {BROKER_CPU}, client on CPU {CLIENT_CPU}).\n")

    # 1. produce
    a("### 1. Produce throughput\n")
    a("MiB/s, median (min–max) over the rounds; records/s in the JSON. Ratio = Samsa / Kafka "
      "(goal ≥ 2).\n")
    a("| record | partitions | acks | client | Samsa MiB/s | Kafka MiB/s | ratio | Samsa rec/s | "
      "Kafka rec/s |")
    a("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    seen = []
    for r in R["produce"]:
        k = (r["size"], r["partitions"], r["acks"], r["client"])
        if k in seen:
            continue
        seen.append(k)
        sel = lambda b, f: [x[f] for x in R["produce"] if (x["size"], x["partitions"], x["acks"],
                                                         x["client"]) == k and x["broker"] == b]
        a(f"| {k[0]} B | {k[1]} | {k[2]} | {k[3]} | {cell(sel('samsa', 'mb_per_sec'))} | "
          f"{cell(sel('kafka', 'mb_per_sec'))} | "
          f"{ratio(med(sel('samsa', 'mb_per_sec')), med(sel('kafka', 'mb_per_sec')))} | "
          f"{fmt(med(sel('samsa', 'records_per_sec')))} | {fmt(med(sel('kafka', 'records_per_sec')))} |")
    a(f"\n![produce throughput]({rel}/produce-throughput.png)\n")

    # 2. consume
    c = R["consume"]
    a("### 2. Consume throughput\n")
    a(f"{c['records']:,} records of 1 KiB ({c['bytes'] / (1 << 30):.2f} GiB) in {c['partitions']} "
      "partitions, read by a new consumer group each time (cold consumer: group join, "
      "no offsets); MiB/s over the whole run including the join. The data is in the page cache "
      "(the disk cache was not dropped: other engineers share the machine).\n")
    a("| client | Samsa MiB/s | Kafka MiB/s | ratio |")
    a("| --- | --- | --- | --- |")
    for client in ("java", "samsa"):
        s = pick(c["runs"], "mb_per_sec", client=client, broker="samsa")
        k = pick(c["runs"], "mb_per_sec", client=client, broker="kafka")
        a(f"| {client} | {cell(s)} | {cell(k)} | {ratio(med(s), med(k))} |")
    a(f"\n![consume throughput]({rel}/consume-throughput.png)\n")

    # 3. latency
    lat = R["latency"]
    a("### 3. Latency at a fixed rate\n")
    a(f"1 KiB records, 1 partition, acks=1, at 50% of the slower broker's median throughput in "
      f"scenario 1 (1 KiB, 1 partition, acks=1) with the same client: "
      f"{lat['rates']['samsa']:,} records/s for `samsa perf e2e` (produce timestamp → consume, "
      f"linger.ms=0), {lat['rates']['java']:,} records/s for ProducerPerformance (send → "
      "acknowledgement: Kafka's tools have no fixed-rate end-to-end test). Milliseconds, median "
      "(min–max) over rounds; ratio on p99 (goal ≤ 0.2).\n")
    a("| measure | broker | p50 | p99 | p99.9 | max |")
    a("| --- | --- | --- | --- | --- | --- |")
    for kind, client in (("e2e", "samsa"), ("send-to-ack", "java")):
        for b in ("samsa", "kafka"):
            rs = [r for r in lat["runs"] if r["kind"] == kind and r["broker"] == b]
            a(f"| {kind} ({client} client) | {b.capitalize()} | "
              + " | ".join(cell([r[f] for r in rs], 2) for f in ("p50_ms", "p99_ms", "p999_ms",
                                                                 "max_ms")) + " |")
        s = med([r["p99_ms"] for r in lat["runs"] if r["kind"] == kind and r["broker"] == "samsa"])
        k = med([r["p99_ms"] for r in lat["runs"] if r["kind"] == kind and r["broker"] == "kafka"])
        a(f"| {kind} p99 ratio | Samsa / Kafka | | {ratio(s, k)} | | |")
    a(f"\n![latency percentiles]({rel}/latency-percentiles.png)\n")

    # 4. resources
    res = R["resources"]
    a("### 4. Broker memory and CPU\n")
    a("Resident set size (VmRSS, peak of samples every 0.2 s) and CPU seconds (utime + stime "
      "from /proc/PID/stat) of the broker process during each scenario; both brokers did the "
      "same work in each. Goal: Samsa's RSS ≤ 1/10 of Kafka's.\n")
    a("| scenario | Samsa peak RSS MiB | Kafka peak RSS MiB | RSS ratio | Samsa CPU s | "
      "Kafka CPU s | CPU ratio |")
    a("| --- | --- | --- | --- | --- | --- | --- |")
    idle_s = med([r["idle_rss"] for r in R["startup_empty"]["runs"] if r["broker"] == "samsa"])
    idle_k = med([r["idle_rss"] for r in R["startup_empty"]["runs"] if r["broker"] == "kafka"])
    a(f"| idle, just started, empty | {fmt((idle_s or 0) / MIB)} | {fmt((idle_k or 0) / MIB)} | "
      f"{ratio(idle_s, idle_k)} | | | |")
    for label, v in res.items():
        s, k = v["samsa"], v["kafka"]
        a(f"| {label} | {fmt(s['peak_rss'] / MIB)} | {fmt(k['peak_rss'] / MIB)} | "
          f"{ratio(s['peak_rss'], k['peak_rss'])} | {fmt(s['cpu_s'])} | {fmt(k['cpu_s'])} | "
          f"{ratio(s['cpu_s'], k['cpu_s'])} |")
    a("")

    # 5. start-up
    a("### 5. Start-up time to the first Metadata answer\n")
    a("From spawning the process (Kafka: `kafka-ref.sh start` on an already formatted data dir) "
      "to the first Metadata v12 response listing a broker, probed every 2 ms. Goal for Samsa: "
      "≤ 50 ms empty.\n")
    a("| data | Samsa ms | Kafka ms | ratio |")
    a("| --- | --- | --- | --- |")
    for kind in ("empty", "loaded"):
        d = R.get(f"startup_{kind}")
        if not d or not d["runs"]:
            continue
        s = [r["seconds"] * 1000 for r in d["runs"] if r["broker"] == "samsa"]
        k = [r["seconds"] * 1000 for r in d["runs"] if r["broker"] == "kafka"]
        if kind == "empty":
            what = "empty data dir"
        else:
            info = d["data"]
            what = (f"after clean shutdown, {info['samsa']['partitions']:,} / "
                    f"{info['kafka']['partitions']:,} partitions, "
                    f"{info['samsa']['bytes'] / (1 << 30):.1f} / "
                    f"{info['kafka']['bytes'] / (1 << 30):.1f} GiB on disk (Samsa / Kafka)")
        a(f"| {what} | {cell(s, 0)} | {cell(k, 0)} | {ratio(med(s), med(k))} |")
    a("")

    # 6. recovery
    a("### 6. Recovery after kill -9 under load\n")
    a("A `samsa perf produce` load (1 KiB, acks=1, 16 partitions) runs, the broker is killed "
      "with SIGKILL and restarted at once on the same data; times from the kill to the first "
      "Metadata answer, and to the first acknowledgement for a new producer (acks=1).\n")
    a("| broker | to Metadata, s | to first acknowledged produce, s |")
    a("| --- | --- | --- |")
    for b in ("samsa", "kafka"):
        rs = [r for r in R["recovery"] if r["broker"] == b]
        a(f"| {b.capitalize()} | {cell([r['metadata_s'] for r in rs], 2)} | "
          f"{cell([r['produce_s'] for r in rs], 2)} |")
    s = med([r["produce_s"] for r in R["recovery"] if r["broker"] == "samsa"])
    k = med([r["produce_s"] for r in R["recovery"] if r["broker"] == "kafka"])
    a(f"| ratio | | {ratio(s, k)} |\n")

    # 7. many partitions
    mp = R["many"]
    a("### 7. Many partitions\n")
    a(f"One topic of {mp['partitions']:,} partitions; {mp['records']:,} records of 1 KiB "
      "produced across all of them (acks=1, linger 5 ms, batch 64 KiB). Topics of more than "
      f"{PARTITIONS_PER_OP:,} partitions are created with {PARTITIONS_PER_OP:,} and grown with "
      "CreatePartitions in steps of as many (Kafka's controller refuses one operation of more than "
      "10,000 records: POLICY_VIOLATION \"excessively large batch\"), the same on both.\n")
    a("| | Samsa | Kafka | ratio |")
    a("| --- | --- | --- | --- |")
    cr = mp["create"]
    a(f"| create the topic, s | {fmt(cr['samsa']['create_s'], 2)} | {fmt(cr['kafka']['create_s'], 2)}"
      f" | {ratio(cr['samsa']['create_s'], cr['kafka']['create_s'])} |")
    a(f"| RSS after creating, MiB | {fmt((cr['samsa']['rss_after_create'] or 0) / MIB)} | "
      f"{fmt((cr['kafka']['rss_after_create'] or 0) / MIB)} | "
      f"{ratio(cr['samsa']['rss_after_create'], cr['kafka']['rss_after_create'])} |")
    for client in ("java", "samsa"):
        s = pick(mp["runs"], "mb_per_sec", client=client, broker="samsa")
        k = pick(mp["runs"], "mb_per_sec", client=client, broker="kafka")
        a(f"| produce MiB/s, {client} client | {cell(s)} | {cell(k)} | {ratio(med(s), med(k))} |")
    s = res.get("7 many partitions", {}).get("samsa", {}).get("peak_rss")
    k = res.get("7 many partitions", {}).get("kafka", {}).get("peak_rss")
    a(f"| peak RSS while producing, MiB | {fmt((s or 0) / MIB)} | {fmt((k or 0) / MIB)} | "
      f"{ratio(s, k)} |\n")

    # 8. transactions
    a("### 8. Transactions\n")
    a(f"`samsa perf produce --transaction-records N` (librdkafka's transactional producer: "
      f"idempotent, acks=all, linger 5 ms) writes 100 B records to a one-partition topic in "
      f"{R['config'].get('txn_transactions', 0)} transactions of N records each; commit latency "
      "is the time `commit_transaction` takes (flushing the transaction's records, EndTxn, the "
      "markers).\n")
    a("| records per transaction | Samsa records/s | Kafka records/s | ratio | Samsa commit p99 ms | "
      "Kafka commit p99 ms | ratio |")
    a("| --- | --- | --- | --- | --- | --- | --- |")
    for per in R["config"].get("txn_sizes", ()):
        s = pick(R["transactions"], "records_per_sec", per_txn=per, broker="samsa")
        k = pick(R["transactions"], "records_per_sec", per_txn=per, broker="kafka")
        sp = pick(R["transactions"], "commit_p99_ms", per_txn=per, broker="samsa")
        kp = pick(R["transactions"], "commit_p99_ms", per_txn=per, broker="kafka")
        a(f"| {per} | {cell(s, 0)} | {cell(k, 0)} | {ratio(med(s), med(k))} | {cell(sp, 2)} | "
          f"{cell(kp, 2)} | {ratio(med(sp), med(kp))} |")
    a("")

    # 10. cleaner
    a("### 10. Log cleaner throughput\n")
    a(f"A one-partition topic with `segment.bytes` {CLEAN_SEGMENT_BYTES // MIB} MiB and "
      f"`cleanup.policy=delete` is filled with {R['config'].get('clean_bytes', 0) // MIB} MiB of "
      f"1 KiB records over {R['config'].get('clean_keys', 0)} keys (librdkafka, acks=1); then "
      "IncrementalAlterConfigs sets `cleanup.policy=compact` (`min.cleanable.dirty.ratio` 0.01, "
      f"`log.cleaner.backoff.ms` {CLEANER_BACKOFF_MS} on both brokers) and the time runs until the "
      "partition's `.log` files stop shrinking (polled every 20 ms; the time of the last "
      "change). MB/s: the segment bytes before cleaning over that time.\n")
    a("| | Samsa | Kafka | ratio |")
    a("| --- | --- | --- | --- |")
    s = pick(R["cleaner"], "mb_s", broker="samsa")
    k = pick(R["cleaner"], "mb_s", broker="kafka")
    a(f"| cleaned MB/s | {cell(s)} | {cell(k)} | {ratio(med(s), med(k))} |")
    s = pick(R["cleaner"], "seconds", broker="samsa")
    k = pick(R["cleaner"], "seconds", broker="kafka")
    a(f"| seconds | {cell(s, 2)} | {cell(k, 2)} | |")
    s = pick(R["cleaner"], "bytes_after", broker="samsa")
    k = pick(R["cleaner"], "bytes_after", broker="kafka")
    a(f"| segment bytes after, MiB | {cell([x / MIB for x in s])} | {cell([x / MIB for x in k])} | |")
    for key, what in (("baseline_p99_ms", "produce p99 ms before cleaning"),
                      ("cleaning_p99_ms", "produce p99 ms while cleaning")):
        s = [x for x in pick(R["cleaner"], key, broker="samsa") if x is not None]
        k = [x for x in pick(R["cleaner"], key, broker="kafka") if x is not None]
        a(f"| {what} | {cell(s, 2)} | {cell(k, 2)} | {ratio(med(s), med(k))} |")
    a("")
    a(f"Produce p99: a librdkafka producer (acks=1, linger 0, 1 KiB records) sends "
      f"{CLEAN_LOAD_RATE} records/s to another one-partition topic of the same broker from "
      f"{CLEAN_BASELINE_S} s before the switch to compact until the cleaning ends; the p99 of "
      "send-to-acknowledgement latency of the records sent before the switch, and of those sent "
      "between the switch and the cleaning's last change (at least 1 s).\n")

    a("### Failures during the run\n")
    if not R["failures"]:
        a("None: every measurement completed.\n")
    for f in R["failures"]:
        a(f"- {f['broker']}: {f['what']}{' — **the broker crashed** (restarted)' if f['broker_crashed'] else ''}: "
          f"`{f['error'].strip().splitlines()[-1][:300] if f['error'].strip() else '?'}`")
    a("")

    # goals
    a("### Against the goals\n")
    for line in R["goals"]:
        a(f"- {line}")
    a("")
    a("### Commands\n")
    a("```")
    a("make bench          # full run: bench/run.py (about 17 minutes here)")
    a("make bench-quick    # bench/run.py --quick: one round, small sizes (about 2 minutes)")
    for c in R["commands"]:
        a(c)
    a("```")
    a(END)
    return "\n".join(L) + "\n"


def goals(R):
    out = []
    ratios = []
    keys = sorted({(r["size"], r["partitions"], r["acks"], r["client"]) for r in R["produce"]})
    for k in keys:
        s = med([r["mb_per_sec"] for r in R["produce"] if (r["size"], r["partitions"], r["acks"],
                                                             r["client"]) == k and r["broker"] == "samsa"])
        kk = med([r["mb_per_sec"] for r in R["produce"] if (r["size"], r["partitions"], r["acks"],
                                                              r["client"]) == k and r["broker"] == "kafka"])
        ratios.append((s / kk if s and kk else 0, k))
    met = [x for x in ratios if x[0] >= 2]
    worst = min(ratios) if ratios else (0, (0, 0, "-", "-"))
    out.append(f"Produce throughput ≥ 2× Kafka: met in {len(met)} of {len(ratios)} cases; lowest "
               f"ratio {worst[0]:.2f} ({worst[1][0]} B, {worst[1][1]} partitions, acks={worst[1][2]}, "
               f"{worst[1][3]} client).")
    cr = []
    for client in ("java", "samsa"):
        s = med(pick(R["consume"]["runs"], "mb_per_sec", client=client, broker="samsa"))
        k = med(pick(R["consume"]["runs"], "mb_per_sec", client=client, broker="kafka"))
        cr.append(f"{client} client {s / k:.2f}" if s and k else f"{client} client -")
    out.append("Consume throughput ≥ 2× Kafka: ratios " + ", ".join(cr) + ".")
    lr = []
    for kind in ("e2e", "send-to-ack"):
        s = med([r["p99_ms"] for r in R["latency"]["runs"] if r["kind"] == kind and r["broker"] == "samsa"])
        k = med([r["p99_ms"] for r in R["latency"]["runs"] if r["kind"] == kind and r["broker"] == "kafka"])
        lr.append(f"{kind} {s / k:.2f}" if s and k else f"{kind} -")
    out.append("p99 latency ≤ 1/5 of Kafka's (ratio ≤ 0.20): " + ", ".join(lr) + ".")
    rr = [f"{label} {v['samsa']['peak_rss'] / v['kafka']['peak_rss']:.3f}"
          for label, v in R["resources"].items() if v["kafka"]["peak_rss"] and v["samsa"]["peak_rss"]]
    out.append("Broker RSS ≤ 1/10 of Kafka's (ratio ≤ 0.10): " + ", ".join(rr) + ".")
    s = med([r["seconds"] * 1000 for r in R["startup_empty"]["runs"] if r["broker"] == "samsa"])
    out.append(f"Start-up ≤ 50 ms empty: Samsa's median {fmt(s, 0)} ms.")
    tr = []
    for per in R["config"].get("txn_sizes", ()):
        s = med(pick(R["transactions"], "records_per_sec", per_txn=per, broker="samsa"))
        k = med(pick(R["transactions"], "records_per_sec", per_txn=per, broker="kafka"))
        sp = med(pick(R["transactions"], "commit_p99_ms", per_txn=per, broker="samsa"))
        kp = med(pick(R["transactions"], "commit_p99_ms", per_txn=per, broker="kafka"))
        tr.append(f"{per}/txn: {s / k:.2f}× throughput, commit p99 {sp / kp:.2f}"
                  if s and k and sp and kp else f"{per}/txn: -")
    out.append("Transactions ≥ 2× throughput and commit p99 ≤ 1/5 of Kafka's: " + ", ".join(tr) + ".")
    s = med(pick(R.get("cleaner", []), "mb_s", broker="samsa"))
    k = med(pick(R.get("cleaner", []), "mb_s", broker="kafka"))
    out.append(f"Cleaner ≥ 2× Kafka's MB/s: ratio {s / k:.2f}." if s and k else
               "Cleaner ≥ 2× Kafka's MB/s: -.")
    ps = [x for x in pick(R.get("cleaner", []), "cleaning_p99_ms", broker="samsa") if x is not None]
    pb = [x for x in pick(R.get("cleaner", []), "baseline_p99_ms", broker="samsa") if x is not None]
    pk = [x for x in pick(R.get("cleaner", []), "cleaning_p99_ms", broker="kafka") if x is not None]
    out.append(f"Produce p99 while cleaning: Samsa {fmt(med(ps), 2)} ms (before cleaning "
               f"{fmt(med(pb), 2)} ms), Kafka {fmt(med(pk), 2)} ms." if ps and pk else
               "Produce p99 while cleaning: -.")
    rm = med([r["metadata_s"] for r in R.get("recovery", []) if r["broker"] == "samsa"])
    rp = med([r["produce_s"] for r in R.get("recovery", []) if r["broker"] == "samsa"])
    out.append(f"Recovery after kill -9 ≤ 2 s: Samsa's median {fmt(rm, 2)} s to Metadata, "
               f"{fmt(rp, 2)} s to the first acknowledged produce." if rm and rp else
               "Recovery after kill -9 ≤ 2 s: -.")
    return out


def splice(doc_text, section):
    if BEGIN in doc_text and END in doc_text:
        head, rest = doc_text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + section.rstrip("\n") + tail
    return doc_text.rstrip("\n") + "\n\n" + section


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round, small sizes (a few minutes)")
    ap.add_argument("--workdir", default=None, help="scratch dir for the brokers' data "
                    "(default: bench/results/tmp, on the repository's disk)")
    ap.add_argument("--keep", action="store_true", help="keep the brokers' data at the end")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    ap.add_argument("--only", default=None, metavar="N",
                    help="run only scenario N (e.g. 8) and print its results as JSON; "
                         "no report, no doc")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    for path in (SERVER, SAMSA):
        if not os.access(path, os.X_OK):
            sys.exit(f"bench: {path} missing; run make build")
    for tool in ("taskset", "iperf3", "dd", "java"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found")
    outdir = os.path.join(ROOT, "bench", "results", mode)
    workdir = args.workdir or os.path.join(ROOT, "bench", "results", "tmp")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    n_produce = cfg["rounds"] * len(cfg["produce_cases"]) * 4
    r = cfg["rounds"]
    STEP[1] = (4 + n_produce + (2 + 4 * r) + 4 * r + 2 * r
               + (2 * r + (2 if cfg["startup_partitions"] else 0)) + 2 * r + (2 + 4 * r)
               + 2 * r * len(cfg["txn_sizes"]) + 2 + 2 * r + 2 * r + 1)
    R = {"mode": mode, "config": {k: v for k, v in cfg.items() if k != "produce_cases"},
         "machine": machine_info()}
    R["config"]["produce_cases"] = [list(c) for c in cfg["produce_cases"]]
    R["noisy"] = float(R["machine"]["load_at_start"].split()[0] or 0) > 0.5
    progress("classpath of the reference Kafka (kafka-ref.sh setup)")
    cp = subprocess.run([KREF, "classpath"], check=True, capture_output=True, text=True).stdout.strip()
    clients = Clients(cp)

    progress("machine limits: sequential write of the data disk (dd, fdatasync)")
    disk_mib = 2048 if mode == "full" else 256
    iperf_s = 10 if mode == "full" else 3
    disk = disk_speed(workdir, disk_mib)
    progress("machine limits: loopback TCP (iperf3)")
    R["limits"] = {"disk_mb_s": disk, "disk_mib": disk_mib, "iperf_s": iperf_s,
                   "loopback_mb_s": loopback_speed(iperf_s)}
    print(f"bench: disk {disk:.0f} MiB/s, loopback {R['limits']['loopback_mb_s']:.0f} MiB/s",
          file=sys.stderr)

    samsa, kafka = Samsa(workdir), Kafka(workdir)
    brokers = [samsa, kafka]
    R["fsync"] = {"samsa": samsa.fsyncs(), "kafka": kafka.fsyncs()}
    R["commands"] = [
        f"taskset -c {BROKER_CPU} build/bin/samsa-server --override listeners=PLAINTEXT://127.0.0.1:PORT "
        f"--override log.dirs=DIR/logs --override num.partitions=1 --override "
        f"default.replication.factor=1 --override log.segment.bytes={SEGMENT_BYTES} "
        "--override group.initial.rebalance.delay.ms=0 --override offsets.topic.num.partitions=1 "
        "--override transaction.state.log.num.partitions=1 --override samsa.log.level=info",
        f"KAFKA_REF_HEAP='-Xmx1G -Xms1G' KAFKA_REF_PROPS='log.segment.bytes={SEGMENT_BYTES}"
        f"<newline>default.replication.factor=1' taskset -c {BROKER_CPU} bench/kafka-ref/kafka-ref.sh "
        "start PORT DIR",
        f"taskset -c {CLIENT_CPU} java -Xmx512M -cp $(bench/kafka-ref/kafka-ref.sh classpath) "
        "org.apache.kafka.tools.ProducerPerformance --topic T --num-records N --record-size S "
        "--throughput -1 --producer-props bootstrap.servers=B acks=A linger.ms=5 batch.size=65536 "
        "enable.idempotence=false",
        f"taskset -c {CLIENT_CPU} build/bin/samsa perf produce --bootstrap-server B --topic T "
        "--num-records N --record-size S --throughput -1 --acks A --output json --producer-props "
        "acks=A linger.ms=5 batch.size=65536 enable.idempotence=false",
        f"taskset -c {CLIENT_CPU} java ... org.apache.kafka.tools.ConsumerPerformance "
        "--bootstrap-server B --topic consume --num-records N --group NEW --timeout 60000",
        f"taskset -c {CLIENT_CPU} build/bin/samsa perf consume --bootstrap-server B --topic "
        "consume --messages N --group NEW --timeout-ms 60000 --output json",
        f"taskset -c {CLIENT_CPU} build/bin/samsa perf produce --bootstrap-server B --topic T "
        "--num-records N*TXNS --record-size 100 --throughput -1 --output json "
        "--transaction-records N --transactional-id ID --producer-props linger.ms=5 batch.size=65536",
        f"taskset -c {CLIENT_CPU} build/bin/samsa perf e2e --bootstrap-server B --topic T "
        "--num-records N --record-size 1024 --throughput RATE --producer-props acks=1 "
        "linger.ms=0 enable.idempotence=false --output json --latency-csv FILE",
    ]
    sampler = Sampler(brokers)
    sampler.start()
    R["resources"] = {}

    def scenario(label, fn, *a):
        if args.only and not label.startswith(args.only):
            return
        sampler.begin(label)
        try:
            fn(*a)
        except Exception as e:  # record it, keep the other scenarios
            FAILURES.append({"broker": "-", "what": f"scenario {label}", "error": str(e)[-600:],
                             "broker_crashed": False})
            progress(f"FAILED: scenario {label}: {str(e)[-300:]}")
            for b in brokers:
                if not b.alive():
                    b.pid = None
                    b.start()
        lab, out = sampler.end()
        R["resources"][lab] = out

    try:
        progress("starting both brokers")
        samsa.start()
        kafka.start()
        scenario("1 produce", sc_produce, cfg, brokers, clients, sampler, R)
        scenario("2 consume", sc_consume, cfg, brokers, clients, sampler, R)
        scenario("3 latency", sc_latency, cfg, brokers, clients, sampler, R, outdir)
        scenario("idle, after 1-3 (while 5 runs separate processes)", sc_startup, cfg, brokers, clients,
                 sampler, R, workdir, "empty")
        scenario("5 start-up data fill", sc_startup, cfg, brokers, clients, sampler, R, workdir,
                 "loaded")
        scenario("6 recovery (kill -9)", sc_recovery, cfg, brokers, clients, sampler, R)
        scenario("7 many partitions", sc_many, cfg, brokers, clients, sampler, R)
        scenario("8 transactions", sc_transactions, cfg, brokers, clients, sampler, R)
        scenario("9 group rebalance", sc_groups, cfg, brokers, clients, sampler, R)
        scenario("10 cleaner", sc_cleaner, cfg, brokers, clients, sampler, R)
    finally:
        sampler.stopping.set()
        for b in brokers:
            try:
                b.stop()
            except Exception as e:  # keep stopping the other one
                print(f"bench: stopping {b.name}: {e}", file=sys.stderr)
    if args.only:
        print(json.dumps({k: v for k, v in R.items() if k not in ("machine", "config", "commands")},
                         indent=1, default=str))
        return
    R["failures"] = FAILURES
    # a scenario that failed outright leaves empty tables, not a broken report
    R.setdefault("produce", [])
    R.setdefault("consume", {"bytes": 0, "records": 0, "partitions": 0, "runs": []})
    R.setdefault("latency", {"rates": {"samsa": 0, "java": 0}, "runs": []})
    R.setdefault("startup_empty", {"runs": [], "data": {}})
    R.setdefault("recovery", [])
    R.setdefault("transactions", [])
    R.setdefault("cleaner", [])
    R.setdefault("many", {"partitions": cfg["many_partitions"], "records": cfg["many_records"],
                          "create": {b: {"create_s": None, "rss_after_create": None}
                                     for b in ("samsa", "kafka")}, "runs": []})
    R["goals"] = goals(R)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(R, f, indent=1)
    write_csvs(R, outdir)
    made = plots(R, outdir)
    progress(f"plots: {', '.join(os.path.basename(p) for p in made) or 'none (no matplotlib)'}")
    section = report(R, mode, outdir, "make bench" if mode == "full" else "make bench-quick")
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(section)
    if not args.no_doc:
        with open(DOC) as f:
            text = f.read()
        with open(DOC, "w") as f:
            f.write(splice(text, section))
    for g in R["goals"]:
        print("bench: " + g, file=sys.stderr)
    # the brokers' own logs, for the failures and start-up figures
    for name, src in (("samsa-server.log", samsa.log.name),
                      ("kafka-server.log", os.path.join(kafka.data, "kafka.log"))):
        if os.path.exists(src):
            with open(src, errors="replace") as f:
                tail = f.readlines()[-400:]
            with open(os.path.join(outdir, name), "w") as f:
                f.writelines(tail)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench: results in {os.path.relpath(outdir, ROOT)}"
          + ("" if args.no_doc else ", report in docs/BENCHMARKS.md"), file=sys.stderr)


def write_csvs(R, outdir):
    def dump(name, rows):
        if not rows:
            return
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(os.path.join(outdir, name), "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(rows)

    dump("produce.csv", R["produce"])
    dump("consume.csv", R["consume"]["runs"])
    dump("latency.csv", R["latency"]["runs"])
    dump("startup.csv", [dict(r, data=k) for k in ("empty", "loaded")
                         for r in R.get(f"startup_{k}", {}).get("runs", [])])
    dump("recovery.csv", R["recovery"])
    dump("many-partitions.csv", R["many"]["runs"])
    dump("resources.csv", [{"scenario": lab, "broker": b, **v}
                           for lab, bv in R["resources"].items() for b, v in bv.items()])


if __name__ == "__main__":
    main()
