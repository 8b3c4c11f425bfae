"""Drive the real Scheduler synchronously with in-memory fakes in virtual time.

Nothing here runs a thread: ``settle()`` turns the loop until no event is
left. Builds never finish on their own; tests ``release``/``fail``/``lose``
them. The merger computes speculative states at once (or is told that a
change conflicts), the reporter records everything and can refuse submits."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

from gatekeeper.interfaces import BuildRequest, MergeItem, MergeRequest, ReportResult
from gatekeeper.layout.loader import load_layout_text
from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.events import (
    BuildCompleted,
    BuildStarted,
    EventApproval,
    MergeCompleted,
    SubmitCompleted,
    TriggerEvent,
)
from gatekeeper.scheduler import Scheduler

START = 1_700_000_000.0


class FakeClock:
    def __init__(self, t: float = START):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class FakeSource:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.changes: dict[int, Change] = {}  # number -> current patchset
        self.old: dict[tuple[int, int], Change] = {}
        self.branches: dict[str, list[str]] = {}
        self.calls = 0

    def add(self, project: str, branch: str = "master", files: list[str] | None = None,
            depends_on: tuple[str, ...] = (), parent: Change | None = None,
            subject: str = "") -> Change:
        number = len(self.changes) + 1
        c = Change(project=project, branch=branch, number=number, patchset=1,
                   change_id=f"I{sha('cid', number)}", ref=self._ref(number, 1),
                   revision=sha(number, 1), subject=subject or f"change {number}",
                   owner_username="owner", url=f"https://review.example.org/{number}",
                   files=files, depends_on=list(depends_on),
                   needed_by_parent=[parent.number] if parent else [],
                   last_updated=int(self.clock()))
        self.changes[number] = c
        self.branches.setdefault(project, ["master"])
        if branch not in self.branches[project]:
            self.branches[project].append(branch)
        return dataclasses.replace(c)

    @staticmethod
    def _ref(number: int, ps: int) -> str:
        return f"refs/changes/{number % 100:02d}/{number}/{ps}"

    def update(self, number: int, **changes) -> Change:
        c = dataclasses.replace(self.changes[number], **changes)
        self.changes[number] = c
        return dataclasses.replace(c)

    def new_patchset(self, number: int) -> Change:
        c = self.changes[number]
        self.old[(number, c.patchset)] = dataclasses.replace(c, is_current_patchset=False)
        ps = c.patchset + 1
        return self.update(number, patchset=ps, ref=self._ref(number, ps),
                           revision=sha(number, ps), approvals=[])

    # Source protocol ------------------------------------------------------
    def get_change(self, number: int, patchset: int | None = None,
                   refresh: bool = False) -> Change | None:
        self.calls += 1
        c = self.changes.get(number)
        if c is None:
            return None
        if patchset is not None and patchset != c.patchset:
            old = self.old.get((number, patchset))
            return dataclasses.replace(old) if old else None
        return dataclasses.replace(c, approvals=list(c.approvals))

    def get_changes_by_change_id(self, change_id: str) -> list[Change]:
        return [dataclasses.replace(c) for c in self.changes.values() if c.change_id == change_id]

    def get_ref(self, project: str, ref: str, oldrev: str = "", newrev: str = "") -> Ref:
        return Ref(project, ref, oldrev, newrev)

    def get_project_branches(self, project: str) -> list[str]:
        return list(self.branches.get(project, ["master"]))

    def invalidate(self, change_number: int | None = None) -> None:
        pass


@dataclass
class Report:
    change: str
    message: str
    labels: dict[str, int]
    submit: bool
    ok: bool


class FakeReporter:
    def __init__(self, source: FakeSource, harness: Harness):
        self.source = source
        self.harness = harness
        self.reports: list[Report] = []
        self.refuse_submit: dict[int, str] = {}

    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool = False) -> ReportResult:
        ok, err = True, None
        if submit and change.number in self.refuse_submit:
            ok, err = False, self.refuse_submit[change.number]
        self.reports.append(Report(change.id_string, message, dict(labels), submit, ok))
        if submit and ok:
            self.source.update(change.number, status="MERGED")
            self.harness.merged.append(change.number)
            self.harness.sched.add_trigger_event(TriggerEvent(
                "change-merged", project=change.project, branch=change.branch,
                change_number=change.number, patchset=change.patchset))
        return ReportResult(ok, err)


@dataclass
class FakeBuild:
    request: BuildRequest
    state: str = "running"  # running | completed | cancelled
    result: str | None = None

    @property
    def job(self) -> str:
        return self.request.job

    @property
    def change(self) -> str:
        p = self.request.parameters
        return f"{p.get('ZUUL_CHANGE')},{p.get('ZUUL_PATCHSET')}"

    @property
    def changes(self) -> list[str]:
        """The ``N,PS`` of every change in the speculative state, in order."""
        ids = self.request.parameters.get("ZUUL_CHANGE_IDS", "")
        return ids.split() if ids else []


class FakeLauncher:
    def __init__(self, harness: Harness):
        self.harness = harness
        self.builds: list[FakeBuild] = []
        self.by_uuid: dict[str, FakeBuild] = {}
        self.fail_launch = 0  # how many launches raise next

    def launch(self, request: BuildRequest) -> None:
        if self.fail_launch:
            self.fail_launch -= 1
            raise ConnectionError("gearman is down")
        b = FakeBuild(request)
        self.builds.append(b)
        self.by_uuid[request.uuid] = b
        self.harness.sched.add_result_event(BuildStarted(
            request.uuid, worker="worker-1", node="node-1",
            url=f"https://logs.example.org/{request.parameters['LOG_PATH']}/"))

    def cancel(self, build_uuid: str) -> bool:
        b = self.by_uuid.get(build_uuid)
        if b is not None and b.state == "running":
            b.state = "cancelled"
        return True

    def abandon(self, build_uuid: str, worker: str | None) -> None:
        b = self.by_uuid.get(build_uuid)
        if b is not None and b.state == "running":
            b.state = "abandoned"


class FakeMerger:
    def __init__(self, harness: Harness):
        self.harness = harness
        self.requests: list[MergeRequest] = []
        self.conflicts: set[int] = set()
        self.hold = False
        self.held: list[MergeRequest] = []
        self._commit_memo: dict[tuple[str, str], str] = {}  # (commit before, ref) -> after
        # (len(items), id(items[-1])) -> (items, commits): the states built, newest last
        self._states: dict[int, tuple[tuple[MergeItem, ...], dict[str, str]]] = {}

    def merge(self, request: MergeRequest) -> None:
        self.requests.append(request)
        if self.hold:
            self.held.append(request)
        else:
            self.complete(request)

    def complete(self, request: MergeRequest) -> None:
        items = request.items
        if self.conflicts and not self.conflicts.isdisjoint(it.number for it in items):
            it = next(it for it in items if it.number in self.conflicts)
            self.harness.sched.add_result_event(MergeCompleted(
                request.uuid, False, conflict_change=f"{it.number},{it.patchset}",
                conflict_files=("README",)))
            return
        # A real merger builds on the state it built for the item ahead (the
        # request's items extend that one's, less the heads merged since, which
        # the branch tip now holds): so does this one.
        ahead = self._states.get(id(items[-2])) if len(items) > 1 else None
        n = len(items) - 1
        if ahead is not None and len(ahead[0]) >= n \
                and ahead[0][len(ahead[0]) - n:] == items[:-1]:  # compared at C speed
            commits, todo = dict(ahead[1]), items[-1:]
        else:
            commits, todo = {}, items
        memo = self._commit_memo
        for it in todo:
            key = (commits.get(it.project, "tip"), it.ref)
            commit = memo.get(key)
            if commit is None:
                commit = memo[key] = sha(*key)
            commits[it.project] = commit
        if len(self._states) >= 4096:
            del self._states[next(iter(self._states))]  # the oldest
        self._states[id(items[-1])] = (items, dict(commits))
        self.harness.sched.add_result_event(MergeCompleted(
            request.uuid, True, commits=commits, ref=request.ref_name,
            url="git://merger.example.org"))

    def release_held(self) -> None:
        held, self.held = self.held, []
        for r in held:
            self.complete(r)


class Harness:
    def __init__(self, layout_yaml: str, status_url: str = "https://status.example.org/"):
        self.clock = FakeClock()
        self.layout_yaml = layout_yaml
        self.layout = load_layout_text(layout_yaml, "test-layout.yaml")
        self.source = FakeSource(self.clock)
        self.merged: list[int] = []
        self.reporter = FakeReporter(self.source, self)
        self.launcher = FakeLauncher(self)
        self.merger = FakeMerger(self)
        self._n = 0
        self.sched = Scheduler(self.layout, self.source, self.reporter, self.launcher,
                               self.merger, self.clock, status_url=status_url,
                               new_uuid=self._uuid)

    def _uuid(self) -> str:
        self._n += 1
        return sha("uuid", self._n)[:24] + f"{self._n:08x}"

    @property
    def engine(self):
        return self.sched.engine

    def settle(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.sched.pending():
                self.sched.run_once()
                if not self.sched.pending():
                    if self.check_tail:
                        self.check_waiting_tail()
                    return
            self.sched.run_once()
        raise AssertionError("the scheduler did not settle")

    check_tail = True  # bench/gate_scale.py times the core without the check

    def check_waiting_tail(self) -> None:
        """What reset and process_queue stop on: behind an item waiting outside
        the window with nothing started (inactive, fresh) everything waits too
        (unless a strategy keeps the work of items pushed out)."""
        for name, manager in self.engine.managers.items():
            if manager.keeps_work:
                continue
            for q in self.engine.states[name].queues:
                waiting = None
                for item in q.items:
                    if waiting is not None:
                        assert not item.active and item.build_set.is_fresh, \
                            f"{item.display_name} is active or has work behind waiting {waiting}"
                    elif not item.active and item.build_set.is_fresh:
                        waiting = item.display_name

    # --- Gerrit actions ----------------------------------------------------
    def upload(self, project: str = "org/project", **kw) -> Change:
        c = self.source.add(project, **kw)
        self.event("patchset-created", c)
        return c

    def new_patchset(self, change: Change) -> Change:
        c = self.source.new_patchset(change.number)
        self.event("patchset-created", c)
        return c

    def event(self, type_: str, change: Change, **kw) -> None:
        self.sched.add_trigger_event(TriggerEvent(
            type_, project=change.project, branch=change.branch,
            change_number=change.number, patchset=kw.pop("patchset", change.patchset),
            ref=change.ref, timestamp=self.clock(), **kw))
        self.settle()

    def approve(self, change: Change, username: str = "core") -> None:
        cur = self.source.changes[change.number]
        approvals = [a for a in cur.approvals if a.label not in ("Code-Review", "Workflow")]
        approvals += [Approval("Code-Review", 2, username, granted_on=int(self.clock())),
                      Approval("Workflow", 1, username, granted_on=int(self.clock()))]
        self.source.update(change.number, approvals=approvals)
        self.event("comment-added", cur, comment="Patch Set 1: Workflow+1",
                   approvals=(EventApproval("Code-Review", 2, 2), EventApproval("Workflow", 1, 0)),
                   account_username=username)

    def comment(self, change: Change, text: str, username: str = "someone") -> None:
        cur = self.source.changes[change.number]
        self.event("comment-added", cur, comment=text, account_username=username)

    def abandon(self, change: Change) -> None:
        cur = self.source.update(change.number, status="ABANDONED")
        self.event("change-abandoned", cur)

    def ref_updated(self, project: str, ref: str, oldrev: str, newrev: str) -> None:
        self.sched.add_trigger_event(TriggerEvent("ref-updated", project=project, ref=ref,
                                                  oldrev=oldrev, newrev=newrev))
        self.settle()

    # --- builds -----------------------------------------------------------
    def running(self, job: str | None = None, change: Change | str | None = None) -> list[FakeBuild]:
        return [b for b in self.launcher.builds if b.state == "running" and self._sel(b, job, change)]

    @staticmethod
    def _sel(b: FakeBuild, job: str | None, change: Change | str | None) -> bool:
        if job is not None and not re.fullmatch(job, b.job):
            return False
        if change is not None:
            want = change.id_string if isinstance(change, Change) else change
            if b.change != want and b.request.parameters.get("ZUUL_REFNAME") != want:
                return False
        return True

    def complete(self, result: str, job: str | None = None,
                 change: Change | str | None = None, settle: bool = True,
                 message: str | None = None, retry: bool = True) -> int:
        builds = self.running(job, change)
        for b in builds:
            b.state, b.result = "completed", result
            self.sched.add_result_event(BuildCompleted(
                b.request.uuid, result, url=f"https://logs.example.org/{b.request.parameters['LOG_PATH']}/",
                message=message, retry=retry))
        if settle:
            self.settle()
        return len(builds)

    def release(self, job: str | None = None, change: Change | str | None = None) -> int:
        return self.complete("SUCCESS", job, change)

    def fail(self, job: str | None = None, change: Change | str | None = None) -> int:
        return self.complete("FAILURE", job, change)

    def lose(self, job: str | None = None, change: Change | str | None = None) -> int:
        return self.complete("LOST", job, change)

    def release_all(self, rounds: int = 1000) -> None:
        for _ in range(rounds):
            if not self.running():
                return
            self.clock.advance(60)
            self.release()
        raise AssertionError("builds keep coming")

    # --- submits -----------------------------------------------------------
    def hold_submits(self) -> list[tuple[str, Change, str, dict[str, int]]]:
        """Submits wait until ``answer_submit`` (a Gerrit that takes its time):
        the list of those decided and not answered yet, oldest first."""
        held: list[tuple[str, Change, str, dict[str, int]]] = []
        self.sched.effects.submit = lambda key, change, message, labels: held.append(
            (key, change, message, dict(labels)))
        self.held_submits = held
        return held

    def answer_submit(self, settle: bool = True) -> None:
        """Gerrit handles the oldest held submit (refused as ``refuse_submit`` says)."""
        key, change, message, labels = self.held_submits.pop(0)
        r = self.reporter.report(change, message, labels, submit=True)
        self.sched.add_result_event(SubmitCompleted(key, r.ok, r.error))
        if settle:
            self.settle()

    # --- views --------------------------------------------------------------
    def queue(self, pipeline: str = "gate") -> list[str]:
        state = self.engine.states[pipeline]
        return [i.display_name for q in state.queues for i in q.items]

    def items(self, pipeline: str = "gate"):
        return self.engine.states[pipeline].items()

    def reports_for(self, change: Change) -> list[Report]:
        return [r for r in self.reporter.reports if r.change.split(",")[0] == str(change.number)]

    def launched(self, job: str | None = None, change: Change | None = None) -> list[FakeBuild]:
        return [b for b in self.launcher.builds if self._sel(b, job, change)]
