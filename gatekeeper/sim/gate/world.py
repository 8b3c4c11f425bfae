"""The world around the real scheduler in virtual time: simulated Gerrit
(source and reporter), merger, launcher and a node pool of capacity C.

Everything is driven by one event heap; nothing here runs a thread or reads
the wall clock. A build's fate is decided when it starts from the workload's
probabilities: it fails if the state it tests contains a bad change, or if it
flakes (per tested state: all jobs of one build set together; per job: each
build alone)."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from gatekeeper.interfaces import BuildRequest, EventSink, MergeRequest, ReportResult
from gatekeeper.model.buildparams import BuildParameters
from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.events import (
    BuildCompleted,
    BuildFailing,
    BuildStarted,
    EventApproval,
    MergeCompleted,
    TriggerEvent,
)
from gatekeeper.model.states import BuildResult
from gatekeeper.sim.gate.workload import Duration, Workload

START = 1_700_000_000.0  # virtual epoch of minute 0
# Read per change of a state at C speed: a state is as deep as the queue.
_number = attrgetter("number")
_project = attrgetter("project")


@dataclass(eq=False)
class SimBuild:
    request: BuildRequest
    result: BuildResult
    minutes: float
    start: float | None = None
    state: str = "waiting"  # waiting | running | done | cancelled
    flake: bool = False  # failed only because it flaked
    # minutes into the run at which it reports failing (the job's
    # failure-output matched); it runs on, holding its node, to ``minutes``
    signal: float | None = None


@dataclass
class Outcome:
    kind: str  # merged | rejected
    time: float


@dataclass
class Counters:
    builds: int = 0  # builds that got a node
    cancelled: int = 0  # running builds cancelled
    node_seconds: float = 0.0
    useful: set[str] = field(default_factory=set)  # uuids of builds in a reported build set
    flake_builds: int = 0
    early_signals: int = 0  # failing builds that said so before they ended
    max_busy: int = 0  # most nodes in use at once


class World:
    """Source, Reporter, Launcher and MergeClient of one simulated run."""

    def __init__(self, wl: Workload, seed: int):
        self.wl = wl
        self.rng = random.Random(seed)
        self.now = START
        self._heap: list[tuple[float, int, Callable[[object], None], object]] = []
        self._seq = 0
        self.results: EventSink = lambda ev: None
        self.triggers: Callable[[TriggerEvent], None] = lambda ev: None
        self.final_builds: Callable[[Change], list[str]] = lambda c: []
        self.changes: dict[int, Change] = {}
        self.bad: set[int] = set()
        self.arrival: dict[int, float] = {}
        self.outcome: dict[int, Outcome] = {}
        self.builds: dict[str, SimBuild] = {}
        self._busy = 0
        self._waiting: dict[str, deque[SimBuild]] = {"high": deque(), "normal": deque(),
                                                     "low": deque()}
        self._launches: dict[tuple[str, str], int] = {}  # (state ref, job) -> launches so far
        self._state_flakes: dict[tuple[str, int], bool] = {}
        self.c = Counters()
        per_build = wl.flake if wl.flake_per == "job" else 0.0
        if per_build and len(wl.jobs) > 1:
            per_build = 1.0 - (1.0 - per_build) ** (1.0 / len(wl.jobs))
        self._per_build = per_build

    # --- virtual time -------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def at(self, t: float, fn: Callable[[object], None], arg: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, arg))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def fire_due(self) -> None:
        """Advance to the next event time and fire every event due then."""
        t = self._heap[0][0]
        self.now = t
        while self._heap and self._heap[0][0] <= t:
            _, _, fn, arg = heapq.heappop(self._heap)
            fn(arg)

    # --- arrivals (Gerrit) ----------------------------------------------------

    def arrival_times(self) -> list[float]:
        wl = self.wl
        times = [0.0] * wl.backlog + list(wl.times)
        if wl.rate:
            t, end = 0.0, wl.hours * 60.0
            while True:
                t += self.rng.expovariate(wl.rate / 60.0)
                if t >= end:
                    break
                times.append(t)
        return sorted(times)

    def schedule_arrivals(self) -> int:
        times = self.arrival_times()
        for t in times:
            self.at(START + t * 60.0, self._arrive)
        return len(times)

    def _arrive(self, _: object) -> None:
        n = len(self.changes) + 1
        project = self.wl.projects[0] if len(self.wl.projects) == 1 \
            else self.rng.choice(self.wl.projects)
        c = Change(project=project, branch="master", number=n, patchset=1,
                   change_id=f"I{n:040x}", ref=f"refs/changes/{n % 100:02d}/{n}/1",
                   revision=f"{n:040x}", subject=f"change {n}", owner_username="owner",
                   approvals=[Approval("Code-Review", 2, "core"), Approval("Workflow", 1, "core")])
        self.changes[n] = c
        self.arrival[n] = self.now
        if self.rng.random() < self.wl.bad:
            self.bad.add(n)
        self.triggers(TriggerEvent(
            "comment-added", project=project, branch="master", change_number=n, patchset=1,
            ref=c.ref, approvals=(EventApproval("Workflow", 1, 0),), account_username="core",
            timestamp=self.now))

    # --- Source -------------------------------------------------------------

    def get_change(self, number: int, patchset: int | None = None,
                   refresh: bool = False) -> Change | None:
        return self.changes.get(number)

    def get_changes_by_change_id(self, change_id: str) -> list[Change]:
        return []

    def get_ref(self, project: str, ref: str, oldrev: str = "", newrev: str = "") -> Ref:
        return Ref(project, ref, oldrev, newrev)

    def get_project_branches(self, project: str) -> list[str]:
        return ["master"]

    def invalidate(self, change_number: int | None = None) -> None:
        pass

    # --- Reporter -----------------------------------------------------------

    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool = False) -> ReportResult:
        n = change.number
        if submit:
            self._reported(change, "merged")
            self.changes[n] = Change(**{**change.__dict__, "status": "MERGED"})
            self.triggers(TriggerEvent("change-merged", project=change.project,
                                       branch=change.branch, change_number=n,
                                       patchset=change.patchset, timestamp=self.now))
        elif any(v < 0 for v in labels.values()) and n not in self.outcome:
            self._reported(change, "rejected")
        return ReportResult(True)

    def _reported(self, change: Change, kind: str) -> None:
        self.outcome[change.number] = Outcome(kind, self.now)
        self.c.useful.update(self.final_builds(change))

    # --- Merger -------------------------------------------------------------

    def merge(self, request: MergeRequest) -> None:
        commits = dict.fromkeys(map(_project, request.items), request.uuid)
        ev = MergeCompleted(request.uuid, True, commits=commits, ref=request.ref_name,
                            url="sim://merger")
        if self.wl.merge_time:
            self.at(self.now + self.wl.merge_time * 60.0, lambda _: self.results(ev))
        else:
            self.results(ev)

    # --- Launcher and node pool ---------------------------------------------

    def _minutes(self, d: Duration) -> float:
        if not d.sigma:
            return d.mean
        mu = math.log(d.mean) - d.sigma ** 2 / 2.0
        return self.rng.lognormvariate(mu, d.sigma)

    def _flakes(self, request: BuildRequest, ref: str) -> bool:
        wl = self.wl
        project = request.parameters.get("ZUUL_PROJECT", "")
        key = (ref, request.job)
        k = self._launches.get(key, 0) + 1
        self._launches[key] = k
        p_state = wl.flake_projects.get(project, wl.flake if wl.flake_per == "state" else 0.0)
        flaky = False
        if p_state:
            skey = (ref, k)  # the k-th run of each job on one state shares one draw
            if skey not in self._state_flakes:
                self._state_flakes[skey] = self.rng.random() < p_state
            flaky = self._state_flakes[skey]
        p_job = wl.flake_jobs.get(request.job, self._per_build)
        if p_job and self.rng.random() < p_job:
            flaky = True
        return flaky

    def launch(self, request: BuildRequest) -> None:
        p = request.parameters
        if isinstance(p, BuildParameters):  # the core's: the state as it is, nothing joined
            nums: Iterable[int | None] = map(_number, p.changes)
        else:
            nums = (int(x.split(",", 1)[0]) for x in p.get("ZUUL_CHANGE_IDS", "").split())
        broken = not self.bad.isdisjoint(nums)
        flaky = self._flakes(request, p.get("ZUUL_REF", ""))
        minutes = self._minutes(self.wl.duration_of(request.job))
        fails = broken or flaky
        signal = minutes * self.wl.early_failure if fails and self.wl.early_failure < 1.0 \
            else None
        b = SimBuild(request, BuildResult.FAILURE if fails else BuildResult.SUCCESS, minutes,
                     flake=flaky and not broken, signal=signal)
        self.builds[request.uuid] = b
        if not self.wl.nodes or self._busy < self.wl.nodes:
            self._start(b)
        else:
            self._waiting.get(request.precedence, self._waiting["normal"]).append(b)

    def _start(self, b: SimBuild) -> None:
        self._busy += 1
        self.c.max_busy = max(self.c.max_busy, self._busy)
        b.state, b.start = "running", self.now
        self.c.builds += 1
        self.results(BuildStarted(b.request.uuid, worker="sim", node="sim-node"))
        if b.signal is not None:
            self.at(self.now + b.signal * 60.0, self._failing, b)
        self.at(self.now + b.minutes * 60.0, self._complete, b)

    def _failing(self, arg: object) -> None:
        b = arg
        assert isinstance(b, SimBuild)
        if b.state == "running":  # (not cancelled meanwhile)
            self.c.early_signals += 1
            self.results(BuildFailing(b.request.uuid, pattern="early-failure"))

    def _complete(self, arg: object) -> None:
        b = arg
        assert isinstance(b, SimBuild)
        if b.state != "running":
            return
        b.state = "done"
        self._free(b)
        if b.flake:
            self.c.flake_builds += 1
        self.results(BuildCompleted(b.request.uuid, b.result))

    def _free(self, b: SimBuild) -> None:
        self._busy -= 1
        assert b.start is not None
        self.c.node_seconds += self.now - b.start
        for level in ("high", "normal", "low"):
            waiting = self._waiting[level]
            while waiting:
                nxt = waiting.popleft()
                if nxt.state == "waiting":
                    self._start(nxt)
                    return

    def cancel(self, build_uuid: str) -> bool:
        b = self.builds.get(build_uuid)
        if b is None:
            return False
        if b.state == "waiting":
            b.state = "cancelled"  # skipped when its turn comes
        elif b.state == "running":
            b.state = "cancelled"
            self.c.cancelled += 1
            self._free(b)
        return True

    def abandon(self, build_uuid: str, worker: str | None) -> None:
        """Launcher protocol: the simulated scheduler never restarts."""

    @property
    def busy(self) -> int:
        return self._busy
