"""One project's local git clone, driven through ``git`` subprocesses.

Every command is an argv list (no shell). The working clone is private to
the merger: it is reset before each use, so a crashed merge never leaks
into the next one."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.model.states import MergeMode

log = logging.getLogger("gatekeeper.merger.repo")

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_FETCHED = "refs/gatekeeper-fetched/"  # temporary names of fetched change refs
_BOILERPLATE = ("Please make sure you have the correct access rights",
                "and the repository exists.", "fatal: Could not read from remote repository.")
_CREDENTIALS = re.compile(r"(://[^/@\s:]+):[^/@\s]*@")


class GitError(Exception):
    """A git command failed; the message is safe to show (no credentials)."""


def scrub(text: str) -> str:
    """Remove passwords from URLs (``scheme://user:secret@host``)."""
    return _CREDENTIALS.sub(r"\1:***@", text)


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value or ""))


def git_env(ssh_key: str | None = None, known_hosts: str | None = None,
            tofu_known_hosts: str | None = None) -> dict[str, str]:
    """Environment for git: no prompts, C locale, our ssh key and known_hosts.

    With ``known_hosts`` the host key must be in it. Without it but with
    ``tofu_known_hosts``, an unknown host key is recorded there on first
    use and any later change is refused (StrictHostKeyChecking=accept-new)."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANG": "C",
                "GIT_ASKPASS": "/bin/true"})
    if ssh_key or known_hosts or tofu_known_hosts:
        # GIT_SSH_COMMAND is run by a shell: quote every value we put in.
        ssh = ["ssh", "-o", "BatchMode=yes"]
        if ssh_key:
            ssh += ["-i", ssh_key, "-o", "IdentitiesOnly=yes"]
        if known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        elif tofu_known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={tofu_known_hosts}",
                    "-o", "StrictHostKeyChecking=accept-new"]
        env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(a) for a in ssh)
    return env


def run_git(args: list[str], cwd: Path | None, env: dict[str, str],
            timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["git", *args]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise GitError(scrub(f"git {args[0]} timed out after {timeout:.0f}s")) from e
    if check and proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines()]
        # git's generic advice after a failed fetch hides the real cause.
        detail = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
        raise GitError(scrub(f"git {args[0]} failed: {' '.join(detail[-3:])}"))
    return proc


def run_git_stdin(args: list[str], cwd: Path, env: dict[str, str], stdin: str,
                  timeout: float = 600) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from e
    if proc.returncode != 0:
        raise GitError(scrub(f"git {args[0]} failed: {proc.stderr.strip()[-300:]}"))
    return proc.stdout


def check_ref_name(ref: str) -> str:
    """``ref`` if it is a valid full ref name (refs/...), else ValueError."""
    if not ref.startswith("refs/") or ref.startswith("-"):
        raise ValueError(f"not a full ref name: {ref!r}")
    ok = subprocess.run(["git", "check-ref-format", ref], capture_output=True,
                        check=False).returncode == 0
    if not ok:
        raise ValueError(f"invalid ref name: {ref!r}")
    return ref


def check_branch_name(branch: str) -> str:
    if not branch or branch.startswith("-"):
        raise ValueError(f"invalid branch name: {branch!r}")
    check_ref_name(f"refs/heads/{branch}")
    return branch


@dataclass(frozen=True)
class ApplyOutcome:
    ok: bool
    conflict_files: tuple[str, ...] = ()
    detail: str = ""


class Repo:
    """A working clone of ``url`` at ``path`` (created on first use)."""

    def __init__(self, path: Path, url: str, env: dict[str, str], user_name: str,
                 user_email: str, timeout: float = 600):
        self.path = Path(path)
        self.url = url
        self.env = env
        self.user_name = user_name
        self.user_email = user_email
        self.timeout = timeout

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_git(list(args), self.path, self.env, self.timeout, check)

    def ensure(self) -> None:
        if not (self.path / ".git").is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            log.info("cloning %s into %s", scrub(self.url), self.path)
            run_git(["clone", "--quiet", "--no-checkout", "--", self.url, str(self.path)],
                    None, self.env, self.timeout)
        elif self.git("remote", "get-url", "origin").stdout.strip() != self.url:
            self.git("remote", "set-url", "origin", self.url)
        # origin/HEAD would be mirrored as a branch named "HEAD": remember
        # the default branch it points to, then drop it.
        head = self.git("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
        if head.returncode == 0 and head.stdout.strip():
            default = head.stdout.strip().removeprefix("refs/remotes/origin/")
            self.git("config", "gatekeeper.defaultbranch", default)
            self.git("remote", "set-head", "origin", "--delete")
        self.git("config", "user.name", self.user_name)
        self.git("config", "user.email", self.user_email)
        # Never open an editor or run gc in the middle of a merge.
        self.git("config", "core.editor", "true")
        self.git("config", "gc.auto", "0")

    def update(self, refs: list[str] | None = None) -> dict[str, str]:
        """Fetch every branch and tag of the project, and ``refs`` (change
        refs) in the same round trip; returns {ref: commit} for ``refs``."""
        refs = list(dict.fromkeys(refs or ()))
        for ref in refs:
            check_ref_name(ref)
        # Forced tag refspec: a moved tag must not fail the fetch.
        specs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        specs += [f"+{ref}:{_FETCHED}{ref[len('refs/'):]}" for ref in refs]
        self.git("fetch", "--quiet", "--prune", "origin", *specs)
        if not refs:
            return {}
        locals_ = [f"{_FETCHED}{ref[len('refs/'):]}" for ref in refs]
        shas = self.git("rev-parse", *(f"{r}^{{commit}}" for r in locals_)).stdout.split()
        # Drop the temporary refs: the commits stay until gc, we need no names.
        run_git_stdin(["update-ref", "--stdin"], self.path, self.env,
                      "".join(f"delete {r}\n" for r in locals_), self.timeout)
        return dict(zip(refs, shas, strict=True))

    @property
    def default_branch(self) -> str | None:
        proc = self.git("config", "--get", "gatekeeper.defaultbranch", check=False)
        return proc.stdout.strip() or None

    def branch_tip(self, branch: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "--quiet",
                        f"refs/remotes/origin/{check_branch_name(branch)}^{{commit}}",
                        check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def branches(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:strip=3) %(objectname)",
                       "refs/remotes/origin/").stdout
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in pairs if name != "HEAD"}

    def has_commit(self, sha: str) -> bool:
        return self.git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def fetch(self, ref: str) -> str:
        """Fetch ``ref`` (e.g. refs/changes/34/1234/2) from origin; its commit."""
        check_ref_name(ref)
        self.git("fetch", "--quiet", "origin", ref)
        return self.git("rev-parse", "FETCH_HEAD^{commit}").stdout.strip()

    def reset_to(self, sha: str) -> None:
        """A clean detached checkout of ``sha``, whatever state we left before."""
        for abort in (("merge", "--abort"), ("cherry-pick", "--abort")):
            self.git(*abort, check=False)
        self.git("checkout", "--quiet", "--force", "--detach", sha)
        self.git("reset", "--quiet", "--hard", sha)
        self.git("clean", "-qxdff")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def apply(self, sha: str, mode: str, message: str = "") -> ApplyOutcome:
        """Apply commit ``sha`` on top of HEAD the way ``mode`` says."""
        if mode == MergeMode.CHERRY_PICK:
            args = ["cherry-pick", "--allow-empty", "--keep-redundant-commits", sha]
        elif mode == MergeMode.MERGE:
            args = ["merge", "--no-edit", "--quiet", sha]
        elif mode == MergeMode.MERGE_RESOLVE:
            args = ["merge", "-s", "resolve", "--no-edit", "--quiet", sha]
        else:
            raise ValueError(f"unknown merge mode {mode!r} (one of {', '.join(MergeMode)})")
        if message and mode != MergeMode.CHERRY_PICK:
            args[1:1] = ["-m", message]
        proc = self.git(*args, check=False)
        if proc.returncode == 0:
            return ApplyOutcome(True)
        conflicts = self.conflict_files()
        detail = scrub((proc.stdout + proc.stderr).strip().splitlines()[-1:][0]
                       if (proc.stdout + proc.stderr).strip() else f"git {args[0]} failed")
        self.reset_to(self.head())
        return ApplyOutcome(False, conflicts, detail)

    def conflict_files(self) -> tuple[str, ...]:
        out = self.git("diff", "--name-only", "--diff-filter=U", check=False).stdout
        files = {line.strip() for line in out.splitlines() if line.strip()}
        if not files:  # unmerged index entries: "<mode> <sha> <stage>\t<path>"
            out = self.git("ls-files", "-u", check=False).stdout
            files = {line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line}
        return tuple(sorted(files))

    def push(self, destination: Path, refspecs: list[str]) -> None:
        if refspecs:
            self.git("push", "--quiet", "--force", str(destination), *refspecs)
