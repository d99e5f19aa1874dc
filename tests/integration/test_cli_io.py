"""samsa produce, consume and perf against a real samsa-server: binary-safe
round trips, Kafka's console layouts, start positions, group commits, usage
errors, unreachable brokers and missing topics, and the perf summaries."""

import base64
import json
import os
import pty
import re
import select
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from conftest import ROOT
from helpers import ck_consume, ck_create_topic, ck_produce

SAMSA = os.environ.get("SAMSA_CLI", os.path.join(ROOT, "build", "bin", "samsa"))
# Guards against a hung process only; no test asserts how long a command took.
HANG_GUARD_S = 120


def samsa(*args, input=b""):
    """Runs the CLI; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([SAMSA, *args], input=input, capture_output=True, timeout=HANG_GUARD_S)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def produce(broker, topic, lines, *extra):
    rc, out, err = samsa("produce", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         *extra, input=lines)
    assert rc == 0, f"produce exit {rc}: {err}"
    return out


def consume(broker, topic, *extra, ok=True):
    rc, out, err = samsa("consume", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         *extra)
    if ok:
        assert rc == 0, f"consume exit {rc}: {err}"
    return rc, out, err


def processed(err):
    m = re.search(r"Processed a total of (\d+) messages", err)
    assert m, f"no 'Processed a total' line in: {err!r}"
    return int(m.group(1))


def b64(b):
    return base64.b64encode(b).decode()


# Bytes a line-based tool must carry: NUL, newline, tab, CR, invalid UTF-8.
NASTY = [
    (b"k\x00\n\t1", b"v\x00\n\tvalue\r\xff\xfe", [("h1", b"\x00\n\t\xff"), ("h2", b"")]),
    (b"", b"", [("only", b"x")]),
    (None, b"\xc3\x28 invalid utf-8", []),
    (b"\xff" * 3, b"A" * 100000, [("h", None), ("h", b"dup")]),
]


def b64_line(key, value, headers):
    hdrs = ",".join(f"{k}:{'-' if v is None else b64(v)}" for k, v in headers) or "NO_HEADERS"
    k = "-" if key is None else b64(key)
    return f"{hdrs}\t{k}\t{b64(value)}\n".encode()


def test_base64_round_trip_of_arbitrary_bytes(broker):
    """--format base64 carries keys, values and header values of any bytes both ways."""
    lines = b"".join(b64_line(*r) for r in NASTY)
    produce(broker, "bin", lines, "--format", "base64", "--property", "parse.key=true",
            "--property", "parse.headers=true")
    got = ck_consume(broker.bootstrap, "bin", [0], len(NASTY))
    assert [(m.key(), m.value(), m.headers() or []) for m in got] == \
        [(k, v, h) for k, v, h in NASTY]

    rc, out, err = consume(broker, "bin", "--from-beginning", "--max-messages", str(len(NASTY)),
                           "--format", "base64", "--property", "print.key=true",
                           "--property", "print.headers=true")
    assert processed(err) == len(NASTY)
    assert out.splitlines(keepends=True) == lines.splitlines(keepends=True)


def test_text_format_with_separators_and_headers(broker):
    """Kafka's reader properties split headers, key and value; the last line needs no newline."""
    lines = b"a=1;b=2|k1#v1\nc=|k2#v2 with spaces\n|k3#v3#more"
    produce(broker, "txt", lines, "--property", "parse.key=true", "--property",
            "key.separator=#", "--property", "parse.headers=true", "--property",
            "headers.delimiter=|", "--property", "headers.separator=;", "--property",
            "headers.key.separator==")
    got = ck_consume(broker.bootstrap, "txt", [0], 3)
    assert [(m.key(), m.value(), m.headers() or []) for m in got] == [
        (b"k1", b"v1", [("a", b"1"), ("b", b"2")]),
        (b"k2", b"v2 with spaces", [("c", b"")]),
        (b"k3", b"v3#more", []),
    ]


