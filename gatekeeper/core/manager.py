"""The pipeline manager: processing a queue item by item (nnfi, reset,
merge, launch, report). Subclasses decide how changes enter queues."""

from __future__ import annotations

import bisect
import heapq
import logging
from operator import attrgetter
from typing import NamedTuple, TypeVar

from gatekeeper.core import jobs as jobsel
from gatekeeper.core.context import Context
from gatekeeper.core.params import build_parameters
from gatekeeper.core.report import MAIL_RESULT, base_fields, compose, job_lines, render
from gatekeeper.interfaces import BuildRequest, MailReport, MergeItem, MergeRequest, ReportResult
from gatekeeper.layout.model import Job, MailAction, Pipeline, ReporterAction
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import (
    BuildCompleted,
    BuildFailing,
    BuildStarted,
    MergeCompleted,
    SubmitCompleted,
    TriggerEvent,
)
from gatekeeper.model.runtime import (
    Build,
    BuildSet,
    ChangeQueue,
    PipelineState,
    QueueItem,
    SpeculativeChange,
)
from gatekeeper.model.states import (
    PASSING_RESULTS,
    RETRYABLE_RESULTS,
    BuildResult,
    BuildSetResult,
    MergeState,
    SubmitState,
)

log = logging.getLogger("gatekeeper.core.manager")


# merge items remembered per build set: enough for the widest window's chain
MERGE_ITEMS_KEPT = 4096
T = TypeVar("T")


def _index(seq: list[T], x: T, lo: int = 0) -> int:
    """Where ``x`` is in ``seq`` at or after ``lo``, else -1 (without
    ``list.index``'s ValueError, whose message is the repr of ``x``)."""
    if x not in seq:
        return -1
    i = seq.index(x)
    return i if i >= lo else -1


_order = attrgetter("order")


def _position(items: list[QueueItem], x: QueueItem, lo: int = 0) -> int:
    """Where ``x`` is in ``items`` (a queue as a pass began: ascending
    ``order``) at or after ``lo``, else -1: a bisection, where ``_index``
    compares every item ahead of it (a thousand with no window ceiling)."""
    j = bisect.bisect_left(items, x.order, lo, key=_order)
    return j if j < len(items) and items[j] is x else -1


class _Prepared(NamedTuple):
    changes: tuple[SpeculativeChange, ...]
    merge_items: tuple[MergeItem, ...]
    left: int  # PipelineManager._left then
    heads_left: int  # its queue's merged heads gone then


