"""The loop itself: thread, adapters failing, status, explain, the one door."""

import json
import threading

from gatekeeper.core.door import Mutation
from gatekeeper.model.events import BuildCompleted, Reconfigure
from gatekeeper.model.statusdoc import chains
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def test_thread_processes_events_and_stops(h: Harness):
    h.sched.start()
    try:
        a = h.source.add("org/alone")
        done = threading.Event()
        orig = h.launcher.launch

        def launch(req):
            orig(req)
            done.set()

        h.launcher.launch = launch
        from gatekeeper.model.events import TriggerEvent
        h.sched.add_trigger_event(TriggerEvent("patchset-created", project=a.project,
                                               change_number=a.number, patchset=1))
        assert done.wait(10)
    finally:
        h.sched.stop()
    assert h.sched._thread is None
    assert [b.job for b in h.launcher.builds] == ["alone-test"]


def test_launcher_exception_becomes_lost_build(h: Harness):
    h.launcher.fail_launch = 1
    h.upload("org/lossy")
    # the first launch raised: the build counts as LOST and is retried
    assert [b.job for b in h.running()] == ["project-lossy"]
    assert "LOST: launch failed: gearman is down (attempt 1 of 2)" in h.sched.explain(1)
    h.launcher.fail_launch = 2
    b = h.upload("org/lossy")
    r = h.reports_for(b)[-1]
    assert r.labels == {"Verified": -1} and "- project-lossy : LOST" in r.message


def test_merger_exception_is_a_merge_failure_with_reason(h: Harness):
    def broken(request):
        raise OSError("merger host down")

    h.merger.merge = broken
    a = h.upload("org/alone")
    assert "merger unavailable: merger host down" in h.reports_for(a)[-1].message


def test_reporter_exception_does_not_kill_the_loop(h: Harness):
    def broken(*a, **k):
        raise RuntimeError("ssh dropped")

    h.reporter.report = broken
    h.upload("org/alone")
    h.release_all()
    assert h.queue("check") == []
    assert "Gerrit said: RuntimeError: ssh dropped" in h.sched.explain(1)


def test_unknown_and_stale_results_ignored(h: Harness):
    h.upload("org/alone")
    h.sched.add_result_event(BuildCompleted("no-such-build", "SUCCESS"))
    h.sched.add_result_event(object())
    h.settle()
    assert len(h.running()) == 1


def test_cancelled_build_completion_ignored(h: Harness):
    a = h.upload("org/alone")
    first = h.running()[0]
    h.new_patchset(a)
    h.sched.add_result_event(BuildCompleted(first.request.uuid, "CANCELED"))
    h.settle()
    assert len(h.running()) == 1
    assert not h.reports_for(a)


def test_unknown_change_event_skipped(h: Harness):
    from gatekeeper.model.events import TriggerEvent
    h.sched.add_trigger_event(TriggerEvent("patchset-created", project="x", change_number=404,
                                           patchset=1))
    h.settle()
    assert not h.launcher.builds


def test_status_snapshot(h: Harness):
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    h.release("project-merge", a)
    st = h.sched.status()
    json.dumps(st)  # plain JSON types only
    gate = next(p for p in st["pipelines"] if p["name"] == "gate")
    [q] = gate["queues"]
    assert q["name"] == "integrated" and q["window"] == 20
    first, second = q["items"]
    assert first["change"] == "1,1" and second["tested_on_base"] == first["id"]
    assert first["tested_on_base"] is None and first["tested_on_extra"] == []
    assert chains(q["items"]) == {first["id"]: [], second["id"]: ["1,1"]}
    assert second["item_ahead"] == first["id"] and second["nnfi"] == "1,1"
    assert first["nnfi"] is None
    jobs = {j["name"]: j for j in first["jobs"]}
    assert jobs["project-merge"]["result"] == "SUCCESS"
    assert jobs["project-test1"]["parent"] == "project-merge"
    assert jobs["project-merge"]["url"].startswith("https://logs.example.org/")
    assert "parameters" not in json.dumps(st)


def test_explain_renders_every_decision(h: Harness):
    a = h.source.add("org/alone")
    h.approve(a)
    h.release_all()
    text = h.sched.explain(1)
    for kind in ("enqueue", "merge", "launch", "build", "report", "submit", "window",
                 "dequeue"):
        assert f"  {kind}" in text, kind
    assert text.splitlines()[0].startswith("1,1 in gate (live): dequeued: reported success")
    assert h.sched.explain(999) == "nothing is known about 999"


def test_every_state_change_goes_through_the_door(h: Harness):
    seen: list[Mutation] = []
    h.sched.door.listeners.append(seen.append)
    a = h.source.add("org/alone")
    h.approve(a)
    h.release_all()
    ops = {m.op for m in seen}
    assert {"add-queue", "add-item", "set", "add-build", "note", "remove-item"} <= ops
    assert h.sched.door.count >= len(seen)
    # an idle turn changes nothing
    before = h.sched.door.count
    h.sched.run_once()
    assert h.sched.door.count == before


