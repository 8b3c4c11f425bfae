"""Layout reload with items in flight."""

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout_text
from gatekeeper.model.events import Reconfigure
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def _load(text: str):
    return load_layout_text(text, "new-layout.yaml")


def test_reload_keeps_items_and_builds(h: Harness):
    a, b = (h.source.add("org/project") for _ in range(2))
    h.approve(a)
    h.approve(b)
    running = {x.request.uuid for x in h.running()}
    h.sched.reconfigure(_load(layout()))
    h.settle()
    assert h.queue() == ["1,1", "2,1"]
    assert {x.request.uuid for x in h.running()} == running  # nothing relaunched
    assert "the layout was reloaded" in h.sched.explain(1)
    h.release_all()
    assert h.merged == [1, 2]


def test_reload_cancels_builds_of_removed_jobs(h: Harness):
    a = h.source.add("org/project")
    h.approve(a)
    h.release("project-merge")
    assert sorted(b.job for b in h.running()) == ["project-test1", "project-test2"]
    new = layout().replace("""    gate:
      - project-merge:
          - project-test1
          - project-test2
""", """    gate:
      - project-merge:
          - project-test1
""")
    h.sched.reconfigure(_load(new))
    h.settle()
    assert [b.state for b in h.launched("project-test2")] == ["cancelled"]
    assert "project-test2 is not in the new layout" in h.sched.explain(1)
    h.release_all()
    assert h.merged == [1]
    assert "project-test2" not in h.reports_for(a)[-1].message


def test_reload_adds_new_jobs_to_items_in_flight(h: Harness):
    a = h.upload("org/alone")
    new = layout().replace("check: [alone-test]", "check: [alone-test, alone-lint]")
    h.sched.reconfigure(_load(new))
    h.settle()
    assert sorted(b.job for b in h.running()) == ["alone-lint", "alone-test"]
    h.release_all()
    assert h.reports_for(a)[-1].labels == {"Verified": 1}


def test_bad_layout_rejected_old_one_kept(h: Harness):
    a = h.upload("org/alone")

    def bad():
        return load_layout_text("pipelines: [{name: check}]\n", "broken.yaml")

    h.sched.add_management_event(Reconfigure(loader=bad))
    h.settle()
    assert "new layout rejected; keeping the old one" in h.sched.errors[-1]
    assert "broken.yaml" in h.sched.errors[-1]
    assert h.queue("check") == ["1,1"]
    h.release_all()
    assert h.reports_for(a)[-1].labels == {"Verified": 1}
    h.upload("org/alone")
    assert len(h.running()) == 1  # the old layout still works


def test_loader_raising_user_error(h: Harness):
    def bad():
        raise UserError(["gk.yaml:3: pipelines.0.manager: not a valid value"])

    h.sched.add_management_event(Reconfigure(loader=bad))
    h.settle()
    assert "gk.yaml:3: pipelines.0.manager" in h.sched.errors[-1]


def test_reload_removing_pipeline_dequeues_its_items(h: Harness):
    h.upload("org/alone")
    new = layout().replace("name: check", "name: verify").replace("    check:", "    verify:")
    h.sched.reconfigure(_load(new))
    h.settle()
    assert "check" not in h.engine.states
    assert h.launched()[0].state == "cancelled"
    assert "pipeline check no longer exists" in h.sched.explain(1)
    h.upload("org/alone")
    assert h.queue("verify") == ["2,1"]


def test_reload_moves_project_to_another_queue(h: Harness):
    a = h.source.add("org/project1")
    b = h.source.add("org/project2")
    h.approve(a)
    h.approve(b)
    assert h.running(change=b)[0].changes == ["1,1", "2,1"]
    new = layout().replace("  - name: org/project2\n    queue: integrated",
                           "  - name: org/project2\n    queue: solo")
    h.sched.reconfigure(_load(new))
    h.settle()
    queues = {q.name: [i.display_name for i in q.items] for q in h.engine.states["gate"].queues}
    assert queues == {"integrated": ["1,1"], "solo": ["2,1"]}
    assert h.running(change=b)[0].changes == ["2,1"]
    h.release_all()
    assert sorted(h.merged) == [1, 2]
