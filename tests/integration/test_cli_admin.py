"""The admin half of the samsa CLI (topics, groups, configs, cluster) against a
real samsa-server: output in table and JSON form, exit codes (0 ok, 1 failed,
2 usage), Kafka error names on stderr, and --help on every level."""

import json
import os
import pty
import socket
import subprocess
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import ROOT
from helpers import ck_create_topic, ck_produce, ck_producer, wait_for

SAMSA = os.environ.get("SAMSA_CLI", os.path.join(ROOT, "build", "bin", "samsa"))

COMMANDS = {
    "topics": ["create", "list", "describe", "alter", "delete"],
    "groups": ["list", "describe", "delete", "delete-offsets", "reset-offsets"],
    "configs": ["describe", "alter"],
    "cluster": ["describe"],
}


def run(*args, timeout=60):
    """Runs samsa with args; returns the CompletedProcess (text)."""
    return subprocess.run([SAMSA, *args], capture_output=True, text=True, timeout=timeout)


def cli(broker, *args, expect=0):
    """Runs samsa against broker and checks the exit code."""
    r = run(*args, "--bootstrap-server", broker.bootstrap)
    assert r.returncode == expect, (
        f"samsa {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
        f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def cli_json(broker, *args):
    return json.loads(cli(broker, *args, "--output", "json").stdout)


def table(text):
    """Parses an aligned table (header row first) into dicts by column name.
    Columns are split on runs of two or more spaces."""
    import re
    lines = [l for l in text.splitlines() if l.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(header), f"row {line!r} does not match header {header}"
        rows.append(dict(zip(header, cells)))
    return rows


def consume_and_commit(bootstrap, topic, group, count):
    """A confluent consumer in group reads count records of topic from the
    start, commits the position after them and leaves."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m)
        assert len(got) >= count, f"consumed {len(got)} of {count}"
        last = got[count - 1]
        c.commit(offsets=[TopicPartition(topic, last.partition(), last.offset() + 1)],
                 asynchronous=False)
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


# ---------------------------------------------------------------- help, usage


def test_help_on_every_level_prints_usage_to_stdout_and_exits_0():
    for cmd, subs in COMMANDS.items():
        r = run(cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert r.stdout.startswith("usage: samsa " + cmd), r.stdout
        for sub in subs:
            assert f"  {sub} " in r.stdout, (cmd, sub, r.stdout)
            s = run(cmd, sub, "--help")
            assert s.returncode == 0, (cmd, sub, s.stderr)
            assert s.stdout.startswith(f"usage: samsa {cmd} {sub}"), s.stdout
            assert "--bootstrap-server" in s.stdout
            assert s.stderr == ""


def test_usage_errors_exit_2_with_one_line_naming_the_flag():
    cases = [
        (["topics", "create", "--bootstrap-server", "x:1", "--topic", "t", "--partitions", "abc"],
         "--partitions"),
        (["topics", "create", "--bootstrap-server", "x:1"], "--topic"),
        (["topics", "list", "--bootstrap-server", "x:1", "--bogus"], "--bogus"),
        (["topics", "nope"], "nope"),
        (["groups", "describe", "--bootstrap-server", "x:1"], "--group"),
        (["groups", "reset-offsets", "--bootstrap-server", "x:1", "--group", "g",
          "--all-topics"], "--to-earliest"),
        (["groups", "reset-offsets", "--bootstrap-server", "x:1", "--group", "g",
          "--all-topics", "--to-datetime", "yesterday"], "--to-datetime"),
        (["configs", "describe", "--bootstrap-server", "x:1"], "--entity-type"),
        (["configs", "alter", "--bootstrap-server", "x:1", "--entity-type", "topics",
          "--entity-name", "t", "--add-config", "novalue"], "--add-config"),
        (["topics", "list", "--bootstrap-server", "x:1", "--output", "yaml"], "--output"),
        (["topics", "create", "--bootstrap-server", "x:1", "--topic", "--partitions", "3"],
         "--topic needs a value"),
    ]
    for args, flag in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0], (args, r.stderr)
        assert r.stdout == ""


def test_unreachable_broker_fails_with_a_clear_message():
    # A refused connection fails at once; the subprocess timeout catches a hang.
    for args in (["topics", "list"], ["groups", "list"], ["cluster", "describe"],
                 ["configs", "describe", "--entity-type", "brokers", "--entity-name", "1"]):
        r = run(*args, "--bootstrap-server", "127.0.0.1:1", "--timeout-ms", "3000", timeout=30)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr == "samsa: cannot connect to 127.0.0.1:1: Connection refused\n", r.stderr


def test_a_dead_first_bootstrap_entry_falls_through_to_the_next(broker):
    with socket.socket() as dead:  # bound, never listening: connections are refused
        dead.bind(("127.0.0.1", 0))
        r = run("topics", "list", "-b", f"127.0.0.1:{dead.getsockname()[1]},{broker.bootstrap}",
                "--timeout-ms", "3600000", timeout=60)
    assert r.returncode == 0, r.stderr


def test_a_peer_that_is_not_kafka_is_named(tmp_path):
    """An HTTP server answers the ApiVersions bytes with an HTTP error."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        p = subprocess.Popen([SAMSA, "topics", "list", "-b", f"127.0.0.1:{port}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            out, err = p.communicate(timeout=60)
    assert p.returncode == 1, err
    assert err == f"samsa: 127.0.0.1:{port}: not a Kafka broker (it answered HTTP)\n", err


def test_short_flags_and_the_bootstrap_variable(broker):
    r = run("topics", "create", "-b", broker.bootstrap, "-t", "shorts", "-p", "3")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, SAMSA_BOOTSTRAP=broker.bootstrap)
    r = subprocess.run([SAMSA, "topics", "describe", "-t", "shorts", "-o", "json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)[0]["partitions"]) == 3
    # Without either, localhost:9092 is the default, as the help says.
    assert "default $SAMSA_BOOTSTRAP or localhost:9092" in run("topics", "list", "--help").stdout
    assert "-b, --bootstrap-server" in run("topics", "list", "--help").stdout


def test_help_topics_and_shell_completion():
    assert run("help", "topics", "create").stdout == run("topics", "create", "--help").stdout
    assert run("help", "consume").stdout == run("consume", "--help").stdout
    for shell in ("bash", "zsh"):
        r = run("completion", shell)
        assert r.returncode == 0 and "complete -F _samsa samsa" in r.stdout, r.stderr
    assert run("completion", "fish").returncode == 2
    script = run("completion", "bash").stdout
    probe = (script + "\nCOMP_WORDS=(samsa $1); COMP_CWORD=$(($# - 0)); "
             "COMP_WORDS=(samsa \"$@\"); COMP_CWORD=$#; _samsa; echo \"${COMPREPLY[*]}\"\n")
    env = dict(os.environ, PATH=os.path.dirname(SAMSA) + os.pathsep + os.environ["PATH"])

    def complete(*words):
        r = subprocess.run(["bash", "-c", probe, "probe", *words], capture_output=True,
                           text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("to") == ["topics"]
    assert complete("topics", "cr") == ["create"]
    assert "--partitions" in complete("topics", "create", "--par")
    assert complete("consume", "--from-b") == ["--from-beginning"]
    assert complete("perf", "e") == ["e2e"]


def test_silent_broker_fails_after_the_timeout_instead_of_hanging():
    # A listener that accepts connections (in its backlog) and never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        r = run("topics", "list", "--bootstrap-server", f"127.0.0.1:{port}", "--timeout-ms",
                "500", timeout=30)
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"samsa: 127.0.0.1:{port}: no answer within 500 ms\n", r.stderr


# ---------------------------------------------------------------- topics


def test_topics_create_list_describe_delete(broker):
    r = cli(broker, "topics", "create", "--topic", "orders", "--partitions", "3",
            "--replication-factor", "1", "--config", "retention.ms=3600000")
    assert r.stdout.strip() == "Created topic orders."
    out = cli_json(broker, "topics", "create", "--topic", "events", "--partitions", "2")
    assert out["topic"] == "events" and out["created"] is True
    assert out["partitions"] == 2 and out["replication_factor"] == 1
    assert len(out["topic_id"]) == 22

    rows = table(cli(broker, "topics", "list").stdout)
    by_name = {r["TOPIC"]: r for r in rows}
    assert by_name["orders"]["PARTITIONS"] == "3"
    assert by_name["events"]["PARTITIONS"] == "2"
    assert by_name["orders"]["INTERNAL"] == "no"
    listed = cli_json(broker, "topics", "list", "--exclude-internal")
    assert sorted(t["topic"] for t in listed) == ["events", "orders"]

    text = cli(broker, "topics", "describe", "--topic", "orders").stdout
    lines = text.splitlines()
    assert lines[0].startswith("Topic: orders\tTopicId: ")
    assert "\tPartitionCount: 3\tReplicationFactor: 1\t" in lines[0]
    assert lines[1].startswith("\tTopic: orders\tPartition: 0\tLeader: ")
    assert len(lines) == 4
    [desc] = cli_json(broker, "topics", "describe", "--topic", "events")
    assert desc["partition_count"] == 2
    assert [p["partition"] for p in desc["partitions"]] == [0, 1]
    assert all(p["leader"] is not None and p["replicas"] for p in desc["partitions"])

    r = cli(broker, "topics", "delete", "--topic", "events")
    assert r.stdout.strip() == "Deleted topic events."
    wait_for(lambda: "events" not in
             [t["topic"] for t in cli_json(broker, "topics", "list")],
             what="events gone from the topic list")


def test_progress_line_only_on_a_terminal(broker):
    cli(broker, "topics", "create", "--topic", "p1")
    args = [SAMSA, "topics", "describe", "--topic", "p1", "--bootstrap-server", broker.bootstrap]
    plain = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr
    primary, secondary = pty.openpty()
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=secondary, timeout=60)
        os.close(secondary)
        secondary = -1
        err = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the writer side is closed and drained
                break
            if not chunk:
                break
            err += chunk
    finally:
        if secondary >= 0:
            os.close(secondary)
        os.close(primary)
    assert r.returncode == 0
    assert b"\rdescribing the configs of 1 topics" in err, err
    assert err.endswith(b"\r\x1b[K"), err  # erased before the output
    assert r.stdout == plain.stdout.encode()


def test_topics_create_existing_fails_with_kafka_error_unless_if_not_exists(broker):
    cli(broker, "topics", "create", "--topic", "dup")
    r = cli(broker, "topics", "create", "--topic", "dup", expect=1)
    assert r.stderr.startswith("samsa: topic 'dup': TOPIC_ALREADY_EXISTS"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    out = cli_json(broker, "topics", "create", "--topic", "dup", "--if-not-exists")
    assert out["created"] is False


def test_topics_unknown_topic_is_exit_1_with_the_error_name(broker):
    r = cli(broker, "topics", "describe", "--topic", "missing", expect=1)
    assert "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr and "'missing'" in r.stderr
    r = cli(broker, "topics", "delete", "--topic", "missing", expect=1)
    assert "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr
    cli(broker, "topics", "delete", "--topic", "missing", "--if-exists")


def test_topics_create_invalid_config_value_is_invalid_config(broker):
    r = cli(broker, "topics", "create", "--topic", "bad", "--config", "retention.ms=abc",
            expect=1)
    assert r.stderr.startswith("samsa: topic 'bad': INVALID_CONFIG"), r.stderr


def test_topics_alter_adds_partitions_and_sets_configs(broker):
    cli(broker, "topics", "create", "--topic", "grow", "--partitions", "1")
    cli(broker, "topics", "alter", "--topic", "grow", "--partitions", "3")
    [desc] = cli_json(broker, "topics", "describe", "--topic", "grow")
    assert desc["partition_count"] == 3
    r = cli(broker, "topics", "alter", "--topic", "grow", "--partitions", "2", expect=1)
    assert "INVALID_PARTITIONS" in r.stderr

    cli(broker, "topics", "alter", "--topic", "grow", "--config", "retention.ms=7200000",
        "--config", "cleanup.policy=compact")
    [desc] = cli_json(broker, "topics", "describe", "--topic", "grow")
    assert desc["configs"] == {"retention.ms": "7200000", "cleanup.policy": "compact"}
    first = cli(broker, "topics", "describe", "--topic", "grow").stdout.splitlines()[0]
    configs = first.split("\tConfigs: ")[1]
    assert sorted(configs.split(",")) == ["cleanup.policy=compact", "retention.ms=7200000"]
    cli(broker, "topics", "alter", "--topic", "grow", "--delete-config", "cleanup.policy")
    [desc] = cli_json(broker, "topics", "describe", "--topic", "grow")
    assert desc["configs"] == {"retention.ms": "7200000"}
    r = cli(broker, "topics", "alter", "--topic", "grow", "--config", "retention.ms=abc",
            expect=1)
    assert "INVALID_CONFIG" in r.stderr


# ---------------------------------------------------------------- groups


@pytest.fixture
def lagging_group(broker):
    """Topic 'lag' (1 partition, 100 records) and group 'g' that consumed and
    committed 40 of them, with no member left."""
    ck_create_topic(broker.bootstrap, "lag", 1)
    ck_produce(broker.bootstrap, "lag", [(None, b"r%d" % i, None) for i in range(100)],
               partition=0)
    consume_and_commit(broker.bootstrap, "lag", "g", 40)
    return broker


def test_groups_describe_shows_offsets_and_lag(lagging_group):
    b = lagging_group
    r = cli(b, "groups", "describe", "--group", "g")
    rows = table(r.stdout)
    assert rows == [{"GROUP": "g", "TOPIC": "lag", "PARTITION": "0", "CURRENT-OFFSET": "40",
                     "LOG-END-OFFSET": "100", "LAG": "60", "CONSUMER-ID": "-", "HOST": "-",
                     "CLIENT-ID": "-"}]
    assert "has no active members" in r.stderr
    [row] = cli_json(b, "groups", "describe", "--group", "g")
    assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (40, 100, 60)
    assert row["consumer_id"] is None

    [state] = table(cli(b, "groups", "describe", "--group", "g", "--state").stdout)
    assert state["STATE"] == "Empty" and state["#MEMBERS"] == "0"
    assert cli_json(b, "groups", "describe", "--group", "g", "--members") == []

    rows = table(cli(b, "groups", "list").stdout)
    assert {"GROUP": "g", "STATE": "Empty", "PROTOCOL-TYPE": "consumer"} in rows
    assert [g["group"] for g in cli_json(b, "groups", "list", "--state", "Empty")] == ["g"]
    assert cli_json(b, "groups", "list", "--state", "Stable") == []


def test_groups_describe_shows_the_assigned_member(lagging_group):
    b = lagging_group
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "client.id": "lagger",
                  "enable.auto.commit": False})
    try:
        c.subscribe(["lag"])
        wait_for(lambda: c.poll(0.2) is not None or c.assignment(), timeout=30,
                 what="an assignment")

        def assigned():
            [row] = cli_json(b, "groups", "describe", "--group", "g")
            return row if row["client_id"] == "lagger" else None
        row = wait_for(assigned, timeout=30, what="the member in describe")
        assert row["consumer_id"].startswith("lagger-")
        [m] = cli_json(b, "groups", "describe", "--group", "g", "--members")
        assert m["client_id"] == "lagger" and m["partitions"] == 1

        r = cli(b, "groups", "reset-offsets", "--group", "g", "--topic", "lag",
                "--to-earliest", "--execute", expect=1)
        assert "NON_EMPTY_GROUP" in r.stderr and "inactive" in r.stderr
        r = cli(b, "groups", "delete", "--group", "g", expect=1)
        assert "NON_EMPTY_GROUP" in r.stderr
    finally:
        c.close()


def test_groups_describe_unknown_group_fails(broker):
    r = cli(broker, "groups", "describe", "--group", "nobody", expect=1)
    assert "GROUP_ID_NOT_FOUND" in r.stderr


def test_groups_reset_offsets_dry_run_then_execute(lagging_group):
    b = lagging_group
    r = cli(b, "groups", "reset-offsets", "--group", "g", "--topic", "lag", "--to-earliest")
    assert table(r.stdout) == [{"GROUP": "g", "TOPIC": "lag", "PARTITION": "0",
                                "NEW-OFFSET": "0"}]
    assert "dry run" in r.stderr
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 40}

    out = cli_json(b, "groups", "reset-offsets", "--group", "g", "--topic", "lag:0",
                   "--shift-by", "-15", "--dry-run")
    assert out == {"group": "g", "executed": False,
                   "offsets": [{"topic": "lag", "partition": 0, "new_offset": 25}]}
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 40}

    cli(b, "groups", "reset-offsets", "--group", "g", "--topic", "lag", "--to-offset", "70",
        "--execute")
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 70}
    cli(b, "groups", "reset-offsets", "--group", "g", "--all-topics", "--shift-by", "1000",
        "--execute")
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 100}
    cli(b, "groups", "reset-offsets", "--group", "g", "--all-topics", "--to-datetime",
        "2000-01-01T00:00:00.000", "--execute")
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 0}
    cli(b, "groups", "reset-offsets", "--group", "g", "--all-topics", "--to-latest", "--execute")
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: 100}
    [row] = cli_json(b, "groups", "describe", "--group", "g")
    assert row["lag"] == 0


