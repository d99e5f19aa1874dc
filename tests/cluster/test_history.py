"""The history checker (history.py) on synthetic histories: a clean one passes
and each kind of failure is detected, and only that kind."""

from history import ANOMALIES as KINDS
from history import History


def clean(n=5, partitions=(0, 1)):
    """n records per partition from one producer, acknowledged, read, read again at the end."""
    h = History()
    for p in partitions:
        for i in range(n):
            v = f"p{p}-{i}"
            h.ack(p, i, v, producer="a", seq=i)
            h.read(p, i, v)
            h.read(p, i, v, final=True)
    return h


def only(report, kind):
    found = {k for k in KINDS if getattr(report, k)}
    assert found == {kind}, report.summary()


def test_clean_history_passes():
    r = clean().check()
    assert r.ok, r.summary()
    assert r.acked == 10 and r.read == 10


def test_lost_acknowledged_record():
    h = History()
    for i in range(3):
        h.ack(0, i, i, producer="a", seq=i)
    for i in (0, 1):
        h.read(0, i, i)
        h.read(0, i, i, final=True)
    r = h.check()
    only(r, "lost")
    assert r.lost == [(0, 2, 2)]


def test_lost_judged_on_all_reads_without_a_final_read():
    h = History()
    h.ack(0, 0, "x")
    h.ack(0, 1, "y")
    h.read(0, 0, "x")
    r = h.check()
    assert [v for _, _, v in r.lost] == ["y"]


def test_duplicated_payload_at_two_offsets():
    h = clean(3, partitions=(0,))
    h.read(0, 3, "p0-1", final=True)  # a retried produce written twice
    r = h.check()
    only(r, "duplicated")
    assert r.duplicated == [("p0-1", [(0, 1), (0, 3)])]


def test_reordered_records_of_one_producer():
    h = History()
    # Sent 0, 1, 2; the log holds 0, 2, 1.
    h.ack(0, 0, "s0", producer="a", seq=0)
    h.ack(0, 2, "s1", producer="a", seq=1)
    h.ack(0, 1, "s2", producer="a", seq=2)
    for o, v in ((0, "s0"), (1, "s2"), (2, "s1")):
        h.read(0, o, v)
        h.read(0, o, v, final=True)
    r = h.check()
    only(r, "reordered")
    assert r.reordered == [(0, "a", 1, 2)]


def test_two_producers_interleaving_is_not_reordering():
    h = History()
    for o, (pr, s) in enumerate((("a", 0), ("b", 0), ("a", 1), ("b", 1))):
        v = f"{pr}{s}"
        h.ack(0, o, v, producer=pr, seq=s)
        h.read(0, o, v, final=True)
    assert h.check().ok


def test_read_of_a_record_later_lost():
    h = clean(2, partitions=(0,))
    # A consumer read offset 2 from a leader that then lost it (never acknowledged);
    # the new leader wrote another record there.
    h.read(0, 2, "uncommitted")
    h.ack(0, 2, "p0-2", producer="a", seq=2)
    h.read(0, 2, "p0-2", final=True)
    r = h.check()
    assert r.read_then_lost == [("consumer", 0, 2, "uncommitted", "p0-2")]
    assert not (r.lost or r.duplicated or r.reordered or r.ack_mismatch)


def test_read_beyond_the_final_log_end_is_read_then_lost():
    h = clean(2, partitions=(0,))
    h.read(0, 2, "ghost")
    r = h.check()
    only(r, "read_then_lost")
    assert r.read_then_lost == [("consumer", 0, 2, "ghost", None)]


def test_acknowledged_offset_holding_another_payload():
    h = History()
    h.ack(0, 0, "a0", producer="a", seq=0)
    h.ack(0, 1, "a1", producer="a", seq=1)
    # The log has both records, but a1 moved: offset 1 now holds b0.
    for o, v in ((0, "a0"), (1, "b0"), (2, "a1")):
        h.read(0, o, v, final=True)
    r = h.check()
    only(r, "ack_mismatch")
    assert r.ack_mismatch == [(0, 1, "a1", "b0")]


def test_offsets_going_backwards_for_one_reader():
    h = clean(3, partitions=(0,))
    h.read(0, 1, "p0-1")  # the same reader again at an older offset, no reset
    r = h.check()
    only(r, "offset_regressions")
    assert r.offset_regressions == [("consumer", 0, 2, 1)]


def test_reset_allows_rereading():
    h = clean(3, partitions=(0,))
    h.reset("consumer", 0)
    h.read(0, 0, "p0-0")
    h.read(0, 1, "p0-1", reader="other")
    assert h.check().ok


def test_summary_names_each_failure():
    h = History()
    h.ack(0, 0, "x")
    s = h.check().summary()
    assert "lost: 1" in s and "1 acknowledged" in s


# ---------------------------------------------------------------- consumer group


