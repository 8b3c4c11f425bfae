"""One active scheduler per database: on PostgreSQL a second one waits and
takes over after kill -9 of the first (same restore path, no double report);
on SQLite a second one is refused with one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gatekeeper.quickstart.site import LocalSite
from tests.integration.e2e_support import gatekeeper_messages, process_gone, wait_for

pytestmark = pytest.mark.integration

TAKEOVER_BOUND = 30.0  # seconds, what doc/operation.md promises


def gk(site: LocalSite, name: str, *args: str) -> subprocess.Popen[bytes]:
    log = open(site.root / "state" / f"{name}.log", "wb")
    p = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", *args], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return p


def log_of(site: LocalSite, name: str) -> str:
    return (site.root / "state" / f"{name}.log").read_text(errors="replace")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path / "site", nodes=2, gearman="gearmand", services=False,
                  event_delay=0.0)
    s.start()
    yield s
    s.stop()


def test_a_second_scheduler_on_the_same_sqlite_database_is_refused(site: LocalSite) -> None:
    cfg = str(site.config_path)
    first = gk(site, "scheduler-a", "scheduler", "-c", cfg)
    try:
        wait_for(lambda: site.emulator.stream_client_count() >= 1, 60, "the first scheduler")
        second = subprocess.run([sys.executable, "-m", "gatekeeper.cli", "scheduler", "-c", cfg],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        lines = [x for x in second.stderr.splitlines() if "another scheduler" in x]
        assert len(lines) == 1, second.stderr
        assert "gatekeeper.sqlite: another scheduler is using it (pid" in lines[0]
        assert "Traceback" not in second.stderr, second.stderr
        assert first.poll() is None  # the active one is untouched
    finally:
        stop([first])


def test_standby_on_postgresql_takes_over_after_kill_9(site: LocalSite,
                                                       postgres_db_url: str) -> None:
    config = yaml.safe_load(site.config_path.read_text())
    config["database"] = {"url": postgres_db_url}
    site.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cfg = str(site.config_path)
    emu = site.emulator
    procs = [gk(site, "merger", "merger", "-c", cfg),
             gk(site, "worker", "worker", "-c", cfg,
                "--known-hosts", str(site.root / "keys" / "node_known_hosts"))]
    try:
        active = gk(site, "scheduler-a", "scheduler", "-c", cfg)
        procs.append(active)
        wait_for(lambda: emu.stream_client_count() >= 1, 60, "the active scheduler")
        standby = gk(site, "scheduler-b", "scheduler", "-c", cfg)
        procs.append(standby)
        wait_for(lambda: "standby: another scheduler holds" in log_of(site, "scheduler-b"), 60,
                 "the standby to wait")
        # A build that runs while the active scheduler dies.
        n = emu.create_change("demo/nova", subject="Across a takeover",
                              files={"nova/t.py": "T = 1\n", "SLEEP_GATE": "3\n"})
        emu.approve(n, user="core")
        wait_for(lambda: "Starting" in " ".join(gatekeeper_messages(site, n)), 120,
                 "the check and gate to start")
        os.killpg(active.pid, signal.SIGKILL)
        active.wait(timeout=30)
        killed = time.monotonic()
        wait_for(lambda: process_gone(active.pid), 10, "the active scheduler gone")
        wait_for(lambda: "scheduler active in" in log_of(site, "scheduler-b"),
                 TAKEOVER_BOUND, "the standby to take over")
        took = time.monotonic() - killed
        print(f"takeover: {took:.1f}s after the kill")
        assert took < TAKEOVER_BOUND
        wait_for(lambda: emu.status(n) == "MERGED", 240, "the change to merge after takeover")
        msgs = gatekeeper_messages(site, n)
        assert len([m for m in msgs if "Build succeeded (gate" in m]) == 1, msgs
        assert len([m for m in msgs if "Starting gate jobs" in m]) == 1, msgs
        assert len([m for m in msgs if "successfully merged" in m]) == 1, msgs
        assert standby.poll() is None
    finally:
        stop(procs)
    assert "Traceback" not in log_of(site, "scheduler-b"), log_of(site, "scheduler-b")[-3000:]


def test_losing_the_lock_connection_is_noticed(postgres_db_url: str) -> None:
    import threading

    import sqlalchemy as sa

    from gatekeeper.store.lock import SchedulerLock
    from gatekeeper.store.migrate import open_store

    engine = open_store(postgres_db_url)
    lock = SchedulerLock(engine)
    other = SchedulerLock(open_store(postgres_db_url))
    try:
        assert lock.acquire(threading.Event())
        assert lock.alive() and not other.try_acquire()
        with engine.connect() as conn:  # what a database restart does to the session
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                 "WHERE locktype = 'advisory' AND granted"))
        assert not lock.alive()
        wait_for(other.try_acquire, 10, "the lock to be free for the standby")
    finally:
        other.release()
        lock.release()
        engine.dispose()
