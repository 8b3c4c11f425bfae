"""The build's workspace on the worker: every project the job needs, at the
speculative state the merger prepared (as zuul-cloner did for devstack-gate).

For each project: clone from the base git URL (or ZUUL_URL), then fetch
ZUUL_REF from ``ZUUL_URL/PROJECT`` when the project is in the change set
and check it out on a branch of the change's branch name. A change's ref
that cannot be fetched is an error (testing the branch tip instead would
report an untested change as tested); for ref items (post, periodic) and
projects outside the change set: the change's branch, ZUUL_BRANCH, or the
project's default branch. The head of each repository (short sha + subject) goes to the
console log, as the devstack gate did."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gatekeeper.shell import command_line
from gatekeeper.worker.buildargs import BuildSpec

log = logging.getLogger("gatekeeper.worker.workspace")

JOBS_DIR = ".gatekeeper/jobs"  # shipped job scripts, relative to the workspace
_USERINFO = re.compile(r"//[^/@]*@")


class WorkspaceError(Exception):
    """The workspace could not be prepared (git source unreachable, ...)."""


@dataclass(frozen=True)
class RepoHead:
    project: str
    checkout: str  # what was checked out: a ref fetched from ZUUL_URL, or a branch
    sha: str  # short sha
    subject: str

    def line(self) -> str:
        return f"{self.project}: {self.sha} {self.subject} ({self.checkout})"


def git_ssh_command(private_key: str | None, known_hosts: str | None) -> str:
    """GIT_SSH_COMMAND for ``private_key``; the host key must be in ``known_hosts``
    (default: the worker user's ~/.ssh/known_hosts). Values are shell-quoted."""
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if private_key:
        argv += ["-i", private_key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o",
                 "GlobalKnownHostsFile=/dev/null"]
    return command_line(argv)


def redact_url(url: str) -> str:
    """Hide user:password in a URL before it reaches a log."""
    return _USERINFO.sub("//***@", url)


def join_url(base: str, project: str) -> str:
    return f"{base.rstrip('/')}/{project}"


class WorkspaceBuilder:
    """Clones projects into a workspace. ``git_base_url``: where projects not in
    the change set come from (e.g. the Gerrit mirror); None = ZUUL_URL."""

    def __init__(self, git_base_url: str | None = None, git: str = "git",
                 timeout: float = 900.0, cache_dir: Path | None = None,
                 jobs_dir: str | Path | None = None, private_key: str | None = None,
                 known_hosts: str | None = None) -> None:
        self.git_base_url = git_base_url
        self.jobs_dir = Path(jobs_dir) if jobs_dir else None  # the site's job scripts
        # Bare copies of each project's branches and tags, updated per build and
        # cloned locally (hard links): a build fetches only what is new.
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._git = git
        self._timeout = timeout
        # Never prompt, never read the worker user's config (hooks, url rewrites).
        self._env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                     "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ASKPASS": "true",
                     "LC_ALL": "C"}
        if private_key or known_hosts:
            # ssh:// git URLs: this key and host key only (the worker's ~/.ssh
            # config and agent play no part).
            self._env["GIT_SSH_COMMAND"] = git_ssh_command(private_key, known_hosts)

    def _run(self, argv: Sequence[str], cwd: Path | None, say: Callable[[str], None],
             check: bool = True) -> subprocess.CompletedProcess[str]:
        say("+ " + " ".join(redact_url(a) for a in argv))
        try:
            cp = subprocess.run([self._git, *argv[1:]], cwd=cwd, env=self._env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=self._timeout)
        except subprocess.TimeoutExpired as e:
            raise WorkspaceError(f"git timed out: {' '.join(argv[:2])}") from e
        for line in (cp.stdout + cp.stderr).splitlines():
            if line.strip():
                say(redact_url(line))
        if check and cp.returncode != 0:
            raise WorkspaceError(f"{' '.join(redact_url(a) for a in argv[:3])} failed "
                                 f"({cp.returncode}): {redact_url(cp.stderr.strip())[-300:]}")
        return cp

    def prepare(self, workspace: Path, spec: BuildSpec,
                say: Callable[[str], None]) -> list[RepoHead]:
        """Fill ``workspace`` (created empty) and return each repository's head."""
        zuul_url = spec.params.get("ZUUL_URL", "")
        base = self.git_base_url or zuul_url
        if not base:
            raise WorkspaceError("neither ZUUL_URL nor a git base URL is set")
        if workspace.exists():
            shutil.rmtree(workspace)
        workspace.mkdir(parents=True)
        change_branches = {c.project: c.branch for c in spec.changes}
        in_change_set = set(change_branches) | {spec.project}
        heads = []
        for project in spec.all_projects():
            dest = workspace / project
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._clone(base, zuul_url, project, project in in_change_set, dest, say)
            branch = change_branches.get(project) or spec.params.get("ZUUL_BRANCH") or ""
            checkout = ""
            ref = spec.params.get("ZUUL_REF", "")
            if project in in_change_set and ref and zuul_url:
                cp = self._run(["git", "fetch", "-q", "--", join_url(zuul_url, project), ref],
                               dest, say, check=False)
                if cp.returncode == 0:
                    self._run(["git", "checkout", "-q", "-B", branch or "gatekeeper",
                               "FETCH_HEAD"], dest, say)
                    checkout = ref
                elif spec.params.get("ZUUL_CHANGE"):
                    # Testing the branch instead would pass a change never tested.
                    raise WorkspaceError(f"{ref} not found in {join_url(zuul_url, project)}: "
                                         f"{redact_url(cp.stderr.strip())[-300:]}")
            if not checkout:
                checkout = self._checkout_branch(dest, branch, say)
            out = self._run(["git", "log", "-1", "--format=%h %s"], dest, lambda _: None)
            sha, _, subject = out.stdout.strip().partition(" ")
            heads.append(RepoHead(project, checkout, sha, subject))
            if project == spec.project and spec.params.get("ZUUL_COMMIT"):
                full = self._run(["git", "rev-parse", "HEAD"], dest, lambda _: None)
                if full.stdout.strip() != spec.params["ZUUL_COMMIT"]:
                    say(f"WARNING: {project} HEAD {full.stdout.strip()} is not "
                        f"ZUUL_COMMIT {spec.params['ZUUL_COMMIT']}")
        self.install_job_scripts(workspace)
        return heads

    def _clone(self, base: str, zuul_url: str, project: str, in_change_set: bool,
               dest: Path, say: Callable[[str], None]) -> None:
        urls = [join_url(base, project)]
        if in_change_set and zuul_url and zuul_url != base:
            urls.append(join_url(zuul_url, project))  # a new project may exist only there
        last = ""
        for url in urls:
            cache = self._update_cache(url, project, say)
            source = str(cache) if cache is not None else url
            cp = self._run(["git", "clone", "-q", "--no-checkout", "--", source, str(dest)],
                           None, say, check=False)
            if cp.returncode == 0:
                if cache is not None:  # the workspace's origin is the real source
                    self._run(["git", "remote", "set-url", "origin", url], dest, lambda _: None)
                return
            last = redact_url(cp.stderr.strip())[-300:]
            shutil.rmtree(dest, ignore_errors=True)
        raise WorkspaceError(f"cannot clone {project}: {last}")

    def _update_cache(self, url: str, project: str, say: Callable[[str], None]) -> Path | None:
        """The cache's copy of ``url``, brought up to date; None without a cache or
        when ``url`` cannot be fetched (the caller clones directly)."""
        if self.cache_dir is None:
            return None
        quiet: Callable[[str], None] = lambda _: None  # noqa: E731
        mirror = self.cache_dir / f"{project}.git"
        mirror.parent.mkdir(parents=True, exist_ok=True)
        # One updater per project at a time, across threads and worker processes.
        with open(mirror.with_name(mirror.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (mirror / "HEAD").exists():
                self._run(["git", "init", "-q", "--bare", str(mirror)], None, quiet)
            cp = self._run(["git", "-C", str(mirror), "fetch", "-q", "--prune", "--", url,
                            "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                           None, say, check=False)
            if cp.returncode != 0:
                return None
            head = self._run(["git", "ls-remote", "--symref", "--", url, "HEAD"], None, quiet,
                             check=False)
            for line in head.stdout.splitlines():
                if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                    self._run(["git", "-C", str(mirror), "symbolic-ref", "HEAD",
                               line[5:-5]], None, quiet, check=False)
        return mirror

    def _checkout_branch(self, dest: Path, branch: str, say: Callable[[str], None]) -> str:
        if branch:
            cp = self._run(["git", "rev-parse", "-q", "--verify", f"refs/remotes/origin/{branch}"],
                           dest, lambda _: None, check=False)
            if cp.returncode == 0:
                self._run(["git", "checkout", "-q", "-B", branch, f"origin/{branch}"], dest, say)
                return branch
        # The project has no such branch (e.g. devstack for a feature branch): its default.
        cp = self._run(["git", "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"],
                       dest, lambda _: None, check=False)
        default = cp.stdout.strip().removeprefix("origin/") or "master"
        self._run(["git", "checkout", "-q", "-B", default, f"origin/{default}"], dest, say)
        return default

    def install_job_scripts(self, workspace: Path) -> Path:
        """Copy the job scripts shipped with gatekeeper, then the site's own
        (``jobs_dir``, which win on a name clash), to ``workspace/.gatekeeper/jobs``."""
        dest = workspace / JOBS_DIR
        dest.mkdir(parents=True, exist_ok=True)
        for name, data in shipped_job_scripts().items():
            target = dest / name
            target.write_bytes(data)
            target.chmod(0o755)
        if self.jobs_dir is not None:
            try:
                shutil.copytree(self.jobs_dir, dest, dirs_exist_ok=True, symlinks=False)
            except (OSError, shutil.Error) as e:
                raise WorkspaceError(f"cannot copy the site's job scripts from "
                                     f"{self.jobs_dir}: {e}") from e
        return dest


def shipped_job_scripts() -> dict[str, bytes]:
    return {e.name: e.read_bytes() for e in resources.files("gatekeeper.worker.jobs").iterdir()
            if e.name.endswith(".sh")}


def available_job_scripts(jobs_dir: str | None) -> frozenset[str] | None:
    """Paths under .gatekeeper/jobs/ a build's workspace will have; None when
    ``jobs_dir`` is set but not readable here (validate runs on another host)."""
    names = set(shipped_job_scripts())
    if jobs_dir is not None:
        root = Path(jobs_dir)
        if not root.is_dir():
            return None
        names |= {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    return frozenset(names)
