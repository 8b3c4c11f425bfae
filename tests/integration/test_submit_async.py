"""A slow Gerrit submit does not stall the scheduler, and kill -9 while a
submit is in flight submits it exactly once. Real processes as in
test_restart_kill: the Gerrit emulator (its hold_submits fault switch),
gearmand, merger, worker, pool and the scheduler."""

from __future__ import annotations

import json

import sqlalchemy as sa

from gatekeeper.quickstart.site import LocalSite
from tests.integration.e2e_support import gatekeeper_messages, wait_for
from tests.integration.test_restart_kill import Procs, site  # noqa: F401  (the fixture)

pytestmark = __import__("pytest").mark.integration


def _status(s: LocalSite) -> dict:
    from gatekeeper.config import load_config

    engine = sa.create_engine(load_config(str(s.config_path)).database.url)
    try:
        with engine.connect() as conn:
            text = conn.execute(sa.text("SELECT data FROM sched_status WHERE id = 1")).scalar()
    finally:
        engine.dispose()
    return json.loads(text) if text else {}


def _gate_items(s: LocalSite) -> dict[int, dict]:
    out = {}
    for p in _status(s).get("pipelines", ()):
        if p["name"] == "gate":
            for q in p["queues"]:
                for i in q["items"]:
                    out[i["number"]] = i
    return out


def _start(s: LocalSite, procs: Procs) -> None:
    cfg = str(s.config_path)
    procs.start("pool", "pool", "-c", cfg)
    procs.start("merger", "merger", "-c", cfg, "--name", "m1")
    procs.start("worker", "worker", "-c", cfg, "--executors", "4",
                "--known-hosts", str(s.root / "keys" / "node_known_hosts"))
    _start_scheduler(s, procs)


def _start_scheduler(s: LocalSite, procs: Procs) -> None:
    procs.start("scheduler", "scheduler", "-c", str(s.config_path))
    wait_for(lambda: s.emulator.stream_client_count() >= 1, 60, "the scheduler's stream")


def _merged_events(s: LocalSite, n: int) -> int:
    return sum(1 for e in s.emulator.events() if e.get("type") == "change-merged"
               and int(e["change"]["number"]) == n)


def test_a_slow_submit_leaves_the_scheduler_working(site: LocalSite) -> None:  # noqa: F811
    emu = site.emulator
    procs = Procs(site)
    a = emu.create_change("demo/nova", subject="A", files={"nova/a.py": "A = 1\n"})
    b = emu.create_change("demo/nova", subject="B", files={"nova/b.py": "B = 1\n"})
    emu.hold_submits()
    try:
        _start(site, procs)
        emu.approve(a, user="core")
        wait_for(lambda: emu.submits_waiting() == 1, 120, "A's submit held by Gerrit")
        # While Gerrit sits on A's submit the scheduler takes B's approval, tests
        # it on top of A and writes its status: B done, waiting behind A.
        emu.approve(b, user="core")

        def b_done_behind_a() -> bool:
            items = _gate_items(site)
            jobs = items.get(b, {}).get("jobs") or [{}]
            return items.get(a, {}).get("submit_state") == "submitting" \
                and all(j.get("result") == "SUCCESS" for j in jobs)

        wait_for(b_done_behind_a, 120, "B tested and waiting behind the submitting A")
        assert emu.status(a) == "NEW" and emu.status(b) == "NEW"
        assert emu.submits_waiting() == 1  # B's submit waits for A's answer
        emu.release_submits()
        wait_for(lambda: emu.status(a) == "MERGED" and emu.status(b) == "MERGED", 120,
                 "both merged")
    finally:
        emu.release_submits()
        procs.stop_all()
    merged = [int(e["change"]["number"]) for e in emu.events() if e.get("type") == "change-merged"]
    assert merged == [a, b]  # in queue order


def test_kill_9_while_gerrit_holds_the_submit_submits_once(site: LocalSite) -> None:  # noqa: F811
    emu = site.emulator
    procs = Procs(site)
    a = emu.create_change("demo/nova", subject="A", files={"nova/a.py": "A = 1\n"})
    emu.hold_submits()
    try:
        _start(site, procs)
        emu.approve(a, user="core")
        wait_for(lambda: emu.submits_waiting() == 1, 120, "A's submit held by Gerrit")
        procs.kill("scheduler")  # the submit was sent; its answer never arrives
        assert emu.wait_for_stream_clients_below(1, 30), "the dead stream lingers"
        emu.release_submits()  # Gerrit applies it after all, as it may
        wait_for(lambda: emu.status(a) == "MERGED", 60, "Gerrit merged A")
        _start_scheduler(site, procs)  # asks Gerrit instead of submitting again
        wait_for(lambda: _status(site) and a not in _gate_items(site), 120,
                 "A finished in the restarted scheduler")
    finally:
        emu.release_submits()
        procs.stop_all()
    assert _merged_events(site, a) == 1
    msgs = gatekeeper_messages(site, a)
    assert len([m for m in msgs if "Build succeeded" in m]) == 1, msgs
    log = procs.log("scheduler")
    assert "Gerrit already has it" in log  # asked, not submitted again
    assert "Traceback" not in log.replace("KeyboardInterrupt", "")