class PipelineManager:
    speculative = True  # items are tested on top of the items ahead of them
    # tests: every chain extended is checked against a walk, every position
    # bisected against a scan
    check_chains = False

    def __init__(self, ctx: Context, state: PipelineState):
        self.ctx = ctx
        self.state = state
        self.door = ctx.door
        # build set uuid -> its changes, their merge items and the departure
        # counts when it was prepared: derived data, so no Door; the item
        # behind extends its ahead's items instead of rebuilding one per change
        # of the chain (a manager lives for one layout)
        self._merge_items: dict[str, _Prepared] = {}
        # A chain changes without a reset of the items on it only when an item
        # leaves merged. Merged heads of a queue leave from the front of every
        # chain in it (counted per queue); any other departure or reorder is
        # counted in ``_left``, and an unchanged count says the chains of the
        # build sets prepared since are as they were, less the heads gone.
        self._left = 0
        self._heads_left: dict[str, int] = {}
        # items every dirty pass visits (a strategy's judgment reads the
        # items around them and what was learned; see DependentManager)
        self.every_pass: set[QueueItem] = set()

    @property
    def pipeline(self) -> Pipeline:
        return self.ctx.layout.pipelines[self.state.name]

    # --- entering ---------------------------------------------------------

    def on_trigger(self, event: TriggerEvent, change: Change | Ref, matched: bool) -> None:
        """Dequeue what the event makes stale, then enqueue if it matched."""
        if isinstance(change, Change):
            if event.type == "patchset-created" and self.pipeline.dequeue_on_new_patchset:
                for item in list(self.state.index.get(change.key, [])):
                    if isinstance(item.change, Change) and item.change.patchset < change.patchset \
                            and not self.submitting(item, event):
                        self.remove(item, f"patchset {change.patchset} was uploaded; "
                                    f"patchset {item.change.patchset} is out of date")
            elif event.type == "change-abandoned":
                for item in list(self.state.index.get(change.key, [])):
                    if not self.submitting(item, event):
                        self.remove(item, "the change was abandoned")
            elif event.type == "change-merged":
                for item in list(self.state.index.get(change.key, [])):
                    if not item.merged and not self.submitting(item, event):
                        self.remove(item, "the change was merged outside this pipeline",
                                    merged=True)
        if matched:
            self.enqueue(change, trigger=event.describe())

    def submitting(self, item: QueueItem, event: TriggerEvent) -> bool:
        """True if ``item``'s submit is with Gerrit: the answer decides what
        becomes of it (Gerrit's own change-merged may come first)."""
        if not item.submitting:
            return False
        self.door.note(item, "submit", f"{event.type} while its submit is with Gerrit: "
                       "waiting for Gerrit's answer to the submit")
        return True

    def enqueue(self, change: Change | Ref, trigger: str) -> QueueItem | None:
        if isinstance(change, Change):
            for item in self.state.index.get(change.key, []):
                if item.live and isinstance(item.change, Change) \
                        and item.change.patchset == change.patchset:
                    self.door.note(item, "ignored",
                                   f"{trigger}: already in the queue, not enqueued again")
                    return None
            if not change.is_open:
                self.not_enqueued(change, f"the change is {change.status.lower()}")
                return None
        if not jobsel.select_jobs(self.ctx.layout, self.state.name, change):
            self.not_enqueued(change, f"project {change.project} has no jobs in pipeline "
                              f"{self.state.name} for this change", report=False)
            return None
        return self.add(change, trigger)

    def add(self, change: Change | Ref, trigger: str) -> QueueItem | None:
        raise NotImplementedError

    def not_enqueued(self, change: Change | Ref, reason: str, report: bool = False) -> None:
        if isinstance(change, Change):
            self.door.decision(self.state, change, "not-enqueued", reason)
            if report:
                text = compose(self.pipeline, "not-enqueued", None,
                               {"pipeline": self.state.name, "change": change.id_string,
                                "project": change.project, "branch": change.branch,
                                "status_url": self.ctx.status_url}, "", reason)
                self._send(change, text, {}, False)
        else:
            log.info("%s: %s not enqueued: %s", self.state.name, change.key, reason)

    def new_item(self, change: Change | Ref, queue: ChangeQueue, trigger: str,
                 live: bool = True, needs: tuple[str, ...] = ()) -> QueueItem:
        uuid = self.ctx.new_uuid()
        item = QueueItem(uuid=uuid, change=change, pipeline=self.state.name, queue=queue.name,
                         enqueue_time=self.ctx.clock(),
                         build_set=BuildSet(self.ctx.new_uuid()), live=live, needs=needs,
                         trigger=trigger)
        self.door.add_item(self.state, queue, item)
        return item

    def report_start(self, item: QueueItem) -> None:
        action = self.pipeline.start
        if action is None or not action.send or not isinstance(item.change, Change):
            return
        self.report(item, "start", action, "")
        self.door.set(item, reported_start=True)

    # --- processing -------------------------------------------------------

    def process(self, full: bool = True) -> None:
        """One pass over the queues. ``full``: every item (up to each window's
        end); otherwise only the items the Door saw change since their last
        visit and those whose decisions depend on them (``_walk``)."""
        if full:
            for q in list(self.state.queues):
                self.process_queue(q)
                if q.dynamic and not q.items and q in self.state.queues:
                    self.door.remove_queue(self.state, q)
            return
        dirty = self.door.dirty
        queues = list(self.state.queues)
        name = self.state.name
        todo: dict[ChangeQueue, set[QueueItem]] = {}
        for item in list(dirty.items):
            mine = dirty.queue_of.get(item)
            if mine is None:
                dirty.items.discard(item)
            elif mine.pipeline == name:
                todo.setdefault(mine, set()).add(item)
        for item in list(self.every_pass):
            mine = dirty.queue_of.get(item)
            if item.dequeued or mine is None:
                self.every_pass.discard(item)
            else:
                todo.setdefault(mine, set()).add(item)
        for whole in dirty.full | dirty.moved:
            if whole.pipeline == name:
                todo.setdefault(whole, set())
        heap = []
        for q in todo:
            j = _index(queues, q)
            if j >= 0:  # (not: a queue made during this pass, for the next one)
                heap.append(j)
        heapq.heapify(heap)
        seen = len(dirty.log)
        cur = -1
        while heap:
            k = heapq.heappop(heap)
            if k <= cur:
                continue
            cur = k
            q = queues[k]
            if q in self.state.queues:
                self.process_queue(q, todo.pop(q, set()))
                if q.dynamic and not q.items and q in self.state.queues:
                    self.door.remove_queue(self.state, q)
            # items marked meanwhile in queues further on are visited this pass
            for item in dirty.log[seen:]:
                other = dirty.queue_of.get(item)
                if other is None or other.pipeline != name or item not in dirty.items:
                    continue
                if other not in todo:
                    j = _index(queues, other, cur + 1)
                    if j < 0:
                        continue
                    heapq.heappush(heap, j)
                todo.setdefault(other, set()).add(item)
            seen = len(dirty.log)

    def process_queue(self, q: ChangeQueue, marked: set[QueueItem] | None = None) -> None:
        """Process ``q``'s items in order. ``marked`` (the dirty walk): the
        items to visit at least; the walk adds what depends on them."""
        items = list(q.items)
        dirty = self.door.dirty
        dirty.moved.discard(q)
        if marked is None or q in dirty.full:
            dirty.full.discard(q)
            self._walk_from(q, items, 0, -1, None)
            return
        # Visited: the marked items and those the pass must revisit, in queue
        # order. Skipped items are unchanged since a visit that decided
        # nothing, with the same item ahead, and active inside the window.
        heap: list[int] = []
        pushed: set[QueueItem] = set()
        for item in marked | self.every_pass:
            if item in pushed or dirty.queue_of.get(item) is not q:
                continue
            j = self._position(items, item)
            if j < 0:  # enqueued during this pass: the next one
                continue
            heap.append(j)
            pushed.add(item)
        heapq.heapify(heap)
        gone: list[int] = []  # indexes (in ``items``) of the items that left
        seen_log, seen_gone = len(dirty.log), len(dirty.removed)
        out: dict[QueueItem, QueueItem | None] = {}  # what each visit returned
        n = len(items)
        # The items active form a prefix of the queue (the window's, after a
        # pass): the first inactive one is visited once the window or the
        # positions moved it inside; from the first item outside the window
        # on, the rest is walked as the full walk does (it stops there).
        first_off = bisect.bisect_left(items, True, key=lambda x: not x.active) \
            if q.window else n
        cur = -1
        while True:
            while heap and (heap[0] <= cur or items[heap[0]].dequeued):
                heapq.heappop(heap)
            k = heap[0] if heap else n
            window = q.window
            if window:
                while first_off < n and (first_off <= cur or items[first_off].dequeued):
                    first_off += 1
                if first_off < k and first_off - bisect.bisect_left(gone, first_off) < window:
                    k = first_off
                o = max(cur + 1, window)
                while o < n and (items[o].dequeued or o - bisect.bisect_left(gone, o) < window):
                    o += 1
                if o < n and o <= k:
                    for j in heap:  # outside: nothing runs there until it moves up
                        dirty.items.discard(items[j])
                    at = o - bisect.bisect_left(gone, o)
                    self._walk_from(q, items, o, at - 1, self._nnfi_before(items, o, out))
                    return
            if k >= n:
                return
            if heap and heap[0] == k:
                heapq.heappop(heap)
            item = items[k]
            cur = k
            dirty.items.discard(item)
            pos = k - bisect.bisect_left(gone, k)
            nnfi = self._nnfi_before(items, k, out)
            self.ctx.ops += 1
            nxt = self.process_item(q, item, nnfi, pos)
            out[item] = nxt
            self.visited(item)
            for x in dirty.removed[seen_gone:]:
                j = self._position(items, x)
                if j >= 0:
                    bisect.insort(gone, j)
            seen_gone = len(dirty.removed)
            for x in dirty.log[seen_log:]:
                if x in pushed or x not in dirty.items or dirty.queue_of.get(x) is not q:
                    continue
                j = self._position(items, x, k + 1)
                if j >= 0:  # (ahead of this one: the next pass)
                    heapq.heappush(heap, j)
                    pushed.add(x)
            seen_log = len(dirty.log)
            if self.speculative:
                # the item behind moves if what it is now tested on changed
                j = k + 1
                while j < n and items[j].dequeued:
                    j += 1
                if j < n and items[j] not in pushed and self._ahead(items[j]) is not nxt:
                    pushed.add(items[j])
                    heapq.heappush(heap, j)

    def _position(self, items: list[QueueItem], x: QueueItem, lo: int = 0) -> int:
        j = _position(items, x, lo)
        if self.check_chains:
            assert j == _index(items, x, lo), (x, j)
        return j

    @staticmethod
    def _ahead(item: QueueItem) -> QueueItem | None:
        ahead = item.item_ahead
        return None if ahead is not None and not ahead.live else ahead

    def _nnfi_before(self, items: list[QueueItem], k: int,
                     out: dict[QueueItem, QueueItem | None]) -> QueueItem | None:
        """What the full walk would carry to ``items[k]``: the return of the
        visit of the item before it, or for one not visited (its ahead is its
        nnfi, as after every pass) itself if it is not failing."""
        j = k - 1
        while j >= 0 and items[j].dequeued:
            j -= 1
        if j < 0:
            return None
        prev = items[j]
        if prev in out:
            return out[prev]
        if prev.live and not prev.failing_reasons:
            return prev
        return self._ahead(prev) if self.speculative else None

    def _walk_from(self, q: ChangeQueue, items: list[QueueItem], start: int, pos: int,
                   nnfi: QueueItem | None) -> None:
        dirty = self.door.dirty
        for item in items[start:] if start else items:
            if item.dequeued:  # left during this pass (e.g. the head merged)
                continue
            dirty.items.discard(item)
            pos += 1
            if q.window and pos >= q.window:
                # Outside the window nothing runs (the window shrank past it:
                # its builds stop, or are kept by a strategy). Inactive and
                # left alone: so is everything behind it, and the rest of
                # the queue costs nothing.
                if not item.active and (item.build_set.is_fresh or self.keeps_work):
                    break
                if not item.build_set.is_fresh:
                    self.leave_window(item, q)
                self.door.set(item, active=False)
                self.door.note(item, "window", f"outside the window of {q.window}; waiting")
                continue
            self.ctx.ops += 1
            nnfi = self.process_item(q, item, nnfi, pos)
            self.visited(item)
            if item.dequeued:
                pos -= 1  # it no longer takes a place in the window

    def visited(self, item: QueueItem) -> None:
        """``item`` was just processed (the dependent manager tracks judgments)."""

    def process_item(self, q: ChangeQueue, item: QueueItem, nnfi: QueueItem | None,
                     pos: int) -> QueueItem | None:
        if item.submitting:
            # At the head, done, waiting for Gerrit: the items behind are tested
            # on top of it and cannot finish before it (merges stay in order).
            return item
        ahead = item.item_ahead
        if ahead is not None and not ahead.live:
            ahead = None
        actionable = q.window == 0 or pos < q.window
        if self.door.set(item, active=actionable):
            if actionable:
                self.door.note(item, "window", f"inside the window ({pos + 1} of {q.window or 'unlimited'}); active")
            else:
                self.door.note(item, "window", f"outside the window of {q.window}; not launching")
        if self.speculative and ahead is not nnfi:
            if not self.move(item, ahead, nnfi):
                return nnfi
        if actionable and item.live and self.prepare(item):
            self.launch_jobs(item)
        self.review(q, item)
        if item.dequeued:  # a strategy enqueued it again
            return nnfi
        failing = self.failing_reasons(item)
        self.door.set(item, failing_reasons=tuple(failing))
        if not item.live and not item.items_behind:
            self.remove(item, "no change that needs it is queued behind it any more",
                        merged=True)
            return nnfi
        if ahead is None and item.live and self.is_complete(item):
            self.finish(q, item)
            return item if item.submitting else nnfi
        if not failing and item.live:
            return item
        return nnfi

    def move(self, item: QueueItem, ahead: QueueItem | None, nnfi: QueueItem | None) -> bool:
        """``ahead`` is failing: test ``item`` on ``nnfi`` instead. False if it
        was dequeued because it needs a change being skipped."""
        skipped = []
        cur = ahead
        while cur is not None and cur is not nnfi:
            skipped.append(cur)
            cur = cur.item_ahead
        keys = {s.change.key: s for s in skipped}
        for need in item.needs:
            if need in keys:
                dep = keys[need]
                self.remove(item, f"it depends on {dep.display_name}, which is failing "
                            f"({'; '.join(dep.failing_reasons) or 'removed'})",
                            report="failure")
                return False
        why = "; ".join(ahead.failing_reasons) if ahead is not None else ""
        where = nnfi.display_name if nnfi is not None else "the branch tip"
        text = (f"{ahead.display_name if ahead else 'the item ahead'} ahead of it is failing"
                f"{' (' + why + ')' if why else ''}; now tested on top of {where}")
        self.door.link(item, nnfi)
        self.door.note(item, "nnfi", f"nearest non-failing item ahead: {where}")
        self.reset(item, text)
        return True

    def reset(self, item: QueueItem, reason: str) -> None:
        """Throw away ``item``'s build set and those of every item behind it."""
        # (item, the reason, or the item ahead whose reset is the reason: the
        # text is made only for items that have something to reset)
        todo: list[tuple[QueueItem, str | QueueItem]] = [(item, reason)]
        while todo:
            it, why = todo.pop()
            self.ctx.ops += 1
            if it.build_set.is_fresh and not it.active and not self.keeps_work:
                # Waiting behind the window: so is everything behind it (the
                # invariant process_queue stops on), nothing to reset there,
                # and a reset costs the window, not the queue.
                continue
            if not it.build_set.is_fresh:
                text = why if isinstance(why, str) else f"{why.display_name} ahead of it was reset"
                self.cancel_builds(it, text)
                self.ctx.merges.pop(it.build_set.merge_request or "", None)
                self.door.new_build_set(it, BuildSet(self.ctx.new_uuid()))
                self.door.set(it, failing_reasons=())
                self.door.note(it, "reset", text)
            for b in it.items_behind:
                todo.append((b, it))

    def cancel_builds(self, item: QueueItem, why: str,
                      mark: BuildResult | None = None, keep: str | None = None) -> None:
        for build in list(item.build_set.builds.values()):
            if build.result is not None or build.job == keep:
                continue
            self.ctx.builds.pop(build.uuid, None)
            self.ctx.effects.cancel(build.uuid)
            self.door.note(item, "cancel", f"{build.job} cancelled: {why}")
            if mark:
                self.door.set(build, result=mark, end_time=self.ctx.clock(), message=why)

    def speculative_chain(self, item: QueueItem) -> list[QueueItem]:
        chain = [item]
        if self.speculative:
            cur = item.item_ahead
            while cur is not None:
                chain.append(cur)
                cur = cur.item_ahead
        chain.reverse()
        return chain

    def prepare(self, item: QueueItem) -> bool:
        """Ask for the speculative merge once; True when it is ready."""
        bs = item.build_set
        if bs.merge_state == MergeState.COMPLETE:
            return bool(bs.merged)
        if bs.merge_state == MergeState.PENDING:
            return False
        base = item.item_ahead.uuid if self.speculative and item.item_ahead else None
        c = item.change
        if isinstance(c, Ref):
            spec = SpeculativeChange(c.project, c.branch or "", c.ref, revision=c.newrev)
            self.door.set(bs, changes=(spec,), base_item=base, merge_state=MergeState.COMPLETE,
                          merged=True, commits={c.project: c.newrev} if c.newrev else {},
                          ref=c.ref)
            return True
        ahead = item.item_ahead if self.speculative else None
        extended = self._extend(item, ahead) if ahead is not None else None
        if extended is not None:
            changes, merge_items = extended
        else:
            changes, merge_items = self._walk_chain(item)
        if self.check_chains:
            assert (changes, merge_items) == self._walk_chain(item, reuse=False), item
        if len(self._merge_items) >= MERGE_ITEMS_KEPT:
            del self._merge_items[next(iter(self._merge_items))]  # the oldest
        self._merge_items[bs.uuid] = _Prepared(changes, merge_items, self._left,
                                               self._heads_left.get(item.queue, 0))
        uuid = self.ctx.new_uuid()
        request = MergeRequest(uuid, merge_items,
                               ref_name=f"refs/gatekeeper/{c.branch}/Z{bs.uuid}")
        self.door.set(bs, changes=changes, base_item=base, merge_state=MergeState.PENDING,
                      merge_request=uuid)
        self.ctx.merges[uuid] = (item, bs)
        self.door.note(item, "merge", "speculative merge requested: "
                       + self._on_top(c.id_string, changes))
        self.ctx.effects.merge(request)
        return False

    def _extend(self, item: QueueItem, ahead: QueueItem) -> tuple[
            tuple[SpeculativeChange, ...], tuple[MergeItem, ...]] | None:
        """``item``'s chain as the item ahead's plus ``item``, less the heads
        that merged since it was prepared; None when that is not known to be
        its chain (then it is walked). Costs no Python step per change of the
        chain: a queue with no window ceiling keeps a thousand on it."""
        known = self._merge_items.get(ahead.build_set.uuid)
        if known is None or known.changes is not ahead.build_set.changes \
                or known.left != self._left:
            return None
        drop = self._heads_left.get(item.queue, 0) - known.heads_left
        if not 0 <= drop < len(known.changes):
            return None
        q = self.state.queue_named(item.queue)
        head = q.items[0].change if q is not None and q.items else None
        first = known.changes[drop]
        if not isinstance(head, Change) or (first.project, first.number, first.patchset) \
                != (head.project, head.number, head.patchset):
            return None  # (a Ref at the head, or a head not on the chain)
        spec = self._spec(item.change)
        return (known.changes[drop:] + (spec,),
                known.merge_items[drop:] + (self._merge_item(spec),))

    def _walk_chain(self, item: QueueItem, reuse: bool = True) -> tuple[
            tuple[SpeculativeChange, ...], tuple[MergeItem, ...]]:
        """The changes and merge items of ``item``'s chain, the ones of the item
        ahead extended when it was prepared on this same chain."""
        chain = [x for x in self.speculative_chain(item) if isinstance(x.change, Change)]
        ahead_item = chain[-2] if len(chain) > 1 and reuse else None
        known_changes = ahead_item.build_set.changes if ahead_item is not None else ()
        if ahead_item is not None and len(known_changes) == len(chain) - 1:
            # The item ahead was prepared on this same chain: extend its state
            # instead of rebuilding it.
            changes = known_changes + (self._spec(item.change),)
            known = self._merge_items.get(ahead_item.build_set.uuid)
        else:
            changes = tuple(self._spec(it.change) for it in chain)
            known = None
        if known is not None and known.changes is known_changes:
            return changes, known.merge_items + (self._merge_item(changes[-1]),)
        return changes, tuple(self._merge_item(x) for x in changes)

    def _merge_item(self, x: SpeculativeChange) -> MergeItem:
        proj = self.ctx.layout.projects.get(x.project)
        return MergeItem(x.project, x.branch, x.number, x.patchset, x.ref, x.revision,
                         proj.merge_mode if proj else "merge-resolve")

    @staticmethod
    def _on_top(what: str, changes: tuple[SpeculativeChange, ...]) -> str:
        """``what`` on top of the changes ahead in words, naming at most the
        last five (a note must not grow with the queue: the chain is in the
        build set)."""
        ahead = [x.id_string for x in changes[-6:-1]]
        if len(changes) > 6:
            ahead.insert(0, f"{len(changes) - 6} more")
        return f"{what} on top of {', '.join(ahead)}" if ahead else f"{what} on the branch tip"

    @staticmethod
    def _spec(x: Change | Ref) -> SpeculativeChange:
        assert isinstance(x, Change)
        return SpeculativeChange(x.project, x.branch, x.ref, x.number, x.patchset, x.revision)

    def on_merge_completed(self, item: QueueItem, bs: BuildSet, ev: MergeCompleted) -> None:
        if ev.merged:
            self.door.set(bs, merge_state=MergeState.COMPLETE, merged=True, commits=dict(ev.commits),
                          ref=ev.ref, git_url=ev.url)
            self.door.note(item, "merge", f"speculative state ready: {ev.ref}")
            return
        if ev.error:
            why = f"the merger could not prepare the speculative state: {ev.error}"
        else:
            ahead = [c.id_string for c in bs.changes[:-1]]
            who = ev.conflict_change or item.display_name
            on = (f"on top of {', '.join(ahead)}" if ahead
                  else f"on the tip of {item.change.branch}")
            why = f"{who} does not merge {on}"
            if ev.conflict_files:
                why += f" (conflict in {', '.join(ev.conflict_files)})"
        self.door.set(bs, merge_state=MergeState.COMPLETE, merged=False, merge_error=why,
                      merge_infra=bool(ev.error))
        self.door.note(item, "merge", why)

    def selected(self, item: QueueItem) -> list[jobsel.SelectedJob]:
        return jobsel.select_jobs(self.ctx.layout, self.state.name, item.change)

    def launch_jobs(self, item: QueueItem) -> None:
        selected = self.selected(item)
        bs = item.build_set
        for job, why in jobsel.jobs_to_skip(selected, bs):
            self.door.add_build(bs, Build(self.ctx.new_uuid(), job.name, job.voting,
                                          result=BuildResult.SKIPPED, message=why))
            self.door.note(item, "skip", f"{job.name} skipped: {why}")
        for job in jobsel.jobs_to_launch(selected, bs):
            self.launch_build(item, job, 1)

    def launch_build(self, item: QueueItem, job: Job, attempt: int,
                     rerun: Build | None = None, judgment: str = "rerun") -> None:
        """Launch ``job`` for ``item``; ``rerun``: the build of a gate
        strategy's rerun on the same state this one carries on (it goes
        ahead of normal builds for a node)."""
        uuid = self.ctx.new_uuid()
        bs = item.build_set
        params = build_parameters(self.pipeline, item, job, uuid, self.ctx.git_url)
        request = BuildRequest(uuid, job.name, job.label, params,
                               precedence="high" if rerun else self.pipeline.precedence,
                               timeout=job.timeout,
                               run=job.run, artifacts=job.artifacts, projects=job.projects,
                               hold_on_failure=job.hold_on_failure,
                               failure_output=tuple(p.pattern for p in job.failure_output))
        self.door.add_build(bs, Build(uuid, job.name, job.voting, attempt,
                                      launch_time=self.ctx.clock(),
                                      judgment=judgment if rerun else None,
                                      suspect_failures=rerun.suspect_failures if rerun else 0))
        self.ctx.builds[uuid] = (item, bs)
        on = self._on_top(item.display_name, bs.changes) if bs.changes else item.display_name
        self.door.note(item, "launch", f"{job.name} launched (attempt {attempt}) "
                       f"as {uuid[:7]} testing {on}")
        self.ctx.effects.launch(request)

    def on_build_started(self, item: QueueItem, build: Build, ev: BuildStarted) -> None:
        self.door.set(build, start_time=self.ctx.clock(), worker=ev.worker, node=ev.node,
                      provider=ev.provider, url=ev.url or build.url)

    def on_build_failing(self, item: QueueItem, build: Build, ev: BuildFailing) -> None:
        """Known to fail before it ends: counts as failed now, unless a strategy
        judges this pipeline's failures (it needs the build's end for that)."""
        self.door.set(build, failing=ev.pattern)
        trusted = self.trusts_early_failure()
        self.door.note(item, "build", f"{build.job} is failing: its output matched "
                       f"failure-output /{ev.pattern}/"
                       + ("" if trusted else "; judged when it ends (gate strategy)"))
        if trusted and self.pipeline.fail_fast and build.voting:
            self.fail_fast(item, build.job, running_on=True)

    def trusts_early_failure(self) -> bool:
        return True

    def on_build_completed(self, item: QueueItem, build: Build, ev: BuildCompleted) -> None:
        now = self.ctx.clock()
        job = self.ctx.layout.jobs.get(build.job)
        start = build.start_time if build.start_time is not None else build.launch_time
        if (ev.result in RETRYABLE_RESULTS and ev.retry and job is not None
                and build.attempt < job.attempts):
            self.door.set(build, result=ev.result, end_time=now, start_time=start,
                          message=ev.message)
            why = f": {ev.message}" if ev.message else ""
            self.door.note(item, "retry", f"{build.job} was {ev.result}{why} (attempt "
                           f"{build.attempt} of {job.attempts}): launching it again")
            self.launch_build(item, job, build.attempt + 1,
                              rerun=build if build.judgment in ("rerun", "pending") else None,
                              judgment=build.judgment or "rerun")
            return
        self.door.set(build, result=ev.result, end_time=now, start_time=start,
                      url=ev.url or build.url, node=ev.node or build.node,
                      worker=ev.worker or build.worker, message=ev.message)
        self.door.note(item, "build", f"{build.job} {ev.result}"
                       + ("" if build.voting else " (non-voting)"))
        if self.judge(item, build):
            return  # a strategy judges this failure before it counts
        if self.pipeline.fail_fast and build.voting and ev.result not in PASSING_RESULTS:
            self.fail_fast(item, build.job)

    def fail_fast(self, item: QueueItem, job: str, running_on: bool = False) -> None:
        """Cancel the item's other builds; ``running_on``: ``job`` is failing but
        runs on to its end (for its logs)."""
        why = f"fail-fast: {job} {'is failing' if running_on else 'failed'}"
        self.cancel_builds(item, why, mark=BuildResult.CANCELED,
                           keep=job if running_on else None)
        bs = item.build_set
        for s in self.selected(item):
            if s.job.name not in bs.builds:
                self.door.add_build(bs, Build(self.ctx.new_uuid(), s.job.name, s.job.voting,
                                              result=BuildResult.SKIPPED, message=why))

    # --- gate strategy hooks (the dependent manager binds them) ------------

    keeps_work = False  # items pushed out of the window keep their builds

    def judge(self, item: QueueItem, build: Build) -> bool:
        """``build`` completed: True if its failure is held for judgment."""
        return False

    def review(self, q: ChangeQueue, item: QueueItem) -> None:
        """Decide what can be decided about failures under judgment."""

    def leave_window(self, item: QueueItem, q: ChangeQueue) -> None:
        """``item`` (not fresh) is now outside the window of ``q``."""
        self.reset(item, f"outside the window of {q.window}; its builds stop until it moves up")

    # --- outcomes ---------------------------------------------------------

    def failing_reasons(self, item: QueueItem) -> list[str]:
        bs = item.build_set
        out = []
        if bs.merge_state == MergeState.COMPLETE and not bs.merged:
            out.append(bs.merge_error or "it does not merge")
        failed = jobsel.failed_voting_jobs(self.selected(item), bs,
                                           early=self.trusts_early_failure())
        if failed:
            out.append(f"voting job{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}")
        return out

    def is_complete(self, item: QueueItem) -> bool:
        bs = item.build_set
        if bs.merge_state == MergeState.COMPLETE and not bs.merged:
            return True
        if bs.merge_state != MergeState.COMPLETE:
            return False
        return jobsel.all_complete(self.selected(item), bs)

    def finish(self, q: ChangeQueue, item: QueueItem) -> None:
        """``item`` is at the head with every job done: report, submit, dequeue."""
        bs = item.build_set
        if not self.selected(item):
            self.remove(item, "no jobs left for it in this pipeline")
            return
        if bs.merge_state == MergeState.COMPLETE and not bs.merged:
            self.door.set(bs, result=BuildSetResult.MERGER_FAILURE)
            self.report(item, "merge-error" if bs.merge_infra else "merge-failure",
                        self.merge_failure_action(), bs.merge_error or "")
            self.window_shrink(q, item)
            self.remove(item, f"merge failure: {bs.merge_error}")
            return
        failed = jobsel.failed_voting_jobs(self.selected(item), bs)
        if failed:
            self.door.set(bs, result=BuildSetResult.FAILURE)
            self.report(item, "failure", self.pipeline.failure, "")
            self.window_shrink(q, item)
            self.remove(item, f"it failed: {', '.join(failed)}")
            return
        self.door.set(bs, result=BuildSetResult.SUCCESS)
        action = self.pipeline.success
        if action is not None and action.submit and action.send \
                and isinstance(item.change, Change):
            self.submit(item, action)  # finished by on_submit_completed
            return
        self.report(item, "success", action, "")
        if action is not None and action.submit and action.send:  # a ref: nothing to submit
            self.door.set(item, merged=True)
            self.door.note(item, "submit", f"{item.display_name} submitted")
            self.window_grow(q, item)
        self.remove(item, "reported success", merged=True)

    def submit(self, item: QueueItem, action: ReporterAction) -> None:
        """Decide the success report with its submit, recorded before it is
        sent; Gerrit's answer comes back as a ``SubmitCompleted`` event."""
        c = item.change
        assert isinstance(c, Change)
        if action.smtp is not None:
            self.mail(item, "success", action, action.smtp, "")
        key = self.door.decide_report(item, "success")
        message = self._message(item, "success", action, "")
        labels = dict(action.labels)
        self.door.set(item, submit_state=SubmitState.SUBMITTING, submit_key=key)
        self.ctx.submits[key] = item
        votes = " ".join(f"{k}{v:+d}" for k, v in labels.items())
        self.door.note(item, "submit", f"success reported{' ' + votes if votes else ''}; "
                       "submitting: waiting for Gerrit's answer")
        try:
            self.ctx.effects.submit(key, c, message, labels)
        except Exception as e:  # an adapter must not leave it waiting forever
            log.exception("submitting %s failed", c.id_string)
            self.on_submit_completed(item, SubmitCompleted(key, False, f"{type(e).__name__}: {e}"))

    def on_submit_completed(self, item: QueueItem, ev: SubmitCompleted) -> None:
        """Gerrit answered ``item``'s submit: merged, or a merge failure."""
        self.ctx.submits.pop(ev.key, None)
        q = self.state.queue_named(item.queue)
        if q is None or item.dequeued or not item.submitting:
            return
        if not ev.ok:
            why = f"Gerrit did not submit {item.display_name}: {ev.error or 'no reason given'}"
            self.door.set(item, submit_state=SubmitState.FAILED)
            self.door.set(item.build_set, result=BuildSetResult.MERGER_FAILURE)
            self.door.note(item, "submit", why)
            self.report(item, "merge-failure", self.merge_failure_action(), why)
            self.window_shrink(q, item)
            self.remove(item, why)
            return
        self.door.set(item, merged=True, submit_state=SubmitState.SUBMITTED)
        self.door.note(item, "submit", f"{item.display_name} submitted")
        self.window_grow(q, item)
        self.remove(item, "reported success", merged=True)

    def merge_failure_action(self) -> ReporterAction | None:
        p = self.pipeline
        return p.merge_failure if p.merge_failure is not None else p.failure

    def report(self, item: QueueItem, kind: str, action: ReporterAction | None,
               reason: str) -> ReportResult:
        c = item.change
        if action is not None and action.smtp is not None:
            self.mail(item, kind, action, action.smtp, reason)
        if action is None or not action.send or not isinstance(c, Change):
            self.door.note(item, "report", f"{kind}: nothing to report to Gerrit")
            return ReportResult(True)
        self.door.decide_report(item, kind)
        message = self._message(item, kind, action, reason)
        labels = dict(action.labels)
        result = self._send(c, message, labels, action.submit)
        votes = " ".join(f"{k}{v:+d}" for k, v in labels.items())
        self.door.note(item, "report", f"{kind} reported{' ' + votes if votes else ''}"
                       + ("" if result.ok else f"; Gerrit said: {result.error}"))
        return result

    def _message(self, item: QueueItem, kind: str, action: ReporterAction, reason: str) -> str:
        fields = base_fields(self.pipeline, item, self.ctx.status_url)
        jobs = "" if kind == "start" else job_lines(self.selected(item), item, fields)
        return compose(self.pipeline, kind, action, fields, jobs, reason)

    def mail(self, item: QueueItem, kind: str, action: ReporterAction, smtp: MailAction,
             reason: str) -> None:
        """One digest for the item's build set: each job's line in one mail."""
        fields = base_fields(self.pipeline, item, self.ctx.status_url)
        jobs = "" if kind == "start" else job_lines(self.selected(item), item, fields)
        body = compose(self.pipeline, kind, action, fields, jobs, reason)
        subject = " ".join(render(smtp.subject, dict(fields, result=MAIL_RESULT[kind],
                                                     jobs="", reason=reason)).split())
        try:
            self.ctx.effects.mail(MailReport(
                smtp.to, smtp.sender, subject, body + "\n",
                key=f"mail/{item.uuid}/{item.build_set.uuid}/{kind}"))
        except Exception:  # a mailer must not take the scheduler down
            log.exception("mailing the %s report of %s failed", kind, item.display_name)
            return
        self.door.note(item, "report", f"{kind} mailed to {', '.join(smtp.to)}")

    def _send(self, change: Change, message: str, labels: dict[str, int],
              submit: bool) -> ReportResult:
        try:
            return self.ctx.effects.report(change, message, labels, submit)
        except Exception as e:  # a reporter must not take the scheduler down
            log.exception("reporting on %s failed", change.id_string)
            return ReportResult(False, f"{type(e).__name__}: {e}")

    def window_grow(self, q: ChangeQueue, item: QueueItem) -> None:
        pass

    def window_shrink(self, q: ChangeQueue, item: QueueItem) -> None:
        pass

    # --- leaving ----------------------------------------------------------

    def remove(self, item: QueueItem, reason: str, merged: bool = False,
               report: str | None = None) -> None:
        """Dequeue ``item``. Unless it merged, whatever was tested on top of it is
        reset and whatever depends on it is dequeued too."""
        q = self.state.queue_named(item.queue)
        if q is None or item.dequeued:
            return
        behind = list(item.items_behind)
        self.cancel_builds(item, f"{item.display_name} dequeued",
                           mark=BuildResult.CANCELED if report is not None else None)
        if report is not None:
            self.report(item, report, self.pipeline.failure, f"Removed from the queue: {reason}.")
        self.ctx.merges.pop(item.build_set.merge_request or "", None)
        self.ctx.submits.pop(item.submit_key or "", None)
        self.door.note(item, "dequeue", reason)
        if merged and q.items and q.items[0] is item:
            self._heads_left[q.name] = self._heads_left.get(q.name, 0) + 1
        else:
            self._left += 1
        self.door.remove_item(self.state, q, item, reason)
        self.ctx.finished.append(item)
        if not merged and self.speculative:
            for b in behind:
                self.reset(b, f"{item.display_name} ahead of it left the queue ({reason})")
        if not merged:
            for other in list(q.items):
                if item.change.key in other.needs and not other.dequeued:
                    self.dependency_left(other, item, reason)
        if q.dynamic and not q.items and q in self.state.queues:
            self.door.remove_queue(self.state, q)

    def dependency_left(self, item: QueueItem, dep: QueueItem, reason: str) -> None:
        """``dep`` left without merging: ``item`` cannot be tested as queued."""
        self.remove(item, f"it depends on {dep.display_name}, which left the queue ({reason})",
                    report="failure" if item.live else None)

    def dequeue_change(self, key: str, reason: str) -> bool:
        items = list(self.state.index.get(key, []))
        for item in items:
            self.remove(item, reason)
        return bool(items)

    def promote(self, keys: list[str]) -> str | None:
        return f"pipeline {self.state.name} does not support promote"
