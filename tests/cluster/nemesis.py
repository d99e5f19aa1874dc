"""Faults for replication tests (the "nemesis"): each one breaks a running
Cluster under a Load, waits until the cluster has reacted (a new partition
leader, a new controller, a node out of the ISRs), waits until the load makes
progress through the fault where a majority remains, and repairs it. The
caller then waits for wait_healthy(): every node up, every partition led with
its full ISR on every node's metadata.

Faults (FAULTS, by name):
- kill_leader: kill -9 of a partition leader, restarted after the others
  elected new leaders and acknowledged records;
- kill_controller: kill -9 of the active controller, likewise;
- pause_leader: SIGSTOP of a partition leader until its leaderships moved and
  it left the ISRs, then SIGCONT (it comes back believing it leads);
- pause_controller: SIGSTOP of the active controller until another leads the
  quorum and its leaderships moved, then SIGCONT;
- isolate_leader: a partition leader cut from the other nodes (clients still
  reach it) until the majority elected new leaders, then healed;
- restart: a graceful restart (SIGTERM: leaderships handed over first);
- kill_restart: kill -9 and an immediate restart, before the controller
  notices the session ended;
- cut_pair: two nodes cannot reach each other while both reach the third (a
  follower loses its leader, the quorum keeps a majority through the third);
- drop_to_leader: one-way, the other nodes' packets to a partition leader are
  lost while its own still arrive (held for `hold`, at least 3 s; no
  reaction awaited, see the function).
- slow_disk: a partition leader's fsyncs crawl (a blkio cgroup throttle,
  where cgroup v1's blkio controller is available as root; left out of
  FAULTS elsewhere) while the load must still make progress.

`hold` (seconds, the randomized schedule) keeps a fault in place that long
after the reaction and progress were seen; the fixed test holds none.
`spare_controller`: the faults that pick a partition leader pick one that is
not the active controller (a paused or cut-off active controller is its own
fault, pause_controller / isolate_leader without this flag; see
docs/testing-cluster.md for what they find).
"""

import logging
import time

from cluster import disk_throttle_available, wait_for

log = logging.getLogger("nemesis")

# Reactions take a broker session timeout (fencing) plus an election: a
# few seconds with the settings of FAST; the deadlines leave room for a
# loaded machine.
REACT_TIMEOUT = 60.0
HEAL_TIMEOUT = 120.0
PROGRESS = 50  # records acknowledged while a fault holds, as proof of progress

# Broker, quorum and replication timings short enough for a test run.
FAST = {"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
        "controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
        "replica.lag.time.max.ms": "2000"}


def partition_view(c, via, topic):
    """{partition: {"leader", "isr", "replicas", ...}} as node via answers, {} on error."""
    try:
        return c.partitions(via, topic, timeout=3.0)
    except (OSError, ValueError, IndexError, RuntimeError) as e:  # noqa: F841 - not yet
        return {}


def leader_of(c, topic, partition, via=None):
    for v in via or c.running():
        ld = partition_view(c, v, topic).get(partition, {}).get("leader", -1)
        if ld >= 0:
            return ld
    raise RuntimeError(f"no running node names a leader of {topic}-{partition}")


def healthy(c, topic):
    """Every node runs and reports every partition led by the same live broker
    with the full ISR."""
    if sorted(c.running()) != sorted(c.nodes):
        return False
    views = [partition_view(c, v, topic) for v in c.nodes]
    if not views[0] or any(v.keys() != views[0].keys() for v in views):
        return False
    for p, st in views[0].items():
        if st["leader"] < 0 or sorted(st["isr"]) != sorted(st["replicas"]):
            return False
        if any(v[p]["leader"] != st["leader"] or sorted(v[p]["isr"]) != sorted(st["isr"])
               for v in views):
            return False
    return True


def wait_healthy(c, topic, timeout=HEAL_TIMEOUT):
    def why():
        return {v: partition_view(c, v, topic) for v in c.running()}
    try:
        wait_for(lambda: healthy(c, topic), timeout, f"{topic}: every partition led with its full ISR")
    except TimeoutError as e:
        raise TimeoutError(f"{e}; views: {why()}") from None


