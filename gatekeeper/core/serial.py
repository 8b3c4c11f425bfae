"""The serial manager (post, periodic): one queue per project and ref,
items run one at a time in arrival order, nothing speculative."""

from __future__ import annotations

from gatekeeper.core.manager import PipelineManager
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.runtime import ChangeQueue, QueueItem


class SerialManager(PipelineManager):
    speculative = False

    def add(self, change: Change | Ref, trigger: str) -> QueueItem | None:
        name = change.key if isinstance(change, Ref) else f"{change.project}:{change.branch}"
        q = self.state.queue_named(name)
        if q is None:
            q = ChangeQueue(name, self.state.name, {change.project}, window=1, dynamic=True)
            self.door.add_queue(self.state, q)
        if isinstance(change, Ref):
            for waiting in [i for i in q.items if not i.active]:
                w = waiting.change
                if isinstance(w, Ref) and w.newrev == change.newrev:
                    self.door.note(waiting, "ignored", f"{trigger}: the same state is already "
                                   "waiting; not enqueued again")
                    return None
                self.remove(waiting, f"superseded by {change.id_string} before it started",
                            merged=True)
        item = self.new_item(change, q, trigger)
        self.door.note(item, "enqueue", f"enqueued by {trigger}"
                       + (f"; runs after {item.item_ahead.display_name}" if item.item_ahead else ""))
        self.report_start(item)
        return item
