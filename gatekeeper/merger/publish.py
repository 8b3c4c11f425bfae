"""Bare repositories the merger publishes speculative refs into.

Workers fetch ``refs/gatekeeper/...`` from here (served by git daemon).
Each repository also mirrors the project's branches, so a worker can
clone a project the change does not touch from the same place.

Git keeps no creation time for a ref, so each repository carries a small
journal (``gatekeeper-refs.log``: ``EPOCH REF`` lines) that pruning uses to
drop refs by age and keep a bounded number."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

from gatekeeper.merger.repo import run_git

log = logging.getLogger("gatekeeper.merger.publish")

PREFIX = "refs/gatekeeper/"
JOURNAL = "gatekeeper-refs.log"


class PublishRepo:
    def __init__(self, path: Path, env: dict[str, str], timeout: float = 600):
        self.path = Path(path)
        self.env = env
        self.timeout = timeout

    def git(self, *args: str, stdin: str | None = None) -> str:
        if stdin is None:
            return run_git(list(args), self.path, self.env, self.timeout).stdout
        proc = subprocess.run(["git", *args], cwd=self.path, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=self.timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def ensure(self) -> None:
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", str(self.path)], None, self.env, self.timeout)
            # git daemon serves only repositories that allow it.
            (self.path / "git-daemon-export-ok").touch()
            self.git("config", "gc.auto", "0")

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
