"""1,000 items in one gate queue: cost grows linearly, not quadratically."""

from gatekeeper.model.events import EventApproval, TriggerEvent
from gatekeeper.model.runtime import QueueItem
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def run_gate(n: int, fail_every: int = 0, ceiling: int = 0) -> tuple[int, int, Harness]:
    h = Harness(layout(window=20, ceiling=ceiling))
    changes = [h.source.add("org/alone") for _ in range(n)]
    from gatekeeper.model.change import Approval
    for c in changes:
        h.source.update(c.number, approvals=[Approval("Code-Review", 2), Approval("Workflow", 1)])
        h.sched.add_trigger_event(TriggerEvent(
            "comment-added", project=c.project, branch=c.branch, change_number=c.number,
            patchset=1, approvals=(EventApproval("Workflow", 1, 0),)))
    h.settle()
    assert len(h.queue()) == n
    # Fail every 50th change so resets and window shrinks happen too.
    rounds = 0
    while h.running():
        rounds += 1
        for b in h.running():
            if fail_every and int(b.change.split(",")[0]) % fail_every == 0:
                h.complete("FAILURE", change=b.change, settle=False)
        h.complete("SUCCESS", settle=False)
        h.settle()
    assert h.queue() == []
    return h.engine.ctx.ops, h.door_count(), h


def test_thousand_items_linear_cost():
    Harness.door_count = lambda self: self.sched.door.count
    ops_small, muts_small, _ = run_gate(250)
    ops_big, muts_big, h = run_gate(1000)
    assert h.merged == list(range(1, 1001))  # all merged, in queue order
    # 4x the items: linear is ~4x, quadratic would be ~16x.
    assert ops_big / ops_small < 5, (ops_small, ops_big)
    assert muts_big / muts_small < 5, (muts_small, muts_big)
    assert len(h.launcher.builds) == 1000  # no build thrown away


def test_thousand_items_with_failures_linear_cost():
    Harness.door_count = lambda self: self.sched.door.count
    ops_small, muts_small, _ = run_gate(250, fail_every=10)
    ops_big, muts_big, h = run_gate(1000, fail_every=10)
    assert len(h.merged) == 900
    assert h.merged == sorted(h.merged)
    # ops count reset walks too: a reset stops at the first item waiting
    # outside the window (4.4x; walking to the queue's end was 10x).
    assert ops_big / ops_small < 4.6, (ops_small, ops_big)
    assert muts_big / muts_small < 6, (muts_small, muts_big)


def _note_chars(h: Harness) -> int:
    return sum(len(e.text) for i in h.engine.ctx.finished for e in i.history)


def test_work_per_merged_change_does_not_grow_with_n():
    """Counted, not timed: item visits, Door mutations and the text of every
    note per merged change are the same at N=1,000 as at N=250 once the
    window has a ceiling; without one too on this harness (every running
    build succeeds each round), where the window and every chain grow with
    the queue: the notes stay bounded (a launch note names at most five
    changes ahead, the chain is in the build set) and a launch does not
    join the chain."""
    Harness.door_count = lambda self: self.sched.door.count
    per_change = []
    for n in (250, 1000):
        ops, muts, h = run_gate(n, ceiling=40)
        assert h.merged == list(range(1, n + 1))
        per_change.append((ops / n, muts / n, _note_chars(h) / n))
    (ops_s, muts_s, notes_s), (ops_b, muts_b, notes_b) = per_change
    assert ops_b <= ops_s * 1.05 and muts_b <= muts_s * 1.05, per_change
    assert notes_b <= notes_s * 1.05, per_change
    ops_s, muts_s, small = run_gate(250)
    ops_b, muts_b, big = run_gate(1000)
    assert _note_chars(big) / 1000 <= _note_chars(small) / 250 * 1.05
    # Without a ceiling too: item visits and mutations per change, and no
    # launch joins the chain it names (ZUUL_CHANGES is joined by the launcher
    # that sends the job, model/buildparams.py).
    assert ops_b / 1000 <= ops_s / 250 * 1.05 and muts_b / 1000 <= muts_s / 250 * 1.05
    assert all(b.request.parameters.unjoined() == 2 for b in big.launcher.builds)


def test_chain_work_per_merged_change_does_not_grow_with_n(monkeypatch):
    """Without a window ceiling the window, and every chain, grows to the
    queue (1,000 changes deep). Each item's chain extends the one of the item
    ahead, less the heads merged since: the speculative changes and merge
    items built per merged change are the same at N=1,000 as at N=250 (they
    were 36 per change at 250 and 130 at 1,000 when a chain was rebuilt after
    every merge), and no pass scans the queue for an item's position."""
    from gatekeeper.core import manager as manager_mod
    from gatekeeper.core.manager import PipelineManager

    monkeypatch.setattr(PipelineManager, "check_chains", False)  # it walks every chain
    built = {"spec": 0, "scan": 0}
    spec, index = PipelineManager._spec, manager_mod._index

    def counting_spec(x):
        built["spec"] += 1
        return spec(x)

    def counting_index(seq, x, lo=0):
        built["scan"] += len(seq) if seq and isinstance(seq[0], QueueItem) else 0
        return index(seq, x, lo)

    monkeypatch.setattr(PipelineManager, "_spec", staticmethod(counting_spec))
    monkeypatch.setattr(manager_mod, "_index", counting_index)
    per_change = []
    for n in (250, 1000):
        built.update(spec=0, scan=0)
        _, _, h = run_gate(n)
        assert h.merged == list(range(1, n + 1))
        per_change.append(built["spec"] / n)
        assert built["scan"] == 0
    assert per_change[1] <= per_change[0] * 1.05, per_change
