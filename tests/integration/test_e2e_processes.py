"""Every service as its own process, configured by one gatekeeper.yaml:
``gatekeeper scheduler`` (with embedded Gearman), ``gatekeeper merger`` and
``gatekeeper worker`` — the shape of a multi-host site, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.quickstart.site import LocalSite
from tests.integration.e2e_support import gatekeeper_messages, verified, wait_for

pytestmark = pytest.mark.integration


class Procs:
    def __init__(self, site: LocalSite):
        self.site = site
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.site.root / "state" / f"{name}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", *args],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.site.root / "state" / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            try:
                codes[name] = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                codes[name] = p.wait(timeout=30)
        return codes


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path / "site", nodes=2, services=False)
    s.start()
    yield s
    s.stop()


def test_separate_processes_gate_a_change_and_reload_on_sighup(site: LocalSite) -> None:
    cfg = str(site.config_path)
    procs = Procs(site)
    try:
        sched = procs.start("scheduler", "scheduler", "-c", cfg)
        wait_for(lambda: site.emulator.stream_client_count() >= 1, 60, "the scheduler's stream")
        procs.start("merger", "merger", "-c", cfg)
        procs.start("worker", "worker", "-c", cfg)
        procs.start("web", "web", "-c", cfg)  # explain asks the scheduler through it
        emu = site.emulator
        n = emu.create_change("demo/glance", subject="Split processes",
                              files={"glance/api.py": "VERSION = 2\n"})
        wait_for(lambda: verified(site, n) == 1, 120, "check vote")
        emu.approve(n, user="core")
        wait_for(lambda: emu.status(n) == "MERGED", 120, "the gate to merge the change")
        assert verified(site, n) == 2
        why = subprocess.run([sys.executable, "-m", "gatekeeper.cli", "explain", "-c", cfg,
                              str(n)], capture_output=True, text=True, timeout=60)
        assert why.returncode == 0, why.stderr
        assert f"{n},1 in gate" in why.stdout and "submitted" in why.stdout, why.stdout

        # A broken layout on SIGHUP is rejected; the scheduler keeps working.
        layout = site.root / "layouts" / "site.yaml"
        good = layout.read_text()
        layout.write_text(good.replace("manager: dependent", "manager: dependant"))
        sched.send_signal(signal.SIGHUP)
        wait_for(lambda: "new layout rejected" in procs.log("scheduler"), 30, "the rejection")
        line = good.splitlines().index("    manager: dependent") + 1
        assert f"site.yaml:{line}: pipelines[1].manager: must be one of" in procs.log("scheduler")
        m = emu.create_change("demo/glance", subject="After a bad reload",
                              files={"glance/x.py": "X = 1\n"})
        wait_for(lambda: verified(site, m) == 1, 120, "check still works")
        assert sched.poll() is None
    finally:
        codes = procs.stop_all()
    # Clean shutdown on SIGTERM: no tracebacks, exit 0.
    for name, code in codes.items():
        assert code == 0, f"{name} exited {code}:\n{procs.log(name)[-3000:]}"
        assert "Traceback" not in procs.log(name), procs.log(name)[-3000:]
    assert gatekeeper_messages(site, n)
