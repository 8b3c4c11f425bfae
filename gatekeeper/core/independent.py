"""The independent (check) manager: each change tested alone, together with
the open changes it depends on."""

from __future__ import annotations

from gatekeeper.core.deps import resolve
from gatekeeper.core.manager import PipelineManager
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.runtime import ChangeQueue, QueueItem


class IndependentManager(PipelineManager):
    def add(self, change: Change | Ref, trigger: str) -> QueueItem | None:
        if isinstance(change, Ref):
            for item in self.state.index.get(change.key, []):
                if isinstance(item.change, Ref) and item.change.newrev == change.newrev:
                    self.door.note(item, "ignored", f"{trigger}: this ref is already queued at "
                                   "the same revision; not enqueued again")
                    return None
        q = ChangeQueue(f"{change.key}:{self.ctx.new_uuid()[:8]}", self.state.name,
                        {change.project}, dynamic=True)
        if isinstance(change, Ref):
            self.door.add_queue(self.state, q)
            item = self.new_item(change, q, trigger)
            self.door.note(item, "enqueue", f"enqueued by {trigger}")
            return item
        deps = resolve(change, self.ctx.lookup)
        if deps.problems:
            self.not_enqueued(change, "; ".join(deps.problems), report=True)
            return None
        self.door.add_queue(self.state, q)
        for d in deps.order:
            dep = self.new_item(d, q, trigger, live=False)
            self.door.note(dep, "enqueue", f"carried along: {change.id_string} needs it")
        item = self.new_item(change, q, trigger, needs=tuple(d.key for d in deps.order))
        text = f"enqueued by {trigger}"
        if deps.order:
            text += "; tested together with " + ", ".join(d.id_string for d in deps.order)
        self.door.note(item, "enqueue", text)
        self.report_start(item)
        return item

    def dependency_left(self, item: QueueItem, dep: QueueItem, reason: str) -> None:
        """A dependency got a new patchset (or was abandoned): test the change
        again with what it depends on now, instead of failing it."""
        if not item.live:
            self.remove(item, f"{dep.display_name} left the queue ({reason})", merged=True)
            return
        c = item.change
        fresh = self.ctx.lookup.get_change(c.number, refresh=True) \
            if isinstance(c, Change) else None
        dep_now = self.ctx.lookup.get_change(dep.change.number, refresh=True) \
            if isinstance(dep.change, Change) else None
        if fresh is None or dep_now is None or not dep_now.is_open or not fresh.is_open:
            super().dependency_left(item, dep, reason)
            return
        self.remove(item, f"its dependency {dep.display_name} changed ({reason}); testing again",
                    merged=True)
        self.enqueue(fresh, f"its dependency {dep.display_name} changed")