def test_groups_reset_to_datetime_uses_record_timestamps_and_zones(broker):
    ck_create_topic(broker.bootstrap, "timed", 1)
    base = 1700000000000  # 2023-11-14T22:13:20Z
    p = ck_producer(broker.bootstrap)
    for i in range(10):
        p.produce("timed", value=b"x", partition=0, timestamp=base + i * 60000)
    assert p.flush(30) == 0
    consume_and_commit(broker.bootstrap, "timed", "tg", 1)
    cases = [("2023-11-14T22:16:20.000", 3),            # no zone: UTC, record 3 exactly
             ("2023-11-14T22:16:20.001Z", 4),           # just after record 3
             ("2023-11-15T00:18:00.000+02:00", 5),      # 22:18:00Z lies between 4 and 5
             ("2023-11-14T17:13:20-0500", 0),           # 22:13:20Z, the first record
             ("2030-01-01T00:00:00.000Z", 10)]          # later than every record: log end
    for when, offset in cases:
        out = cli_json(broker, "groups", "reset-offsets", "--group", "tg", "--topic", "timed",
                       "--to-datetime", when, "--execute")
        assert out["offsets"] == [{"topic": "timed", "partition": 0, "new_offset": offset}], when
        assert committed(broker.bootstrap, "tg", "timed", [0]) == {0: offset}, when


