"""Which jobs an item runs, in which order (job trees), and what is left."""

from __future__ import annotations

from dataclasses import dataclass

from gatekeeper.layout.model import Job, JobTree, Layout
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.runtime import BuildSet
from gatekeeper.model.states import PASSING_RESULTS, BuildResult


@dataclass(frozen=True)
class SelectedJob:
    job: Job
    parent: str | None  # job that must succeed first


def _expand(layout: Layout, name: str) -> list[str]:
    """A matrix base name stands for all its variants."""
    if name in layout.jobs:
        return [name]
    return list(layout.matrices.get(name, ()))


# Judgments (a gate strategy's, see core/strategy.py) under which a failed
# build is not (yet) a failure of the item.
UNDECIDED = ("suspect", "rerun", "pending")
NOT_COUNTED = ("suspect", "flake")
MEMO_LIMIT = 10_000  # selections remembered per layout (distinct file lists grow it)


def select_jobs(layout: Layout, pipeline: str, change: Change | Ref) -> list[SelectedJob]:
    """Jobs of ``change``'s project in ``pipeline`` whose branch and file
    matchers accept the change, with their parents. A job whose matchers
    reject it takes its subtree with it (its children need its success).

    Remembered per layout (the managers ask for every item on every pass);
    callers must not change the list."""
    files = change.files
    key = (pipeline, change.project, change.branch, None if files is None else tuple(files))
    memo = layout.selections
    hit = memo.get(key)
    if hit is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        hit = memo[key] = _select(layout, pipeline, change)  # type: ignore[assignment]
    return hit  # type: ignore[return-value]


def _select(layout: Layout, pipeline: str, change: Change | Ref) -> list[SelectedJob]:
    project = layout.projects.get(change.project)
    if project is None or pipeline not in project.pipelines:
        return []
    branch = change.branch
    files = change.files
    out: list[SelectedJob] = []

    def walk(tree: JobTree, parent: str | None) -> None:
        for child in tree.children:
            if child.job is None:
                walk(child, parent)
                continue
            for name in _expand(layout, child.job):
                job = layout.jobs[name]
                if not job.branch_matches(branch) or not job.changes_match(files):
                    continue
                out.append(SelectedJob(job, parent))
                walk(child, name)

    root = project.pipelines[pipeline]
    if root.job is not None:
        walk(JobTree(None, (root,)), None)
    else:
        walk(root, None)
    seen: set[str] = set()
    unique = []
    for s in out:
        if s.job.name not in seen:
            seen.add(s.job.name)
            unique.append(s)
    return unique


def jobs_to_launch(selected: list[SelectedJob], bs: BuildSet) -> list[Job]:
    """Jobs with no build yet whose parent (if any) succeeded."""
    out = []
    for s in selected:
        if s.job.name in bs.builds:
            continue
        if s.parent is None:
            out.append(s.job)
            continue
        parent = bs.builds.get(s.parent)
        if parent is not None and (parent.result == BuildResult.SUCCESS or parent.judgment == "flake"):
            out.append(s.job)
    return out


def jobs_to_skip(selected: list[SelectedJob], bs: BuildSet) -> list[tuple[Job, str]]:
    """Jobs that will never run because their parent finished without success."""
    out = []
    for s in selected:
        if s.job.name in bs.builds or s.parent is None:
            continue
        parent = bs.builds.get(s.parent)
        if parent is not None and parent.result is not None and parent.result != BuildResult.SUCCESS \
                and parent.judgment not in UNDECIDED + ("flake",):
            out.append((s.job, f"{s.parent} did not succeed ({parent.result})"))
    return out


def all_complete(selected: list[SelectedJob], bs: BuildSet) -> bool:
    """Every job has a result that is final (not a failure still being judged)."""
    return all(s.job.name in bs.builds and bs.builds[s.job.name].result is not None
               and bs.builds[s.job.name].judgment != "suspect" for s in selected)


def failed_voting_jobs(selected: list[SelectedJob], bs: BuildSet,
                       early: bool = False) -> list[str]:
    """Voting jobs that failed; with ``early``, also running builds known to fail."""
    out = []
    for s in selected:
        b = bs.builds.get(s.job.name)
        if b is None or not s.job.voting:
            continue
        if b.judgment == "pending":  # failed; the queue goes on without it meanwhile
            out.append(f"{s.job.name} (FAILURE, being rerun)")
        elif early and b.result is None and b.failing is not None:
            out.append(f"{s.job.name} (failing: output matched /{b.failing}/)")
        elif b.result is not None and b.result not in PASSING_RESULTS \
                and b.judgment not in NOT_COUNTED:
            out.append(f"{s.job.name} ({b.result})")
    return out
