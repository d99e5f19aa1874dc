"""samsa-server as an operator meets it: the lock on each log dir, listeners
that are served or refused (never dropped), warnings for Kafka keys Samsa does
not act on, and the log lines for start-up, topics, configs, rebalances,
recovery and shutdown."""

import os
import re
import subprocess

from confluent_kafka import Consumer
from confluent_kafka.admin import ConfigResource, NewTopic

import raw_kafka
from conftest import ROOT, SERVER_BIN, Broker, free_port
from helpers import ck_admin, ck_create_topic, ck_produce, wait_for

FIXTURE = os.path.join(ROOT, "tests", "integration", "fixtures", "kafka-4.4-server.properties")
# Guards against a hung process only; no test asserts how long start-up took.
HANG_GUARD_S = 60


def start_server(*args):
    """Runs samsa-server expecting it to refuse to start; returns (code, output)."""
    p = subprocess.run([SERVER_BIN, *args], capture_output=True, text=True, timeout=HANG_GUARD_S)
    return p.returncode, p.stdout + p.stderr


def overrides(**kv):
    out = []
    for k, v in kv.items():
        out += ["--override", f"{k.replace('_', '.')}={v}"]
    return out


# ---------------------------------------------------------------- log dir lock


def test_second_broker_on_a_locked_dir_exits_naming_the_dir_and_the_holder(broker):
    data = broker.data_dir
    code, out = start_server(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}",
                                        log_dirs=data))
    assert code == 1, out
    assert f"log dir {data} is in use by another broker (pid {broker.proc.pid}" in out, out
    # The running broker's directory is left as it was: no clean-shutdown
    # marker written by the refused one (it would make a later crash skip recovery).
    assert not os.path.exists(os.path.join(data, ".kafka_cleanshutdown"))
    assert broker.proc.poll() is None


def test_every_log_dir_is_locked(tmp_path, make_broker):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    b = make_broker({"log.dirs": f"{d1},{d2}"}, data_dir=tmp_path / "unused")
    code, out = start_server(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}",
                                        log_dirs=f"{tmp_path / 'c'},{d2}"))
    assert code == 1 and f"log dir {d2} is in use" in out, out
    assert b.proc.poll() is None


def test_the_lock_goes_with_a_killed_broker_and_recovery_is_reported(tmp_path):
    b = Broker(tmp_path / "data").start()
    try:
        ck_create_topic(b.bootstrap, "r", partitions=2)
        ck_produce(b.bootstrap, "r", [(None, b"x" * 100, None)] * 50)
        b.kill()  # SIGKILL: no clean shutdown, the kernel drops the lock
        b.start()
        # Logged once the background recovery is done.
        pattern = (r"WARN  \[storage\] recovery after an unclean shutdown \(1 log dir\(s\)\): "
                   r"(\d+) partition logs opened, (\d+) segment\(s\) scanned \((\d+) bytes, at "
                   r"most \d+ in one log\), (\d+) bytes cut, in \d+ ms")
        m = wait_for(lambda: re.search(pattern, b.read_log()), timeout=60,
                     what="the recovery line")
        assert int(m.group(2)) >= 1 and int(m.group(3)) > 0
        assert b.stop() == 0
        assert re.search(r"shutdown: \d+ partition logs flushed and closed, 1 log dir\(s\) "
                         r"unlocked", b.read_log())
    finally:
        b.kill()


def test_log_dirs_naming_a_file_says_which_path_and_why(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    code, out = start_server(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}",
                                        log_dirs=str(f)))
    assert code == 1, out
    assert f"log dir {f} exists and is not a directory" in out, out
    assert "i/o error" not in out


# ---------------------------------------------------------------- listeners


def test_an_ssl_listener_refuses_to_start(tmp_path):
    code, out = start_server(*overrides(listeners=f"SSL://127.0.0.1:{free_port()}",
                                        log_dirs=tmp_path / "d"))
    assert code == 2, out
    assert "uses security protocol SSL, which Samsa cannot serve yet" in out, out


