"""The replication scenario of bench/cluster.py (`--replication`): a three-node cluster
of each kind, topics with replication factor 3 and min.insync.replicas=2, one client
(`samsa perf`, librdkafka) for both kinds, pinned to the client CPU.

Per kind:
- produce at the maximum rate, acks=all (idempotent, Kafka's producer default): MB/s,
  records/s, send-to-acknowledgement p50/p99, and the three brokers' CPU seconds over
  the run (utime + stime from /proc/PID/stat, all threads);
- produce at a fixed rate, acks=all: p50/p99 and broker CPU;
- end-to-end latency at a fixed moderate rate (a confluent-kafka producer, acks=all, and
  a consumer in this process, which reads only below the high watermark; after a
  warm-up, see e2e());
- follower catch-up: a follower of a one-partition topic (neither its leader nor the
  active controller) is paused with SIGSTOP, the run waits until it is out of the ISR,
  writes the lag (acks=all, the two others in sync), resumes it and times until its
  log (the .log files in its data directory) holds as many bytes as the leader's, and
  until Metadata lists it in the ISR again; the broker CPU over that interval.

Definitions: "broker CPU s per GiB produced" = the sum of the three brokers' CPU seconds
over a produce run / GiB of record values acknowledged (records x record size);
"per GiB replicated" = the same CPU / (GiB produced x (RF - 1)), RF - 1 = 2 follower
copies; "MB per broker CPU s" (the issue's throughput per broker CPU) = MB produced /
the brokers' CPU seconds. Catch-up CPU per GiB = the three brokers' CPU from the resume
to the ISR / GiB of lag (the leader's log bytes minus the follower's at the resume).
"""

import json
import os
import subprocess
import time
import uuid

from cluster import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMSA = os.path.join(ROOT, "build", "bin", "samsa")
MIB = 1 << 20
GIB = 1 << 30
RF = 3
MIN_ISR = 2

# Sizes: full (make bench) and quick (make bench-quick, a validation run).
MODES = {
    "full": dict(rounds=3, record_size=1024, partitions=3, warm_mib=256, max_mib=1024,
                 fixed_rate=None, fixed_s=30, e2e_rate=None, e2e_s=30, lag_mib=1024),
    "quick": dict(rounds=1, record_size=1024, partitions=3, warm_mib=32, max_mib=128,
                  fixed_rate=None, fixed_s=10, e2e_rate=None, e2e_s=10, lag_mib=128),
}
# e2e_rate: at most E2E_RATE records/s (the client is Python), lower when fixed_rate is.
E2E_RATE = 2000
# fixed_rate None: half the max-rate records/s (median) of the first kind run
# (Kafka by default; the kinds run one after the other), the same for every kind, so that
# the fixed-rate runs stay below Kafka's capacity (bench/run.py's latency scenario uses
# half the slower broker's maximum the same way).
AUTO_RATE_SHARE = 0.5

# Producer settings as bench/run.py's, with Kafka's producer defaults for acks=all.
PRODUCER_PROPS = ["acks=all", "enable.idempotence=true", "linger.ms=5", "batch.size=65536"]
E2E_PRODUCER_PROPS = ["acks=all", "enable.idempotence=true", "linger.ms=0"]


