"""A history checker for replication tests: records what producers were told
(acknowledged partition, offset and payload id) and what consumers read, then
reports every way the two disagree with a durable, ordered log.

Usage: a workload calls ack() for every acknowledged record and read() for
every record a consumer returns (reset() when a consumer seeks or is
re-assigned), and after the faults are healed reads every partition once more
from the beginning with final=True. check() then reports:

- lost: acknowledged, but absent from the final read (from every read when no
  final read was recorded);
- duplicated: one payload id at two or more offsets of the log;
- reordered: one producer's records on one partition whose log order differs
  from its send order (seq);
- read_then_lost: a consumer read (partition, offset) -> payload, and the
  final read has another payload there or nothing (a read of uncommitted data);
- ack_mismatch: the final read holds another payload at an acknowledged offset;
- offset_regressions: one reader saw a partition's offsets go backwards (or
  repeat) without a reset().

A consumer group's members are recorded too: assign() and revoke() for each
rebalance callback (assign() resets the member's partitions, so
offset_regressions holds within one assignment epoch), read() with the member
as reader for every record it returns (those reads count for read_then_lost
too), commit() for every offset commit it sent (acknowledged or not) and, after
the run, committed() for the offsets the group holds. Events are ordered by a
logical clock (now(): one counter for the whole history); "before" below is
that order. check() then also reports:

- commit_lost: the group holds, after the run, less than the highest
  acknowledged commit of a partition (or nothing);
- start_before_commit: a member's first record of a partition after an
  assignment lies below the last commit acknowledged before that assignment
  (a commit was lost: records are consumed again past it);
- start_after_commit: that first record lies above every commit sent before it
  was read (above the log start 0 without any commit): records were skipped;
- group_missed: an acknowledged record that no member consumed (group
  consumption is at least once; records consumed more than once after a
  rebalance are counted in `redelivered`, information only).

Payload ids are any hashable values, unique per record the producer sent.
"""

import itertools
from collections import defaultdict
from dataclasses import dataclass, field


ANOMALIES = ("lost", "duplicated", "reordered", "read_then_lost", "ack_mismatch",
             "offset_regressions", "commit_lost", "start_before_commit", "start_after_commit",
             "group_missed")


@dataclass
class Report:
    lost: list = field(default_factory=list)  # (partition, offset, payload)
    duplicated: list = field(default_factory=list)  # (payload, [(partition, offset), ...])
    reordered: list = field(default_factory=list)  # (partition, producer, seq, after seq)
    read_then_lost: list = field(default_factory=list)  # (reader, partition, offset, payload, final)
    ack_mismatch: list = field(default_factory=list)  # (partition, offset, acked, final)
    offset_regressions: list = field(default_factory=list)  # (reader, partition, prev, offset)
    commit_lost: list = field(default_factory=list)  # (partition, highest acked, held after)
    start_before_commit: list = field(default_factory=list)  # (member, partition, first, commit)
    start_after_commit: list = field(default_factory=list)  # (member, partition, first, commit)
    group_missed: list = field(default_factory=list)  # (partition, offset, payload)
    acked: int = 0
    read: int = 0
    group_read: int = 0  # records returned to the group's members
    commits_acked: int = 0
    commits_failed: int = 0
    redelivered: int = 0  # group reads of a (partition, offset) read before: information

    @property
    def ok(self):
        return not any(getattr(self, k) for k in ANOMALIES)

    def summary(self, limit=5):
        parts = [f"{self.acked} acknowledged, {self.read} reads"]
        if self.group_read or self.commits_acked or self.commits_failed:
            parts.append(f"group: {self.group_read} reads, {self.redelivered} redelivered, "
                         f"commits {self.commits_acked} acknowledged {self.commits_failed} failed")
        for name in ANOMALIES:
            items = getattr(self, name)
            if items:
                parts.append(f"{name}: {len(items)} (e.g. {items[:limit]})")
        return "; ".join(parts)