def test_a_later_sasl_listener_is_refused_not_dropped(tmp_path):
    code, out = start_server(*overrides(
        listeners=f"PLAINTEXT://127.0.0.1:{free_port()},SASL_SSL://127.0.0.1:{free_port()}",
        log_dirs=tmp_path / "d"))
    assert code == 2 and "security protocol SASL_SSL" in out, out


def test_a_name_mapped_to_ssl_is_refused(tmp_path):
    code, out = start_server(*overrides(
        listeners=f"EXTERNAL://127.0.0.1:{free_port()}",
        listener_security_protocol_map="EXTERNAL:SSL", log_dirs=tmp_path / "d"))
    assert code == 2 and "EXTERNAL://" in out and "security protocol SSL" in out, out


def test_a_controller_listener_with_process_roles_is_refused(tmp_path):
    code, out = start_server(*overrides(
        listeners=f"PLAINTEXT://127.0.0.1:{free_port()},CONTROLLER://127.0.0.1:{free_port()}",
        process_roles="broker,controller", controller_listener_names="CONTROLLER",
        log_dirs=tmp_path / "d"))
    assert code == 2, out
    assert "is a controller listener" in out and "controller.quorum.voters" in out, out


def advertised_ports(port):
    """The broker ports a Metadata request through port gets back."""
    md = ck_admin(f"127.0.0.1:{port}").list_topics(timeout=20)
    return [(x.host, x.port) for x in md.brokers.values()]


def two_listeners(tmp_path, second_name, extra):
    """A broker with PLAINTEXT on one free port and second_name on another."""
    port, second = free_port(), free_port()
    b = Broker(tmp_path / "data", {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},{second_name}://127.0.0.1:{second}",
        **extra}, port=port)
    return b.start(), port, second


def test_every_plaintext_listener_is_served_and_advertises_itself(tmp_path):
    b, port, second = two_listeners(
        tmp_path, "INTERNAL", {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT"})
    try:
        for p in (port, second):
            assert advertised_ports(p) == [("127.0.0.1", p)]
        log = b.read_log()
        assert (f"listener PLAINTEXT: serving PLAINTEXT on 127.0.0.1:{port}, advertised as "
                f"127.0.0.1:{port}") in log, log
        assert f"listener INTERNAL: serving PLAINTEXT on 127.0.0.1:{second}" in log, log
    finally:
        b.kill()


def test_a_controller_listener_without_process_roles_is_served(tmp_path):
    b, _, ctl = two_listeners(tmp_path, "CONTROLLER", {"controller.listener.names": "CONTROLLER"})
    try:
        assert advertised_ports(ctl) == [("127.0.0.1", ctl)]
    finally:
        b.kill()


# ---------------------------------------------------------------- warnings


# Keys of Kafka 4.4's server.properties that Samsa accepts without acting on.
IGNORED_IN_KAFKA_FILE = {
    "process.roles", "controller.quorum.bootstrap.servers", "inter.broker.listener.name",
    "num.io.threads", "socket.send.buffer.bytes", "socket.receive.buffer.bytes",
    "offsets.topic.replication.factor", "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr", "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
}


def fixture_keys():
    with open(FIXTURE) as f:
        return [l.split("=", 1)[0] for l in f if l.strip() and not l.startswith("#")]


def test_kafkas_server_properties_warns_for_every_ignored_key_and_no_other(tmp_path):
    port = free_port()
    log_path = tmp_path / "kafka-file.log"
    args = [SERVER_BIN, FIXTURE,
            *overrides(listeners=f"PLAINTEXT://127.0.0.1:{port}",
                       advertised_listeners=f"PLAINTEXT://127.0.0.1:{port}",
                       log_dirs=tmp_path / "data")]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "started (cluster" in log_path.read_text(), what="start-up line")
        text = log_path.read_text()
        warned = set(re.findall(r"WARN  \[config\] ([a-z.]+): Kafka setting Samsa does not act "
                                r"on; ignored", text))
        assert warned == IGNORED_IN_KAFKA_FILE, text
        assert IGNORED_IN_KAFKA_FILE <= set(fixture_keys())
        # DescribeConfigs says so in the documentation of those keys.
        res = raw_kafka.describe_configs(
            port, 4, [(4, "1", ["socket.send.buffer.bytes", "num.io.threads", "num.partitions"])],
            documentation=True)
        docs = {c["name"]: c["documentation"] for c in res[0]["configs"]}
        assert docs["socket.send.buffer.bytes"].startswith("Not in effect"), docs
        # A key Kafka changes at run time says so in its own words.
        assert (docs["num.io.threads"].startswith("Not in effect")
                or "does not act on it" in docs["num.io.threads"]), docs
        assert not docs["num.partitions"].startswith("Not in effect"), docs
    finally:
        proc.terminate()
        proc.wait(timeout=HANG_GUARD_S)


def test_the_stock_file_runs_as_kafkas_quickstart_a_standalone_dynamic_quorum(tmp_path):
    """Kafka 4.4's quickstart: kafka-storage format --standalone, then start. Samsa's
    --format --standalone writes the same bootstrap checkpoint; the node leads alone."""
    port, ctrl = free_port(), free_port()
    args = [FIXTURE, *overrides(listeners=f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
                                advertised_listeners=f"PLAINTEXT://127.0.0.1:{port},"
                                                     f"CONTROLLER://127.0.0.1:{ctrl}",
                                controller_quorum_bootstrap_servers=f"127.0.0.1:{ctrl}",
                                log_dirs=tmp_path / "d")]
    code, out = start_server(*args, "--format", "--standalone")
    assert code == 0 and "standalone quorum of voter 1@127.0.0.1:" in out, out
    code, out = start_server(*args, "--format", "--standalone")
    assert code == 1 and "already formatted" in out, out
    log_path = tmp_path / "quickstart.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([SERVER_BIN, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "is the active controller" in log_path.read_text(),
                 what="the standalone controller leading")
        assert "1-voter dynamic (kraft.version 1) quorum" in log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=HANG_GUARD_S)


