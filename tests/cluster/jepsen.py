"""`make jepsen`: replication under a randomized fault schedule for a set time.

A cluster of --nodes Samsa nodes (network namespaces, or TCP proxies without
root), one topic of --partitions partitions with replication factor 3 and
min.insync.replicas=2, a Load (idempotent acks=all producers writing numbered
records, readers with every partition assigned, members of a consumer group
committing what they consumed, an admin loop) and, until --minutes have
passed, faults drawn at random from nemesis.FAULTS (or --faults), each held a
random time, with a random quiet time between. After each fault the cluster
must come back to every partition led with its full ISR within the heal
timeout (a liveness failure otherwise). At the end the load stops (the group
first consumes up to the last acknowledged record), every partition is read
once more, the group's committed offsets are read, and the history is checked.

Prints one line per fault and the counts at the end; exits 1 on any anomaly
(history.ANOMALIES: lost, duplicated, reordered, read then lost, acknowledgement
mismatch, offset regression, and the group's lost commit, start below or above
the committed offset, record never consumed), on a producer's fatal error or failed record, or on a liveness
failure, keeping the nodes' data and logs (their directory is printed).

    .venv/bin/python tests/cluster/jepsen.py --minutes 30 [--seed N] [--faults a,b]
"""

import argparse
import logging
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import ROOT, Cluster  # noqa: E402
from history import ANOMALIES, History  # noqa: E402
from nemesis import FAST, FAULTS, wait_healthy  # noqa: E402
from workload import Load, read_all  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("JEPSEN_MINUTES", 30)))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=int, default=100, help="records per second per producer")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--members", type=int, default=2, help="consumer group members")
    ap.add_argument("--no-admin", action="store_true", help="no admin loop")
    ap.add_argument("--faults", default=None,
                    help=f"comma-separated subset of {','.join(FAULTS)} (default: all)")
    ap.add_argument("--spare-controller", action="store_true",
                    default=os.environ.get("JEPSEN_SPARE_CONTROLLER") == "1",
                    help="faults on a partition leader never pick the active controller, "
                         "and pause_controller is left out of the default faults")
    ap.add_argument("--max-hold", type=float, default=10.0, help="longest a fault is held (s)")
    ap.add_argument("--network", default=os.environ.get("SAMSA_CLUSTER_NET", "auto"))
    args = ap.parse_args()

    if args.faults is None:
        args.faults = ",".join(f for f in FAULTS
                               if not (args.spare_controller and f == "pause_controller"))
    faults = [f for f in args.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        ap.error(f"unknown faults {unknown}; known: {','.join(FAULTS)}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stdout)
    log = logging.getLogger("jepsen")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(ROOT, "build", f"jepsen-{stamp}")
    log.info("seed %d, %.1f minutes, faults %s, data in %s", seed, args.minutes, faults, base)

    failure = None
    done = Counter()
    t_start = time.monotonic()
    c = Cluster("samsa", n=args.nodes, extra_overrides=FAST, network=args.network, base_dir=base)
    c.start()
    h = History()
    topic = f"jepsen-{uuid.uuid4().hex[:8]}"
    load = None
    try:
        c.create_topic(topic, partitions=args.partitions, replication=3,
                       config={"min.insync.replicas": "2"})
        wait_healthy(c, topic)
        load = Load(c.bootstrap(), topic, range(args.partitions), h, producers=args.producers,
                    readers=args.readers, rate=args.rate, members=args.members,
                    admin=not args.no_admin).start()
        load.wait_acks(100, 60, "acknowledged before any fault")
        end = t_start + args.minutes * 60
        while time.monotonic() < end:
            name = rng.choice(faults)
            hold = rng.uniform(0, args.max_hold)
            t0 = time.monotonic()
            try:
                what = FAULTS[name](c, topic, load, rng, hold=hold,
                                    spare_controller=args.spare_controller)
                t1 = time.monotonic()
                wait_healthy(c, topic)
            except Exception as e:  # noqa: BLE001 - a liveness failure, reported
                failure = f"{name}: {e}"
                log.error("liveness failure in %s: %s", name, e)
                break
            done[name] += 1
            log.info("%s (held %.1fs): fault %.1fs, back to full ISRs in %.1fs; %s", what, hold,
                     t1 - t0, time.monotonic() - t1, load.summary())
            time.sleep(rng.uniform(0, 5))  # quiet time between faults, part of the schedule
    finally:
        if load:
            load.stop()
    # Whatever a failed fault left behind is repaired before the final read.
    c.heal()
    for n, node in c.nodes.items():
        if node.paused:
            c.cont(n)
        elif node.proc is None:
            c.start_node(n)
    try:
        wait_healthy(c, topic)
    except TimeoutError as e:
        failure = failure or f"after repairing every fault: {e}"
    try:
        read_all(c.bootstrap(), topic, h, range(args.partitions), timeout=300)
    except Exception as e:  # noqa: BLE001 - reported with the counts
        failure = (failure + "; " if failure else "") + f"final read: {e}"
    if load and args.members:
        try:
            load.committed()
        except Exception as e:  # noqa: BLE001 - reported with the counts
            failure = (failure + "; " if failure else "") + f"reading committed offsets: {e}"
    report = h.check()
    elapsed = time.monotonic() - t_start
    print()
    print(f"jepsen: seed {seed}, {elapsed / 60:.1f} minutes, {args.nodes} nodes "
          f"({c.network}), {args.partitions} partitions RF=3 min.insync.replicas=2")
    print(f"faults: {sum(done.values())} ({', '.join(f'{k} {v}' for k, v in sorted(done.items()))})")
    print(f"load: {load.summary() if load else '-'}")
    print(f"acknowledged {report.acked}, read {report.read} (+ final read of "
          f"{len(h.final)})")
    if load and args.members:
        print(f"group: {args.members} members, {report.group_read} reads, "
              f"{report.redelivered} redelivered, {load.counts['assignments']} assignments, "
              f"commits {report.commits_acked} acknowledged {report.commits_failed} failed, "
              f"committed after the run {h.held}"
              + ("" if load.drained else ", NOT drained before stopping"))
    if load and not args.no_admin:
        print(f"admin: ok {dict(sorted(load.admin_ok.items()))}, "
              f"failed {dict(sorted(load.admin_failed.items()))}")
    for k in ANOMALIES:
        items = getattr(report, k)
        print(f"{k}: {len(items)}" + (f" e.g. {items[:5]}" if items else ""))
    bad = (not report.ok or failure or (load and (load.fatal or load.failed)))
    if failure:
        print(f"liveness failure: {failure}")
    if bad:
        print(f"FAILED; nodes' data and logs kept in {base}")
        c.close()
        return 1
    c.close()
    shutil.rmtree(base, ignore_errors=True)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
