"""The worker consumes what the real merger publishes: ZUUL_URL from its git
daemon, ZUUL_REF/ZUUL_COMMIT from its merge result (the contract between them)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gatekeeper.gearman.protocol import build_function
from gatekeeper.interfaces import MergeItem
from gatekeeper.merger.gitdaemon import GitDaemon
from gatekeeper.merger.merger import Merger
from gatekeeper.worker.buildargs import parse_build_args
from tests.fixtures import worker as fx
from tests.fixtures.worker import JOB, LABEL, PROJECT, WorkerEnv, build_args, git

pytestmark = pytest.mark.integration

git_sources = fx.git_sources
worker_env = fx.worker_env


class Sink:
    def data(self, payload: dict[str, object]) -> None:
        pass

    def status(self, n: int, d: int) -> None:
        pass


def upload(upstream: Path, tmp: Path, number: int, files: dict[str, str]) -> str:
    """A Gerrit-style change ref in the upstream repository; returns the ref."""
    work = tmp / f"up{number}"
    git(tmp, "clone", "-q", str(upstream / f"{PROJECT}.git"), str(work))
    for name, text in files.items():
        (work / name).write_text(text)
        git(work, "add", name)
    git(work, "commit", "-q", "-m", f"Change {number}")
    ref = f"refs/changes/{number % 100:02d}/{number}/1"
    git(work, "push", "-q", "origin", f"HEAD:{ref}")
    return ref


def test_worker_tests_the_merger_speculative_state(worker_env: WorkerEnv,
                                                   tmp_path: Path) -> None:
    env = worker_env
    upstream = env.sources.root / "upstream"
    ref_a = upload(upstream, tmp_path, 101, {"a.txt": "change A\n"})
    ref_b = upload(upstream, tmp_path, 102, {"b.txt": "change B\n"})
    merger = Merger(tmp_path / "mgit", str(upstream), tmp_path / "publish")
    daemon = GitDaemon(tmp_path / "publish").start()
    try:
        # B is tested on top of A (A is ahead of it in the gate).
        done = merger.merge([
            MergeItem(PROJECT, "master", 101, 1, ref_a),
            MergeItem(PROJECT, "master", 102, 1, ref_b)], uuid="m1")
        assert done.merged, done
        args = build_args(env, "merg0000001", done.ref or "", done.commits[PROJECT],
                          change=102)
        args["ZUUL_URL"] = daemon.url
        args["ZUUL_CHANGES"] = f"{PROJECT}:master:{ref_a}^{PROJECT}:master:{ref_b}"
        spec = parse_build_args(build_function(JOB, LABEL), args)
        out = env.executor.run(spec, Sink(), threading.Event())
    finally:
        daemon.stop()
    assert out.result == "SUCCESS", out
    node = next(n for n in env.nodes if n.name == out.node)
    assert (node.workdir / PROJECT / "a.txt").read_text() == "change A\n"
    assert (node.workdir / PROJECT / "b.txt").read_text() == "change B\n"
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "is not ZUUL_COMMIT" not in console
    assert f"({done.ref})" in console