class History:
    """Thread-safe enough for threads appending (list.append and next() on
    itertools.count are atomic in CPython); check() after they stop."""

    def __init__(self):
        self.acks = []  # (partition, offset, payload, producer, seq)
        self.reads = []  # (reader, partition, offset, payload) in arrival order, or a reset
        self.final = []  # (partition, offset, payload)
        self.members = set()  # the group's member names (readers of group reads)
        self.group = []  # (clock, "assign" | "revoke" | "read", member, partition, offset)
        self.commits = []  # (member, partition, offset, sent clock, acked clock or None)
        self.held = None  # partition -> offset the group holds after the run
        self._clock = itertools.count()

    def now(self):
        """The logical clock: every call returns a later value."""
        return next(self._clock)

    def ack(self, partition, offset, payload, producer=None, seq=None):
        self.acks.append((partition, offset, payload, producer, seq))

    def read(self, partition, offset, payload, reader="consumer", final=False):
        if final:
            self.final.append((partition, offset, payload))
        else:
            self.reads.append((reader, partition, offset, payload))

    def reset(self, reader, partition):
        """The reader seeks or gets the partition (re)assigned: offsets may restart."""
        self.reads.append((reader, partition, None, None))

    def assign(self, member, partitions):
        """A group member was given partitions (a new assignment epoch for each)."""
        self.members.add(member)
        for p in partitions:
            self.group.append((self.now(), "assign", member, p, None))
            self.reset(member, p)

    def revoke(self, member, partitions):
        """A group member gave partitions up (revoked or lost)."""
        for p in partitions:
            self.group.append((self.now(), "revoke", member, p, None))

    def group_read(self, member, partition, offset, payload):
        """A group member returned a record."""
        self.members.add(member)
        self.group.append((self.now(), "read", member, partition, offset))
        self.read(partition, offset, payload, reader=member)

    def commit(self, member, partition, offset, sent, acked):
        """A member's commit of `offset` (the next to consume) for `partition`,
        sent at clock `sent` (now() before sending); acked: whether the
        coordinator acknowledged it (the acknowledgement is at now())."""
        self.commits.append((member, partition, offset, sent, self.now() if acked else None))

    def committed(self, partition, offset):
        """The group's committed offset after the run (None: it holds none)."""
        if self.held is None:
            self.held = {}
        self.held[partition] = offset

    def _check_group(self, r):
        acked = [(p, o, a) for _, p, o, _, a in self.commits if a is not None]
        r.commits_acked = len(acked)
        r.commits_failed = len(self.commits) - len(acked)
        if self.held is not None:
            top = {}
            for p, o, _ in acked:
                top[p] = max(top.get(p, o), o)
            for p, o in sorted(top.items()):
                if self.held.get(p) is None or self.held[p] < o:
                    r.commit_lost.append((p, o, self.held.get(p)))

        # The first read of each assignment epoch against the commits around it.
        assigned = {}  # (member, partition) -> clock of the assignment, until its first read
        seen = set()
        for t, kind, m, p, o in sorted(self.group):
            if kind == "assign":
                assigned[(m, p)] = t
            elif kind == "revoke":
                assigned.pop((m, p), None)
            else:
                r.group_read += 1
                if (p, o) in seen:
                    r.redelivered += 1
                seen.add((p, o))
                at = assigned.pop((m, p), None)
                if at is None:
                    continue
                below = [c for q, c, a in acked if q == p and a < at]
                if below and o < max(below):
                    r.start_before_commit.append((m, p, o, max(below)))
                sent = [c for _, q, c, s, _ in self.commits if q == p and s < t]
                if o > max(sent, default=0):
                    r.start_after_commit.append((m, p, o, max(sent, default=0)))

        consumed = {v for rd, _, o, v in self.reads if rd in self.members and o is not None}
        for p, o, v, _, _ in self.acks:
            if v not in consumed:
                r.group_missed.append((p, o, v))

    def check(self):
        r = Report(acked=len(self.acks), read=sum(1 for x in self.reads if x[2] is not None))
        log_reads = self.final or [(p, o, v) for _, p, o, v in self.reads if o is not None]
        # The log as the final read shows it: (partition, offset) -> payload.
        log = {}
        for p, o, v in self.final:
            log[(p, o)] = v
        present = {v for _, _, v in log_reads}

        for p, o, v, _, _ in self.acks:
            if v not in present:
                r.lost.append((p, o, v))
            if self.final and (p, o) in log and log[(p, o)] != v:
                r.ack_mismatch.append((p, o, v, log[(p, o)]))

        where = defaultdict(set)
        for p, o, v in log_reads:
            where[v].add((p, o))
        for v, places in where.items():
            if len(places) > 1:
                r.duplicated.append((v, sorted(places)))

        # Send order per (partition, producer) against log order.
        seq_of = {v: (pr, s) for _, _, v, pr, s in self.acks if s is not None}
        first_at = {}
        for p, o, v in log_reads:
            if (p, o) not in first_at:
                first_at[(p, o)] = v
        last_seq = {}
        seen = set()  # a duplicate's later copy is reported once, as duplicated
        for (p, o) in sorted(first_at):
            v = first_at[(p, o)]
            if v not in seq_of or (p, v) in seen:
                continue
            seen.add((p, v))
            pr, s = seq_of[v]
            prev = last_seq.get((p, pr))
            if prev is not None and s < prev:
                r.reordered.append((p, pr, s, prev))
            last_seq[(p, pr)] = s if prev is None else max(prev, s)

        if self.final:
            for reader, p, o, v in self.reads:
                if o is not None and log.get((p, o)) != v:
                    r.read_then_lost.append((reader, p, o, v, log.get((p, o))))

        last = {}
        for reader, p, o, _ in self.reads:
            if o is None:
                last.pop((reader, p), None)
                continue
            prev = last.get((reader, p))
            if prev is not None and o <= prev:
                r.offset_regressions.append((reader, p, prev, o))
            last[(reader, p)] = o
        if self.members:
            self._check_group(r)
        return r
