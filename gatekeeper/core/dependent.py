"""The dependent (gate) manager: shared queues, speculative testing, window."""

from __future__ import annotations

import logging

from gatekeeper.core.context import Context
from gatekeeper.core.deps import resolve
from gatekeeper.core.filters import check_requirements
from gatekeeper.core.manager import PipelineManager
from gatekeeper.core.strategy import JUDGING, Learned, Strategy
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import TriggerEvent
from gatekeeper.model.runtime import Build, ChangeQueue, PipelineState, QueueItem

log = logging.getLogger("gatekeeper.core.dependent")


class DependentManager(PipelineManager):
    def __init__(self, ctx: Context, state: PipelineState):
        super().__init__(ctx, state)
        cfg = self.pipeline.strategy
        self.strategy: Strategy | None = None
        if not cfg.classic:
            learned = ctx.learned.get(state.name)
            if learned is None or learned.size != cfg.history:
                learned = ctx.learned[state.name] = Learned(cfg.history)
            self.strategy = Strategy(self, cfg, learned)
        self.keeps_work = cfg.keep_work

    def queue_for(self, project: str) -> ChangeQueue:
        name = self.ctx.layout.queue_name(project)
        q = self.state.queue_named(name)
        if q is None:
            cfg = self.pipeline.window
            q = ChangeQueue(name, self.state.name, window=cfg.window,
                            window_floor=max(1, cfg.floor))
            self.door.add_queue(self.state, q)
        if project not in q.projects:
            self.door.set(q, projects=q.projects | {project})
        return q

    def add(self, change: Change | Ref, trigger: str) -> QueueItem | None:
        q = self.queue_for(change.project)
        if isinstance(change, Ref):
            item = self.new_item(change, q, trigger)
            self.door.note(item, "enqueue", f"enqueued by {trigger}")
            return item
        deps = resolve(change, self.ctx.lookup)
        if deps.problems:
            self.not_enqueued(change, "; ".join(deps.problems), report=True)
            return None
        needs = []
        for d in deps.direct:
            ahead = [i for i in self.state.index.get(d.key, []) if i.live]
            here = [i for i in ahead if i.queue == q.name]
            if not ahead:
                self.door.wait_for(self.state, d.key, change)
                self.not_enqueued(change, (
                    f"it depends on {d.id_string} ({d.project}), which is neither merged nor "
                    f"in the {self.state.name} queue ahead of it; it will be enqueued when "
                    f"{d.id_string} is"), report=True)
                return None
            if not here:
                self.not_enqueued(change, (
                    f"it depends on {d.id_string} in {d.project}, which is in gate queue "
                    f"{ahead[0].queue}, not in {q.name}; changes in different queues cannot "
                    "be tested together, so merge the dependency first"), report=True)
                return None
            dep = here[0]
            if isinstance(dep.change, Change) and dep.change.patchset != d.patchset:
                self.not_enqueued(change, (
                    f"it depends on {d.id_string}, but patchset {dep.change.patchset} of it "
                    "is in the queue"), report=True)
                return None
            if dep.failing_reasons:
                self.not_enqueued(change, (
                    f"it depends on {dep.display_name}, which is failing "
                    f"({'; '.join(dep.failing_reasons)})"), report=True)
                return None
            needs.append(d.key)
        item = self.new_item(change, q, trigger, needs=tuple(needs))
        ahead_label = item.item_ahead.display_name if item.item_ahead else "the branch tip"
        text = f"enqueued by {trigger} in queue {q.name} behind {ahead_label}"
        if needs:
            text += f"; needs {', '.join(d.id_string for d in deps.direct)} (ahead of it)"
        self.door.note(item, "enqueue", text)
        self.report_start(item)
        self._pull_waiting(change)
        return item

    def on_trigger(self, event: TriggerEvent, change: Change | Ref, matched: bool) -> None:
        super().on_trigger(event, change, matched)
        if event.type == "change-merged" and isinstance(change, Change):
            # A change waiting for this one no longer needs it in the queue.
            self._pull_waiting(change)

    def _pull_waiting(self, change: Change) -> None:
        """Changes refused because they needed ``change`` may follow it now."""
        for w in self.door.stop_waiting(self.state, change.key):
            fresh = self.ctx.lookup.get_change(w.number, refresh=True) or w
            if not fresh.is_open or not fresh.is_current_patchset:
                continue
            if not check_requirements(self.pipeline, fresh, self.ctx.clock()).matched:
                self.door.decision(self.state, fresh, "not-enqueued",
                                   f"{change.id_string} entered the queue but it no longer "
                                   "meets the pipeline's requirements")
                continue
            why = "merging" if change.is_merged else "entering the queue"
            self.enqueue(fresh, f"its dependency {change.id_string} {why}")

    def trusts_early_failure(self) -> bool:
        return self.strategy is None or not self.strategy.cfg.judge

    # --- gate strategy hooks -------------------------------------------------

    def visited(self, item: QueueItem) -> None:
        """An item with a failure under judgment is visited by every pass:
        its review reads the items around it and what was learned."""
        if self.strategy is None or not self.strategy.cfg.judge:
            return
        if not item.dequeued and any(b.judgment in JUDGING
                                     for b in item.build_set.builds.values()):
            self.every_pass.add(item)
        else:
            self.every_pass.discard(item)

    def judge(self, item: QueueItem, build: Build) -> bool:
        return self.strategy is not None and self.strategy.judge(item, build)

    def review(self, q: ChangeQueue, item: QueueItem) -> None:
        if self.strategy is not None and self.strategy.cfg.judge:
            self.strategy.review(q, item)

    def leave_window(self, item: QueueItem, q: ChangeQueue) -> None:
        if not self.keeps_work:
            super().leave_window(item, q)
        elif item.active:
            self.door.note(item, "window", f"outside the window of {q.window}: keeps its "
                           f"{len(item.build_set.builds)} builds, starts nothing new until it "
                           "moves up (strategy keeps valid work)")

    def _sized(self, q: ChangeQueue, item: QueueItem, broken: bool) -> bool:
        """Learn the item's outcome; True if the strategy set the window."""
        if self.strategy is None:
            return False
        self.strategy.item_done(broken)
        if not self.strategy.cfg.size_window or not q.window:
            return False
        old = q.window
        jobs = len(self.selected(item))
        new = self.pipeline.window.capped(self.strategy.window(q, jobs))
        if new != old:
            self.door.set(q, window=new)
            self.door.note(item, "window", (
                f"queue {q.name} window {old} -> {new}: sized to the broken-change rate "
                f"{self.strategy.learned.broken_rate():.3f} (P(whole window valid) >= "
                f"{self.strategy.window_valid(jobs):.3f}) after {item.display_name} "
                f"{'failed' if broken else 'merged'}"))
        return True

    def window_grow(self, q: ChangeQueue, item: QueueItem) -> None:
        if self._sized(q, item, broken=False):
            return
        cfg = self.pipeline.window
        if not q.window:
            return
        old = q.window
        new = cfg.capped(old + cfg.increase_factor if cfg.increase_type == "linear"
                         else old * max(1, cfg.increase_factor))
        if new > old:
            self.door.set(q, window=new)
            self.door.note(item, "window", f"queue {q.name} window grows {old} -> {new} "
                           f"({cfg.increase_type}"
                           f"{f', ceiling {cfg.ceiling}' if cfg.ceiling else ''}) after "
                           f"{item.display_name} merged")

    def window_shrink(self, q: ChangeQueue, item: QueueItem) -> None:
        if self._sized(q, item, broken=True):
            return
        cfg = self.pipeline.window
        if not q.window:
            return
        old = q.window
        new = old - cfg.decrease_factor if cfg.decrease_type == "linear" \
            else old // max(1, cfg.decrease_factor)
        new = max(q.window_floor, new)
        if new != old:
            self.door.set(q, window=new)
            self.door.note(item, "window", f"queue {q.name} window shrinks {old} -> {new} "
                           f"({cfg.decrease_type}, floor {q.window_floor}) after {item.display_name} "
                           "failed")

    def promote(self, keys: list[str]) -> str | None:
        items = []
        for k in keys:
            found = [i for i in self.state.index.get(k, []) if i.live]
            if not found:
                return f"change {k} is not in pipeline {self.state.name}"
            items.append(found[0])
        queues = {i.queue for i in items}
        if len(queues) != 1:
            return "the changes to promote are in different queues"
        q = self.state.queue_named(queues.pop())
        assert q is not None
        order = items + [i for i in q.items if i not in items]
        seen: set[str] = set()
        for it in order:
            for need in it.needs:
                if need not in seen and any(o.change.key == need for o in order):
                    return (f"cannot promote: {it.display_name} would be ahead of change {need}, "
                            "which it depends on")
            seen.add(it.change.key)
        self.door.reorder(q, order)
        self._left += 1  # the chains of the build sets prepared before are not
        prev = None
        for it in order:
            if it.item_ahead is not prev:
                self.door.link(it, prev)
                self.reset(it, f"promoted: the queue was reordered ({', '.join(keys)} first)")
            prev = it
        return None
