#!/usr/bin/env python3
"""Cluster benchmark: a 3-node KRaft cluster of Apache Kafka 4.4 and of Samsa
(when samsa-server forms a cluster), with the harness of tests/cluster.

Per kind and round:
- failover: kill -9 of the active controller (found with DescribeQuorum) ->
  first moment a new leader is reported, and -> the next committed metadata
  change: a CreateTopics retried through the survivors until it succeeds, or
  the topic showing in a survivor's own Metadata, whichever is first;
- create: CreateTopics latency (the request alone) and until every broker's
  own Metadata shows the topic with a leader for each partition;
- RSS of every node after start-up and at the end.

Placement as in bench/run.py: every node pinned to CPU 1 (`taskset -c 1`, the
JVMs included), this process (the client) to CPU 0; Kafka with
kafka-server-start.sh's heap (-Xms1G -Xmx1G, G1). A kind whose cluster does
not start is reported as skipped with the reason.

--replication adds the replication scenario (bench/cluster_replication.py: RF=3
acks=all throughput, latency and broker CPU, end-to-end latency, follower catch-up
after a lag); --doc writes its section of docs/BENCHMARKS.md. --rounds 0 leaves out
the failover/create rounds.

  .venv/bin/python bench/cluster.py [--rounds 3] [--kinds kafka,samsa]
      [--network auto|netns|proxy] [--json out.json] [--many 30000]
      [--replication [--quick] [--lag-mib N] [--max-mib N] [--fixed-rate R]
       [--e2e-rate R] [--repl-rounds N] [--doc]]
"""

import argparse
import datetime
import glob
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

from cluster import Cluster, ClusterUnavailable, wait_for  # noqa: E402

import cluster_replication  # noqa: E402

BROKER_CPU = "1"
CLIENT_CPU = 0
MIB = 1 << 20
HEAP = "-Xms1G -Xmx1G"
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")


