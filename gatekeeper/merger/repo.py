"""One project's local git clone, driven through ``git`` subprocesses.

Every command is an argv list (no shell). The working clone is private to
the merger. It remembers the commit its worktree is a clean checkout of:
the first use in a process resets and cleans it (a crashed merge never
leaks into the next one), later ones check out only when the base differs,
and a failed merge is reset at once. Commits of fetched patchset refs
(immutable in Gerrit) are remembered, so a ref is fetched once."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.model.states import MergeMode
from gatekeeper.shell import command_line

log = logging.getLogger("gatekeeper.merger.repo")

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Gerrit's patchset refs never move: their commit is fetched once.
_PATCHSET_REF = re.compile(r"^refs/changes/[0-9]{2}/[0-9]+/[0-9]+$")
# git-check-ref-format(1): no control characters, space, ~ ^ : ? * [ or backslash.
_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
KNOWN_LIMIT = 100_000  # patchset refs remembered per repository
STATES_KEPT = 20_000  # speculative states remembered per repository (LRU)
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


def git_env(private_key: str | None = None, known_hosts: str | None = None,
            tofu_known_hosts: str | None = None,
            ssh_options: Sequence[str] = ()) -> dict[str, str]:
    """Environment for git: no prompts, C locale, our ssh key and known_hosts.

    With ``known_hosts`` the host key must be in it. Without it but with
    ``tofu_known_hosts``, an unknown host key is recorded there on first
    use and any later change is refused (StrictHostKeyChecking=accept-new).
    ``ssh_options`` come on top (the shared connection, see sshmux.py)."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANG": "C",
                "GIT_ASKPASS": "/bin/true"})
    if private_key or known_hosts or tofu_known_hosts:
        # GIT_SSH_COMMAND is run by a shell: quote every value we put in.
        ssh = ["ssh", "-o", "BatchMode=yes", *ssh_options]
        if private_key:
            ssh += ["-i", private_key, "-o", "IdentitiesOnly=yes"]
        if known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        elif tofu_known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={tofu_known_hosts}",
                    "-o", "StrictHostKeyChecking=accept-new"]
        env["GIT_SSH_COMMAND"] = command_line(ssh)
    return env


