"""End-to-end cases beyond the main story: recheck, merge conflict, job
timeout, abandon of a running build, a worker killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gatekeeper.quickstart.site import LocalSite, default_layout
from tests.integration.e2e_support import (
    consoles,
    gatekeeper_messages,
    process_gone,
    verified,
    wait_for,
)

pytestmark = pytest.mark.integration

JOB = "gate-devstack-standin"


def layout_with_timeout(seconds: int) -> str:
    return default_layout().replace("timeout: 10m", f"timeout: {seconds}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path / "site", nodes=2)
    s.start()
    yield s
    s.stop()


def build_states(site: LocalSite, number: int) -> list[tuple[str, str | None]]:
    return [(j["name"], j["result"]) for item in site.queue_items()
            if item["number"] == number for j in item["jobs"]]


def test_check_then_recheck(site: LocalSite) -> None:
    emu = site.emulator
    n = emu.create_change("demo/nova", subject="Flaky thing", files={"FAIL_GATE": "x\n"})
    wait_for(lambda: verified(site, n) == -1, 120, "check failure vote")
    wait_for(site.idle, 30, "idle")
    emu.comment(n, "recheck", user="alice")
    wait_for(lambda: len([m for m in gatekeeper_messages(site, n) if "check pipeline" in m]) == 2,
             120, "the recheck's report")
    assert len(consoles(site, n, "check")) == 2  # really built twice
    # A comment that merely mentions recheck later in the text does not retrigger.
    wait_for(site.idle, 30, "idle")
    emu.comment(n, "I will not recheck this", user="alice")
    wait_for(site.idle, 30, "idle")
    assert len(consoles(site, n, "check")) == 2


def test_merge_conflict_is_reported_without_testing(site: LocalSite) -> None:
    emu = site.emulator
    a = emu.create_change("demo/nova", subject="Set the limit to 10",
                          files={"nova/limits.py": "LIMIT = 10\n"})
    b = emu.create_change("demo/nova", subject="Set the limit to 20",
                          files={"nova/limits.py": "LIMIT = 20\n"})
    wait_for(lambda: verified(site, a) == 1 and verified(site, b) == 1, 120, "check votes")
    wait_for(site.idle, 30, "idle")
    emu.approve(a, user="core")
    emu.approve(b, user="core")
    wait_for(lambda: emu.status(a) == "MERGED", 120, "A merged")
    wait_for(lambda: verified(site, b) == -2, 60, "B's merge-failure vote")
    msg = [m for m in gatekeeper_messages(site, b) if "gate" in m][-1]
    assert "nova/limits.py" in msg, msg
    assert consoles(site, b, "gate") == []  # no node time spent on it
    assert emu.status(b) == "NEW"


def test_job_timeout_kills_the_remote_job(tmp_path: Path) -> None:
    with LocalSite(tmp_path / "site", nodes=1, layout=layout_with_timeout(4)) as site:
        n = site.emulator.create_change("demo/nova", subject="Hangs",
                                        files={"SLEEP_GATE": "600\n"})
        wait_for(lambda: verified(site, n) == -1, 120, "timeout vote")
        msg = gatekeeper_messages(site, n)[-1]
        assert f"- {JOB} " in msg and "TIMED_OUT" in msg
        pids = list((site.nodes[0].workdir).rglob("standin-sleep.pids"))
        assert pids, "the stand-in never started sleeping"
        for pid in pids[0].read_text().split():
            wait_for(lambda pid=pid: process_gone(pid), 30, f"remote process {pid} to die")


def test_abandon_cancels_the_running_build(site: LocalSite) -> None:
    emu = site.emulator
    n = emu.create_change("demo/nova", subject="Slow", files={"SLEEP_GATE": "600\n"})
    wait_for(lambda: any(r is None for _, r in build_states(site, n)) and
             any(list(node.workdir.rglob("standin-sleep.pids")) for node in site.nodes),
             120, "the build to be running")
    emu.abandon(n, user="alice")
    wait_for(lambda: not build_states(site, n), 60, "the item to leave the queue")
    # The worker stopped the remote job and published what it had.
    pids = [p for node in site.nodes for p in node.workdir.rglob("standin-sleep.pids")]
    wait_for(lambda: all(process_gone(pid) for p in pids for pid in p.read_text().split()), 30,
             "the remote job to be killed")
    wait_for(lambda: consoles(site, n, "check"), 30, "the aborted build's logs")
    assert "Stop requested" in consoles(site, n, "check")[-1].read_text()
    assert verified(site, n) is None  # an abandoned change gets no vote


def _worker_config(site: LocalSite, node_index: int, name: str) -> Path:
    cfg = yaml.safe_load(site.config_path.read_text())
    cfg["worker"]["nodes"] = [cfg["worker"]["nodes"][node_index]]
    cfg["worker"]["hostname"] = name
    path = site.root / "etc" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start_worker(site: LocalSite, config: Path, name: str) -> subprocess.Popen[bytes]:
    log = open(site.root / "state" / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "gatekeeper.cli", "worker", "-c", str(config)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("gearman", ["embedded", "gearmand"])
def test_worker_killed_mid_job_build_runs_on_another(tmp_path: Path, gearman: str) -> None:
    with LocalSite(tmp_path / "site", nodes=2, gearman=gearman, worker=False) as site:
        w1 = _start_worker(site, _worker_config(site, 0, "w1"), "w1")
        w2 = None
        try:
            n = site.emulator.create_change("demo/nova", subject="Survives a crash",
                                            files={"SLEEP_GATE": "3\n"})
            wait_for(lambda: any(site.nodes[0].workdir.rglob("standin-sleep.pids")), 120,
                     "the build to run on w1's node")
            w2 = _start_worker(site, _worker_config(site, 1, "w2"), "w2")
            wait_for(lambda: b"serving" in (site.root / "state" / "w2.log").read_bytes(), 60,
                     "w2 to register its functions")
            _kill(w1)  # the worker host dies mid-job
            wait_for(lambda: verified(site, n) is not None, 180, "a vote")
            assert verified(site, n) == 1, gatekeeper_messages(site, n)
            console = consoles(site, n, "check")[-1].read_text()
            assert "NODE_NAME=node2" in console and "WORKER=w2" in console
        finally:
            _kill(w1)
            if w2 is not None:
                _kill(w2)


def test_infrastructure_reason_reaches_gerrit(tmp_path: Path) -> None:
    """A project the job needs cannot be cloned: the build ends ERROR, and the
    comment on the change says why (not just "ERROR in 0m 00s")."""
    layout = default_layout().replace(
        "    projects: [openstack-dev/devstack]\n",
        "    projects: [openstack-dev/devstack, demo/absent]\n    attempts: 1\n", 1)
    with LocalSite(tmp_path / "site", nodes=1, layout=layout) as site:
        n = site.emulator.create_change("demo/nova", subject="Needs a missing project")
        wait_for(lambda: verified(site, n) == -1, 120, "the check vote")
        msg = gatekeeper_messages(site, n)[-1]
        line = next(x for x in msg.splitlines() if x.startswith(f"- {JOB} "))
        assert " : ERROR: cannot clone demo/absent: " in line, msg