def _log(msg):
    import sys
    print(f"[replication {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime + stime of a process (all threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """The brokers' CPU seconds between start() and stop(); a node restarted in between
    (another pid) makes the figure unusable (None)."""

    def __init__(self, c):
        self.c = c

    def start(self):
        self.pids = dict(self.c.pids)
        self.t0 = time.monotonic()
        self.cpu0 = {i: cpu_seconds(p) for i, p in self.pids.items()}
        return self

    def stop(self):
        wall = time.monotonic() - self.t0
        per = {}
        for i, p in self.pids.items():
            now = cpu_seconds(p)
            per[i] = None if now is None or self.cpu0[i] is None or self.c.pids.get(i) != p \
                else now - self.cpu0[i]
        total = None if any(v is None for v in per.values()) else sum(per.values())
        return {"wall_s": wall, "cpu_s": total, "cpu_per_node": per}


def perf(args, timeout=3600):
    """Runs `samsa perf ...` (inherits this process's CPU affinity); the last JSON line."""
    p = subprocess.run([SAMSA, "perf", *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"samsa perf {args[0]} exited {p.returncode}: {p.stderr[-1500:]}")
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def produce(c, topic, n, size, rate):
    return perf(["produce", "--bootstrap-server", c.bootstrap(c.running()), "--topic", topic,
                 "--num-records", str(n), "--record-size", str(size), "--throughput", str(rate),
                 "--acks", "all", "--output", "json", "--timeout-ms", "30000",
                 "--producer-props", *PRODUCER_PROPS])


def e2e(c, topic, partitions, seconds, size, rate, consumer_conf=None):
    """End-to-end latency at a fixed rate: a confluent-kafka (librdkafka) producer and a
    consumer in this process (on the client CPU). Warm-up records are sent at the same
    rate until the consumer has received one from every partition (connections made,
    producer id assigned, positions resolved); then rate x seconds timed records, each
    carrying its send time; latency = receive time - send time. `samsa perf e2e` is not
    used here: it starts its clock before the client is connected, so on this machine the
    first ~0.3-1 s of records wait for the start-up and set its p99."""
    import struct
    import sys
    import threading
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
    boot = c.bootstrap(c.running())
    conf = dict(kv.split("=", 1) for kv in E2E_PRODUCER_PROPS)
    prod = Producer({"bootstrap.servers": boot, **conf, "log_level": 3})
    cons = Consumer({"bootstrap.servers": boot, "group.id": f"e2e-{uuid.uuid4().hex[:8]}",
                     "enable.auto.commit": False, "log_level": 3, **(consumer_conf or {})})
    cons.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
    lat, warm_parts, stop = [], set(), threading.Event()
    errors = []

    def receive():
        # poll(): one record as soon as it is there (consume(n, t) waits for n or t).
        while not stop.is_set():
            m = cons.poll(0.05)
            if m is None:
                continue
            now = time.time_ns()
            if m.error():
                errors.append(str(m.error()))
                continue
            kind, sent = struct.unpack_from(">BQ", m.value())
            if kind:
                lat.append((now - sent) / 1e6)
            else:
                warm_parts.add(m.partition())

    def send(kind, n, t0):
        for i in range(n):
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            v = struct.pack(">BQ", kind, time.time_ns()) + pad
            while True:
                try:
                    prod.produce(topic, v, on_delivery=on_delivery)
                    break
                except BufferError:
                    prod.poll(0.01)
            prod.poll(0)

    def on_delivery(err, _msg):
        if err:
            errors.append(str(err))

    pad = bytes(max(0, size - 9))
    th = threading.Thread(target=receive, daemon=True)
    th.start()
    # The receiving thread must not wait out the sender's 5 ms interpreter slices.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        deadline = time.monotonic() + 60
        while len(warm_parts) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"e2e warm-up: records arrived from partitions "
                                   f"{sorted(warm_parts)} of {partitions} in 60 s")
            send(0, max(1, rate // 10), time.monotonic())
        n = int(rate * seconds)
        send(1, n, time.monotonic())
        if prod.flush(60) != 0:
            raise TimeoutError("e2e: records not acknowledged within 60 s")
        deadline = time.monotonic() + 60
        while len(lat) < n and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        sys.setswitchinterval(switch)
        stop.set()
        th.join(10)
        cons.close()
    if errors:
        raise RuntimeError(f"e2e: {len(errors)} error(s), first: {errors[0]}")
    if len(lat) < n:
        raise RuntimeError(f"e2e: {len(lat)} of {n} records arrived within 60 s")
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    return {"records": n, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
            "max_ms": lat[-1], "avg_ms": sum(lat) / len(lat)}


def create_topic(c, name, partitions):
    """An RF=3 topic with min.insync.replicas=2, usable on every partition."""
    c.create_topic(name, partitions, RF, via=c.running(), timeout=30.0,
                   config={"min.insync.replicas": str(MIN_ISR)})
    wait_isr(c, name, lambda st: all(len(isr) == RF for _, _, isr in st.values()), 60,
             f"{name}: a leader and the full ISR on every partition")
    # Every broker has applied the topic and every leader serves its partition: a broker
    # may list a leader in Metadata before that leader serves the partition, and
    # librdkafka's watermark query (samsa perf e2e's start) does not retry
    # NOT_LEADER_OR_FOLLOWER.
    wait_for(lambda: all(c.topic_ready(i, name) for i in c.running()), 60,
             f"{name} in every broker's own Metadata", 0.02)
    wait_for(lambda: leaders_serve(c, name, partitions), 60,
             f"{name}: ListOffsets answered by every leader", 0.02)


def leaders_serve(c, topic, partitions):
    """True when ListOffsets (latest) succeeds on every partition of topic."""
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap(c.running()), "group.id": "bench-probe",
                     "log_level": 2})
    try:
        for p in range(partitions):
            cons.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
        return True
    finally:
        cons.close()


def partitions_state(c, topic, via=None):
    """{partition: (leader, replicas, isr)} from Metadata through the running nodes."""
    key = tuple(sorted(via or c.running()))
    admins = c.__dict__.setdefault("_bench_admins", {})
    if key not in admins:
        # Quiet: these clients outlive paused and closed nodes and would log every refusal.
        admins[key] = c.admin(list(key), log_level=2)
    md = admins[key].list_topics(topic, timeout=5)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p: (pm.leader, list(pm.replicas), list(pm.isrs)) for p, pm in t.partitions.items()}


def wait_isr(c, topic, cond, timeout, what, interval=0.05, via=None):
    """Polls the topic's Metadata until cond(state) holds; returns the seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while True:
        try:
            last = partitions_state(c, topic, via)
            if last and all(ld >= 0 for ld, _, _ in last.values()) and cond(last):
                return time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - a client error means "not yet"
            last = repr(e)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")
        time.sleep(interval)


def log_bytes(c, node_id, topic, p=0):
    """Bytes of the .log segments of topic-p in node node_id's log directory."""
    d = os.path.join(c.nodes[node_id].data_dir, "logs", f"{topic}-{p}")
    total = 0
    try:
        for f in os.listdir(d):
            if f.endswith(".log"):
                total += os.path.getsize(os.path.join(d, f))
    except OSError:
        return 0
    return total


def produce_run(c, topic, cfg, rate, n):
    meter = CpuMeter(c).start()
    r = produce(c, topic, n, cfg["record_size"], rate)
    m = meter.stop()
    gib = r["records"] * cfg["record_size"] / GIB
    out = {"rate": rate, **r, **m, "gib": gib}
    if m["cpu_s"] is not None and gib > 0:
        out["cpu_s_per_gib"] = m["cpu_s"] / gib
        out["cpu_s_per_gib_replicated"] = m["cpu_s"] / (gib * (RF - 1))
        out["mb_per_cpu_s"] = r["records"] * cfg["record_size"] / MIB / m["cpu_s"]
    return out


def catch_up(c, cfg):
    """SIGSTOP of a follower, lag_mib written, SIGCONT: seconds until its log matches the
    leader's and until it is back in the ISR."""
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    create_topic(c, topic, 1)
    leader, replicas, _ = partitions_state(c, topic)[0]
    ctrl = c.active_controller()
    victims = [r for r in replicas if r not in (leader, ctrl)] or [r for r in replicas if r != leader]
    victim = victims[0]
    others = [i for i in c.nodes if i != victim]
    # A few records first, so both logs exist and the victim is a caught-up follower.
    produce(c, topic, 1000, cfg["record_size"], -1)
    wait_isr(c, topic, lambda st: len(st[0][2]) == RF, 60, "the full ISR before the pause")
    _log(f"{c.kind}: catch-up: leader {leader}, pausing follower {victim} (controller {ctrl})")
    c.stop(victim)
    try:
        shrink_s = wait_isr(c, topic, lambda st: victim not in st[0][2], 180,
                            f"node {victim} to leave the ISR", 0.1, via=others)
        _log(f"{c.kind}: catch-up: node {victim} left the ISR {shrink_s:.1f}s after SIGSTOP; "
             f"writing {cfg['lag_mib']} MiB")
        write = produce_run(c, topic, cfg, -1, cfg["lag_mib"] * MIB // cfg["record_size"])
        leader_now = partitions_state(c, topic, others)[0][0]
        target = log_bytes(c, leader_now, topic)
        lag = target - log_bytes(c, victim, topic)
    except BaseException:
        c.cont(victim)
        raise
    meter = CpuMeter(c).start()
    t0 = time.monotonic()
    c.cont(victim)
    t_log = t_isr = None
    # The log comparison assumes the follower stores the leader's batches as they are;
    # it is given 10 s past the ISR before it is reported as not reached.
    while time.monotonic() < t0 + 1800 and (t_log is None or t_isr is None):
        now = time.monotonic()
        if t_isr is not None and now - t0 > t_isr + 10:
            break
        if t_log is None and log_bytes(c, victim, topic) >= target:
            t_log = now - t0
        if t_isr is None:
            # Asked of the two others: the resumed node's own Metadata is its image from
            # before the pause, which still lists it in the ISR.
            try:
                st = partitions_state(c, topic, others)
                if st and victim in st[0][2]:
                    t_isr = time.monotonic() - t0
            except Exception:  # noqa: BLE001 - a client error means "not yet"
                pass
        time.sleep(0.02)
    m = meter.stop()
    if t_isr is None:
        raise TimeoutError(f"node {victim} did not catch up within 1800 s (log "
                           f"{log_bytes(c, victim, topic)} of {target} bytes, in ISR: {t_isr})")
    out = {"topic": topic, "leader": leader, "leader_after": leader_now, "follower": victim,
           "controller": ctrl, "isr_shrink_s": shrink_s, "lag_bytes": lag,
           "log_s": t_log, "isr_s": t_isr, "log_mb_s": lag / MIB / t_log if t_log else None,
           "isr_mb_s": lag / MIB / t_isr, "write": write, **m}
    if m["cpu_s"] is not None and lag > 0:
        out["cpu_s_per_gib"] = m["cpu_s"] / (lag / GIB)
    matched = f"in {t_log:.2f}s" if t_log else "never matched the leader's"
    _log(f"{c.kind}: catch-up of {lag / MIB:.0f} MiB: log {matched}, ISR in {t_isr:.2f}s")
    return out


def _guard(c, res, what, fn):
    """Runs one part; a failure is recorded in res["errors"] (a finding) and the next
    part runs. Returns fn's result or None."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any failure of a tool or broker is a finding
        dead = [f"node {i} exited ({n.proc.returncode})" for i, n in c.nodes.items()
                if n.proc is not None and n.proc.poll() is not None]
        msg = (f"{what}: {type(e).__name__}: {e}"[-1500:]
               + (f" [{', '.join(dead)}]" if dead else " [all nodes running]"))
        res.setdefault("errors", []).append(msg)
        _log(f"{c.kind}: FAILED {msg}")
        return None


def _num(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def run(c, cfg, shared):
    """The scenario on a started cluster; returns the raw results (a failed part is in
    "errors"). shared: a dict kept across the kinds of one run (the automatic rate)."""
    size, parts = cfg["record_size"], cfg["partitions"]
    cfg = dict(cfg)
    res = {"config": cfg, "max": [], "fixed": [], "e2e": []}
    topic = f"repl-{uuid.uuid4().hex[:8]}"
    create_topic(c, topic, parts)
    res["placement"] = {p: {"leader": ld, "replicas": rs} for p, (ld, rs, _)
                        in sorted(partitions_state(c, topic).items())}
    _log(f"{c.kind}: warm-up, {cfg['warm_mib']} MiB")
    _guard(c, res, "warm-up", lambda: produce(c, topic, cfg["warm_mib"] * MIB // size, size, -1))
    for r in range(cfg["rounds"]):
        x = _guard(c, res, f"max rate round {r + 1}",
                   lambda: produce_run(c, topic, cfg, -1, cfg["max_mib"] * MIB // size))
        if x:
            res["max"].append(x)
            _log(f"{c.kind}: max rate round {r + 1}: {x['mb_per_sec']:.1f} MB/s, p99 "
                 f"{x['p99_ms']:.1f} ms, broker CPU {_num(x['cpu_s'])}s over {x['wall_s']:.1f}s")
    measured = _med([x["records_per_sec"] for x in res["max"]])
    if "auto_rate" not in shared:  # the first kind sets it for all
        shared["auto_rate"] = max(100, int(measured * AUTO_RATE_SHARE)) if measured else 1000
        shared["auto_from"] = c.kind if measured else f"no kind ({c.kind}'s max-rate run failed)"
    if cfg["fixed_rate"] is None:
        cfg["fixed_rate"] = shared["auto_rate"]
        cfg["fixed_rate_auto"] = shared["auto_from"]
    if cfg["e2e_rate"] is None:
        cfg["e2e_rate"] = min(E2E_RATE, cfg["fixed_rate"])
    for r in range(cfg["rounds"]):
        x = _guard(c, res, f"fixed rate round {r + 1}", lambda: produce_run(
            c, topic, cfg, cfg["fixed_rate"], cfg["fixed_rate"] * cfg["fixed_s"]))
        if x:
            res["fixed"].append(x)
            _log(f"{c.kind}: {cfg['fixed_rate']} rec/s round {r + 1}: p50 {x['p50_ms']:.1f} ms, "
                 f"p99 {x['p99_ms']:.1f} ms, broker CPU {_num(x['cpu_s'])}s")

    def e2e_round():
        et = f"e2e-{uuid.uuid4().hex[:8]}"
        create_topic(c, et, parts)
        meter = CpuMeter(c).start()
        y = e2e(c, et, parts, cfg["e2e_s"], size, cfg["e2e_rate"])
        return {"rate": cfg["e2e_rate"], **y, **meter.stop()}

    for r in range(cfg["rounds"]):
        y = _guard(c, res, f"end-to-end round {r + 1}", e2e_round)
        if y:
            res["e2e"].append(y)
            _log(f"{c.kind}: e2e at {cfg['e2e_rate']} rec/s round {r + 1}: p50 "
                 f"{y['p50_ms']:.1f} ms, p99 {y['p99_ms']:.1f} ms")
    res["catch_up"] = _guard(c, res, "catch-up", lambda: catch_up(c, cfg))
    c.__dict__.pop("_bench_admins", None)
    return res


# ---------------------------------------------------------------- report

BEGIN = "<!-- cluster-replication:begin (written by bench/cluster.py --replication --doc) -->"
END = "<!-- cluster-replication:end -->"


def _med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def _cell(xs, nd=1, unit=""):
    """Median (and the min-max range over rounds when there are several)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    f = f"{{:,.{nd}f}}"
    s = f.format(_med(xs)) + unit
    if len(xs) > 1:
        s += f" ({f.format(min(xs))}-{f.format(max(xs))})"
    return s


def _ratio(a, b, nd=2):
    a, b = _med(a), _med(b)
    return "n/a" if a is None or not b else f"{a / b:.{nd}f}"


def rows(results):
    """[(measure, samsa cell, kafka cell, samsa/kafka)] over the kinds' results."""
    by = {r["kind"]: r.get("replication") or {} for r in results}
    s, k = by.get("samsa", {}), by.get("kafka", {})
    cfg = (s or k).get("config", {})
    out = []

    def row(name, get, nd=1, unit=""):
        sv, kv = get(s), get(k)
        out.append((name, _cell(sv, nd, unit), _cell(kv, nd, unit), _ratio(sv, kv)))

    def each(d, part, field):
        return [x.get(field) for x in d.get(part, [])]

    cu = lambda d, f: [d["catch_up"].get(f)] if d.get("catch_up") else []  # noqa: E731
    row("max rate, acks=all: MB/s", lambda d: each(d, "max", "mb_per_sec"))
    row("max rate: records/s", lambda d: each(d, "max", "records_per_sec"), 0)
    row("max rate: send-to-ack p50, ms", lambda d: each(d, "max", "p50_ms"))
    row("max rate: send-to-ack p99, ms", lambda d: each(d, "max", "p99_ms"))
    row("max rate: broker CPU s (3 brokers) per GiB produced",
        lambda d: each(d, "max", "cpu_s_per_gib"), 2)
    row("max rate: broker CPU s per GiB replicated (per GiB produced / (RF-1))",
        lambda d: each(d, "max", "cpu_s_per_gib_replicated"), 2)
    row("max rate: MB produced per broker CPU second", lambda d: each(d, "max", "mb_per_cpu_s"))
    rate = cfg.get("fixed_rate")
    row(f"{rate:,} records/s, acks=all: send-to-ack p50, ms" if rate else "fixed rate p50, ms",
        lambda d: each(d, "fixed", "p50_ms"))
    row("fixed rate: send-to-ack p99, ms", lambda d: each(d, "fixed", "p99_ms"))
    row("fixed rate: send-to-ack p99.9, ms", lambda d: each(d, "fixed", "p999_ms"))
    row("fixed rate: broker CPU s per GiB produced", lambda d: each(d, "fixed", "cpu_s_per_gib"), 2)
    erate = cfg.get("e2e_rate")
    row(f"end-to-end at {erate:,} records/s (produce -> consume): p50, ms" if erate else
        "end-to-end p50, ms", lambda d: each(d, "e2e", "p50_ms"))
    row("end-to-end: p99, ms", lambda d: each(d, "e2e", "p99_ms"))
    row("end-to-end: p99.9, ms", lambda d: each(d, "e2e", "p999_ms"))
    row("catch-up: lag written while the follower was paused, MiB",
        lambda d: [x / MIB for x in cu(d, "lag_bytes")], 0)
    row("catch-up: SIGSTOP -> follower out of the ISR, s", lambda d: cu(d, "isr_shrink_s"))
    row("catch-up: SIGCONT -> follower log = leader log, s", lambda d: cu(d, "log_s"), 2)
    row("catch-up: SIGCONT -> follower back in the ISR, s", lambda d: cu(d, "isr_s"), 2)
    row("catch-up speed (lag / time back in the ISR), MB/s", lambda d: cu(d, "isr_mb_s"))
    row("catch-up: broker CPU s (3 brokers) per GiB caught up", lambda d: cu(d, "cpu_s_per_gib"), 2)
    return out


def table(results):
    lines = ["| measure | Samsa | Kafka 4.4 | Samsa / Kafka |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
    return "\n".join(lines)


def goals(results):
    """The issue's goals: throughput per broker CPU >= 2x Kafka's, p99 <= 1/5 of Kafka's."""
    by = {r["kind"]: r.get("replication") or {} for r in results}
    s, k = by.get("samsa"), by.get("kafka")
    if not s or not k or not s.get("max") or not k.get("max"):
        return []
    out = []
    tp = [_med([x.get("mb_per_cpu_s") for x in d["max"]]) for d in (s, k)]
    if None not in tp:
        r = tp[0] / tp[1]
        out.append(f"throughput per broker CPU (max rate): {r:.2f}x Kafka's (goal >= 2x: "
                   f"{'met' if r >= 2 else 'not met'})")
    for part, what in (("fixed", "fixed-rate"), ("max", "max-rate")):
        p = [_med([x.get("p99_ms") for x in d.get(part, [])]) for d in (s, k)]
        if None not in p and p[1]:
            r = p[0] / p[1]
            out.append(f"{what} send-to-ack p99: {r:.2f} of Kafka's (goal <= 0.20: "
                       f"{'met' if r <= 0.2 else 'not met'})")
    return out


def _one_line(msg, n=300):
    """A failure for a Markdown list item: one line; its start (what failed) and its end
    (a tool's final error) when long."""
    msg = " ".join(msg.replace("`", "'").split())
    return msg if len(msg) <= n else msg[:n // 3] + " ... " + msg[-(2 * n // 3):]


def section(results, meta):
    """The docs/BENCHMARKS.md section, between the markers."""
    cfg = next((r["replication"]["config"] for r in results if r.get("replication")), {})
    L = [BEGIN, "## Replication: RF=3, acks=all, follower catch-up (issue 13)", ""]
    L.append(f"Written by `{meta['cmdline']}` on {meta['date']} (Samsa at commit "
             f"{meta['commit']}; load average at start {meta['load']}).")
    if meta.get("quick"):
        L.append("**A short validation run** (`--quick` sizes), not the full measurement; with "
                 "these sizes Kafka's JVMs may still be compiling (JIT) during the runs.")
    if meta.get("noisy"):
        L.append("**Measured on a loaded machine**: other people's builds and tests shared the "
                 "2 cores during the run; the figures are indicative only.")
    L.append("")
    L.append(
        "Set-up: for each system a three-node cluster (combined broker+controller nodes, each in "
        f"its own network namespace on a bridge, `{meta.get('network', 'netns')}` mode of "
        "tests/cluster/cluster.py), one after the other ("
        + ", ".join(r["kind"] for r in results) + "). All three brokers of a "
        "cluster pinned to CPU 1 (`taskset -c 1`), the client to CPU 0. Kafka 4.4: three JVMs with "
        f"`{meta['heap']} -XX:+UseG1GC` each ({meta['mem_gib']:.1f} GiB RAM on the machine), "
        "otherwise Kafka's defaults (num.replica.fetchers=1, replica.fetch.max.bytes=1 MiB, "
        "replica.lag.time.max.ms=30 s, broker.session.timeout.ms=9 s, log.segment.bytes=1 GiB); "
        "Samsa with its defaults (the same keys and values). Topics: replication factor 3, "
        f"`min.insync.replicas={MIN_ISR}`, {cfg.get('partitions')} partitions (leaders spread "
        "over the three brokers) for the produce and end-to-end runs, 1 partition for "
        "the catch-up.")
    L.append("")
    src = cfg.get("fixed_rate_auto")
    auto = f" (half of {src}'s max-rate records/s, the first kind run)" if src else ""
    L.append(
        f"Client, for both: `samsa perf` (librdkafka), {cfg.get('record_size')}-byte records, "
        "producer `" + " ".join(PRODUCER_PROPS) + "` (Kafka's producer defaults for acks=all: "
        f"idempotent, at most 5 requests in flight per broker); after a {cfg.get('warm_mib')} MiB "
        f"warm-up, max rate: {cfg.get('max_mib')} MiB per round; fixed rate: "
        f"{cfg.get('fixed_rate') or 0:,} records/s{auto} for {cfg.get('fixed_s')} s; end-to-end: "
        f"{cfg.get('e2e_rate') or 0:,} records/s (at most {E2E_RATE:,}, at most the fixed rate) "
        f"for {cfg.get('e2e_s')} s from a confluent-kafka producer (`"
        + " ".join(E2E_PRODUCER_PROPS) + "`) to a consumer in the same process (librdkafka both; "
        "latency = receive time - send time, carried in the record), after warm-up records at "
        "the same rate until the consumer has one from every partition; "
        f"{cfg.get('rounds')} round(s) of each, medians with the range. Send-to-ack latency at "
        "the max rate is mostly time in the client's queue. `samsa perf e2e` (bench/run.py's "
        "end-to-end tool) starts its clock before its client is connected: on this machine the "
        "first 0.3-1 s of records waited for the start-up and set its p99 for both systems, so "
        "it is not used here.")
    L.append("")
    L.append(
        "Catch-up: a one-partition topic; a follower that is neither the partition's leader nor "
        "the active controller is paused (SIGSTOP); once Metadata shows it out of the ISR, "
        f"{cfg.get('lag_mib')} MiB are produced (acks=all, the two others in sync); then SIGCONT "
        "and the time until the follower's .log files hold as many bytes as the leader's and "
        "until Metadata lists it in the ISR again (polled every 20 ms). The lag is the leader's "
        "log bytes minus the follower's at the resume.")
    L.append("")
    L.append(
        "CPU: utime + stime of each broker process (all threads, /proc/PID/stat) over the run, "
        "summed over the three brokers. Per GiB produced: that sum / GiB of record values "
        "acknowledged. Per GiB replicated: the same sum / (GiB produced x (RF - 1)), the two "
        "follower copies (the leader's own append and the client's requests are in the sum too). "
        "MB per broker CPU second: MB produced / that sum, the issue's \"throughput per broker "
        "CPU\". Catch-up: the sum from SIGCONT to back in the ISR / GiB of lag.")
    L.append("")
    L.append(table(results))
    L.append("")
    for r in results:
        for e in (r.get("replication") or {}).get("errors", []):
            L.append(f"- {r['kind']}: failed: `{_one_line(e)}`")
        if r.get("replication_error"):
            L.append(f"- {r['kind']}: the scenario failed: `{_one_line(r['replication_error'])}`")
        if r.get("skipped"):
            L.append(f"- {r['kind']}: skipped (`{_one_line(r['skipped'])}`)")
    g = goals(results)
    if g:
        L.append("Against the goals of issue 13: " + "; ".join(g) + ".")
        L.append("")
    L.append(END)
    return "\n".join(L)


def splice(doc_text, sec):
    if BEGIN in doc_text and END in doc_text:
        head, rest = doc_text.split(BEGIN, 1)
        return head + sec + rest.split(END, 1)[1]
    return doc_text.rstrip("\n") + "\n\n" + sec + "\n"
