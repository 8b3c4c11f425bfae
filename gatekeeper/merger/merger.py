"""Build the speculative state of a queue item and publish it as refs.

For each project: the branch tip, then every change ahead of the item in
queue order, then the item's own change(s), each applied with its merge
mode. The result is pushed as one ref name (``refs/gatekeeper/<branch>/Z<uuid>``
unless the request names it) into the publish repository of every project
touched; workers fetch it from there.

A queue asks for item k's state (tip + changes 1..k) right after item k-1's
(tip + 1..k-1): each state built is remembered under a key made of the
branch tip and the chain of commits applied to it, so item k starts from
item k-1's commit and merges one change. A moved tip or a reset chain makes
a different key, so nothing stale is reused."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from gatekeeper.interfaces import MergeItem
from gatekeeper.merger.publish import PREFIX as PUBLISHED
from gatekeeper.merger.publish import PublishRepo
from gatekeeper.merger.refprobe import RefProbe
from gatekeeper.merger.repo import (
    GitError,
    Repo,
    check_branch_name,
    check_ref_name,
    git_env,
    is_sha,
    run_git,
)
from gatekeeper.merger.sshmux import SshMux
from gatekeeper.model.events import MergeCompleted
from gatekeeper.model.states import MergeMode

log = logging.getLogger("gatekeeper.merger.merger")

_PROJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")
_ZERO = "0" * 40


def _step(key: str, *parts: str) -> str:
    """The key of a state: the key of the state below it plus what was applied."""
    return hashlib.sha1("\0".join((key, *parts)).encode()).hexdigest()


def check_project_name(project: str) -> str:
    """Project names become paths under our directories: nothing that escapes them."""
    if not _PROJECT.match(project or "") or any(
            part in ("..", ".") or part.endswith(".git") for part in project.split("/")):
        raise ValueError(f"invalid project name: {project!r}")
    return project


def project_url(base: str, project: str) -> str:
    """``base`` + project: a URL (ssh://, file://, git://) or a local path."""
    if "://" in base or re.match(r"^[^/]+@[^/]+:", base):
        return base.rstrip("/") + "/" + project
    return str(Path(base) / project)


class MergeFailure(Exception):
    def __init__(self, message: str, conflict_files: tuple[str, ...] = (),
                 conflict_change: str | None = None):
        super().__init__(message)
        self.conflict_files = conflict_files
        self.conflict_change = conflict_change


class Merger:
    def __init__(self, git_dir: str | Path, git_url_base: str, publish_root: str | Path,
                 user_name: str = "Gatekeeper", user_email: str = "gatekeeper@localhost",
                 private_key: str | None = None, known_hosts: str | None = None,
                 keep_refs: int = 1000, max_ref_age: float = 3 * 86400,
                 git_timeout: float = 600, share_ssh: bool = True):
        self.git_dir = Path(git_dir)
        self.git_url_base = git_url_base
        self.publish_root = Path(publish_root)
        self.user_name = user_name
        self.user_email = user_email
        tofu = None
        if private_key and not known_hosts:
            # No known_hosts given: pin the Gerrit host key on first use.
            tofu = str(self.git_dir / "ssh_known_hosts")
            log.warning("merger: no known_hosts for ssh fetches; trusting the host key on "
                        "first use (recorded in %s)", tofu)
        # ssh:// fetches share one connection (one handshake per merger, not per fetch).
        over_ssh = git_url_base.startswith(("ssh://", "git+ssh://", "ssh+git://")) or bool(
            re.match(r"^[^/]+@[^/]+:", git_url_base))
        self.mux = SshMux(self.git_dir) if share_ssh and over_ssh and (
            private_key or known_hosts) else None
        self.env = git_env(private_key, known_hosts, tofu,
                           self.mux.options() if self.mux is not None else ())
        # ... and a fetch that would bring nothing is not run (refprobe.py).
        self.probe = RefProbe(git_url_base, private_key, known_hosts or tofu) if (
            share_ssh and over_ssh and private_key) else None
        self.keep_refs = keep_refs
        self.max_ref_age = max_ref_age
        self.git_timeout = git_timeout
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._repos: dict[str, Repo] = {}  # set up once per process
        self._pubs: dict[str, PublishRepo] = {}  # set up once per process
        self._heads: dict[str, str] = {}  # publish repo -> the HEAD we set

    def close(self) -> None:
        """End the shared ssh connections (idempotent; later use opens new ones)."""
        if self.probe is not None:
            self.probe.close()
        if self.mux is not None:
            self.mux.close()

    # --- repositories -------------------------------------------------------

    def repo(self, project: str) -> Repo:
        """The clone of ``project``; set up on its first use in this process."""
        check_project_name(project)
        if self.mux is not None:
            self.mux.ensure()  # before anything here may connect
        repo = self._repos.get(project)
        if repo is None or not (repo.path / ".git").is_dir():
            probe = self.probe
            repo = Repo(self.git_dir / project, project_url(self.git_url_base, project),
                        self.env, self.user_name, self.user_email, self.git_timeout,
                        probe=(lambda: probe.refs(project)) if probe is not None else None)
            repo.ensure()
            self._repos[project] = repo
        return repo

    def publish_repo(self, project: str) -> PublishRepo:
        """The publish repository of ``project``, borrowing the objects of its
        clone; set up on its first use in this process."""
        check_project_name(project)
        pub = self._pubs.get(project)
        if pub is None or not (pub.path / "HEAD").exists():
            pub = PublishRepo(self.publish_root / project, self.env, self.git_timeout)
            pub.ensure(objects_from=self.repo(project).path / ".git" / "objects")
            self._pubs[project] = pub
        return pub

    @contextmanager
    def _locked(self, projects: Sequence[str]) -> Iterator[None]:
        """One merge at a time per repository; sorted to avoid deadlocks."""
        with ExitStack() as stack:
            for project in sorted(set(projects)):
                with self._locks_lock:
                    lock = self._locks.setdefault(project, threading.Lock())
                stack.enter_context(lock)
            yield

    # --- operations ---------------------------------------------------------

    def update(self, projects: Sequence[str]) -> dict[str, dict[str, str]]:
        """Fetch ``projects`` and mirror their branches to the publish repos."""
        for p in projects:
            check_project_name(p)
        result: dict[str, dict[str, str]] = {}
        with self._locked(projects):
            for project in projects:
                repo = self.repo(project)
                repo.update()
                self._mirror_branches(repo, self.publish_repo(project))
                result[project] = repo.branches()
        return result

    def _mirror_branches(self, repo: Repo, pub: PublishRepo,
                         refs: dict[str, str] | None = None) -> None:
        """Set the branches (and ``refs``, {name: commit}, in the same
        transaction) in ``pub``; the commits are the clone's objects."""
        pub.set_refs({**{f"refs/heads/{b}": sha for b, sha in repo.branch_tips().items()},
                      **(refs or {})})
        default = repo.default_branch
        key = str(pub.path)
        if default and self._heads.get(key) != default:
            # so a plain clone from the publish repo checks it out
            pub.git("symbolic-ref", "HEAD", f"refs/heads/{default}")
            self._heads[key] = default

    def merge(self, items: Sequence[MergeItem], ref_name: str = "",
              merge_mode: str | None = None, uuid: str = "") -> MergeCompleted:
        """Build and publish the speculative state; never raises for bad input.

        ``merge_mode`` overrides every item's own mode; ``uuid`` names the
        request (and the invented ref when ``ref_name`` is empty)."""
        uuid = uuid or uuidlib.uuid4().hex
        try:
            return self._merge(list(items), ref_name, uuid, merge_mode)
        except MergeFailure as e:
            log.info("merge %s: %s", uuid, e)
            return MergeCompleted(uuid, False, conflict_files=e.conflict_files,
                                  conflict_change=e.conflict_change,
                                  error=None if e.conflict_change else str(e))
        except (GitError, ValueError, OSError) as e:
            log.warning("merge %s failed: %s", uuid, e)
            return MergeCompleted(uuid, False, error=str(e))

    def _merge(self, items: list[MergeItem], ref_name: str, uuid: str,
               merge_mode: str | None) -> MergeCompleted:
        if not items:
            raise ValueError("nothing to merge: no items")
        for item in items:
            check_project_name(item.project)
            check_branch_name(item.branch)
            mode = merge_mode or item.merge_mode or "merge-resolve"
            if mode not in set(MergeMode):
                raise ValueError(f"unknown merge mode {mode!r} (one of {', '.join(MergeMode)})")
        if ref_name:
            check_ref_name(ref_name)
        projects = [i.project for i in items]
        with self._locked(projects):
            repos: dict[str, Repo] = {}
            fetched: dict[tuple[str, str], str] = {}
            for project in dict.fromkeys(projects):
                repos[project] = self.repo(project)
                # One fetch per project: its branches plus every change ref.
                refs = [i.ref for i in items if i.project == project and i.number is not None
                        and i.ref]
                for ref, sha in repos[project].update(refs).items():
                    fetched[(project, ref)] = sha
            states: dict[tuple[str, str], str] = {}
            keys: dict[tuple[str, str], str] = {}
            for item in items:
                self._apply(repos[item.project], item, states, keys, merge_mode, fetched)
            return self._publish(repos, states, ref_name, uuid)

    def _apply(self, repo: Repo, item: MergeItem, states: dict[tuple[str, str], str],
               keys: dict[tuple[str, str], str], merge_mode: str | None,
               fetched: dict[tuple[str, str], str]) -> None:
        key = (item.project, item.branch)
        if key not in states:
            tip = repo.branch_tip(item.branch)
            if tip is None:
                raise MergeFailure(f"{item.project} has no branch {item.branch!r}")
            states[key] = tip
            keys[key] = _step(item.project, item.branch, tip)
        if item.number is None:
            # A ref item (branch tip / ref-updated): test exactly newrev.
            if item.newrev and item.newrev != _ZERO:
                if not is_sha(item.newrev):
                    raise ValueError(f"invalid newrev {item.newrev!r}")
                if not repo.has_commit(item.newrev) and item.ref:
                    repo.fetch(item.ref)
                if not repo.has_commit(item.newrev):
                    raise MergeFailure(f"{item.project}: commit {item.newrev} not found")
                states[key] = item.newrev
                keys[key] = _step(keys[key], "rev", item.newrev)
            return
        change = f"{item.number},{item.patchset}"
        if not item.ref:
            raise ValueError(f"change {change} has no ref to fetch")
        sha = fetched.get((item.project, item.ref)) or repo.fetch(item.ref)
        mode = merge_mode or item.merge_mode or "merge-resolve"
        message = f"Merge change {change} ({item.ref})"
        state_key = _step(keys[key], sha, mode, message)
        known = repo.built(state_key)
        if known is not None:  # built before (for the item ahead): start from there
            states[key], keys[key] = known, state_key
            return
        repo.reset_to(states[key])
        outcome = repo.apply(sha, mode, message=message)
        if not outcome.ok:
            files = outcome.conflict_files
            what = f"conflicts in {', '.join(files)}" if files else outcome.detail
            raise MergeFailure(f"change {change} does not merge into {item.project} "
                               f"{item.branch}: {what}", files, change)
        states[key], keys[key] = repo.head(), state_key
        repo.remember(state_key, states[key])
        log.debug("applied %s (%s) to %s %s -> %s", change, mode, item.project, item.branch,
                  states[key])

    def _publish(self, repos: dict[str, Repo], states: dict[tuple[str, str], str],
                 ref_name: str, uuid: str) -> MergeCompleted:
        commits: dict[str, str] = {}
        published: dict[str, list[str]] = {}
        last_ref = ""
        specs: dict[str, dict[str, str]] = {}
        for (project, branch), sha in states.items():
            ref = ref_name or f"refs/gatekeeper/{branch}/Z{uuid}"
            specs.setdefault(project, {})[ref] = sha
            published.setdefault(project, []).append(ref)
            commits[project] = sha
            last_ref = ref
        now = time.time()
        for project, refs in published.items():
            pub = self.publish_repo(project)
            self._mirror_branches(repos[project], pub, specs[project])  # one process per project
            pub.record(refs, now)
        log.info("merge %s: published %s for %s", uuid, last_ref, ", ".join(commits))
        return MergeCompleted(uuid, True, commits=commits, ref=last_ref)

    def prune(self, now: float | None = None) -> int:
        """Drop old speculative refs from every publish repository."""
        deleted = 0
        if not self.publish_root.is_dir():
            return 0
        for path in self._publish_repos():
            project = path.relative_to(self.publish_root).as_posix()
            with self._locked([project]):
                pub = PublishRepo(path, self.env, self.git_timeout)
                deleted += len(pub.prune(self.keep_refs, self.max_ref_age, now))
                self._gc(path)
                clone = self.git_dir / project
                if (clone / ".git").is_dir():
                    # The publish repository borrows the clone's objects: its
                    # refs must be the clone's too, or gc there drops them.
                    self._keep_published(clone, pub.published())
                    # gc may drop commits only remembered here: forget them.
                    repo = self._repos.get(project)
                    if repo is not None:
                        repo.forget()
                    self._gc(clone)
        return deleted

    def _keep_published(self, clone: Path, published: dict[str, str]) -> None:
        """Make the clone's refs/gatekeeper/* exactly ``published`` (one transaction)."""
        out = run_git(["for-each-ref", "--format=%(refname) %(objectname)", PUBLISHED],
                      clone, self.env, self.git_timeout).stdout
        have = dict(line.split(" ", 1) for line in out.splitlines() if line)
        lines = [f"delete {ref}\n" for ref in have if ref not in published]
        lines += [f"update {ref} {sha}\n" for ref, sha in published.items()
                  if have.get(ref) != sha]
        if lines:
            PublishRepo(clone, self.env, self.git_timeout).git(
                "update-ref", "--stdin", stdin="".join(lines))

    def _gc(self, path: Path) -> None:
        """Repositories run with gc.auto=0 (no gc in the middle of a merge):
        collect here, between merges, with git's usual threshold."""
        try:
            run_git(["-c", "gc.auto=6700", "gc", "--auto", "--quiet"], path, self.env,
                    self.git_timeout)
        except GitError as e:
            log.warning("git gc in %s: %s", path, e)

    def _publish_repos(self) -> list[Path]:
        found = []
        for top, dirs, files in os.walk(self.publish_root):
            if "HEAD" in files and "refs" in dirs:
                found.append(Path(top))
                dirs[:] = []  # do not walk into a repository
        return sorted(found)
