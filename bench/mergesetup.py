"""Shared by the merger benchmarks: an upstream with N independent changes,
a Merger, the same merges done with the git CLI, and a git process counter."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from gatekeeper.interfaces import MergeItem
from gatekeeper.merger.merger import Merger
from tests.fixtures.git_upstream import ENV, Upstream, change_ref, git

PROJECT = "org/demo"


class GitCounter:
    """Counts ``git`` processes started through subprocess while active."""

    def __init__(self) -> None:
        self.count = 0
        self._run = subprocess.run
        self._popen = subprocess.Popen.__init__

    def __enter__(self) -> GitCounter:
        counter = self
        real_init = self._popen

        def init(self, args, *a, **kw):  # type: ignore[no-untyped-def]
            if isinstance(args, (list, tuple)) and args and args[0] == "git":
                counter.count += 1
            real_init(self, args, *a, **kw)
        subprocess.Popen.__init__ = init  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen.__init__ = self._popen  # type: ignore[method-assign]


def make_upstream(root: Path, changes: int, files: int = 300) -> Upstream:
    up = Upstream(root / "upstream")
    base = {f"src/mod{i:03d}.py": f"value = {i}\n" * 20 for i in range(files)}
    up.create_project(PROJECT, {"README": "demo\n", **base})
    for n in range(1, changes + 1):
        up.add_change(PROJECT, n, 1, {f"src/mod{n:03d}.py": f"value = {n}\nchanged = True\n"})
    return up


def items(numbers: range) -> list[MergeItem]:
    return [MergeItem(PROJECT, "master", n, 1, change_ref(n, 1)) for n in numbers]


def new_merger(root: Path, up: Upstream, name: str) -> Merger:
    m = Merger(root / f"{name}-git", f"file://{up.root}", root / f"{name}-pub",
               "Gatekeeper", "gatekeeper@example.com")
    m.update([PROJECT])  # the clone exists before the first request, as in service
    return m


class CliMerger:
    """What a person would type: one fetch, one checkout, a merge per change,
    a push per published state, in a clone made beforehand."""

    def __init__(self, root: Path, up: Upstream):
        self.work = root / "cli-work"
        self.pub = root / "cli-pub"
        git(root, "clone", "--quiet", "--no-checkout", f"file://{up.root}/{PROJECT}",
            str(self.work))
        git(root, "init", "--quiet", "--bare", str(self.pub))
        self.env = {**ENV, "GIT_COMMITTER_NAME": "Gatekeeper",
                    "GIT_COMMITTER_EMAIL": "gatekeeper@example.com"}

    def _git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.work, env=self.env, check=True,
                       capture_output=True)

    def fetch(self, numbers: range) -> list[str]:
        refs = [change_ref(n, 1) for n in numbers]
        self._git("fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*", *refs)
        lines = (self.work / ".git" / "FETCH_HEAD").read_text().splitlines()
        shas = {line.split("\t")[2].split("'")[1]: line.split("\t")[0]
                for line in lines if "'refs/changes/" in line}
        return [shas[r] for r in refs]

    def checkout_tip(self) -> None:
        self._git("checkout", "--quiet", "--force", "--detach", "refs/remotes/origin/master")

    def merge(self, n: int, sha: str) -> None:
        ref = change_ref(n, 1)
        self._git("merge", "-s", "resolve", "--no-edit", "--quiet", "-m",
                  f"Merge change {n},1 ({ref})", sha)

    def push(self, ref: str) -> None:
        self._git("push", "--quiet", "--force", str(self.pub), f"HEAD:{ref}")


def medians(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, run alternately (the machine's
    load then weighs on both alike)."""
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)
