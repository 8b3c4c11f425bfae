"""Gate strategies: judging a failure before resetting, sizing the window.

Zuul's dependent pipeline trusts every failure: the item is failing at once,
everything behind it is reset, the window halves. With flaky tests that is
slow and unfair. A strategy (``strategy:`` of a dependent pipeline, see
``gatekeeper.layout.strategy``) can instead:

* **judge** a failed voting job of a job that is known to flake: the item is
  not failing yet (the items behind keep their builds) while the job is run
  again on the *same* speculative state (ahead of other builds for a node).
  A pass counts the failure as a flake. The failure is trusted when the
  evidence makes a broken change likely enough (``confidence``), or after
  ``reruns`` reruns.
* use **evidence** from the items behind: they are tested on states that
  include the change. One of them passing the same job proves the failure a
  flake at once; their failures make "broken" more likely. When no evidence
  is about to come, the queue **moves on** without the change (it counts as
  failing, those behind are reset, as Zuul would) while its rerun decides:
  a flake is enqueued again at the end instead of being rejected.
* **size the window** to the learned rate of broken changes: the largest
  window that is entirely valid with probability ``window-valid``, within
  the node budget, instead of AIMD.
* **keep work**: items pushed out of the window keep their builds (finished
  and running); nothing new starts until they are back inside.

The probabilities: a job's flake rate f is learned from its recent builds in
this pipeline (failures later counted as flakes among all its results); the
rate b of broken changes from the items that left the queue. A broken change
fails every state that contains it; a good one fails its own state with
probability f; the states behind it that failed too are explained by a
broken change behind it as well as by it (see ``_p_broken``).
Every decision is a note in the item's history (explain, status) and the
judged build's message (the report's job list)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gatekeeper.core.door import Door
from gatekeeper.layout.strategy import StrategyConfig
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import Build, ChangeQueue, QueueItem
from gatekeeper.model.states import BuildResult

if TYPE_CHECKING:
    from gatekeeper.core.manager import PipelineManager

JUDGING = ("suspect", "rerun", "pending")
MAX_EVIDENCE = 50  # items behind looked at for evidence
# Flakes deepen the sized window: the aim P(whole window valid) is lowered by
# up to FLAKE_DEPTH (a fraction of it), fully once FLAKE_SATURATE of the build
# sets flake (bench/gate_strategies.py: a power of (1 - F) either stays short
# of 2x on (b) or costs node parity on (c); without flakes depth only wastes).
FLAKE_DEPTH = 0.15
FLAKE_SATURATE = 0.1


@dataclass
class Learned:
    """What a pipeline has seen (in memory; rebuilt as builds complete)."""

    size: int = 200
    # job -> recent results: True = a failure counted as a flake, False = a pass
    jobs: dict[str, deque[bool]] = field(default_factory=dict)
    items: deque[bool] = field(default_factory=lambda: deque(maxlen=500))  # True = broken

    def _of(self, job: str) -> deque[bool]:
        d = self.jobs.get(job)
        if d is None:
            d = self.jobs[job] = deque(maxlen=self.size)
        return d

    def passed(self, job: str) -> None:
        self._of(job).append(False)

    def flaked(self, job: str, failures: int) -> None:
        d = self._of(job)
        for _ in range(failures):
            d.append(True)

    def seed(self, job: str, results: list[bool]) -> None:
        """Results from the build history (oldest first), as after a restart."""
        self._of(job).extend(results)

    def seen(self, job: str) -> int:
        return len(self.jobs.get(job, ()))

    def flakes(self, job: str) -> int:
        return sum(self.jobs.get(job, ()))

    def flake_rate(self, job: str) -> float:
        """Smoothed: a job never seen to flake still might, a little (a
        failure of it is rerun while it is new, and soon trusted at once)."""
        return (self.flakes(job) + 0.1) / (self.seen(job) + 10.0)

    def broken_rate(self) -> float:
        return min(0.5, max(0.005, (sum(self.items) + 1.0) / (len(self.items) + 10.0)))


def _contains(item: QueueItem, change: Change) -> bool:
    return any(c.number == change.number for c in item.build_set.changes)


class Strategy:
    """The strategy of one dependent pipeline, bound to its manager."""

    def __init__(self, manager: PipelineManager, cfg: StrategyConfig, learned: Learned):
        self.m = manager
        self.cfg = cfg
        self.learned = learned

    @property
    def door(self) -> Door:
        return self.m.door

    # --- builds complete ---------------------------------------------------

    def judge(self, item: QueueItem, build: Build) -> bool:
        """Hold ``build``'s failure for judgment? Learns from passes too."""
        if build.result == BuildResult.SUCCESS and build.voting:
            if build.judgment in ("rerun", "pending"):
                return False  # the verdict (a flake) is given in review
            self.learned.passed(build.job)
            return False
        if not self.cfg.judge or not build.voting or build.result != BuildResult.FAILURE \
                or not item.live or not isinstance(item.change, Change):
            return False
        if build.judgment == "pending":
            return self._pending_failed(item, build)
        if not self.cfg.evidence and build.judgment is None \
                and self._passed_behind(item, build.job) is not None:
            # Not evidence this strategy judges by, but a flake all the same
            # (a state containing this one passed): learn from it.
            self.learned.flaked(build.job, 1)
        seen = self.learned.seen(build.job)
        runs = build.suspect_failures + 1
        if seen < self.cfg.min_history:
            self.door.note(item, "judge", f"{build.job} failed; trusted: only {seen} builds of "
                           f"it seen so far (min-history {self.cfg.min_history})")
            return False
        self.door.set(build, judgment="suspect")
        self.door.note(item, "judge", (
            f"{build.job} failed ({self._times(runs)} on this state); judged before anything "
            f"is reset: {self._record(build.job)}"))
        return True

    # --- every pass ----------------------------------------------------------

    def review(self, q: ChangeQueue, item: QueueItem) -> None:
        if not isinstance(item.change, Change):
            return
        first: dict[str, Build] = {}  # rerun launched this pass -> the failed build
        for b in list(item.build_set.builds.values()):
            if b.judgment not in JUDGING:
                continue
            if b.judgment == "pending":
                if b.result == BuildResult.SUCCESS:
                    self._flake(item, b, "passed on a rerun of the same commit")
                    if q.items[-1] is not item:  # those behind went on without it
                        self._requeue(item, b.job)
                        return
                    continue
                continue  # the queue has moved on without it; its rerun decides
            if b.judgment == "rerun" and b.result == BuildResult.SUCCESS:
                self._flake(item, b, "passed on a rerun of the same commit")
                continue
            passed = self._passed_behind(item, b.job) if self.cfg.evidence else None
            if passed is not None:
                self._flake(item, b, f"passed on {passed.display_name}'s state, which includes it")
                continue
            if b.judgment == "rerun":
                if self.cfg.move_on and not self._evidence_coming(item, first.get(b.uuid, b)):
                    self._move_on(item, b)
                continue  # still running (a failed rerun is a suspect again)
            if self._judging_ahead(item):
                continue  # a change ahead may be what broke it: wait for that verdict
            p = self._p_broken(item, b)
            runs = b.suspect_failures + 1
            if p >= self.cfg.confidence:
                self._broken(item, b, f"P(broken) = {p:.3f} >= {self.cfg.confidence}")
            elif b.suspect_failures < self.cfg.reruns:
                job = self.m.ctx.layout.jobs.get(b.job)
                if job is None:
                    continue
                self.door.note(item, "judge", f"{b.job}: P(broken) = {p:.3f}; rerunning it on "
                               f"the same commit (rerun {runs} of at most {self.cfg.reruns})")
                self.door.set(b, suspect_failures=runs)
                self.m.launch_build(item, job, b.attempt + 1, rerun=b)
                rerun = item.build_set.builds[b.job]
                first[rerun.uuid] = b
                if self.cfg.move_on and not self._evidence_coming(item, b):
                    self._move_on(item, rerun)
            else:
                self._broken(item, b, f"{self._times(runs)} on this state, no rerun left "
                             f"(P(broken) = {p:.3f})")

    def _evidence_coming(self, item: QueueItem, failed: Build) -> bool:
        """Will the nearest item behind that includes it soon say whether it
        passes ``failed.job``? (Its build started no later than ``failed``:
        it should end about when that one did; one started later would keep
        everything waiting.)"""
        if not self.cfg.evidence:
            return False
        assert isinstance(item.change, Change)
        started = failed.start_time if failed.start_time is not None else failed.launch_time
        cur, n = item, 0
        while cur.items_behind and n < MAX_EVIDENCE:
            cur, n = cur.items_behind[0], n + 1
            if _contains(cur, item.change):
                b = cur.build_set.builds.get(failed.job)
                if b is None or b.result is not None:
                    return False
                mine = b.start_time if b.start_time is not None else b.launch_time
                return started is None or (mine is not None and mine <= started)
        return False

    def _move_on(self, item: QueueItem, rerun: Build) -> None:
        """No more evidence is coming soon: the queue goes on without it
        (those behind are tested without it) while its rerun decides. Its
        other builds stop: it is either rejected or tested again."""
        self.door.set(rerun, judgment="pending")
        self.door.note(item, "judge", (
            f"{rerun.job} failed and no state behind that includes it passed it: the items "
            "behind go on without it while its rerun on the same commit decides"))
        for other in item.build_set.builds.values():
            if other.result is None and other.judgment not in JUDGING:
                self.m.ctx.builds.pop(other.uuid, None)
                self.m.ctx.effects.cancel(other.uuid)
                self.door.set(other, result=BuildResult.CANCELED, end_time=self.m.ctx.clock(),
                              message=f"stopped: {rerun.job} failed and is being rerun")

    def _pending_failed(self, item: QueueItem, b: Build) -> bool:
        """The rerun of a change the queue went on without failed too."""
        p = self._p_broken(item, b)
        runs = b.suspect_failures + 1
        job = self.m.ctx.layout.jobs.get(b.job)
        if p >= self.cfg.confidence or b.suspect_failures >= self.cfg.reruns or job is None:
            self._broken(item, b, f"failed {self._times(runs)} on this state (P(broken) = "
                         f"{p:.3f})")
            return False
        self.door.note(item, "judge", f"{b.job} failed its rerun too: P(broken) = {p:.3f}; "
                       f"rerunning it again (rerun {runs} of at most {self.cfg.reruns})")
        self.door.set(b, suspect_failures=runs)
        self.m.launch_build(item, job, b.attempt + 1, rerun=b, judgment="pending")
        return True

    def _requeue(self, item: QueueItem, job: str) -> None:
        """A flake after the queue went on without it: what it was tested on
        is no longer what is ahead of it, so it is tested again from the end."""
        change = item.change
        assert isinstance(change, Change)
        self.m.remove(item, f"{job} failed but passed on a rerun of the same commit (a flake); "
                      "the queue went on without it meanwhile, so it is tested again at the end")
        new = self.m.enqueue(change, trigger=f"a flake of {job} (enqueued again)")
        if new is not None:
            self.door.note(new, "judge", f"enqueued again: {job} flaked while the queue went on "
                           "without this change")

    def _passed_behind(self, item: QueueItem, job: str) -> QueueItem | None:
        assert isinstance(item.change, Change)
        cur, n = item, 0
        while cur.items_behind and n < MAX_EVIDENCE:
            cur, n = cur.items_behind[0], n + 1
            b = cur.build_set.builds.get(job)
            if b is not None and b.result == BuildResult.SUCCESS and _contains(cur, item.change):
                return cur
        return None

    @staticmethod
    def _judging_ahead(item: QueueItem) -> bool:
        cur = item.item_ahead
        while cur is not None:
            if any(b.judgment in JUDGING for b in cur.build_set.builds.values()):
                return True
            cur = cur.item_ahead
        return False

    def _p_broken(self, item: QueueItem, b: Build) -> float:
        """P(the change is broken | every failure of ``b.job`` seen on
        states that contain it)."""
        assert isinstance(item.change, Change)
        f = self.learned.flake_rate(b.job)
        prior = self.learned.broken_rate()
        likelihood = f ** (b.suspect_failures + 1)  # of its own failures, if it is good
        if self.cfg.evidence:
            k, cur, d = 0, item, 0
            while cur.items_behind and d < MAX_EVIDENCE:
                cur, d = cur.items_behind[0], d + 1
                other = cur.build_set.builds.get(b.job)
                if other is not None and _contains(cur, item.change) \
                        and (other.result == BuildResult.FAILURE or other.suspect_failures):
                    k += 1
            # k states behind failed too. If it is good, the first broken change
            # behind it (the j-th) fails every state from there on, and those
            # ahead of that one flaked: the failures are not independent.
            g = (1.0 - prior) * f
            likelihood *= sum(g ** (j - 1) * prior for j in range(1, k + 1)) + g ** k
        return prior / (prior + (1.0 - prior) * likelihood)

    # --- verdicts ------------------------------------------------------------

    def _flake(self, item: QueueItem, b: Build, how: str) -> None:
        failures = b.suspect_failures + (1 if b.result == BuildResult.FAILURE else 0)
        self.learned.flaked(b.job, failures)
        text = (f"{b.job} failed{'' if failures == 1 else ' ' + self._times(failures)}, {how}: "
                f"counted as a flake ({self._record(b.job)})")
        if b.result is None:  # a rerun still running: not needed any more
            self.m.ctx.builds.pop(b.uuid, None)
            self.m.ctx.effects.cancel(b.uuid)
            self.door.set(b, result=BuildResult.CANCELED, end_time=self.m.ctx.clock())
        self.door.set(b, judgment="flake", message=text)
        self.door.note(item, "judge", text)

    def _broken(self, item: QueueItem, b: Build, why: str) -> None:
        text = f"{b.job} failed: trusted, the change is taken to be broken ({why})"
        if b.result is None:  # a rerun still running: not needed any more
            self.m.ctx.builds.pop(b.uuid, None)
            self.m.ctx.effects.cancel(b.uuid)
            self.door.set(b, result=BuildResult.CANCELED, end_time=self.m.ctx.clock())
        self.door.set(b, judgment="broken", message=text)
        self.door.note(item, "judge", text)
        for other in item.build_set.builds.values():
            if other.judgment in ("rerun", "pending") and other.result is None:
                # its other reruns cannot save it now
                self.m.ctx.builds.pop(other.uuid, None)
                self.m.ctx.effects.cancel(other.uuid)
                self.door.set(other, result=BuildResult.CANCELED, end_time=self.m.ctx.clock(),
                              judgment="broken", message=f"not needed: {text}")
        if self.m.pipeline.fail_fast:
            self.m.fail_fast(item, b.job)

    # --- the window ------------------------------------------------------------

    def item_done(self, broken: bool) -> None:
        self.learned.items.append(broken)

    def item_flake_rate(self, jobs: int) -> float:
        """P(a good item's build set of ``jobs`` jobs has a failure that is a
        flake), from the mean learned flake rate of the pipeline's jobs."""
        names = list(self.learned.jobs)
        if not names:
            return 0.0
        f = sum(self.learned.flake_rate(j) for j in names) / len(names)
        return 1.0 - (1.0 - f) ** max(1, jobs)

    def window_valid(self, jobs: int) -> float:
        """The P(whole window valid) aimed at: ``window-valid``, lowered by
        the flake rate. A judged flake resets nothing and the states behind it
        are its evidence (they prove it a flake at once), so where flakes are
        frequent depth pays; without flakes it only wastes builds behind
        broken changes."""
        f = min(1.0, self.item_flake_rate(jobs) / FLAKE_SATURATE)
        return self.cfg.window_valid * (1.0 - FLAKE_DEPTH * f)

    def window(self, q: ChangeQueue, jobs: int) -> int:
        """The largest window with P(no broken change in it) >= the aim."""
        b = self.learned.broken_rate()
        w = int(math.log(self.window_valid(jobs)) / math.log(1.0 - b))
        if self.cfg.nodes:
            w = min(w, max(1, self.cfg.nodes // max(1, jobs)))
        return max(q.window_floor, w)

    # --- words ---------------------------------------------------------------

    @staticmethod
    def _times(n: int) -> str:
        return "once" if n == 1 else "twice" if n == 2 else f"{n} times"

    def _record(self, job: str) -> str:
        return (f"{job} flaked in {self.learned.flakes(job)} of its last "
                f"{self.learned.seen(job)} builds")
