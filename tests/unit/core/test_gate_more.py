"""More gate behaviour: window settings, fail-fast details, refusals."""

from gatekeeper.layout.loader import load_layout_text
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def custom(h_text: str) -> Harness:
    return Harness(h_text)


def test_unlimited_window(make):
    h = make(window=0)
    for _ in range(30):
        h.approve(h.source.add("org/alone"))
    assert len(h.running()) == 30
    assert all(i.active for i in h.items())


def test_exponential_increase_linear_decrease():
    text = layout(window=4).replace("window-increase-type: linear", "window-increase-type: exponential") \
        .replace("window-increase-factor: 1", "window-increase-factor: 2") \
        .replace("window-decrease-type: exponential", "window-decrease-type: linear") \
        .replace("window-decrease-factor: 2", "window-decrease-factor: 1")
    h = custom(text)
    cs = [h.source.add("org/alone") for _ in range(12)]
    for c in cs:
        h.approve(c)
    q = h.engine.states["gate"].queues[0]
    h.release(change=cs[0])
    assert q.window == 8
    assert len(h.running()) == 8
    h.fail(change=cs[1])
    assert q.window == 7
    assert len([i for i in h.items() if i.active]) == 7


def test_fail_fast_ignores_non_voting_failure(make):
    h = make(fail_fast=True, extra_projects="""
  - name: org/nv
    gate: [nv-voting, project-experimental]
""")
    a = h.source.add("org/nv")
    h.approve(a)
    h.fail("project-experimental")
    assert [b.job for b in h.running()] == ["nv-voting"]
    h.release()
    assert h.merged == [1]


def test_fail_fast_skips_children_not_started(make):
    h = make(fail_fast=True, extra_projects="""
  - name: org/tree
    gate:
      - tree-a:
          - tree-child
      - tree-b
""")
    a = h.source.add("org/tree")
    h.approve(a)
    h.fail("tree-b")
    msg = h.reports_for(a)[-1].message
    assert "- tree-child : SKIPPED" in msg
    assert ": CANCELED" in msg  # tree-a was cancelled
    assert h.queue() == []


def test_dependency_failing_when_dependent_approved(h: Harness):
    head = h.source.add("org/project1")
    dep = h.source.add("org/project1")
    h.approve(head)
    h.approve(dep)
    h.fail(change=dep)
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(a)
    assert h.queue() == ["1,1", "2,1"]
    assert "it depends on 2,1, which is failing" in h.reports_for(a)[-1].message


def test_abandoned_change_not_enqueued(h: Harness):
    a = h.source.add("org/alone")
    h.source.update(a.number, status="ABANDONED")
    h.approve(a)
    assert h.queue() == []


def test_approving_twice_does_not_duplicate(h: Harness):
    a = h.source.add("org/alone")
    h.approve(a)
    h.approve(a)
    assert h.queue() == ["1,1"]
    assert len(h.launcher.builds) == 1


def test_project_without_jobs_is_not_enqueued(h: Harness):
    a = h.source.add("org/unknown")
    h.approve(a)
    assert h.queue() == []
    assert "project org/unknown has no jobs in pipeline gate" in h.sched.explain(1)
    assert not h.reporter.reports


def test_item_far_behind_waits_without_merges(make):
    h = make(window=2)
    cs = [h.source.add("org/alone") for _ in range(6)]
    for c in cs:
        h.approve(c)
    assert len(h.merger.requests) == 2
    assert [i.active for i in h.items()] == [True, True, False, False, False, False]


def test_timers_follow_reconfigure(h: Harness):
    assert h.sched.next_wakeup() is not None
    text = layout().replace('''    trigger:
      timer:
        - time: "0 2 * * *"''', '''    trigger:
      timer:
        - time: "*/5 * * * *"''')
    h.sched.reconfigure(load_layout_text(text, "x.yaml"))
    h.settle()
    assert h.sched.next_wakeup() - h.clock() <= 300
    h.clock.advance(300)
    h.settle()
    assert sorted(b.job for b in h.running()) == ["nightly-3.11", "nightly-3.12"]