def test_groups_delete_offsets_and_delete(lagging_group):
    b = lagging_group
    rows = table(cli(b, "groups", "delete-offsets", "--group", "g", "--topic", "lag").stdout)
    assert rows == [{"TOPIC": "lag", "PARTITION": "0", "STATUS": "Successful"}]
    assert committed(b.bootstrap, "g", "lag", [0]) == {0: -1001}
    r = cli(b, "groups", "delete", "--group", "g")
    assert r.stdout.strip() == "Deleted consumer group g."
    assert "g" not in [g["group"] for g in cli_json(b, "groups", "list")]
    r = cli(b, "groups", "delete", "--group", "g", expect=1)
    assert "GROUP_ID_NOT_FOUND" in r.stderr


# ---------------------------------------------------------------- configs


def test_configs_describe_and_alter_a_topic(broker):
    cli(broker, "topics", "create", "--topic", "cfg")
    cli(broker, "configs", "alter", "--entity-type", "topics", "--entity-name", "cfg",
        "--add-config", "retention.ms=1000,cleanup.policy=[compact,delete]")
    r = cli(broker, "configs", "describe", "--entity-type", "topics", "--entity-name", "cfg")
    assert r.stdout.splitlines()[0] == "Dynamic configs for topic cfg are:"
    assert "  retention.ms=1000 source=DYNAMIC_TOPIC_CONFIG sensitive=false" in r.stdout
    [res] = cli_json(broker, "configs", "describe", "--entity-type", "topics",
                     "--entity-name", "cfg")
    got = {c["name"]: c["value"] for c in res["configs"]}
    assert got == {"retention.ms": "1000", "cleanup.policy": "compact,delete"}

    cli(broker, "configs", "alter", "--entity-type", "topics", "--entity-name", "cfg",
        "--subtract-config", "cleanup.policy=delete", "--delete-config", "retention.ms")
    [res] = cli_json(broker, "configs", "describe", "--entity-type", "topics",
                     "--entity-name", "cfg")
    assert {c["name"]: c["value"] for c in res["configs"]} == {"cleanup.policy": "compact"}
    cli(broker, "configs", "alter", "--entity-type", "topics", "--entity-name", "cfg",
        "--append-config", "cleanup.policy=delete")
    [res] = cli_json(broker, "configs", "describe", "--entity-type", "topics",
                     "--entity-name", "cfg")
    assert {c["name"]: c["value"] for c in res["configs"]} == {"cleanup.policy": "compact,delete"}

    [res] = cli_json(broker, "configs", "describe", "--entity-type", "topics",
                     "--entity-name", "cfg", "--all")
    sources = {c["name"]: c["source"] for c in res["configs"]}
    assert sources["cleanup.policy"] == "DYNAMIC_TOPIC_CONFIG"
    assert "segment.bytes" in sources and sources["segment.bytes"] != "DYNAMIC_TOPIC_CONFIG"

    r = cli(broker, "configs", "alter", "--entity-type", "topics", "--entity-name", "cfg",
            "--add-config", "retention.ms=abc", expect=1)
    assert "INVALID_CONFIG" in r.stderr
    r = cli(broker, "configs", "alter", "--entity-type", "topics", "--entity-name", "ghost",
            "--add-config", "retention.ms=1", expect=1)
    assert "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr


