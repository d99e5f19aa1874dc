"""Hostile input, short form of tests/stress/hostile.py: while a paced producer
and a consumer (confluent-kafka) run, 1,000 hostile connections (100 MiB
frames announced and sent a kilobyte a second, garbage, requests whose
responses are never read) leave the broker's RSS within its bound and the
clients making progress. The full 10,000-connection run and its figures are
in docs/broker.md ("Limits")."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))

import hostile  # noqa: E402

CONNECTIONS = 1000
BUDGET = 64 << 20


def test_hostile_connections_leave_memory_bounded_and_clients_moving():
    f = hostile.run(CONNECTIONS, phase_s=8, rate=1000, budget=BUDGET)
    print("hostile run:", f)
    assert f["broker_alive"], f
    assert f["during"]["hostile_open"] >= CONNECTIONS // 2, f
    # The bound of docs/broker.md: the frame budget, a few KiB a connection,
    # and the broker's own working set beside what it had before.
    bound_kib = f["rss_before_kib"] + BUDGET // 1024 + CONNECTIONS * 16 + 32 * 1024
    assert f["during"]["rss_peak_kib"] <= bound_kib, (f["during"]["rss_peak_kib"], bound_kib)
    for phase in ("during", "after"):
        assert f[phase]["produce_rate"] > 0 and f[phase]["consume_rate"] > 0, (phase, f)
    assert not f["client_errors"], f["client_errors"]
