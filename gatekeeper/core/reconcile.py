"""After a restart: is each restored item still what its pipeline wants?

Pure: the scheduler asks Gerrit and hands in what it said. Anything that
happened while the scheduler was down (abandoned, merged by someone else,
a new patchset, a vote taken back) dequeues the item with the reason in its
history, so ``gatekeeper explain`` tells why it left."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from gatekeeper.core.engine import Engine
from gatekeeper.core.filters import check_requirements
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import QueueItem
from gatekeeper.model.states import SubmitState

WHILE = "while the scheduler was stopped"


def stale_reason(engine: Engine, item: QueueItem, fresh: Change) -> tuple[str, bool] | None:
    """Why ``item`` must leave given Gerrit's ``fresh`` view, and whether the
    change merged (nothing behind it is reset then); None: it stays."""
    old = item.change
    assert isinstance(old, Change)
    pipeline = engine.ctx.layout.pipelines[item.pipeline]
    if fresh.status == "ABANDONED":
        return f"the change was abandoned {WHILE}", False
    if fresh.is_merged:
        return f"the change was merged outside this pipeline {WHILE}", True
    if fresh.patchset > old.patchset and pipeline.dequeue_on_new_patchset:
        return (f"patchset {fresh.patchset} was uploaded {WHILE}; patchset {old.patchset} "
                "is out of date"), False
    if fresh.patchset == old.patchset and item.live:
        m = check_requirements(pipeline, fresh, engine.ctx.clock())
        if not m.matched:
            return f"{'; '.join(m.reasons)} (changed {WHILE})", False
    return None


def reconcile(engine: Engine, fresh: Mapping[int, Change],
              submitted: Collection[str] = ()) -> list[tuple[QueueItem, str]]:
    """Dequeue the restored items ``fresh`` (change number -> Gerrit's view)
    shows are stale. A submitting item is left alone: its submit may have
    merged it before the stop, and the outbox's answer (asked of Gerrit if
    need be) finishes it as a ``SubmitCompleted`` event. Items in
    ``submitted`` (uuids: outbox rows of a submit sent or begun whose item
    was not yet recorded as submitting) finish normally too. Returns (item,
    reason) dequeued."""
    out = []
    for manager in engine.managers.values():
        for item in list(manager.state.items()):
            c = item.change
            if item.dequeued or not isinstance(c, Change) or item.uuid in submitted \
                    or item.submit_state == SubmitState.SUBMITTING:
                continue
            now = fresh.get(c.number)
            if now is None:
                continue
            why = stale_reason(engine, item, now)
            if why is not None:
                manager.remove(item, why[0], merged=why[1])
                out.append((item, why[0]))
    return out
