"""``gatekeeper events`` against the emulator, as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.integration.gerrit_conn_support import PROJECT, make_gerrit, wait_until

pytestmark = pytest.mark.integration

LAYOUT = r"""
pipelines:
  - name: check
    manager: independent
    trigger:
      gerrit:
        - event: patchset-created
        - event: comment-added
          comment: (?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*recheck
  - name: gate
    manager: dependent
    trigger:
      gerrit:
        - event: comment-added
          approval: [{Workflow: 1}]
    require:
      approval: [{Code-Review: 2}]
jobs:
  - name: unit
projects:
  - name: org/project
    check: [unit]
    gate: [unit]
"""


def write_config(tmp_path: Path, gerrit, key: Path) -> Path:
    (tmp_path / "layout.yaml").write_text(LAYOUT)
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(f"""
gerrit:
  server: 127.0.0.1
  port: {gerrit.port}
  user: gatekeeper
  sshkey: {key}
  known_hosts: {gerrit.known_hosts}
scheduler:
  layout: layout.yaml
  state_dir: {tmp_path / 'state'}
""")
    return cfg


class Cli:
    def __init__(self, *argv: str):
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        self.proc = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.err: list[str] = []
        self.out: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(f, lst), daemon=True)
                         for f, lst in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(f, lst: list[str]) -> None:
        for line in f:
            lst.append(line)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(5)
        return self.proc.returncode, "".join(self.out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def gerrit(tmp_path):
    g = make_gerrit(tmp_path)
    yield g
    g.emu.stop()


def test_events_prints_matches_and_reasons(gerrit, tmp_path):
    cfg = write_config(tmp_path, gerrit, gerrit.key)
    cli = Cli("events", "-c", str(cfg), "--timeout", "60")
    try:
        assert wait_until(lambda: any("connected" in line for line in cli.err), 20), cli.err
        assert gerrit.emu.wait_for_stream_clients(1, 10)
        n = gerrit.emu.create_change(PROJECT, subject="watch me")
        gerrit.emu.review(n, user="core", labels={"Workflow": 1})  # no Code-Review +2 yet
        gerrit.emu.comment(n, "recheck", user="bob")
        # It follows until interrupted: wait for bob's recheck and its explanation.
        assert wait_until(lambda: any(line.startswith("comment-added") and "by bob" in line
                                      for line in cli.out[:-2]), 20), cli.out
        cli.proc.send_signal(signal.SIGINT)
        code, out = cli.finish()
    finally:
        cli.kill()
    assert code == 130, "".join(cli.err)
    assert "Traceback" not in "".join(cli.err)
    lines = out.splitlines()
    assert lines[0] == f"patchset-created {PROJECT} {n},1 by alice"
    assert "  check: MATCH" in "\n".join(lines[1:3]) and "  gate: no" in "\n".join(lines[1:3])
    wf = next(i for i, line in enumerate(lines) if line.startswith("comment-added") and "core" in line)
    gate_line = next(line for line in lines[wf:] if line.startswith("  gate:"))
    assert gate_line.startswith("  gate: no") and "Code-Review" in gate_line  # why: requirement
    rc = next((i for i, line in enumerate(lines) if "by bob" in line), None)
    assert rc is not None, out
    assert lines[rc + 1].startswith("  check: MATCH")


def test_events_json(gerrit, tmp_path):
    cfg = write_config(tmp_path, gerrit, gerrit.key)
    cli = Cli("events", "-c", str(cfg), "--json", "--count", "1", "--timeout", "60")
    try:
        assert wait_until(lambda: any("connected" in line for line in cli.err), 20), cli.err
        assert gerrit.emu.wait_for_stream_clients(1, 10)
        n = gerrit.emu.create_change(PROJECT)
        code, out = cli.finish()
    finally:
        cli.kill()
    assert code == 0
    doc = json.loads(out.splitlines()[0])
    assert doc["type"] == "patchset-created" and doc["change_number"] == n
    assert doc["pipelines"]["check"]["matched"] is True


def test_events_wrong_key_is_one_clear_error(gerrit, tmp_path):
    cfg = write_config(tmp_path, gerrit, gerrit.other_key)
    cli = Cli("events", "-c", str(cfg), "--timeout", "30")
    try:
        code, out = cli.finish()
    finally:
        cli.kill()
    err = "".join(cli.err)
    assert code == 2 and "rejected the SSH key" in err
    assert "Traceback" not in err and "PRIVATE KEY" not in err
