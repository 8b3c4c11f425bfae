"""Workspace preparation with real git: speculative refs, branches, the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.gearman.protocol import build_function
from gatekeeper.worker.buildargs import parse_build_args
from gatekeeper.worker.workspace import JOBS_DIR, WorkspaceBuilder, WorkspaceError
from tests.fixtures import worker as fx
from tests.fixtures.worker import DEVSTACK, JOB, LABEL, PROJECT, GitSources, build_args, git

pytestmark = pytest.mark.integration

git_sources = fx.git_sources


def spec_for(src: GitSources, uuid: str, ref: str, sha: str, **meta: object) -> object:
    env = type("E", (), {"sources": src})()
    return parse_build_args(build_function(JOB, LABEL), build_args(env, uuid, ref, sha, **meta))


def advance_upstream(src: GitSources, project: str, name: str) -> str:
    work = src.root / "scratch" / f"adv-{name}"
    git(src.root, "clone", "-q", str(src.root / "upstream" / f"{project}.git"), str(work))
    (work / name).write_text("new\n")
    git(work, "add", name)
    git(work, "commit", "-q", "-m", f"Upstream {name}")
    git(work, "push", "-q", "origin", "HEAD:master")
    return git(work, "rev-parse", "--short", "HEAD")


@pytest.mark.parametrize("cached", [False, True])
def test_prepare_checks_out_speculative_ref_and_branches(git_sources: GitSources,
                                                         tmp_path: Path, cached: bool) -> None:
    cache = tmp_path / "cache" if cached else None
    wb = WorkspaceBuilder(git_base_url=git_sources.upstream_url, cache_dir=cache)
    ref, sha = git_sources.make_change({"f.txt": "change\n"}, subject="The change")
    said: list[str] = []
    heads = wb.prepare(tmp_path / "ws", spec_for(git_sources, "ws000001", ref, sha), said.append)
    assert [h.project for h in heads] == [PROJECT, DEVSTACK]
    assert heads[0].sha == sha[:7] and heads[0].subject == "The change"
    assert heads[0].checkout == ref and heads[1].checkout == "master"
    assert (tmp_path / "ws" / PROJECT / "f.txt").read_text() == "change\n"
    assert git(tmp_path / "ws" / PROJECT, "rev-parse", "--abbrev-ref", "HEAD") == "master"
    assert (tmp_path / "ws" / JOBS_DIR / "devstack-vm-gate.sh").stat().st_mode & 0o111
    assert any(line.startswith("+ git clone") for line in said)
    # The workspace's origin is the real source, not the cache.
    origin = git(tmp_path / "ws" / DEVSTACK, "remote", "get-url", "origin")
    assert origin == f"{git_sources.upstream_url}/{DEVSTACK}"
    if cached:
        assert (cache / f"{DEVSTACK}.git" / "HEAD").exists()
    # Upstream moves on: the next build (through the cache, if any) sees it.
    new = advance_upstream(git_sources, DEVSTACK, "new-file")
    heads = wb.prepare(tmp_path / "ws2", spec_for(git_sources, "ws000002", ref, sha), said.append)
    assert heads[1].sha == new and (tmp_path / "ws2" / DEVSTACK / "new-file").exists()


def test_branch_fallbacks(git_sources: GitSources, tmp_path: Path) -> None:
    wb = WorkspaceBuilder(git_base_url=git_sources.upstream_url, cache_dir=tmp_path / "c")
    ref, sha = git_sources.make_change({"f.txt": "x\n"})
    spec = spec_for(git_sources, "ws000003", ref, sha)
    spec.params["ZUUL_BRANCH"] = "stable/nope"  # devstack has no such branch: its default
    spec.params["ZUUL_REF"] = ""
    spec.params["ZUUL_CHANGE"] = ""
    heads = wb.prepare(tmp_path / "ws", spec, lambda _: None)
    assert [h.checkout for h in heads] == ["master", "master"]


def test_unreachable_source_is_workspace_error(git_sources: GitSources, tmp_path: Path) -> None:
    wb = WorkspaceBuilder(git_base_url="file:///nonexistent/base", cache_dir=tmp_path / "c")
    ref, sha = git_sources.make_change({"f.txt": "x\n"})
    spec = spec_for(git_sources, "ws000004", ref, sha)
    # ZUUL_PROJECT still clones from ZUUL_URL (the merger has it); devstack cannot.
    with pytest.raises(WorkspaceError, match=f"cannot clone {DEVSTACK}"):
        wb.prepare(tmp_path / "ws", spec, lambda _: None)
    assert (tmp_path / "ws" / PROJECT / ".git").exists()
