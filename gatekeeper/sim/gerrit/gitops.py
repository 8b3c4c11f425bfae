"""Real git on the emulator's bare repositories (argv only, never a shell).

Commits are built with plumbing on a throw-away index so no working tree
is needed; merges use ``git merge-tree --write-tree`` (git >= 2.38)."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.merger.repo import GitError
from gatekeeper.sim.gerrit.model import FileStat

log = logging.getLogger("gatekeeper.sim.gerrit.gitops")


# Direct pushes to branches and tags, and Gerrit's magic refs/for/<branch>
# (checked here: target branch exists, new commits, Change-Id footers; the
# emulator turns them into changes after the push). Nothing else.
PRE_RECEIVE = """#!/bin/sh
zero=0000000000000000000000000000000000000000
while read old new ref; do
  case "$ref" in
    refs/heads/*|refs/tags/*) ;;
    refs/for/*)
      branch=${ref#refs/for/}
      branch=${branch%%\\%*}
      branch=${branch#refs/heads/}
      if [ "$new" = "$zero" ]; then echo "refs/for/* cannot be deleted" >&2; exit 1; fi
      if ! git rev-parse --verify -q "refs/heads/$branch" >/dev/null; then
        echo "ERROR: branch $branch not found" >&2; exit 1
      fi
      commits=$(git rev-list "$new" --not "refs/heads/$branch" --glob="refs/changes/*")
      if [ -z "$commits" ]; then echo "ERROR: no new changes" >&2; exit 1; fi
      for c in $commits; do
        if ! git cat-file commit "$c" | grep -qE '^Change-Id: *I[0-9a-f]{40} *$'; then
          echo "ERROR: commit $c: missing Change-Id in message footer" >&2; exit 1
        fi
      done ;;
    *) echo "gerrit emulator: pushing to $ref is not supported" >&2
       exit 1 ;;
  esac
done
"""
# Reports this push's ref updates to the emulator (GK_PUSH_LOG is set by it).
POST_RECEIVE = """#!/bin/sh
if [ -n "$GK_PUSH_LOG" ]; then cat > "$GK_PUSH_LOG"; else cat > /dev/null; fi
"""


@dataclass(frozen=True)
class Ident:
    name: str
    email: str


class BareRepo:
    def __init__(self, path: Path):
        self.path = Path(path)

    # --- plumbing ---------------------------------------------------------
    def git(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        # Never read the operator's ~/.gitconfig hooks/templates into our repos.
        full_env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
        if env:
            full_env.update(env)
        # surrogateescape: non-UTF-8 file content round-trips byte for byte.
        proc = subprocess.run(["git", "--git-dir", str(self.path), *args], input=input,
                              capture_output=True, text=True, errors="surrogateescape",
                              env=full_env, check=False)
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc

    @classmethod
    def init(cls, path: Path, initial_branch: str) -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["git", "init", "--bare", "--quiet", "-b", initial_branch,
                               str(path)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise GitError(f"git init failed: {proc.stderr.strip()}")
        repo = cls(path)
        # Let clients fetch any advertised or unadvertised change ref by sha.
        repo.git("config", "uploadpack.allowReachableSHA1InWant", "true")
        repo.git("config", "receive.denyNonFastForwards", "false")
        (path / "hooks").mkdir(exist_ok=True)
        for name, text in (("pre-receive", PRE_RECEIVE), ("post-receive", POST_RECEIVE)):
            hook = path / "hooks" / name
            hook.write_text(text)
            hook.chmod(0o755)
        return repo

    def rev_parse(self, ref: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False)
        return proc.stdout.strip() or None

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        args = ["update-ref", ref, new]
        if old is not None:
            args.append(old)
        self.git(*args)

    def delete_ref(self, ref: str) -> None:
        self.git("update-ref", "-d", ref)

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", prefix).stdout
        refs: dict[str, str] = {}
        for line in out.splitlines():
            name, _, sha = line.partition(" ")
            refs[name] = sha
        return refs

    def branches(self) -> list[str]:
        return [r[len("refs/heads/"):] for r in self.refs("refs/heads/")]

    def tree_of(self, commit: str) -> str:
        return self.git("rev-parse", commit + "^{tree}").stdout.strip()

    def parents_of(self, commit: str) -> list[str]:
        out = self.git("rev-list", "--parents", "-n", "1", commit).stdout.split()
        return out[1:]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant,
                        check=False).returncode == 0

    def subjects(self, ref: str, limit: int | None = None) -> list[str]:
        args = ["log", "--format=%s", ref]
        if limit:
            args.insert(1, f"-n{limit}")
        return self.git(*args).stdout.splitlines()

    def read_file(self, rev: str, path: str) -> str | None:
        proc = self.git("show", f"{rev}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    # --- porcelain built on plumbing --------------------------------------
    def _ident_env(self, author: Ident, committer: Ident, when: int) -> dict[str, str]:
        date = f"{when} +0000"
        return {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
                "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_NAME": committer.name,
                "GIT_COMMITTER_EMAIL": committer.email, "GIT_COMMITTER_DATE": date}

    def write_tree(self, base: str | None, files: dict[str, str | None]) -> str:
        """Tree = ``base`` commit's tree with ``files`` written (None deletes)."""
        with tempfile.TemporaryDirectory(prefix="gk-gerrit-idx-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if base:
                self.git("read-tree", base, env=env)
            else:
                self.git("read-tree", "--empty", env=env)
            # One --index-info batch; mode 0 removes an entry.
            entries = []
            for path, content in sorted(files.items()):
                if content is None:
                    entries.append(f"0 {'0' * 40}\t{path}\n")
                    continue
                blob = self.git("hash-object", "-w", "--stdin", input=content).stdout.strip()
                entries.append(f"100644 {blob}\t{path}\n")
            if entries:
                self.git("update-index", "--index-info", input="".join(entries), env=env)
            return self.git("write-tree", env=env).stdout.strip()

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Ident,
                    committer: Ident, when: int) -> str:
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        return self.git(*args, input=message,
                        env=self._ident_env(author, committer, when)).stdout.strip()

    def commit(self, parent: str | None, files: dict[str, str | None], message: str,
               author: Ident, committer: Ident, when: int) -> str:
        tree = self.write_tree(parent, files)
        return self.commit_tree(tree, [parent] if parent else [], message, author,
                                committer, when)

    def diff_stats(self, old: str | None, new: str) -> list[FileStat]:
        base = old or self.git("hash-object", "-t", "tree", "/dev/null").stdout.strip()
        # --raw lines (":old new sha sha STATUS\tpath") come first, then --numstat.
        out = self.git("diff-tree", "-r", "--no-renames", "--raw", "--numstat", base,
                       new).stdout.splitlines()
        kinds = {"A": "ADDED", "M": "MODIFIED", "D": "DELETED", "T": "MODIFIED"}
        types = {}
        stats = []
        for line in out:
            if line.startswith(":"):
                meta, path = line.split("\t", 1)
                types[path] = kinds.get(meta.split()[-1][:1], "MODIFIED")
            elif line:
                ins, dels, path = line.split("\t", 2)
                stats.append(FileStat(path, types.get(path, "MODIFIED"),
                                      int(ins) if ins.isdigit() else 0,
                                      int(dels) if dels.isdigit() else 0))
        return stats

    def merge_tree(self, ours: str, theirs: str) -> tuple[str | None, str]:
        """Returns (tree, "") when clean, (None, conflict description) otherwise."""
        proc = self.git("merge-tree", "--write-tree", "--name-only", "--no-messages",
                        ours, theirs, check=False)
        lines = proc.stdout.splitlines()
        if proc.returncode == 0:
            return lines[0].strip(), ""
        if proc.returncode == 1:
            return None, ", ".join(line for line in lines[1:] if line)
        raise GitError(f"git merge-tree failed: {proc.stderr.strip()}")
