"""Bare repositories the merger publishes speculative refs into.

Workers fetch ``refs/gatekeeper/...`` from here (served by git daemon).
Each repository also mirrors the project's branches, so a worker can
clone a project the change does not touch from the same place.

A publish repository holds no objects of its own: it borrows those of the
merger's working clone (``objects/info/alternates``), so publishing is one
``git update-ref --stdin`` transaction, not a push (which ran receive-pack,
pack-objects, unpack-objects and a connectivity check per merge). The
objects are complete before any ref names them (the merge that wrote them
has exited); each ref is replaced by a rename, so a merger killed at any
point leaves either the old value or the new one, never a ref to a
half-written state; ``*.lock`` files a killed git left behind are removed
when the merger first uses the repository (it is their only writer).
Before the clone is garbage-collected the merger copies these refs into it
(see Merger.prune), so gc keeps what is published here.

Git keeps no creation time for a ref, so each repository carries a small
journal (``gatekeeper-refs.log``: ``EPOCH REF`` lines) that pruning uses to
drop refs by age and keep a bounded number."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from gatekeeper.merger.repo import clear_stale_locks, run_git

log = logging.getLogger("gatekeeper.merger.publish")

PREFIX = "refs/gatekeeper/"
JOURNAL = "gatekeeper-refs.log"


class PublishRepo:
    def __init__(self, path: Path, env: dict[str, str], timeout: float = 600):
        self.path = Path(path)
        self.env = env
        self.timeout = timeout

    def git(self, *args: str, stdin: str | None = None) -> str:
        return run_git(list(args), self.path, self.env, self.timeout, stdin=stdin).stdout

    def ensure(self, objects_from: Path | None = None) -> None:
        """Create the repository if needed; borrow ``objects_from`` (an
        objects directory) and clear stale locks. Once per process."""
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", str(self.path)], None, self.env, self.timeout)
            # git daemon serves only repositories that allow it.
            (self.path / "git-daemon-export-ok").touch()
            self.git("config", "gc.auto", "0")
        else:
            clear_stale_locks(self.path)
        if objects_from is not None:
            self._borrow(Path(objects_from).resolve())

    def _borrow(self, objects: Path) -> None:
        """``objects`` as this repository's alternate object store. Objects it
        already has (pushed by an older merger) stay usable."""
        info = self.path / "objects" / "info"
        alternates = info / "alternates"
        want = f"{objects}\n"
        try:
            if alternates.read_text(encoding="utf-8") == want:
                return
        except (OSError, UnicodeDecodeError):
            pass
        info.mkdir(parents=True, exist_ok=True)
        tmp = info / "alternates.new"
        tmp.write_text(want, encoding="utf-8")
        tmp.replace(alternates)  # readers see the old file or the new one

    def set_refs(self, refs: dict[str, str]) -> None:
        """Point every ref of ``refs`` ({name: commit}) at its commit in one
        transaction (one process)."""
        if refs:
            self.git("update-ref", "--stdin",
                     stdin="".join(f"update {ref} {sha}\n" for ref, sha in refs.items()))

    def published(self) -> dict[str, str]:
        """{ref: commit} of every speculative ref."""
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", PREFIX)
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {ref: sha for ref, sha in pairs}

    def record(self, refs: list[str], now: float | None = None) -> None:
        stamp = int(now if now is not None else time.time())
        with open(self.path / JOURNAL, "a", encoding="utf-8") as f:
            for ref in refs:
                f.write(f"{stamp} {ref}\n")

    def refs(self) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname)", PREFIX)
        return [line for line in out.splitlines() if line]

    def _journal(self) -> dict[str, int]:
        ages: dict[str, int] = {}
        try:
            lines = (self.path / JOURNAL).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return ages
        for line in lines:
            stamp, _, ref = line.partition(" ")
            if stamp.isdigit() and ref:
                ages[ref] = int(stamp)  # the last write wins: a republished ref is new
        return ages

    def prune(self, keep: int, max_age: float, now: float | None = None) -> list[str]:
        """Delete speculative refs older than ``max_age`` seconds, and the
        oldest beyond ``keep``. Returns the deleted ref names."""
        now = now if now is not None else time.time()
        journal = self._journal()
        present = self.refs()
        # A ref without a journal line (journal lost): its age starts now.
        ages = {ref: journal.get(ref, int(now)) for ref in present}
        newest_first = sorted(present, key=lambda r: (ages[r], r), reverse=True)
        doomed = [r for i, r in enumerate(newest_first)
                  if i >= keep or now - ages[r] > max_age]
        if doomed:
            self.git("update-ref", "--stdin", stdin="".join(f"delete {r}\n" for r in doomed))
        kept = [r for r in newest_first if r not in set(doomed)]
        tmp = self.path / (JOURNAL + ".new")
        tmp.write_text("".join(f"{ages[r]} {r}\n" for r in reversed(kept)), encoding="utf-8")
        tmp.replace(self.path / JOURNAL)
        if doomed:
            log.info("pruned %d refs from %s", len(doomed), self.path)
        return doomed
