"""The examples of docs/cli.md (and docs/cli-io.md when present) work: every
`$ ` line of their console blocks runs, in document order, against one fresh
samsa-server and exits 0, with the default configuration and with several partitions
per topic."""

import os
import re
import subprocess

import pytest

from conftest import ROOT

DOCS = [os.path.join(ROOT, "docs", "cli.md"), os.path.join(ROOT, "docs", "cli-io.md")]
BIN = os.path.dirname(os.environ.get("SAMSA_CLI", os.path.join(ROOT, "build", "bin", "samsa")))
ADMIN = {
    "topics": ["create", "list", "describe", "alter", "delete"],
    "groups": ["list", "describe", "delete", "delete-offsets", "reset-offsets"],
    "configs": ["describe", "alter"],
    "cluster": ["describe"],
}


def console_commands(path):
    """The `$ ` lines of the ```console blocks of a Markdown file, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.S | re.M):
        out += [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    return out


def all_commands():
    cmds = []
    for path in DOCS:
        if os.path.exists(path):
            cmds += [(os.path.basename(path), c) for c in console_commands(path)]
    return cmds


def test_examples_follow_the_documented_form():
    cmds = console_commands(DOCS[0])
    assert cmds, "docs/cli.md has no console examples"
    for cmd in cmds:
        assert cmd.startswith("samsa "), cmd
        assert "--bootstrap-server localhost:9092" in cmd, cmd


def test_every_admin_subcommand_has_an_example():
    cmds = console_commands(DOCS[0])
    for cmd, subs in ADMIN.items():
        for sub in subs:
            assert any(c.startswith(f"samsa {cmd} {sub} ") for c in cmds), f"{cmd} {sub}"


# The defaults, and a typical production setting: several partitions per topic.
@pytest.mark.parametrize("overrides", [{}, {"num.partitions": "3"}], ids=["defaults", "3-partitions"])
def test_examples_run_in_order_on_a_fresh_broker(make_broker, tmp_path, overrides):
    broker = make_broker(overrides)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    for doc, cmd in all_commands():
        line = cmd.replace("localhost:9092", broker.bootstrap)
        r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (
            f"{doc}: `{cmd}` exited {r.returncode}\nstdout: {r.stdout[-2000:]}\n"
            f"stderr: {r.stderr[-2000:]}")