def test_text_lines_keep_every_byte_but_newline(broker):
    """A plain line is the value as it is, however long, with CR and tabs kept."""
    long_line = b"x" * 300000
    produce(broker, "plain", b"a\tb\r\n\n" + long_line + b"\n")
    got = ck_consume(broker.bootstrap, "plain", [0], 3)
    assert [m.value() for m in got] == [b"a\tb\r", b"", long_line]
    assert all(m.key() is None for m in got)


def test_missing_key_separator_fails_with_line_number(broker):
    """A line without the key separator is an error naming the line, exit 1."""
    rc, _, err = samsa("produce", "--bootstrap-server", broker.bootstrap, "--topic", "nosep",
                       "--property", "parse.key=true", input=b"k\tv\nno separator\n")
    assert rc == 1, err
    assert "line 2" in err and "key separator" in err, err


def test_output_layout_with_every_print_property(broker):
    """Text output follows Kafka's DefaultMessageFormatter order and labels."""
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("layout", key=b"k1", value=b"v1", headers=[("h1", b"a"), ("h2", None)],
              timestamp=1700000000000, partition=0)
    p.produce("layout", key=None, value=None, timestamp=1700000000001, partition=0)
    assert p.flush(30) == 0
    every = ["--property", "print.key=true", "--property", "print.headers=true",
             "--property", "print.partition=true", "--property", "print.offset=true",
             "--property", "print.timestamp=true"]
    _, out, err = consume(broker, "layout", "--from-beginning", "--max-messages", "2", *every)
    assert out.decode() == ("CreateTime:1700000000000\tPartition:0\tOffset:0\th1:a,h2:null\tk1\tv1\n"
                            "CreateTime:1700000000001\tPartition:0\tOffset:1\tNO_HEADERS\tnull\tnull\n")
    assert processed(err) == 2

    _, out, _ = consume(broker, "layout", "--from-beginning", "--max-messages", "2",
                        "--property", "print.key=true", "--property", "print.value=false",
                        "--property", "key.separator=|", "--property", "null.literal=NIL")
    assert out == b"k1\nNIL\n"
    _, out, _ = consume(broker, "layout", "--from-beginning", "--max-messages", "2",
                        "--property", "print.offset=true", "--property", "key.separator=|",
                        "--property", "line.separator=;", "--property", "print.headers=true",
                        "--property", "headers.separator=/", "--property",
                        "headers.key.separator==")
    assert out == b"Offset:0|h1=a/h2=null|v1;Offset:1|NO_HEADERS|null;"


def test_json_output(broker):
    """--format json: one object per line, text as strings, other bytes as base64."""
    ck_produce(broker.bootstrap, "js", [(b"k", b"caf\xc3\xa9 \"q\"\n", [("h", b"\xff")]),
                                        (None, b"\xff\x00", [])])
    _, out, err = consume(broker, "js", "--from-beginning", "--max-messages", "2",
                          "--format", "json")
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert len(rows) == 2 and processed(err) == 2
    assert rows[0]["topic"] == "js" and rows[0]["partition"] == 0 and rows[0]["offset"] == 0
    assert rows[0]["timestamp_type"] == "CreateTime" and isinstance(rows[0]["timestamp"], int)
    assert rows[0]["key"] == "k" and rows[0]["value"] == "café \"q\"\n"
    assert rows[0]["headers"] == [{"key": "h", "value": {"base64": b64(b"\xff")}}]
    assert rows[1]["key"] is None and rows[1]["value"] == {"base64": b64(b"\xff\x00")}
    assert rows[1]["offset"] == 1 and rows[1]["headers"] == []


@pytest.fixture
def three_partitions(broker):
    """Topic 'pos': partition p holds values p-0..p-4 with timestamps 1000*p + i."""
    ck_create_topic(broker.bootstrap, "pos", partitions=3)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for part in range(3):
        for i in range(5):
            p.produce("pos", value=f"{part}-{i}".encode(), partition=part,
                      timestamp=1_600_000_000_000 + 1000 * part + i)
    assert p.flush(30) == 0
    return broker


