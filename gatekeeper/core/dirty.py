"""Which items changed since the pass last looked at them (the dirty walk).

The Door tells this tracker about every change it makes: the item, build set
or build changed, and the items whose neighbours changed (the one ahead of an
item that left or was linked, those behind it). A pass then visits only those
items plus what depends on them (``PipelineManager.process_queue``); an item
nothing touched since its last visit would decide nothing new.

Derived data, not state: restored items were never seen here, so a new
tracker (and anything it cannot place, a build set of an item it does not
know) asks for one full walk (``all``), which registers every item again."""

from __future__ import annotations

from gatekeeper.model.runtime import Build, BuildSet, ChangeQueue, PipelineState, QueueItem


class Dirty:
    def __init__(self) -> None:
        self.all = True  # the next pass walks everything (and registers it)
        self.items: set[QueueItem] = set()  # touched since last visited
        # items as they became dirty, for a walk to find those marked behind it
        self.log: list[QueueItem] = []
        self.removed: list[QueueItem] = []  # items that left, for positions in a walk
        self.full: set[ChangeQueue] = set()  # queues to walk whole (reordered)
        # windowed queues whose window or positions moved: walked even with
        # nothing marked (items come inside, or go outside, the window)
        self.moved: set[ChangeQueue] = set()
        self.queue_of: dict[QueueItem, ChangeQueue] = {}
        self.owner: dict[object, QueueItem] = {}  # build set / build -> its item
        self.fallbacks = 0  # changes it could not place (each asked for a full walk)
        self._order = 0  # the next QueueItem.order

    def mark(self, item: QueueItem | None) -> None:
        if item is None or item.dequeued or item in self.items:
            return
        self.items.add(item)
        self.log.append(item)

    def touch(self, obj: object) -> None:
        if isinstance(obj, (Build, BuildSet)):
            item = self.owner.get(obj)
            if item is None:
                self.unknown()
            else:
                self.mark(item)
        elif isinstance(obj, QueueItem):
            self.mark(obj)
        elif isinstance(obj, ChangeQueue):
            self.moved.add(obj)
        elif not isinstance(obj, PipelineState):
            self.unknown()

    def unknown(self) -> None:
        self.fallbacks += 1
        self.all = True

    # --- the registry (kept by the Door's structural changes) ----------------

    def own(self, item: QueueItem, queue: ChangeQueue) -> None:
        """Register ``item``, which is now last of ``queue`` (added, or
        registered in queue order)."""
        self.queue_of[item] = queue
        self.own_set(item, item.build_set)
        item.order = self._order
        self._order += 1

    def renumber(self, items: list[QueueItem]) -> None:
        """``items`` are a queue in its new order."""
        for item in items:
            item.order = self._order
            self._order += 1

    def own_set(self, item: QueueItem, bs: BuildSet) -> None:
        self.owner[bs] = item
        for b in bs.builds.values():
            self.owner[b] = item

    def forget_set(self, bs: BuildSet) -> None:
        self.owner.pop(bs, None)
        for b in bs.builds.values():
            self.owner.pop(b, None)

    def forget(self, item: QueueItem, queue: ChangeQueue) -> None:
        self.forget_set(item.build_set)
        self.queue_of.pop(item, None)
        self.items.discard(item)
        self.removed.append(item)
        if queue.window:  # the positions behind it moved toward the window
            self.moved.add(queue)

    def rebuild(self, states: list[PipelineState]) -> None:
        """Register every queued item (before a full walk)."""
        self.all = False
        self.queue_of.clear()
        self.owner.clear()
        for state in states:
            for q in state.queues:
                for item in q.items:
                    self.own(item, q)