def wait_moved_off(c, topic, node, via, out_of_isr=False, timeout=REACT_TIMEOUT):
    """Nodes `via` report every partition led by a broker other than `node`
    (and, with out_of_isr, node in no ISR)."""
    def moved():
        for v in via:
            view = partition_view(c, v, topic)
            if not view:
                return False
            for st in view.values():
                if st["leader"] in (-1, node) or (out_of_isr and node in st["isr"]):
                    return False
        return True
    wait_for(moved, timeout, f"{topic}: leaderships off node {node} as {via} see them")
    log.info("leaderships off node %d%s", node, " and it is out of the ISRs" if out_of_isr else "")


def _progress(load, what):
    load.wait_acks(PROGRESS, REACT_TIMEOUT, what)
    log.info("%d more records %s", PROGRESS, what)


def _hold(hold):
    if hold:
        time.sleep(hold)  # the schedule's choice of how long the fault lasts, not a wait


def _pick_leader(c, topic, rng, spare_controller=False):
    """A random partition leader; with spare_controller one that is not the active
    controller (or, when the controller leads everything, another node)."""
    view = partition_view(c, c.running()[0], topic)
    leaders = sorted({st["leader"] for st in view.values() if st["leader"] >= 0})
    if spare_controller:
        ctrl = c.active_controller()
        leaders = [n for n in leaders if n != ctrl] or [n for n in sorted(c.running()) if n != ctrl]
    if not leaders:
        raise RuntimeError(f"no leader of {topic} to pick: {view}")
    return rng.choice(leaders)