def run_git(args: list[str], cwd: Path | None, env: dict[str, str],
            timeout: float = 600, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Every git process of the merger goes through here (tests count them)."""
    argv = ["git", *args]
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False, **feed)
    except subprocess.TimeoutExpired as e:
        raise GitError(scrub(f"git {args[0]} timed out after {timeout:.0f}s")) from e
    if check and proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines()]
        # git's generic advice after a failed fetch hides the real cause.
        detail = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
        raise GitError(scrub(f"git {args[0]} failed: {' '.join(detail[-3:])}"))
    return proc


def clear_stale_locks(git_dir: Path) -> int:
    """Remove the ``*.lock`` files a killed git left in ``git_dir`` (a bare
    repository or a clone's .git): with one, every later update of that ref
    (or of the index) fails. Only for repositories the merger alone writes,
    at its first use of them in a process, when no git of ours runs there."""
    removed = 0
    candidates = [git_dir / n for n in ("HEAD.lock", "index.lock", "packed-refs.lock",
                                        "config.lock", "shallow.lock", "FETCH_HEAD.lock")]
    refs = git_dir / "refs"
    if refs.is_dir():
        candidates += [p for p in refs.rglob("*.lock")]
    for path in candidates:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("cannot remove stale lock %s: %s", path, e)
            continue
        removed += 1
        log.warning("removed stale lock %s (a git process was killed)", path)
    return removed


def valid_ref_format(ref: str) -> bool:
    """What ``git check-ref-format REF`` accepts (its rules 1-9, without
    --allow-onelevel or --normalize), decided without a process."""
    if ref == "@" or "@{" in ref or ".." in ref or "//" in ref:
        return False
    if ref.endswith(("/", ".")) or _REF_BAD_CHARS.search(ref):
        return False
    parts = ref.split("/")
    return len(parts) > 1 and all(
        p and not p.startswith(".") and not p.endswith(".lock") for p in parts)


def check_ref_name(ref: str) -> str:
    """``ref`` if it is a valid full ref name (refs/...), else ValueError."""
    if not ref.startswith("refs/") or ref.startswith("-"):
        raise ValueError(f"not a full ref name: {ref!r}")
    if not valid_ref_format(ref):
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
                 user_email: str, timeout: float = 600,
                 probe: Callable[[], dict[str, str] | None] | None = None):
        self.path = Path(path)
        self.url = url
        self.env = env
        self.user_name = user_name
        self.user_email = user_email
        self.timeout = timeout
        # The commit the worktree is a clean checkout of; None: not known
        # (first use in this process, or a command failed half-way).
        self.clean_at: str | None = None
        self._fresh = False  # cloned by us without a checkout: nothing to clean
        self._known: dict[str, str] = {}  # patchset ref -> commit
        self._tips: dict[str, str] = {}  # branch -> commit, from the last fetch
        self._tips_partial = False  # FETCH_HEAD had names we could not read
        # The server's branch and tag tips (refs/heads/*, refs/tags/*) as our
        # last fetch got them; None: not known. ``probe`` asks the server for
        # the same (refprobe.py): equal, a fetch would bring nothing.
        self._remote: dict[str, str] | None = None
        self.probe = probe
        self.fetches_skipped = 0
        self._default: str | None = None
        # speculative states built: key (the merger's) -> commit
        self._states: OrderedDict[str, str] = OrderedDict()

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_git(list(args), self.path, self.env, self.timeout, check)

    def ensure(self) -> None:
        if not (self.path / ".git").is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            log.info("cloning %s into %s", scrub(self.url), self.path)
            run_git(["clone", "--quiet", "--no-checkout", "--", self.url, str(self.path)],
                    None, self.env, self.timeout)
            self._fresh = True
        else:
            clear_stale_locks(self.path / ".git")
            if self.git("remote", "get-url", "origin").stdout.strip() != self.url:
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
        # ... nor spawn "git maintenance run --auto" after every fetch and merge.
        self.git("config", "maintenance.auto", "false")
        proc = self.git("config", "--get", "gatekeeper.defaultbranch", check=False)
        self._default = proc.stdout.strip() or None

    def update(self, refs: list[str] | None = None) -> dict[str, str]:
        """Fetch every branch and tag of the project, and those of ``refs``
        (change refs) not fetched before, in one round trip; returns
        {ref: commit} for ``refs``."""
        refs = list(dict.fromkeys(refs or ()))
        for ref in refs:
            check_ref_name(ref)
        new = [ref for ref in refs if ref not in self._known]
        if not new and self._remote is not None and self.probe is not None:
            if self.probe() == self._remote:  # nothing moved: skip the fetch
                self.fetches_skipped += 1
                return {ref: self._known[ref] for ref in refs}
        # Forced tag refspec: a moved tag must not fail the fetch. Change
        # refs get no local name: their commits are read from FETCH_HEAD.
        self._tips, self._remote = {}, None
        self.git("fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*",
                 "+refs/tags/*:refs/tags/*", *new)
        heads = self._fetch_head()
        self._tips = {name[len("branch "):]: sha for name, sha in heads.items()
                      if name.startswith("branch ")}
        if not self._tips_partial:
            self._remote = {**{f"refs/heads/{b}": sha for b, sha in self._tips.items()},
                            **{f"refs/tags/{name[len('tag '):]}": sha
                               for name, sha in heads.items() if name.startswith("tag ")}}
        out: dict[str, str] = {}
        for ref in refs:
            sha = self._known.get(ref) or heads.get(ref) or self.fetch(ref)
            if _PATCHSET_REF.match(ref):
                if len(self._known) >= KNOWN_LIMIT:
                    self._known.clear()
                self._known[ref] = sha
            out[ref] = sha
        return out

    def _fetch_head(self) -> dict[str, str]:
        """FETCH_HEAD's lines as {"branch NAME", "tag NAME" or REF: object};
        a name that is not unambiguous (quotes in names) is left out: callers
        fetch it alone."""
        try:
            text = (self.path / ".git" / "FETCH_HEAD").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}
        seen: dict[str, str] = {}
        clash: set[str] = set()
        for line in text.splitlines():
            sha, _, rest = line.partition("\t")
            desc = rest.partition("\t")[2]
            kind = next((k for k in ("branch ", "tag ") if desc.startswith(k + "'")), "")
            quoted = desc[len(kind):]
            end = quoted.rfind("' of ")
            if not is_sha(sha) or not quoted.startswith("'") or end < 1:
                continue
            name = kind + quoted[1:end]
            if "'" in name or name in seen:
                clash.add(name)
            seen[name] = sha
        self._tips_partial = bool(clash)
        return {k: v for k, v in seen.items() if k not in clash}

    @property
    def default_branch(self) -> str | None:
        return self._default

    def branch_tip(self, branch: str) -> str | None:
        check_branch_name(branch)
        tip = self._tips.get(branch)
        if tip is not None:
            return tip
        proc = self.git("rev-parse", "--verify", "--quiet",
                        f"refs/remotes/origin/{branch}^{{commit}}", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def branch_tips(self) -> dict[str, str]:
        """{branch: commit} as of the last fetch (no process when it was ours)."""
        if self._tips and not self._tips_partial:
            return dict(self._tips)
        return self.branches()

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

    def built(self, key: str) -> str | None:
        """The commit of the state remembered under ``key``, if any."""
        sha = self._states.get(key)
        if sha is not None:
            self._states.move_to_end(key)
        return sha

    def remember(self, key: str, sha: str) -> None:
        self._states[key] = sha
        if len(self._states) > STATES_KEPT:
            self._states.popitem(last=False)

    def forget(self) -> None:
        """Forget remembered commits (before gc may drop unreachable ones)."""
        self._known.clear()
        self._states.clear()

    def reset_to(self, sha: str) -> None:
        """A clean detached checkout of ``sha``, whatever state we left before:
        nothing to do when the worktree is known to be a clean ``sha``, one
        checkout when it is known clean, the full reset otherwise."""
        if self.clean_at == sha:
            return
        trusted = self.clean_at is not None
        self.clean_at = None
        if not trusted:
            dot = self.path / ".git"
            if (dot / "MERGE_HEAD").exists() or (dot / "CHERRY_PICK_HEAD").exists() \
                    or (dot / "sequencer").exists():
                for abort in (("merge", "--abort"), ("cherry-pick", "--abort")):
                    self.git(*abort, check=False)
        self.git("checkout", "--quiet", "--force", "--detach", sha)
        if not trusted and not self._fresh:
            self.git("clean", "-qxdff")
        self._fresh = False
        self.clean_at = sha

    def head(self) -> str:
        try:
            text = (self.path / ".git" / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if is_sha(text):  # detached, as we always are after reset_to
            return text
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
        self.clean_at = None
        proc = self.git(*args, check=False)
        if proc.returncode == 0:
            self.clean_at = self.head()
            return ApplyOutcome(True)
        conflicts = self.conflict_files()
        detail = scrub((proc.stdout + proc.stderr).strip().splitlines()[-1:][0]
                       if (proc.stdout + proc.stderr).strip() else f"git {args[0]} failed")
        # reset drops the merge/cherry-pick state; clean what the merge left.
        self.git("reset", "--quiet", "--hard")
        self.git("clean", "-qxdff")
        self.clean_at = self.head()
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