def test_reconfigure_via_scheduler_loader(h: Harness):
    from gatekeeper.layout.loader import load_layout_text
    calls = []

    def loader(paths):
        calls.append(paths)
        return load_layout_text(layout(window=5), "reloaded.yaml")

    h.sched.layout_loader = loader
    h.sched.add_management_event(Reconfigure(paths=("a.yaml",)))
    h.settle()
    assert calls == [("a.yaml",)]
    assert h.sched.layout.files == ("reloaded.yaml",)


def test_report_templates_header_footer_reason(make):
    text = layout().replace("""    merge-failure:
      labels: {Verified: -1}
""", """    merge-failure:
      labels: {Verified: -1}
      message: "{change} of {project} ({branch}) could not merge in {pipeline}: {reason} See {status_url}"
    header: "Gatekeeper speaking."
    footer: "-- {pipeline} bot"
""")
    h = Harness(text)
    a = h.source.add("org/alone")
    h.merger.conflicts.add(a.number)
    h.approve(a)
    msg = h.reports_for(a)[-1].message
    assert msg.startswith("Gatekeeper speaking.\n\n1,1 of org/alone (master) could not merge "
                          "in gate: 1,1 does not merge on the tip of master (conflict in "
                          "README) See https://status.example.org/")
    assert msg.endswith("-- gate bot")


def test_a_merger_infrastructure_error_is_not_reported_as_a_conflict():
    """A git fetch that fails is the site's problem: the merge-failure votes,
    but words of its own (the reporter's message speaks of conflicts)."""
    from gatekeeper.model.events import MergeCompleted

    text = layout().replace("""    merge-failure:
      labels: {Verified: -1}
""", """    merge-failure:
      labels: {Verified: -1}
      message: "Please rebase: {reason}"
""")
    h = Harness(text)
    a = h.source.add("org/alone")
    h.merger.hold = True
    h.approve(a)
    [req] = h.merger.held
    h.sched.add_result_event(MergeCompleted(req.uuid, False,
                                            error="git fetch origin: Connection refused"))
    h.settle()
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1} and not r.submit
    assert r.message.startswith("Merge Error.") and "rebase" not in r.message.lower()
    assert "the merger could not prepare the speculative state: git fetch origin: " \
        "Connection refused" in r.message
    b = h.source.add("org/alone")  # a conflict still gets the reporter's message
    h.merger.hold = False
    h.merger.conflicts.add(b.number)
    h.approve(b)
    assert h.reports_for(b)[-1].message.startswith("Please rebase: ")


def test_event_waits_out_a_source_outage(h: Harness):
    """Gerrit unreachable while an event is handled: the event is retried
    with backoff (virtual time), not dropped."""
    from gatekeeper.interfaces import SourceUnavailable

    real = h.source.get_change
    outages = {"left": 2}

    def flaky(*a, **k):
        if outages["left"]:
            outages["left"] -= 1
            raise SourceUnavailable("connection refused")
        return real(*a, **k)

    h.source.get_change = flaky
    c = h.upload("org/alone")
    assert h.launched() == [] and outages["left"] == 1
    assert h.sched.next_wakeup() is not None
    h.clock.advance(5)
    h.settle()
    assert h.launched() == [] and outages["left"] == 0  # second failure: backs off 10 s
    h.clock.advance(10)
    h.settle()
    assert [b.job for b in h.launched(change=c)] == ["alone-test"]


def test_event_dropped_after_bounded_retries(h: Harness):
    from gatekeeper.interfaces import SourceUnavailable
    from gatekeeper.scheduler import RETRY_ATTEMPTS

    def down(*a, **k):
        raise SourceUnavailable("connection refused")

    h.source.get_change = down
    c = h.upload("org/alone")
    for _ in range(RETRY_ATTEMPTS + 1):
        h.clock.advance(3600)
        h.settle()
    assert h.launched(change=c) == []
    assert any("dropped after" in e for e in h.sched.errors)
    assert h.sched._deferred == []


def _items(status: dict) -> list[str]:
    return [i["change"] for p in status["pipelines"] for q in p["queues"] for i in q["items"]]


def test_last_status_never_stays_behind_a_change_once_its_interval_passed(h: Harness):
    # The web reads last_status() (never the lock): a change within status_every of the
    # previous snapshot must still be taken once that time has passed, with no new event.
    h.upload("org/project")
    assert _items(h.sched.last_status()) == _items(h.sched.status()) == ["1,1"]
    h.upload("org/project")  # same instant: not taken yet
    assert _items(h.sched.last_status()) == ["1,1"]
    assert h.sched._status_due() == h.clock() + h.sched.status_every  # _run wakes for it
    h.clock.advance(h.sched.status_every)
    h.sched.run_once()
    assert _items(h.sched.last_status()) == _items(h.sched.status()) == ["1,1", "2,1"]
    assert h.sched._status_due() is None