def kill_leader(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = _pick_leader(c, topic, rng, spare_controller)
    rest = [i for i in c.nodes if i != node]
    c.kill9(node)
    log.info("kill -9 of node %d", node)
    wait_moved_off(c, topic, node, rest)
    _progress(load, "acknowledged with the leader dead")
    _hold(hold)
    c.start_node(node)
    return f"kill -9 leader {node}"


def kill_controller(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = c.active_controller()
    c.kill9(node)
    log.info("kill -9 of node %d", node)
    c.wait_controller(exclude=[node], timeout=REACT_TIMEOUT)
    wait_moved_off(c, topic, node, c.running())
    _progress(load, "acknowledged with the controller dead")
    _hold(hold)
    c.start_node(node)
    return f"kill -9 active controller {node}"


def pause_leader(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = _pick_leader(c, topic, rng, spare_controller)
    rest = [i for i in c.nodes if i != node]
    c.stop(node)
    log.info("SIGSTOP to node %d", node)
    try:
        wait_moved_off(c, topic, node, rest, out_of_isr=True)
        _progress(load, "acknowledged with the leader paused")
        _hold(hold)
    finally:
        c.cont(node)
    return f"SIGSTOP/SIGCONT leader {node}"


def pause_controller(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = c.active_controller()
    rest = [i for i in c.nodes if i != node]
    c.stop(node)
    log.info("SIGSTOP to node %d (the active controller)", node)
    try:
        wait_for(lambda: c.active_controller(via=rest) in rest, REACT_TIMEOUT,
                 "a controller among the running nodes")
        wait_moved_off(c, topic, node, rest, out_of_isr=True)
        _progress(load, "acknowledged with the controller paused")
        _hold(hold)
    finally:
        c.cont(node)
    return f"SIGSTOP/SIGCONT active controller {node}"


def isolate_leader(c, topic, load, rng, hold=0.0, spare_controller=False):
    """The clients still reach the cut-off node, which keeps answering Metadata from its
    stale image (itself the leader, at the old leader epoch) and its acks=all produce
    requests with REQUEST_TIMED_OUT, as a Kafka 4.4 broker cut off from the controllers
    does. librdkafka retries those at the same broker and asks the broker it used last for
    metadata, the cut-off one: while it leads every partition, the producers never hear of
    the new leaders until the network heals (docs/testing-cluster.md). Progress is then
    awaited after healing; otherwise, during the fault, from the partitions led elsewhere."""
    node = _pick_leader(c, topic, rng, spare_controller)
    rest = [i for i in c.nodes if i != node]
    view = partition_view(c, rest[0], topic)
    led_elsewhere = any(st["leader"] not in (-1, node) for st in view.values())
    c.isolate(node)
    log.info("node %d isolated", node)
    try:
        wait_moved_off(c, topic, node, rest, out_of_isr=True)
        if led_elsewhere:
            _progress(load, "acknowledged with the leader cut off")
        else:
            log.info("node %d led every partition: progress awaited after healing", node)
        _hold(hold)
    finally:
        c.heal()
    if not led_elsewhere:
        _progress(load, "acknowledged after healing the cut-off leader of every partition")
    return f"network: leader {node} isolated, healed"


def restart(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = rng.choice(sorted(c.nodes))
    c.terminate(node)
    log.info("node %d stopped (SIGTERM)", node)
    _progress(load, "acknowledged with a node stopped")
    _hold(hold)
    c.start_node(node)
    return f"graceful restart of {node}"


def kill_restart(c, topic, load, rng, hold=0.0, spare_controller=False):
    node = _pick_leader(c, topic, rng, spare_controller)
    c.kill9(node)
    log.info("kill -9 of node %d", node)
    c.start_node(node)
    _progress(load, "acknowledged after a quick restart")
    return f"kill -9 and immediate restart of leader {node}"


def cut_pair(c, topic, load, rng, hold=0.0, spare_controller=False):
    nodes = sorted(c.nodes)
    if spare_controller:
        nodes = [n for n in nodes if n != c.active_controller()]
    a, b = rng.sample(nodes, 2)
    # Cut from the active controller, the other node is fenced and its leaderships move,
    # but it is then a leader cut off from the controller, as in isolate_leader: when it
    # led every partition, the producers stay with it (REQUEST_TIMED_OUT, retried there
    # without a metadata refresh) until the network heals.
    try:
        ctrl = c.active_controller()
    except RuntimeError:
        ctrl = None
    other = b if a == ctrl else a if b == ctrl else None
    led_all = False
    if other is not None:
        view = partition_view(c, ctrl, topic)
        led_all = bool(view) and all(st["leader"] == other for st in view.values())
    c.partition([[a], [b]])
    log.info("nodes %d and %d cut apart", a, b)
    try:
        # Each partition led by a or b loses the other as a follower.
        if led_all:
            log.info("node %d, cut from the controller, led every partition: progress "
                     "awaited after healing", other)
        else:
            _progress(load, f"acknowledged with {a} and {b} cut apart")
        _hold(hold)
    finally:
        c.heal()
    if led_all:
        _progress(load, f"acknowledged after healing {a} and {b}")
    return f"network: {a} and {b} cut apart, healed"


def drop_to_leader(c, topic, load, rng, hold=0.0, spare_controller=False):
    """No reaction is awaited: the leader's heartbeats still reach the
    controller (TCP delivers data whose acknowledgements are lost), so it may
    stay unfenced with followers that cannot fetch, and its partitions may
    refuse acks=all (ISR below min.insync.replicas) until healed, as on
    Kafka. Only safety is checked."""
    node = _pick_leader(c, topic, rng, spare_controller)
    for i in c.nodes:
        if i != node:
            c.drop(i, node)
    try:
        _hold(max(hold, 3.0))
    finally:
        c.heal()
    return f"network: packets to leader {node} dropped one way, healed"


def slow_disk(c, topic, load, rng, hold=0.0, spare_controller=False):
    """A partition leader's disk slowed to 256 KiB/s and 20 writes/s for what
    it writes and waits for (fsync; Cluster.slow_disk) while held, at least
    3 s. No reaction is expected (a slow broker that still heartbeats keeps
    its leaderships, as on Kafka): the load must make progress through it,
    since acks=all waits for the followers, not for a disk flush."""
    node = _pick_leader(c, topic, rng, spare_controller)
    c.slow_disk(node)
    log.info("node %d on a slow disk", node)
    try:
        _progress(load, f"acknowledged with node {node} on a slow disk")
        _hold(max(hold, 3.0))
    finally:
        c.fast_disk(node)
    return f"slow disk under leader {node}, restored"


FAULTS = {f.__name__: f for f in (kill_leader, kill_controller, pause_leader, pause_controller,
                                  isolate_leader,
                                  restart, kill_restart, cut_pair, drop_to_leader)}
if disk_throttle_available():
    FAULTS["slow_disk"] = slow_disk