def values(out):
    return out.decode().splitlines()


def test_start_positions(three_partitions):
    """--from-beginning, --partition with --offset, latest, and --from-timestamp."""
    b = three_partitions
    _, out, _ = consume(b, "pos", "--from-beginning", "--max-messages", "15")
    assert sorted(values(out)) == sorted(f"{p}-{i}" for p in range(3) for i in range(5))

    _, out, _ = consume(b, "pos", "--partition", "1", "--offset", "2", "--max-messages", "3")
    assert values(out) == ["1-2", "1-3", "1-4"]
    _, out, _ = consume(b, "pos", "--partition", "2", "--offset", "earliest",
                        "--max-messages", "1")
    assert values(out) == ["2-0"]
    _, out, err = consume(b, "pos", "--partition", "2", "--offset", "latest", "--timeout-ms",
                          "1000")
    assert out == b"" and processed(err) == 0
    _, out, err = consume(b, "pos", "--timeout-ms", "1000")
    assert out == b"" and processed(err) == 0

    # Partition 1's timestamps are ...1000..1004: from ...1003 reads its last two.
    _, out, _ = consume(b, "pos", "--partition", "1", "--from-timestamp", "1600000001003",
                        "--max-messages", "2")
    assert values(out) == ["1-3", "1-4"]
    # 2020-09-13T12:26:42Z is 1600000002000: partition 2 only, all of it.
    _, out, err = consume(b, "pos", "--from-timestamp", "2020-09-13T12:26:42Z", "--timeout-ms",
                          "1500")
    assert values(out) == [f"2-{i}" for i in range(5)] and processed(err) == 5
    _, out, _ = consume(b, "pos", "--from-timestamp", "2020-09-13T14:26:42.000+02:00",
                        "--timeout-ms", "1500")
    assert values(out) == [f"2-{i}" for i in range(5)]


def committed(broker, group, topic):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    finally:
        c.close()


def test_group_commits_what_it_printed(broker):
    """With --group the printed records are committed; the next run goes on from there."""
    produce(broker, "grp", b"".join(f"r{i}\n".encode() for i in range(5)))
    _, out, err = consume(broker, "grp", "--group", "g1", "--from-beginning",
                          "--max-messages", "3")
    assert values(out) == ["r0", "r1", "r2"] and processed(err) == 3
    assert committed(broker, "g1", "grp") == 3

    _, out, err = consume(broker, "grp", "--group", "g1", "--from-beginning",
                          "--timeout-ms", "1500")
    assert values(out) == ["r3", "r4"] and processed(err) == 2
    assert committed(broker, "g1", "grp") == 5
    _, out, err = consume(broker, "grp", "--group", "g1", "--from-beginning",
                          "--timeout-ms", "1500")
    assert out == b"" and processed(err) == 0


def test_group_without_from_beginning_starts_at_the_end(broker):
    """A new group without --from-beginning starts at the latest offset (Kafka's default)."""
    produce(broker, "grp2", b"old\n")
    _, out, err = consume(broker, "grp2", "--group", "g2", "--timeout-ms", "1000")
    assert out == b"" and processed(err) == 0


def test_max_messages_stops_there(broker):
    """--max-messages N prints exactly N records even when more are there."""
    produce(broker, "maxm", b"".join(b"%d\n" % i for i in range(50)))
    _, out, err = consume(broker, "maxm", "--from-beginning", "--max-messages", "7")
    assert values(out) == [str(i) for i in range(7)] and processed(err) == 7


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compression_types(broker, codec):
    """Every --compression-type produces records any client reads back."""
    lines = [f"{codec}-{i}-" + "abc" * i for i in range(200)]
    produce(broker, f"c-{codec}", "\n".join(lines).encode(), "--compression-type", codec)
    _, out, _ = consume(broker, f"c-{codec}", "--from-beginning", "--max-messages", "200")
    assert values(out) == lines
    got = ck_consume(broker.bootstrap, f"c-{codec}", [0], 200)
    assert [m.value().decode() for m in got] == lines


