"""Fixtures for integration tests: each test gets its own samsa-server on a free
port with a temporary data directory, started from build/bin and stopped (or
killed) by the test."""

import os
import resource
import signal
import socket
import struct
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_BIN = os.environ.get("SAMSA_SERVER", os.path.join(ROOT, "build", "bin", "samsa-server"))
START_DEADLINE_S = 20.0
# A cluster node serves clients only once the quorum has it caught up and unfenced; after a
# kill -9 the controller accepts its registration only when the old one's broker session
# (broker.session.timeout.ms, 9 s by default) has ended.
CLUSTER_START_DEADLINE_S = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_ok(port):
    """True when the broker answers an ApiVersions v0 request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
            s.sendall(struct.pack(">i", len(body)) + body)
            hdr = s.recv(8)
            return len(hdr) == 8 and struct.unpack(">i", hdr[4:8])[0] == 1
    except OSError:
        return False


class Broker:
    """A samsa-server process. overrides: extra key=value settings; nofile: a
    descriptor limit (RLIMIT_NOFILE) for the process."""

    def __init__(self, data_dir, overrides=None, port=None, nofile=None):
        self.data_dir = str(data_dir)
        self.port = port or free_port()
        self.overrides = dict(overrides or {})
        self.nofile = nofile
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "..", f"server-{self.port}.log")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        return self.spawn().wait_ready()

    def spawn(self):
        """Starts the process without waiting for it to serve (a cluster node serves clients
        only once the quorum has it caught up and unfenced: its peers must start too)."""
        os.makedirs(self.data_dir, exist_ok=True)
        args = [SERVER_BIN,
                "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={self.data_dir}"]
        for k, v in self.overrides.items():
            args += ["--override", f"{k}={v}"]
        self.log = open(self.log_path, "ab")
        limit = None
        if self.nofile:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=limit)
        return self

    def wait_ready(self):
        """Waits until the server answers ApiVersions on its port."""
        cluster = any(k in self.overrides for k in ("controller.quorum.voters",
                                                    "controller.quorum.bootstrap.servers"))
        deadline = time.monotonic() + (CLUSTER_START_DEADLINE_S if cluster else START_DEADLINE_S)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"samsa-server exited with {self.proc.returncode}: "
                                   + self.read_log()[-2000:])
            if api_versions_ok(self.port):
                return self
            time.sleep(0.02)
        raise RuntimeError("samsa-server did not start in time: " + self.read_log()[-2000:])

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Clean shutdown (SIGTERM); returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("samsa-server did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "data").start()
    yield b
    b.kill()


@pytest.fixture
def make_broker(tmp_path):
    """Factory for brokers with custom overrides: make_broker({'k': 'v'})."""
    made = []

    def make(overrides=None, data_dir=None):
        b = Broker(data_dir or tmp_path / f"data{len(made)}", overrides)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.kill()
