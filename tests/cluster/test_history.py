"""The history checker (history.py) on synthetic histories: a clean one passes
and each kind of failure is detected, and only that kind."""

from history import History

KINDS = ("lost", "duplicated", "reordered", "read_then_lost", "ack_mismatch",
         "offset_regressions")


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
