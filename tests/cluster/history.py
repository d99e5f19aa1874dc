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

Payload ids are any hashable values, unique per record the producer sent.
"""

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Report:
    lost: list = field(default_factory=list)  # (partition, offset, payload)
    duplicated: list = field(default_factory=list)  # (payload, [(partition, offset), ...])
    reordered: list = field(default_factory=list)  # (partition, producer, seq, after seq)
    read_then_lost: list = field(default_factory=list)  # (reader, partition, offset, payload, final)
    ack_mismatch: list = field(default_factory=list)  # (partition, offset, acked, final)
    offset_regressions: list = field(default_factory=list)  # (reader, partition, prev, offset)
    acked: int = 0
    read: int = 0

    @property
    def ok(self):
        return not (self.lost or self.duplicated or self.reordered or self.read_then_lost
                    or self.ack_mismatch or self.offset_regressions)

    def summary(self, limit=5):
        parts = [f"{self.acked} acknowledged, {self.read} reads"]
        for name in ("lost", "duplicated", "reordered", "read_then_lost", "ack_mismatch",
                     "offset_regressions"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}: {len(items)} (e.g. {items[:limit]})")
        return "; ".join(parts)


class History:
    """Thread-safe enough for one producer thread and one consumer thread
    appending (list.append is atomic in CPython); check() after both stop."""

    def __init__(self):
        self.acks = []  # (partition, offset, payload, producer, seq)
        self.reads = []  # (reader, partition, offset, payload) in arrival order, or a reset
        self.final = []  # (partition, offset, payload)

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
        return r