def group_clean(n=6):
    """Partition 0, records 0..n-1: g1 consumes the first half and commits it,
    g2 takes the partition over at that commit, consumes the rest and commits;
    the group holds n after the run."""
    h = History()
    for i in range(n):
        h.ack(0, i, f"v{i}", producer="a", seq=i)
        h.read(0, i, f"v{i}", final=True)
    half = n // 2
    h.assign("g1", [0])
    for i in range(half):
        h.group_read("g1", 0, i, f"v{i}")
    h.commit("g1", 0, half, sent=h.now(), acked=True)
    h.revoke("g1", [0])
    h.assign("g2", [0])
    for i in range(half, n):
        h.group_read("g2", 0, i, f"v{i}")
    h.commit("g2", 0, n, sent=h.now(), acked=True)
    h.committed(0, n)
    return h


def test_clean_group_history_passes():
    r = group_clean().check()
    assert r.ok, r.summary()
    assert (r.group_read, r.commits_acked, r.redelivered) == (6, 2, 0)
    assert "group: 6 reads" in r.summary()


def test_committed_offset_below_an_acknowledged_commit_is_lost():
    h = group_clean()
    h.committed(0, 3)  # the coordinator came back holding g1's commit only
    r = h.check()
    only(r, "commit_lost")
    assert r.commit_lost == [(0, 6, 3)]


def test_no_committed_offset_after_acknowledged_commits_is_lost():
    h = group_clean()
    h.committed(0, None)
    r = h.check()
    only(r, "commit_lost")
    assert r.commit_lost == [(0, 6, None)]


def logged(n):
    """Records v0..v(n-1) acknowledged at offsets 0..n-1 of partition 0 and in the final read."""
    h = History()
    for i in range(n):
        h.ack(0, i, f"v{i}", producer="a", seq=i)
        h.read(0, i, f"v{i}", final=True)
    return h


def g1_consumes(h, n):
    """g1 is assigned partition 0 and reads its first n records."""
    h.assign("g1", [0])
    for i in range(n):
        h.group_read("g1", 0, i, f"v{i}")


def test_new_owner_starting_below_an_acknowledged_commit():
    h = logged(4)
    g1_consumes(h, 3)
    h.commit("g1", 0, 3, sent=h.now(), acked=True)
    h.revoke("g1", [0])
    h.assign("g2", [0])
    for i in range(1, 4):  # started at 1: the acknowledged commit of 3 was not seen
        h.group_read("g2", 0, i, f"v{i}")
    r = h.check()
    only(r, "start_before_commit")
    assert r.start_before_commit == [("g2", 0, 1, 3)]
    assert r.redelivered == 2


def test_commit_acknowledged_after_the_assignment_does_not_bind_the_new_owner():
    h = logged(4)
    g1_consumes(h, 3)
    sent = h.now()
    h.assign("g2", [0])  # its answer comes after g2's assignment
    h.commit("g1", 0, 3, sent=sent, acked=True)
    for i in range(4):
        h.group_read("g2", 0, i, f"v{i}")
    r = h.check()
    assert r.ok, r.summary()
    assert r.redelivered == 3


def test_new_owner_starting_above_every_commit_skips_records():
    h = group_clean()
    h.assign("g3", [0])
    h.group_read("g3", 0, 8, "v8")  # the group held 6: 6 and 7 were skipped
    h.ack(0, 6, "v6", producer="a", seq=6)
    h.ack(0, 7, "v7", producer="a", seq=7)
    h.ack(0, 8, "v8", producer="a", seq=8)
    for i in (6, 7, 8):
        h.read(0, i, f"v{i}", final=True)
    r = h.check()
    assert r.start_after_commit == [("g3", 0, 8, 6)]
    assert [v for _, _, v in r.group_missed] == ["v6", "v7"]
    assert not (r.lost or r.start_before_commit or r.commit_lost or r.offset_regressions)


def test_first_owner_starting_above_the_log_start_skips_records():
    h = logged(3)
    g1_consumes(h, 1)
    h.revoke("g1", [0])  # nothing committed
    h.assign("g1", [0])
    h.group_read("g1", 0, 1, "v1")
    h.group_read("g1", 0, 2, "v2")
    r = h.check()
    only(r, "start_after_commit")
    assert r.start_after_commit == [("g1", 0, 1, 0)]


def test_group_offsets_going_backwards_within_an_assignment():
    h = group_clean()
    h.group_read("g2", 0, 4, "v4")  # g2 again at 4 with no new assignment
    r = h.check()
    only(r, "offset_regressions")
    assert r.offset_regressions == [("g2", 0, 5, 4)]


def test_acknowledged_record_never_consumed_by_the_group():
    h = group_clean()
    h.ack(1, 0, "w0", producer="a", seq=0)
    h.read(1, 0, "w0", final=True)
    h.read(1, 0, "w0", reader="r1")  # a reader with assigned partitions does not count
    r = h.check()
    only(r, "group_missed")
    assert r.group_missed == [(1, 0, "w0")]


def test_group_read_of_a_record_later_lost():
    h = group_clean()
    h.assign("g1", [1])
    h.group_read("g1", 1, 0, "ghost")
    r = h.check()
    only(r, "read_then_lost")
    assert r.read_then_lost == [("g1", 1, 0, "ghost", None)]