def test_configs_describe_and_alter_the_broker(broker):
    [node] = [b["id"] for b in cli_json(broker, "cluster", "describe")["brokers"]]
    [res] = cli_json(broker, "configs", "describe", "--entity-type", "brokers",
                     "--entity-name", str(node), "--all")
    assert res["entity_name"] == str(node)
    assert any(c["name"] == "log.retention.hours" for c in res["configs"]), res
    cli(broker, "configs", "alter", "--entity-type", "brokers", "--entity-name", str(node),
        "--add-config", "log.retention.ms=3600000")
    r = cli(broker, "configs", "describe", "--entity-type", "brokers", "--entity-name", str(node))
    assert f"Dynamic configs for broker {node} are:" in r.stdout
    assert "  log.retention.ms=3600000 source=DYNAMIC_BROKER_CONFIG sensitive=false" in r.stdout
    cli(broker, "configs", "alter", "--entity-type", "brokers", "--entity-name", str(node),
        "--delete-config", "log.retention.ms")
    r = cli(broker, "configs", "describe", "--entity-type", "brokers", "--entity-name", str(node))
    assert "log.retention.ms" not in r.stdout

    cli(broker, "configs", "alter", "--entity-type", "brokers", "--entity-default",
        "--add-config", "log.retention.ms=7200000")
    [res] = cli_json(broker, "configs", "describe", "--entity-type", "brokers",
                     "--entity-default")
    assert res["entity_name"] is None
    assert {"name": "log.retention.ms", "value": "7200000",
            "source": "DYNAMIC_DEFAULT_BROKER_CONFIG", "sensitive": False,
            "read_only": False} in res["configs"]


# ---------------------------------------------------------------- cluster


def test_cluster_describe(broker):
    out = cli_json(broker, "cluster", "describe", "--api-versions")
    assert out["cluster_id"]
    assert len(out["brokers"]) == 1
    [b] = out["brokers"]
    assert (b["host"], b["port"]) == ("127.0.0.1", broker.port)
    assert out["controller_id"] == b["id"]
    apis = {a["api"]: (a["min"], a["max"]) for a in out["api_versions"]}
    assert apis["ApiVersions"][1] >= 3 and apis["Metadata"][1] >= 12
    assert b["fenced"] is False
    # A single node is a one-voter metadata quorum, leader of its own log.
    q = out["quorum"]
    assert q["leader_id"] == b["id"] and [v["id"] for v in q["voters"]] == [b["id"]]
    assert q["voters"][0]["lag"] == 0 and q["observers"] == []

    text = cli(broker, "cluster", "describe", "--api-versions").stdout
    assert text.startswith(f"Cluster ID: {out['cluster_id']}\nController ID: {b['id']}\n")
    assert f"127.0.0.1  {broker.port}" in text
    assert any(line.split()[:2] == ["ApiVersions", "18"] for line in text.splitlines())
