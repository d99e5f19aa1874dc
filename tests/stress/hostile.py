#!/usr/bin/env python3
"""Hostile-input stress run: a paced confluent-kafka producer and a consumer
work against a samsa-server while many hostile connections hit it (huge
announced frames sent a kilobyte at a time, garbage, requests whose responses
are never read). Reports the broker's RSS and the clients' rates before and
during the attack.

Full run (docs/broker.md, "Limits"):
    tests/stress/hostile.py --connections 10000 --phase 30
The short form runs from tests/integration/test_hostile.py as part of make test.
Needs confluent-kafka (the integration tests' .venv) and build/bin/samsa-server.
"""

import argparse
import heapq
import json
import multiprocessing
import os
import random
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_BIN = os.environ.get("SAMSA_SERVER", os.path.join(ROOT, "build", "bin", "samsa-server"))
MAX_REQUEST = 104857600  # socket.request.max.bytes default
API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 7, 7) + b"hostile"


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- hostile side

class Hostile:
    """One hostile connection slot; reconnects when the broker closes it."""

    def __init__(self, kind, addr):
        self.kind, self.addr = kind, addr
        self.sock = None
        self.next_at = 0.0
        self.sent = 0

    def open(self, sel, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if self.kind == "noread":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            self.next_at = now + 1.0
            return
        self.sock, self.sent = s, 0
        if self.kind != "noread":  # never-read slots notice a close when sending
            sel.register(s, selectors.EVENT_READ, self)
        self.next_at = now + 0.2

    def drop(self, sel, now):
        if self.sock:
            if self.kind != "noread":
                sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.next_at = now + 1.0

    def tick(self, sel, now):
        """Sends this slot's next piece of hostility."""
        if self.sock is None:
            self.open(sel, now)
            return
        try:
            if self.kind == "slow":
                # A 100 MiB frame, a kilobyte a second.
                data = struct.pack(">i", MAX_REQUEST - 1) if self.sent == 0 else b""
                data += os.urandom(1024)
            elif self.kind == "garbage":
                data = os.urandom(64)
            else:
                data = (struct.pack(">i", len(API_VERSIONS_V0)) + API_VERSIONS_V0) * 20
            n = self.sock.send(data)
            self.sent += n
        except BlockingIOError:
            pass
        except OSError:
            self.drop(sel, now)
            return
        self.next_at = now + 1.0

    def readable(self, sel, now):
        """The broker answered or closed: reconnect after a close."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(sel, now)


def hostile_main(host, port, connections, stop, ready, counts):
    raise_nofile(connections + 256)
    kinds = ["slow"] * 6 + ["noread"] * 2 + ["garbage"] * 2
    slots = [Hostile(kinds[i % len(kinds)], (host, port)) for i in range(connections)]
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    # Spread the first connections over a few seconds (the listen backlog).
    for i, s in enumerate(slots):
        s.next_at = start + 3.0 * i / max(1, connections)
    # Slots by when they act next (a heap: the generator must not spend its
    # CPU scanning 10,000 slots, the broker shares the machine).
    due = [(s.next_at, i) for i, s in enumerate(slots)]
    heapq.heapify(due)
    opened = False
    next_count = 0.0
    while not stop.is_set():
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, i = heapq.heappop(due)
            slots[i].tick(sel, now)
            heapq.heappush(due, (slots[i].next_at, i))
        for key, ev in sel.select(timeout=0.05):
            slot = key.data
            if slot.sock is None:
                continue
            slot.readable(sel, now)
        if not opened and now - start > 4.0:
            ready.set()
            opened = True
        if now >= next_count:
            counts.value = sum(1 for s in slots if s.sock is not None)
            next_count = now + 1.0
    for s in slots:
        if s.sock:
            s.sock.close()


# ---------------------------------------------------------------- the clients

class Clients:
    """A paced producer and a consumer of one topic, counting progress."""

    def __init__(self, bootstrap, topic, rate):
        from confluent_kafka import Consumer, Producer
        self.produced = 0
        self.consumed = 0
        self.errors = []
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "hostile-run",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.topic, self.rate = topic, rate
        self.threads = [threading.Thread(target=self.produce_loop, daemon=True),
                        threading.Thread(target=self.consume_loop, daemon=True)]

    def delivered(self, err, msg):
        if err is None:
            self.produced += 1
        else:
            self.errors.append(str(err))

    def produce_loop(self):
        value = b"v" * 200
        t0 = time.monotonic()
        sent = 0
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while sent < due and not self.stop.is_set():
                try:
                    self.producer.produce(self.topic, value, on_delivery=self.delivered)
                    sent += 1
                except BufferError:
                    break
            self.producer.poll(0.01)
        self.producer.flush(10)

    def consume_loop(self):
        while not self.stop.is_set():
            for m in self.consumer.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    self.consumed += 1
        self.consumer.close()

    def start(self):
        for t in self.threads:
            t.start()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def snapshot(self):
        return self.produced, self.consumed


def measure(clients, pid, seconds):
    """Rates (records/s) over the phase and the largest RSS seen (KiB)."""
    p0, c0 = clients.snapshot()
    t0 = time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.25)
    p1, c1 = clients.snapshot()
    dt = time.monotonic() - t0
    return {"produce_rate": (p1 - p0) / dt, "consume_rate": (c1 - c0) / dt, "rss_peak_kib": peak}


def start_broker(data_dir, port, overrides):
    args = [SERVER_BIN, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"log.dirs={data_dir}"]
    for k, v in overrides.items():
        args += ["--override", f"{k}={v}"]
    os.makedirs(data_dir, exist_ok=True)
    log = open(os.path.join(data_dir, "..", "server.log"), "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("samsa-server did not start")


def run(connections, phase_s, rate=2000, budget=64 << 20, bootstrap=None, pid=None):
    """Runs the baseline and hostile phases; returns the figures. Starts its
    own broker unless bootstrap and pid name a running one."""
    raise_nofile(connections + 1024)
    tmp = None
    proc = None
    if bootstrap is None:
        tmp = tempfile.TemporaryDirectory(prefix="samsa-hostile-")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = start_broker(os.path.join(tmp.name, "data"), port,
                            {"queued.max.request.bytes": budget, "num.partitions": 1})
        bootstrap, pid = f"127.0.0.1:{port}", proc.pid
    host, port = bootstrap.split(":")
    topic = "hostile-%d" % random.randrange(1 << 30)
    clients = Clients(bootstrap, topic, rate)
    ctx = multiprocessing.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    counts = ctx.Value("i", 0)
    hostile = None
    try:
        clients.start()
        # Warm up until both clients move (topic auto-created, group joined).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and min(clients.snapshot()) < rate:
            time.sleep(0.1)
        rss_before = rss_kib(pid)
        before = measure(clients, pid, phase_s)
        hostile = ctx.Process(target=hostile_main,
                              args=(host, int(port), connections, stop, ready, counts))
        hostile.start()
        ready.wait(60)
        during = measure(clients, pid, phase_s)
        during["hostile_open"] = counts.value
        stop.set()
        hostile.join(30)
        after = measure(clients, pid, min(phase_s, 5))
        figures = {
            "connections": connections, "phase_s": phase_s, "target_rate": rate,
            "budget_bytes": budget, "rss_before_kib": rss_before,
            "before": before, "during": during, "after": after,
            "produce_ratio": during["produce_rate"] / max(before["produce_rate"], 1e-9),
            "consume_ratio": during["consume_rate"] / max(before["consume_rate"], 1e-9),
            "client_errors": clients.errors[:5], "broker_alive": proc is None or proc.poll() is None,
        }
        return figures
    finally:
        stop.set()
        if hostile is not None and hostile.is_alive():
            hostile.kill()
        clients.close()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            tmp.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--phase", type=float, default=30.0, help="seconds per phase")
    ap.add_argument("--rate", type=int, default=2000, help="records/s the producer aims at")
    ap.add_argument("--budget", type=int, default=64 << 20, help="queued.max.request.bytes")
    ap.add_argument("--bootstrap", help="a running broker (host:port); needs --pid")
    ap.add_argument("--pid", type=int, help="its process id, for RSS")
    a = ap.parse_args()
    print(json.dumps(run(a.connections, a.phase, a.rate, a.budget, a.bootstrap, a.pid), indent=2))


if __name__ == "__main__":
    sys.exit(main())