def test_acks_and_sync_and_partition(broker):
    """--acks 1 (idempotence off), --sync and --partition deliver where asked."""
    ck_create_topic(broker.bootstrap, "ack", partitions=2)
    produce(broker, "ack", b"a\nb\n", "--acks", "1", "--sync", "--partition", "1")
    produce(broker, "ack", b"c\n", "--acks", "0", "--partition", "0")
    got = ck_consume(broker.bootstrap, "ack", [1], 2)
    assert [m.value() for m in got] == [b"a", b"b"]
    got = ck_consume(broker.bootstrap, "ack", [0], 1)
    assert [m.value() for m in got] == [b"c"]
    rc, _, err = samsa("produce", "--bootstrap-server", broker.bootstrap, "--topic", "ack",
                       "--partition", "5", input=b"x\n")
    assert rc == 1 and "partition 5" in err, err


def test_produced_records_read_by_other_clients(broker):
    """Keys and headers from samsa produce read the same in confluent-kafka and kafka-python."""
    produce(broker, "xc", b"h1:v1,h2:v2\tkey-a\tvalue-a\n\tkey-b\tvalue-b\n",
            "--property", "parse.key=true", "--property", "parse.headers=true")
    want = [(b"key-a", b"value-a", [("h1", b"v1"), ("h2", b"v2")]),
            (b"key-b", b"value-b", [])]
    got = ck_consume(broker.bootstrap, "xc", [0], 2)
    assert [(m.key(), m.value(), m.headers() or []) for m in got] == want

    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                       consumer_timeout_ms=10000)
    try:
        kc.assign([KpTopicPartition("xc", 0)])
        kc.seek_to_beginning()
        recs = []
        for r in kc:
            recs.append((r.key, r.value, list(r.headers)))
            if len(recs) == 2:
                break
    finally:
        kc.close()
    assert recs == want


@pytest.mark.parametrize("cmd", [["produce"], ["consume"], ["perf"], ["perf", "produce"],
                                 ["perf", "consume"], ["perf", "e2e"]])
def test_help(cmd):
    """--help prints usage on stdout and exits 0."""
    rc, out, err = samsa(*cmd, "--help")
    assert rc == 0 and err == ""
    assert out.decode().startswith("usage: samsa " + " ".join(cmd)), out[:80]