# ---------------------------------------------------------------- log lines


def test_topics_configs_and_rebalances_are_logged(broker):
    a = ck_admin(broker.bootstrap)
    for f in a.create_topics([NewTopic("orders", num_partitions=3,
                                       config={"retention.ms": "60000"})]).values():
        f.result(20)
    wait_for(lambda: "INFO  [broker] created topic orders with 3 partitions (configs: "
                     "retention.ms=60000)" in broker.read_log(), what="topic creation line")
    for f in a.alter_configs([ConfigResource("topic", "orders",
                                             set_config={"retention.ms": "120000"})]).values():
        f.result(20)
    wait_for(lambda: "topic orders: configs changed; overrides now: retention.ms=120000"
             in broker.read_log(), what="config change line")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe(["orders"])
        wait_for(lambda: (c.poll(0.2), bool(c.assignment()))[1], timeout=60,
                 what="an assignment")
    finally:
        c.close()
    log = broker.read_log()
    assert re.search(r"INFO  \[group\] billing: rebalanced: generation 1 with 1 members", log), log
    for f in a.delete_topics(["orders"]).values():
        f.result(20)
    wait_for(lambda: "deleting topic orders (3 partitions)" in broker.read_log(),
             what="topic deletion line")


# ---------------------------------------------------------------- make run


def test_make_run_passes_args_and_the_readme_keeps_two_setup_commands():
    r = subprocess.run(["make", "--no-print-directory", "-n", "run",
                        "ARGS=--override listeners=PLAINTEXT://:19092"],
                       cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert r.returncode == 0, r.stderr
    assert any(l.strip().endswith("bin/samsa-server --override listeners=PLAINTEXT://:19092")
               for l in r.stdout.splitlines()), r.stdout
    with open(os.path.join(ROOT, "README.md")) as f:
        setup = re.search(r"## Setup\n\n```sh\n(.*?)```", f.read(), re.S).group(1)
    assert [l.split()[0:2] for l in setup.strip().splitlines()] == [["make", "run"],
                                                                    ["make", "test"]]
