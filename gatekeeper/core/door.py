"""The one door every runtime state change goes through.

The pipeline managers never assign to a model object directly: they call
``Door``. Each call applies the change and hands a ``Mutation`` to every
listener. This is the seam for restart safety: a later store can append the
mutations to a journal (or snapshot the state after each ``run_once``) and
rebuild the queues after a restart. It also gives the loop a cheap "did
anything change?" test: ``Door.count``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.core.dirty import Dirty
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import (
    Build,
    BuildSet,
    ChangeQueue,
    HistoryEntry,
    PipelineState,
    QueueItem,
)

log = logging.getLogger("gatekeeper.core.door")


@dataclass(frozen=True)
class Mutation:
    op: str  # set | add-queue | remove-queue | add-item | remove-item | move-item | add-build | note | decision | report
    target: str  # uuid (item, build set, build) or queue/pipeline name
    data: dict[str, Any] = field(default_factory=dict)
    # The object changed (item, build set, build, queue, pipeline state), for
    # listeners that keep their own index (the store); not part of the record.
    subject: object = field(default=None, compare=False, repr=False)


def _target(obj: object) -> str:
    if isinstance(obj, (QueueItem, BuildSet, Build)):
        return obj.uuid
    if isinstance(obj, ChangeQueue):
        return f"{obj.pipeline}/{obj.name}"
    if isinstance(obj, PipelineState):
        return obj.name
    return type(obj).__name__


class Door:
    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.count = 0
        self.listeners: list[Callable[[Mutation], None]] = []
        self.dirty = Dirty()  # what changed, for the pass (core/dirty.py)

    def _emit(self, op: str, target: str, subject: object = None, **data: Any) -> None:
        self.count += 1
        if self.listeners:
            m = Mutation(op, target, data, subject)
            for listener in self.listeners:
                listener(m)

    # --- attributes -------------------------------------------------------

    def set(self, obj: object, **attrs: Any) -> bool:
        """Set attributes that differ; True if anything changed."""
        changed = {}
        for k, v in attrs.items():
            old = getattr(obj, k)
            same = old is v if isinstance(v, (QueueItem, BuildSet)) or v is None else old == v
            if not same:
                setattr(obj, k, v)
                changed[k] = v.uuid if isinstance(v, (QueueItem, BuildSet)) else v
        if changed:
            self.dirty.touch(obj)
            self._emit("set", _target(obj), obj, **changed)
        return bool(changed)

    # --- queues and items -------------------------------------------------

    def add_queue(self, state: PipelineState, queue: ChangeQueue) -> None:
        state.queues.append(queue)
        self._emit("add-queue", _target(queue), queue, window=queue.window)

    def remove_queue(self, state: PipelineState, queue: ChangeQueue) -> None:
        state.queues.remove(queue)
        self.dirty.full.discard(queue)
        self.dirty.moved.discard(queue)
        self._emit("remove-queue", _target(queue), queue)

    def add_item(self, state: PipelineState, queue: ChangeQueue, item: QueueItem) -> None:
        """Append ``item`` at the end of ``queue`` behind the current tail."""
        tail = queue.items[-1] if queue.items else None
        queue.items.append(item)
        item.item_ahead = tail
        if tail is not None:
            tail.items_behind.append(item)
        state.index.setdefault(item.change.key, []).append(item)
        self.dirty.own(item, queue)
        self.dirty.mark(item)
        self.dirty.mark(tail)
        self._emit("add-item", item.uuid, item, queue=queue.name, ahead=tail.uuid if tail else None,
                   change=item.display_name, live=item.live)

    def link(self, item: QueueItem, ahead: QueueItem | None) -> None:
        """Make ``ahead`` the item ``item`` is tested on top of."""
        old = item.item_ahead
        if old is ahead:
            return
        if old is not None and item in old.items_behind:
            old.items_behind.remove(item)
        item.item_ahead = ahead
        if ahead is not None:
            ahead.items_behind.append(item)
        for x in (item, old, ahead):
            self.dirty.mark(x)
        self._emit("move-item", item.uuid, item, ahead=ahead.uuid if ahead else None)

    def reorder(self, queue: ChangeQueue, items: list[QueueItem]) -> None:
        queue.items[:] = items
        self.dirty.renumber(items)
        self.dirty.full.add(queue)
        self._emit("reorder", _target(queue), queue, items=[i.uuid for i in items])

    def remove_item(self, state: PipelineState, queue: ChangeQueue, item: QueueItem,
                    reason: str) -> None:
        """Take ``item`` out; those behind it now sit on the item that was ahead."""
        ahead = item.item_ahead
        dirty = self.dirty
        dirty.mark(ahead)
        for behind in list(item.items_behind):
            dirty.mark(behind)
            behind.item_ahead = ahead
            if ahead is not None:
                ahead.items_behind.append(behind)
        if ahead is not None and item in ahead.items_behind:
            ahead.items_behind.remove(item)
        item.items_behind = []
        item.item_ahead = None
        queue.items.remove(item)
        same = state.index.get(item.change.key, [])
        if item in same:
            same.remove(item)
        if not same:
            state.index.pop(item.change.key, None)
        item.dequeued = True
        item.dequeue_reason = reason
        item.active = False
        dirty.forget(item, queue)
        self._emit("remove-item", item.uuid, item, reason=reason)

    # --- build sets and builds --------------------------------------------

    def new_build_set(self, item: QueueItem, build_set: BuildSet) -> None:
        if self.dirty.owner.get(item.build_set) is item:
            self.dirty.forget_set(item.build_set)
            self.dirty.own_set(item, build_set)
        else:
            self.dirty.unknown()
        self.dirty.mark(item)
        item.build_set = build_set
        self._emit("new-build-set", item.uuid, item, build_set=build_set.uuid,
                   base=build_set.base_item)

    def add_build(self, build_set: BuildSet, build: Build) -> None:
        dirty = self.dirty
        prev = build_set.builds.get(build.job)
        if prev is not None:
            dirty.owner.pop(prev, None)
        owner = dirty.owner.get(build_set)
        if owner is None:
            dirty.unknown()
        else:
            dirty.owner[build] = owner
            dirty.mark(owner)
        build_set.builds[build.job] = build
        self._emit("add-build", build_set.uuid, build_set, job=build.job, build=build.uuid,
                   attempt=build.attempt, result=build.result)

    def drop_build(self, build_set: BuildSet, job: str) -> None:
        """Forget ``job``'s build (its job left the layout)."""
        self.dirty.touch(build_set)
        prev = build_set.builds.pop(job, None)
        if prev is not None:
            self.dirty.owner.pop(prev, None)
        self._emit("drop-build", build_set.uuid, build_set, job=job)

    # --- changes waiting for a dependency (gate) ------------------------

    def wait_for(self, state: PipelineState, dependency: str, change: Change) -> None:
        waiting = state.waiting.setdefault(dependency, [])
        if all(w.key != change.key for w in waiting):
            waiting.append(change)
            self._emit("wait", state.name, state, dependency=dependency, change=change.key)

    def stop_waiting(self, state: PipelineState, dependency: str) -> list[Change]:
        waiting = state.waiting.pop(dependency, [])
        if waiting:
            self._emit("stop-waiting", state.name, state, dependency=dependency)
        return waiting

    # --- history ----------------------------------------------------------

    def note(self, item: QueueItem, kind: str, text: str) -> None:
        entry = HistoryEntry(self.clock(), kind, text)
        item.history.append(entry)
        self.dirty.mark(item)
        log.info("%s %s [%s] %s", item.pipeline, item.display_name, kind, text)
        self._emit("note", item.uuid, item, kind=kind, text=text)

    def decision(self, state: PipelineState, change: Change, kind: str, text: str) -> None:
        """Record a decision about a change that is not (or no longer) an item."""
        entry = HistoryEntry(self.clock(), kind, text)
        state.decisions.append((change.key, entry))
        log.info("%s %s [%s] %s", state.name, change.id_string, kind, text)
        self._emit("decision", state.name, state, change=change.key, kind=kind, text=text,
                   time=entry.time)

    def decide_report(self, item: QueueItem, kind: str) -> str:
        """Record the decision to report ``kind`` on ``item``, before it is sent;
        returns its key. The same decision made again (after a restart replays
        a turn) has the same key, so the outbox sends it once."""
        key = f"{item.uuid}/{item.build_set.uuid}/{kind}"
        self.dirty.mark(item)
        self._emit("report", item.uuid, item, kind=kind, key=key)
        return key

    def other(self, op: str, target: str, **data: Any) -> None:
        """Changes to engine-level state (window of a queue, layout swap)."""
        self.dirty.all = True
        self._emit(op, target, **data)