@pytest.mark.parametrize("args,flag", [
    (["produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--bogus"], "--bogus"),
    (["consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--max-messages", "ten"],
     "--max-messages"),
    (["produce", "--bootstrap-server", "127.0.0.1:1"], "--topic"),
    (["produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "--partition", "1"], "--topic"),
    (["consume", "--bootstrap-server", "127.0.0.1:1"], "--topic"),
    (["consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--offset", "3"],
     "--offset"),
    (["consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--from-timestamp",
      "yesterday"], "--from-timestamp"),
    (["consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--property", "x=1"],
     "--property"),
    (["produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--compression-type",
      "brotli"], "--compression-type"),
    (["perf", "produce", "--bootstrap-server", "127.0.0.1:1", "--num-records", "1",
      "--record-size", "1", "--throughput", "-1"], "--topic"),
    (["perf", "produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--num-records",
      "x", "--record-size", "1", "--throughput", "-1"], "--num-records"),
    (["perf", "consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t"], "--messages"),
    (["perf", "e2e", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--num-records", "1",
      "--record-size", "4", "--throughput", "10"], "--record-size"),
    (["perf", "bogus"], "bogus"),
])
def test_usage_errors(args, flag):
    """Usage errors exit 2 with one line on stderr naming the option."""
    rc, out, err = samsa(*args)
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], err
    assert out == b""


@pytest.mark.parametrize("cmd", [["produce"], ["consume"], ["perf", "produce", "--num-records",
                                 "1", "--record-size", "1", "--throughput", "-1"],
                                 ["perf", "consume", "--messages", "1"]])
def test_unreachable_broker(cmd):
    """Nothing listening: a clear error naming the failure, exit 1, without
    waiting for --timeout-ms (far longer than the hang guard)."""
    rc, out, err = samsa(*cmd, "-b", "127.0.0.1:1", "--topic", "t", "--timeout-ms", "3600000")
    assert rc == 1, err
    assert "cannot reach the cluster: " in err and "_TRANSPORT" in err, err
    assert "Connection refused" in err, err


def test_short_flags_and_the_bootstrap_variable(broker):
    """kcat's -b -t -p -o, and SAMSA_BOOTSTRAP in place of --bootstrap-server."""
    rc, _, err = samsa("produce", "-b", broker.bootstrap, "-t", "short", "-p", "0",
                       input=b"a\nb\nc\n")
    assert rc == 0, err
    env = dict(os.environ, SAMSA_BOOTSTRAP=broker.bootstrap)
    p = subprocess.run([SAMSA, "consume", "-t", "short", "-p", "0", "-o", "1",
                        "--max-messages", "2"], capture_output=True, env=env,
                       timeout=HANG_GUARD_S)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"b\nc\n"


def read_pty_until(fd, needle, proc):
    """Reads fd until needle appears or proc exits; returns what was read."""
    got = b""
    while needle not in got and proc.poll() is None:
        r, _, _ = select.select([fd], [], [], 1.0)
        if r:
            try:
                got += os.read(fd, 4096)
            except OSError:
                break
    return got


def test_consume_says_what_it_waits_for_on_a_terminal(broker):
    """On a terminal, a quiet wait names the partition, the offset and the log end;
    a start offset past the end says where the end is."""
    ck_create_topic(broker.bootstrap, "greetings", partitions=3)
    samsa("produce", "-b", broker.bootstrap, "-t", "greetings", "-p", "0", input=b"hi\n")
    primary, secondary = pty.openpty()
    p = subprocess.Popen([SAMSA, "consume", "-b", broker.bootstrap, "-t", "greetings", "-p", "0",
                          "-o", "5"], stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    try:
        err = read_pty_until(primary, b"the log ends at 1\r\n", p)
    finally:
        p.terminate()
        p.wait(timeout=HANG_GUARD_S)
        os.close(primary)
    assert (b"--offset 5 is past the end of greetings-0 (the log ends at offset 1); "
            b"starting at the end") in err, err
    assert b"waiting for records on greetings-0 at offset 1; the log ends at 1" in err, err
    # Not on a terminal: no such note.
    rc, _, err = samsa("consume", "-b", broker.bootstrap, "-t", "greetings", "-p", "1",
                       "--timeout-ms", "4000")
    assert rc == 0 and "waiting for records" not in err, err


def test_unknown_topic_without_auto_create(make_broker):
    """With auto-create off, producing or consuming a missing topic fails clearly."""
    b = make_broker({"auto.create.topics.enable": "false"})
    for cmd in (["produce"], ["consume"], ["perf", "consume", "--messages", "1"]):
        rc, _, err = samsa(*cmd, "--bootstrap-server", b.bootstrap, "--topic", "missing",
                           input=b"x\n")
        assert rc == 1, (cmd, err)
        assert "topic 'missing'" in err and "UNKNOWN_TOPIC_OR_PART" in err, (cmd, err)


PRODUCE_LINE = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th\.$")


def test_perf_produce_and_consume(broker):
    """perf produce/consume print Kafka's summary lines (text) or JSON with the right counts."""
    base = ["--bootstrap-server", broker.bootstrap, "--topic", "perf"]
    rc, out, err = samsa("perf", "produce", *base, "--num-records", "3000", "--record-size",
                         "100", "--throughput", "-1", "--producer-props", "linger.ms=5",
                         "batch.size=65536")
    assert rc == 0, err
    m = PRODUCE_LINE.match(out.decode().strip())
    assert m, out
    assert int(m.group(1)) == 3000 and float(m.group(2)) > 0
    assert float(m.group(4)) <= float(m.group(5))
    assert int(m.group(6)) <= int(m.group(7)) <= int(m.group(8)) <= int(m.group(9))

    rc, out, err = samsa("perf", "produce", *base, "--num-records", "2000", "--record-size",
                         "50", "--throughput", "20000", "--acks", "1", "--output", "json")
    assert rc == 0, err
    s = json.loads(out)
    assert set(s) == {"records", "records_per_sec", "mb_per_sec", "avg_latency_ms",
                      "max_latency_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms"}
    assert s["records"] == 2000
    assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["p999_ms"] <= s["max_latency_ms"]

    rc, out, err = samsa("perf", "consume", *base, "--messages", "5000")
    assert rc == 0, err
    header, line = out.decode().strip().splitlines()
    assert header == ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
                      "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    cols = line.split(", ")
    assert len(cols) == 10
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}$", cols[0]), cols[0]
    assert int(cols[4]) == 5000
    assert float(cols[2]) == pytest.approx((3000 * 100 + 2000 * 50) / 2**20, abs=1e-4)

    rc, out, err = samsa("perf", "consume", *base, "--messages", "5000", "--group", "pg",
                         "--output", "json")
    assert rc == 0, err
    s = json.loads(out)
    assert set(s) == {"records", "bytes", "seconds", "mb_per_sec", "records_per_sec"}
    assert s["records"] == 5000 and s["bytes"] == 3000 * 100 + 2000 * 50

    rc, out, err = samsa("perf", "consume", *base, "--messages", "5001", "--timeout-ms", "1000",
                         "--output", "json")
    assert rc == 1 and "only 5000 of 5001" in err, err
    assert json.loads(out)["records"] == 5000


def check_csv(path):
    with open(path) as f:
        rows = f.read().splitlines()
    assert rows[0] == "percentile,latency_ms"
    pts = [tuple(map(float, r.split(","))) for r in rows[1:]]
    assert pts[0][0] == 0 and pts[-2][0] == 99.99 and pts[-1][0] == 100
    assert all(a[1] <= b[1] for a, b in zip(pts, pts[1:])), "curve must not go down"


E2E_LINE = re.compile(r"^(\d+) records, avg ([\d.]+) ms, p50 ([\d.]+) ms, p99 ([\d.]+) ms, "
                      r"p99\.9 ([\d.]+) ms, max ([\d.]+) ms\.$")



def test_perf_e2e(broker, tmp_path):
    """perf e2e receives every record it sent and reports percentiles, JSON and a CSV curve."""
    base = ["--bootstrap-server", broker.bootstrap, "--topic", "e2e", "--record-size", "64"]
    rc, out, err = samsa("perf", "e2e", *base, "--num-records", "300", "--throughput", "1000",
                         "--latency-csv", str(tmp_path / "lat.csv"))
    assert rc == 0, err
    m = E2E_LINE.match(out.decode().strip())
    assert m and int(m.group(1)) == 300, out
    p50, p99, p999, mx = (float(m.group(i)) for i in (3, 4, 5, 6))
    assert p50 <= p99 <= p999 <= mx
    check_csv(tmp_path / "lat.csv")

    rc, out, err = samsa("perf", "e2e", *base, "--num-records", "200", "--throughput", "-1",
                         "--output", "json")
    assert rc == 0, err
    s = json.loads(out)
    assert set(s) == {"records", "p50_ms", "p99_ms", "p999_ms", "max_ms", "avg_ms"}
    assert s["records"] == 200 and s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]


def test_perf_e2e_with_long_poll(broker):
    """perf e2e with the consumer's default long-polling fetches: appends wake parked
    fetches while the broker evaluates others (a broker regression test: this crashed it)."""
    rc, out, err = samsa("perf", "e2e", "--bootstrap-server", broker.bootstrap, "--topic", "e2e",
                         "--record-size", "64", "--num-records", "1000", "--throughput", "1000",
                         "--output", "json")
    assert rc == 0, err
    assert json.loads(out)["records"] == 1000
