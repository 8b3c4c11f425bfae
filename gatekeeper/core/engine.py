"""The core as one object: pipelines' state, their managers, and the entry
points the scheduler loop calls (triggers, results, management, process)."""

from __future__ import annotations

import logging
from typing import assert_never

from gatekeeper.core import jobs as jobsel
from gatekeeper.core.context import Context
from gatekeeper.core.dependent import DependentManager
from gatekeeper.core.filters import match_trigger, triggered_pipelines
from gatekeeper.core.independent import IndependentManager
from gatekeeper.core.manager import PipelineManager
from gatekeeper.core.serial import SerialManager
from gatekeeper.layout.model import Layout
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import (
    BuildCompleted,
    BuildEvent,
    BuildFailing,
    BuildProgress,
    BuildStarted,
    MergeCompleted,
    ResultEvent,
    SubmitCompleted,
    TriggerEvent,
)
from gatekeeper.model.runtime import PipelineState, QueueItem
from gatekeeper.model.states import SubmitState

log = logging.getLogger("gatekeeper.core.engine")

MANAGERS: dict[str, type[PipelineManager]] = {
    "independent": IndependentManager,
    "dependent": DependentManager,
    "serial": SerialManager,
}
MAX_PASSES = 1000  # a pass that keeps changing state this often is a bug; stop and log