def log(msg):
    print(f"[cluster-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def failover(c):
    """kill -9 the active controller; seconds to a new leader and to a committed CreateTopics."""
    old = c.active_controller()
    survivors = [i for i in c.nodes if i != old]
    name = f"failover-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    c.kill9(old)
    c.wait_controller(exclude=[old], timeout=120)
    t_leader = time.monotonic() - t0
    # A thread retries one CreateTopics (one name for every attempt: an attempt
    # that committed but timed out at the client is seen by the next as
    # TOPIC_ALREADY_EXISTS); meanwhile the survivors' own Metadata is polled,
    # since a broker shows the topic only once its record is committed. The
    # first of the two is the commit time, so a request stuck on the dead
    # leader until its timeout does not hide an earlier commit.
    done = threading.Event()

    def creator():
        try:
            wait_for(lambda: done.is_set() or c.create_topic(
                name, via=survivors, replication=2, timeout=5.0, exists_ok=True) or True,
                120, "CreateTopics after failover", 0.05)
        finally:
            done.set()

    th = threading.Thread(target=creator, daemon=True)
    th.start()
    wait_for(lambda: done.is_set() or any(c.topic_ready(i, name, timeout=1.0) for i in survivors),
             120, "the topic committed after failover", 0.02)
    t_commit = time.monotonic() - t0
    done.set()
    th.join(30)
    c.start_node(old)
    c.wait_usable(300)
    return {"killed": old, "leader_s": t_leader, "commit_s": t_commit}


def create_latency(c, partitions):
    name = f"create-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    c.create_topic(name, partitions=partitions, replication=3, timeout=30.0)
    t_ack = time.monotonic() - t0
    wait_for(lambda: all(c.topic_ready(i, name) for i in c.nodes), 60,
             "every broker's Metadata to show the topic", 0.005)
    return {"partitions": partitions, "ack_s": t_ack, "all_brokers_s": time.monotonic() - t0}


def rss(c):
    return {i: c.rss(i) for i in c.nodes}


def many_partitions(c, total, per_topic=1000):
    """Creates topics of per_topic partitions (replication factor 1 on both kinds, so the
    brokers hold the same partitions) up to total; RSS of every node once all of them see
    the last topic; then all nodes stopped (SIGTERM) and started again: seconds until the
    cluster is usable (every node lists all brokers and a CreateTopics commits) and RSS."""
    t0 = time.monotonic()
    names = []
    for k in range(total // per_topic):
        name = f"many-{k}-{uuid.uuid4().hex[:6]}"
        c.create_topic(name, partitions=per_topic, replication=1, timeout=120.0)
        names.append(name)
    wait_for(lambda: all(c.topic_ready(i, names[-1], timeout=30.0) for i in c.nodes), 600,
             "every broker's Metadata to show the last topic", 0.5)
    created_s = time.monotonic() - t0
    loaded = rss(c)
    for i in c.nodes:
        c.terminate(i, timeout=300)
    t1 = time.monotonic()
    for i in c.nodes:
        c.start_node(i)
    c.wait_usable(900)
    return {"partitions": total, "create_s": created_s, "rss_loaded": loaded,
            "restart_s": time.monotonic() - t1, "rss_restarted": rss(c)}


def start_cluster(kind, network):
    """A started cluster, or the reason it did not start. A failed start is tried once
    more (a node exiting during a start on the loaded machine is reported, not fatal);
    the first failure's ERROR lines are logged."""
    failures = []
    for attempt in (1, 2):
        base = tempfile.mkdtemp(prefix=f"samsa-bench-{kind}-")
        t0 = time.monotonic()
        started = False
        try:
            c = Cluster(kind, n=3, network=network, heap=HEAP, cpus=BROKER_CPU, base_dir=base)
            c.start()
            started = True
            return c, time.monotonic() - t0, failures
        except ClusterUnavailable as e:
            # The reason and the server's last words (e.g. samsa-server naming the setting
            # it refuses), and every node's ERROR lines.
            lines = [ln for ln in str(e).splitlines() if ln.strip() and not ln.startswith("---")]
            why = " | ".join(lines[:1] + lines[-2:])[:600]
            errors = []
            for log_path in glob.glob(os.path.join(base, "node-*", "server.log")):
                with open(log_path, errors="replace") as f:
                    errors += [ln.strip() for ln in f if " ERROR " in ln or "FATAL" in ln][:5]
            log(f"{kind}: start attempt {attempt} failed: {why}" +
                "".join(f"\n  {ln[:300]}" for ln in errors))
            failures.append({"why": why, "errors": errors})
        finally:
            if not started:
                shutil.rmtree(base, ignore_errors=True)
    return None, None, failures


def run_kind(kind, rounds, network, many=0, replication=None, shared=None):
    log(f"{kind}: starting 3 nodes")
    c, startup_s, failures = start_cluster(kind, network)
    if c is None:
        log(f"{kind}: skipped")
        return {"kind": kind, "skipped": failures[-1]["why"], "start_failures": failures}
    try:
        res = {"kind": kind, "start_failures": failures, "network": c.network, "rf": min(3, c.max_replication),
               "startup_s": startup_s,
               "rss_start": rss(c), "failover": [], "create": []}
        for r in range(rounds):
            for parts in (1, 10):
                res["create"].append(create_latency(c, parts))
            f = failover(c)
            log(f"{kind}: round {r + 1}/{rounds}: killed {f['killed']}, leader after "
                f"{f['leader_s']:.2f}s, commit after {f['commit_s']:.2f}s")
            res["failover"].append(f)
        if replication:
            log(f"{kind}: replication")
            try:
                res["replication"] = cluster_replication.run(
                    c, replication, {} if shared is None else shared)
            except Exception as e:  # a failure of the scenario is a finding, not a stop
                res["replication_error"] = f"{type(e).__name__}: {e}"[-2000:]
                log(f"{kind}: replication FAILED: {res['replication_error']}")
                for i in c.nodes:
                    log(f"{kind}: node {i} log tail:\n{c.log_tail(i, 1500)}")
        res["rss_end"] = rss(c)
        if many:
            log(f"{kind}: {many} partitions")
            res["many"] = many_partitions(c, many)
            m = res["many"]
            log(f"{kind}: {many} partitions created in {m['create_s']:.1f}s, restart to usable "
                f"{m['restart_s']:.1f}s")
        return res
    finally:
        c.close()
        shutil.rmtree(c.base_dir, ignore_errors=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def report(results):
    out = []
    for r in results:
        if "skipped" in r:
            out.append(f"{r['kind']}: skipped ({r['skipped']})")
            continue
        f, cr = r["failover"], r["create"]
        if not f and not cr:
            continue
        out.append(f"{r['kind']} ({r['network']} network, {len(f)} rounds), start-up to usable "
                   f"{r['startup_s']:.1f} s")
        out.append(f"  kill -9 controller -> new leader: median {med([x['leader_s'] for x in f]):.2f} s, "
                   f"all {[round(x['leader_s'], 2) for x in f]}")
        out.append(f"  kill -9 controller -> CreateTopics committed: median "
                   f"{med([x['commit_s'] for x in f]):.2f} s, all {[round(x['commit_s'], 2) for x in f]}")
        for parts in sorted({x["partitions"] for x in cr}):
            xs = [x for x in cr if x["partitions"] == parts]
            out.append(f"  CreateTopics {parts} partition(s), rf {r.get('rf', 3)}: ack median "
                       f"{med([x['ack_s'] for x in xs]) * 1000:.0f} ms, on every broker median "
                       f"{med([x['all_brokers_s'] for x in xs]) * 1000:.0f} ms")
        for when in ("rss_start", "rss_end"):
            out.append(f"  RSS MiB {when[4:]}: " + ", ".join(
                f"node {i} {(v or 0) / MIB:.0f}" for i, v in sorted(r[when].items())))
        if "many" in r:
            m = r["many"]
            out.append(f"  {m['partitions']} partitions (rf 1): created and seen everywhere in "
                       f"{m['create_s']:.1f} s; restart of all nodes to usable {m['restart_s']:.1f} s")
            for when in ("rss_loaded", "rss_restarted"):
                out.append(f"  RSS MiB {when[4:]}: " + ", ".join(
                    f"node {i} {(v or 0) / MIB:.0f}" for i, v in sorted(m[when].items())))
    if any(r.get("replication") or r.get("replication_error") for r in results):
        out.append("replication (RF=3, min.insync.replicas=2, acks=all):")
        out.append(cluster_replication.table(results))
        out += [r["kind"] + ": replication failed: " + r["replication_error"]
                for r in results if r.get("replication_error")]
        out += [r["kind"] + ": failed: " + e for r in results
                for e in (r.get("replication") or {}).get("errors", [])]
        out += cluster_replication.goals(results)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default="kafka,samsa")
    ap.add_argument("--network", default="auto", choices=("auto", "netns", "proxy"))
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--many", type=int, default=0, metavar="N",
                    help="also create N partitions (topics of 1000), measure RSS, restart all")
    ap.add_argument("--replication", action="store_true",
                    help="also run the replication scenario (RF=3, acks=all, catch-up)")
    ap.add_argument("--quick", action="store_true", help="replication: small sizes, one round")
    ap.add_argument("--lag-mib", type=int, help="replication: the catch-up lag (default 1024)")
    ap.add_argument("--max-mib", type=int, help="replication: MiB per max-rate round")
    ap.add_argument("--fixed-rate", type=int, help="replication: records/s of the fixed-rate runs")
    ap.add_argument("--e2e-rate", type=int, help="replication: records/s of the end-to-end runs")
    ap.add_argument("--repl-rounds", type=int, help="replication: rounds of each run")
    ap.add_argument("--doc", action="store_true",
                    help="replication: write its section of docs/BENCHMARKS.md")
    a = ap.parse_args()
    repl = None
    if a.replication:
        repl = dict(cluster_replication.MODES["quick" if a.quick else "full"])
        for key, v in (("lag_mib", a.lag_mib), ("max_mib", a.max_mib), ("fixed_rate", a.fixed_rate),
                       ("e2e_rate", a.e2e_rate), ("rounds", a.repl_rounds)):
            if v is not None:
                repl[key] = v
    load = open("/proc/loadavg").read().split()[:3]
    os.sched_setaffinity(0, {CLIENT_CPU})
    shared = {}
    results = [run_kind(k, a.rounds, a.network, a.many, repl, shared) for k in a.kinds.split(",")]
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    print(report(results))
    if repl and a.doc:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        meta = {"cmdline": "bench/cluster.py " + shlex.join(sys.argv[1:]),
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "commit": commit, "load": " ".join(load), "noisy": float(load[0]) > 0.5,
                "quick": a.quick, "heap": HEAP,
                "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30),
                "network": next((r["network"] for r in results if "network" in r), a.network)}
        with open(DOC) as f:
            text = f.read()
        with open(DOC, "w") as f:
            f.write(cluster_replication.splice(text, cluster_replication.section(results, meta)))


if __name__ == "__main__":
    main()
