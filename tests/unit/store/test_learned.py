"""A gate strategy's flake record survives a restart: every attempt of a job
is its own history row, and the scheduler seeds the record from them."""

from __future__ import annotations

import json

from gatekeeper.store import history
from tests.unit.core.layouts import layout
from tests.unit.store.support import StoredHarness, restart


def rerun_layout() -> str:
    strategy = json.dumps({"name": "rerun", "min-history": 0})
    return layout().replace("    manager: dependent\n",
                            f"    manager: dependent\n    strategy: {strategy}\n")


def test_a_rerun_flake_is_in_the_history_and_survives_a_restart(store):
    h = StoredHarness(store, rerun_layout())
    a = h.source.add("org/alone")
    h.approve(a)
    h.fail(change=a)  # judged at once: rerun on the same commit within the turn
    h.release_all()
    assert h.merged == [a.number]
    rows = sorted(history.builds_of_change(store, a.number), key=lambda r: r.attempt)
    assert [(r.attempt, r.result) for r in rows] == [(1, "FAILURE"), (2, "SUCCESS")]
    assert rows[0].buildset == rows[1].buildset and rows[0].uuid != rows[1].uuid
    job = rows[0].job
    before = h.sched.engine.ctx.learned["gate"]
    assert (before.flakes(job), before.seen(job)) == (1, 1)

    restart(h)
    learned = h.sched.engine.ctx.learned["gate"]
    assert learned is not before
    # The failure (proven a flake by the pass on the same state) and the pass
    # (the live record leaves a rerun's pass out; history cannot tell it apart).
    assert (learned.flakes(job), learned.seen(job)) == (1, 2)