class Engine:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.states: dict[str, PipelineState] = {}
        self.managers: dict[str, PipelineManager] = {}
        # (the Door, its count) after the last pass that changed nothing
        self._settled: tuple[object, int] | None = None
        self._bind(ctx.layout)

    def _bind(self, layout: Layout) -> None:
        self.ctx.layout = layout
        managers = {}
        for name, p in layout.pipelines.items():
            state = self.states.get(name) or PipelineState(name)
            self.states[name] = state
            managers[name] = MANAGERS[p.manager](self.ctx, state)
        self.managers = managers

    # --- inputs -------------------------------------------------------------

    def on_trigger(self, event: TriggerEvent, change: Change | Ref) -> None:
        now = self.ctx.clock()
        layout = self.ctx.layout
        hits = triggered_pipelines(layout, event, change, now=now)
        for name, manager in self.managers.items():
            if event.type == "timer" and event.pipeline != name:
                continue
            matched = name in hits
            if matched and log.isEnabledFor(logging.INFO):
                m = match_trigger(layout.pipelines[name], event, change, now=now)
                log.info("%s matches %s: %s", event.describe(), name, m.reasons[-1])
            manager.on_trigger(event, change, matched)

    def on_result(self, ev: ResultEvent) -> None:
        match ev:
            case MergeCompleted():
                self._on_merge(ev)
            case BuildStarted() | BuildProgress() | BuildFailing() | BuildCompleted():
                self._on_build(ev)
            case SubmitCompleted():
                self._on_submit(ev)
            case _:
                assert_never(ev)

    def _on_submit(self, ev: SubmitCompleted) -> None:
        item = self.ctx.submits.get(ev.key)
        if item is None or item.dequeued or item.submit_key != ev.key:
            log.debug("submit answer %s is for nothing current; ignored", ev.key)
            return
        self._manager(item).on_submit_completed(item, ev)

    def _on_merge(self, ev: MergeCompleted) -> None:
        owner = self.ctx.merges.pop(ev.request_uuid, None)
        if owner is None or owner[0].build_set is not owner[1]:
            log.debug("merge result %s is for nothing current; ignored", ev.request_uuid)
            return
        self._manager(owner[0]).on_merge_completed(owner[0], owner[1], ev)

    def _on_build(self, ev: BuildEvent) -> None:
        owner = self.ctx.builds.get(ev.build_uuid)
        if owner is None:
            log.debug("event for unknown or cancelled build %s ignored", ev.build_uuid)
            return
        item, bs = owner
        build = next((b for b in bs.builds.values() if b.uuid == ev.build_uuid), None)
        if build is None or item.build_set is not bs or item.dequeued:
            self.ctx.builds.pop(ev.build_uuid, None)
            return
        manager = self._manager(item)
        match ev:
            case BuildStarted():
                manager.on_build_started(item, build, ev)
            case BuildProgress():
                self.ctx.door.set(build, progress=(ev.numerator, ev.denominator))
            case BuildFailing():
                if build.result is None and build.failing is None:
                    manager.on_build_failing(item, build, ev)
            case BuildCompleted():
                self.ctx.builds.pop(ev.build_uuid, None)
                manager.on_build_completed(item, build, ev)
            case _:
                assert_never(ev)

    def enqueue(self, pipeline: str, change: Change | Ref, who: str = "an operator") -> str | None:
        manager = self.managers.get(pipeline)
        if manager is None:
            return f"no pipeline named {pipeline}"
        item = manager.enqueue(change, trigger=f"enqueue by {who}")
        return None if item is not None else "not enqueued (see the change's decisions)"

    def dequeue(self, pipeline: str, key: str, who: str = "an operator") -> str | None:
        manager = self.managers.get(pipeline)
        if manager is None:
            return f"no pipeline named {pipeline}"
        if not manager.dequeue_change(key, f"dequeued by {who}"):
            return f"{key} is not in pipeline {pipeline}"
        return None

    def promote(self, pipeline: str, keys: list[str]) -> str | None:
        manager = self.managers.get(pipeline)
        if manager is None:
            return f"no pipeline named {pipeline}"
        return manager.promote(keys)

    def process(self) -> int:
        """Process every pipeline until a pass changes nothing; returns passes.

        A pass is a function of the state, and every state change goes
        through the Door: when nothing passed the Door since the last pass
        that changed nothing, this pass would change nothing either, and is
        skipped (0 passes) — an idle turn costs nothing, however long the
        queues."""
        door = self.ctx.door
        if self._settled is not None and self._settled[0] is door \
                and self._settled[1] == door.count:
            return 0
        dirty = door.dirty
        for n in range(1, MAX_PASSES + 1):
            before = door.count
            # A pass visits the items the Door saw change and what depends on
            # them (core/dirty.py); everything after a restore, a layout swap
            # or a change the tracker could not place.
            full = self.ctx.full_walk or dirty.all
            if dirty.all:
                dirty.rebuild(list(self.states.values()))
            if full:
                dirty.items.clear()
                dirty.full.clear()
                dirty.moved.clear()
            dirty.log.clear()
            dirty.removed.clear()
            for manager in self.managers.values():
                manager.process(full)
            if door.count == before:
                self._settled = (door, before)
                return n
        log.error("queues still changing after %d passes; giving up this turn", MAX_PASSES)
        return MAX_PASSES

    def _manager(self, item: QueueItem) -> PipelineManager:
        m = self.managers.get(item.pipeline)
        if m is None:
            raise LookupError(f"item {item.uuid} of unknown pipeline {item.pipeline}")
        return m

    # --- reconfiguration --------------------------------------------------

    def reconfigure(self, layout: Layout) -> None:
        """Swap the layout keeping queued items; drop what no longer exists."""
        old = self.states
        door = self.ctx.door
        for name, state in old.items():
            if name in layout.pipelines and \
                    layout.pipelines[name].manager == self.ctx.layout.pipelines[name].manager:
                continue
            manager = self.managers[name]
            for item in state.items():
                manager.remove(item, f"pipeline {name} no longer exists (or changed manager) "
                               "in the new layout", merged=True)
        self.states = {n: s for n, s in old.items() if n in layout.pipelines and
                       layout.pipelines[n].manager == self.ctx.layout.pipelines[n].manager}
        self._bind(layout)
        door.dirty.all = True  # new managers, new jobs: the next pass walks everything
        door.other("layout", "engine", files=list(layout.files))
        for name, manager in self.managers.items():
            state = self.states[name]
            pipeline = layout.pipelines[name]
            for q in list(state.queues):
                if not q.dynamic:
                    door.set(q, window_floor=max(1, pipeline.window.floor))
                    if q.window:
                        door.set(q, window=pipeline.window.capped(
                            max(q.window_floor, q.window)))
            for item in state.items():
                if item.dequeued or item.submit_state == SubmitState.SUBMITTING:
                    continue  # (submitting: Gerrit's answer decides, not the layout)
                selected = jobsel.select_jobs(layout, name, item.change)
                if item.live and not selected:
                    manager.remove(item, "no jobs for it in the new layout")
                    continue
                keep = {s.job.name for s in selected}
                bs = item.build_set
                for job, build in list(bs.builds.items()):
                    if job in keep:
                        continue
                    if build.result is None:
                        self.ctx.builds.pop(build.uuid, None)
                        self.ctx.effects.cancel(build.uuid)
                    door.drop_build(bs, job)
                    door.note(item, "cancel", f"{job} is not in the new layout; "
                              "its build was cancelled")
                if isinstance(manager, DependentManager):
                    want = layout.queue_name(item.change.project)
                    if want != item.queue:
                        manager.remove(item, f"queue changed to {want} in the new layout",
                                       merged=True)
                        new = manager.add(item.change, f"re-enqueue after moving to queue {want}")
                        if new is not None:
                            door.note(new, "reconfigure", f"moved from queue {item.queue}")
            for item in state.items():
                door.note(item, "reconfigure", "the layout was reloaded")

    # --- queries ------------------------------------------------------------

    def find_items(self, key: str) -> list[QueueItem]:
        out = [i for s in self.states.values() for i in s.index.get(key, [])]
        out += [i for i in self.ctx.finished if i.change.key == key]
        return out
