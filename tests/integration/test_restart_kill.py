"""kill -9 of the scheduler at seeded random moments of a gate run, restarted
each time: every change ends as it would without kills, Gerrit sees each
vote and submit once, no node is left in use. Real processes: the Gerrit
emulator, gearmand, merger, worker and pool (sshd nodes), and the scheduler.

GK_KILL_SEED=N reproduces a run; GK_KILL_CHANGES / GK_KILL_KILLS size it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gatekeeper.quickstart.site import LocalSite
from tests.integration.e2e_support import gatekeeper_messages, process_gone, wait_for

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("GK_KILL_SEED", "20261202"))
CHANGES = int(os.environ.get("GK_KILL_CHANGES", "50"))
KILLS = int(os.environ.get("GK_KILL_KILLS", "20"))

LAYOUT = """
pipelines:
  - name: gate
    manager: dependent
    trigger:
      gerrit:
        - event: comment-added
          approval: [{Workflow: 1}]
    require:
      open: true
      current-patchset: true
      approval: [{Code-Review: 2}]
    start:
      labels: {Verified: 0}
    success:
      labels: {Verified: 2}
      submit: true
    failure:
      labels: {Verified: -2}
    window: 10
    window-floor: 3
jobs:
  - name: quick
    label: devstack-local
    run: .gatekeeper/jobs/quick.sh
    timeout: 5m
    attempts: 1
projects:
  - name: demo/nova
    queue: integrated
    gate: [quick]
  - name: demo/glance
    queue: integrated
    gate: [quick]
"""
# A fast stand-in job: it fails when any repository of the workspace has a
# FAIL_GATE file (a change that breaks the gate, and whatever is tested on it).
QUICK_JOB = """#!/bin/sh
if find "$WORKSPACE" -maxdepth 4 -name FAIL_GATE -not -path '*/.git/*' | grep -q .; then
    echo "quick: FAIL_GATE found"; exit 1
fi
echo "quick: ok"
"""


class Procs:
    def __init__(self, site: LocalSite):
        self.site = site
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        n = self.starts[name] = self.starts.get(name, 0) + 1
        log = open(self.site.root / "state" / f"{name}.{n}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", *args], stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return "".join((self.site.root / "state" / f"{name}.{i}.log").read_text(errors="replace")
                       for i in range(1, self.starts.get(name, 0) + 1))

    def kill(self, name: str) -> None:
        p = self.procs[name]
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        wait_for(lambda: process_gone(p.pid), 10, f"{name} gone")

    def stop_all(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path / "site", nodes=6, gearman="gearmand", layout=LAYOUT,
                  use_pool=True, services=False, event_delay=0.0)
    s.start()
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "quick.sh").write_text(QUICK_JOB)
    (jobs / "quick.sh").chmod(0o755)
    config = yaml.safe_load(s.config_path.read_text())
    config["worker"]["jobs_dir"] = str(jobs)
    s.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    yield s
    s.stop()


def nodes_in_use(site: LocalSite) -> list[str]:
    from gatekeeper.config import load_config

    url = load_config(str(site.config_path)).database.url
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, build FROM pool_nodes WHERE state = 'in-use'")).all()
    finally:
        engine.dispose()
    return [f"node {r.id} (build {r.build})" for r in rows]


# 50 changes and 20 restarts: ~2.5 min on a quiet 2-core machine, over 5 under a load
# of 12; its own waits bound each phase, this only keeps the default 300 s from firing.
@pytest.mark.timeout(900)
def test_gate_run_survives_kill_9_of_the_scheduler(site: LocalSite) -> None:
    rng = random.Random(SEED)
    emu = site.emulator
    cfg = str(site.config_path)
    procs = Procs(site)
    numbers: list[int] = []
    failing: set[int] = set()
    for i in range(CHANGES):
        project = ("demo/nova", "demo/glance")[i % 2]
        files = {f"{project.split('/')[1]}/c{i}.py": f"N = {i}\n"}
        fails = rng.random() < 0.06
        if fails:
            files[f"f{i}/FAIL_GATE"] = "broken\n"
        n = emu.create_change(project, subject=f"Change {i}", files=files)
        numbers.append(n)
        if fails:
            failing.add(n)
    kill_points = [rng.uniform(0.5, 5.0) for _ in range(KILLS)]
    # Most approvals come at once; one in every third downtime, with no scheduler.
    later = numbers[-(KILLS // 3):] if KILLS >= 3 else []
    to_approve = [n for n in numbers if n not in later]

    def approve_some(count: int | None = None) -> None:
        take = to_approve[:count] if count is not None else list(to_approve)
        for n in take:
            emu.approve(n, user="core")
        del to_approve[:len(take)]

    def start_scheduler() -> None:
        procs.start("scheduler", "scheduler", "-c", cfg)
        wait_for(lambda: emu.stream_client_count() >= 1, 60, "the scheduler's stream")

    def decided(n: int) -> bool:
        if emu.status(n) == "MERGED":
            return True
        return emu.votes(n).get("Verified", {}).get("gatekeeper") == -2

    try:
        procs.start("pool", "pool", "-c", cfg)
        procs.start("merger", "merger", "-c", cfg, "--name", "m1")
        procs.start("worker", "worker", "-c", cfg, "--executors", "6",
                    "--known-hosts", str(site.root / "keys" / "node_known_hosts"))
        start_scheduler()
        approve_some()
        for k, delay in enumerate(kill_points):
            time.sleep(delay)  # the moment of the kill: the test's (seeded) input, not a wait
            procs.kill("scheduler")
            assert emu.wait_for_stream_clients_below(1, 30), "the dead stream lingers"
            if k % 3 == 0 and later:
                to_approve.append(later.pop())
                approve_some()  # approved while no scheduler runs: caught up after start
            start_scheduler()
        to_approve.extend(later)
        approve_some()
        wait_for(lambda: all(decided(n) for n in numbers), 300,
                 f"every change merged or rejected (seed {SEED})")
        wait_for(lambda: not nodes_in_use(site), 120, f"no node in use (seed {SEED})")
    finally:
        procs.stop_all()

    problems = []
    for n in numbers:
        msgs = gatekeeper_messages(site, n)
        starts = [m for m in msgs if "Starting gate jobs" in m]
        ok = [m for m in msgs if "Build succeeded" in m]
        bad = [m for m in msgs if "Build failed" in m]
        merged = [m for m in msgs if "successfully merged" in m]  # Gerrit's own, per submit
        want_ok, want_bad = (0, 1) if n in failing else (1, 0)
        status = emu.status(n)
        if status != ("NEW" if n in failing else "MERGED"):
            problems.append(f"{n}: {status}")
        if (len(starts), len(ok), len(bad), len(merged), len(msgs)) != \
                (1, want_ok, want_bad, want_ok, 2 + want_ok):
            problems.append(f"{n}: messages {msgs!r}")
    merged_events = [e for e in emu.events() if e.get("type") == "change-merged"]
    counts: dict[int, int] = {}
    for e in merged_events:
        num = int(e["change"]["number"])
        counts[num] = counts.get(num, 0) + 1
    problems += [f"{n}: merged {c} times" for n, c in counts.items() if c != 1]
    assert not problems, f"seed {SEED}: " + "; ".join(problems)
    assert "Traceback" not in procs.log("scheduler").replace("KeyboardInterrupt", ""), \
        procs.log("scheduler")[-5000:]
