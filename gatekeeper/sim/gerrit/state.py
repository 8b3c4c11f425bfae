"""Gerrit's behaviour: changes, patch sets, reviews, submit — and their events.

One lock guards everything (the emulator is small and git is fast); events
are published while the lock is held so every subscriber sees one order."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatekeeper.sim.gerrit.events import EventBus
from gatekeeper.sim.gerrit.gitops import BareRepo, GitError, Ident
from gatekeeper.sim.gerrit.model import (
    DEFAULT_LABELS,
    STATUS_ABANDONED,
    STATUS_MERGED,
    STATUS_NEW,
    Account,
    Change,
    Label,
    Message,
    PatchSet,
    Renderer,
    Vote,
    change_ref,
)

log = logging.getLogger("gatekeeper.sim.gerrit.state")

SERVER_IDENT = Ident("Gerrit Code Review", "gerrit@localhost")


class ReviewError(Exception):
    """A review/submit/abandon Gerrit refuses; the text is what Gerrit prints."""


class GerritState:
    def __init__(self, root: Path, bus: EventBus, baseurl: str, *,
                 number_as_string: bool = False,
                 labels: tuple[Label, ...] = DEFAULT_LABELS,
                 submit_requires: tuple[str, ...] = ("Code-Review",),
                 clock: Callable[[], float] = time.time):
        self.root = Path(root)
        self.git_root = self.root / "git"
        self.bus = bus
        self.clock = clock
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.labels: dict[str, Label] = {lb.name: lb for lb in labels}
        self.submit_requires = tuple(submit_requires)
        self.projects: dict[str, BareRepo] = {}
        self.changes: dict[int, Change] = {}
        self._next_number = 1
        self.render = Renderer(self.accounts, baseurl, number_as_string, self.labels)

    # --- helpers ----------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def ident(self, username: str) -> Ident:
        acct = self.accounts.get(username)
        if acct is None:
            return Ident(username, f"{username}@example.com")
        return Ident(acct.full_name, acct.email)

    def repo(self, project: str) -> BareRepo:
        try:
            return self.projects[project]
        except KeyError:
            raise ReviewError(f"project {project} not found") from None

    def change(self, number: int) -> Change:
        try:
            return self.changes[int(number)]
        except (KeyError, ValueError):
            raise ReviewError(f"change {number} not found") from None

    def require_user(self, username: str) -> Account:
        acct = self.accounts.get(username)
        if acct is None:
            raise ValueError(f"unknown user {username!r}: add_user() first")
        return acct

    def _base_event(self, type_: str, change: Change, ps: PatchSet) -> dict[str, Any]:
        return {
            "type": type_,
            "change": self.render.change(change),
            "patchSet": self.render.patchset(ps),
            "project": change.project,
            "refName": f"refs/heads/{change.branch}",
            "changeKey": {"id": change.change_id},
            "eventCreatedOn": self.now(),
        }

    def _emit(self, event: dict[str, Any]) -> None:
        self.bus.publish(event)

    # --- users and projects ----------------------------------------------
    def add_user(self, username: str, public_key: str | None, email: str | None = None,
                 full_name: str | None = None,
                 capabilities: tuple[str, ...] | frozenset[str] = ("stream-events",)) -> Account:
        keys = []
        if public_key:
            parts = public_key.split()
            if len(parts) < 2:
                raise ValueError("public key must look like 'ssh-ed25519 AAAA...'")
            keys.append(f"{parts[0]} {parts[1]}")
        with self.lock:
            acct = Account(username, full_name or username.capitalize(),
                           email or f"{username}@example.com", keys, frozenset(capabilities))
            self.accounts[username] = acct
            return acct

    def create_project(self, name: str, branches: tuple[str, ...] | list[str] = ("master",),
                       files: dict[str, str] | None = None) -> Path:
        if not name or name.startswith("/") or ".." in name.split("/") or name.endswith(".git"):
            raise ValueError(f"invalid project name {name!r}")
        with self.lock:
            if name in self.projects:
                raise ValueError(f"project {name} already exists")
            branches = list(branches) or ["master"]
            path = self.git_root / f"{name}.git"
            if path.exists():
                # Left by an earlier run: state lives in memory, so start afresh.
                log.warning("replacing stale repository %s", path)
                shutil.rmtree(path)
            repo = BareRepo.init(path, branches[0])
            content: dict[str, str | None] = dict(
                files if files is not None else {"README": f"{name}\n"})
            when = self.now()
            sha = repo.commit(None, content, "Initial commit\n", SERVER_IDENT, SERVER_IDENT,
                              when)
            for branch in branches:
                repo.update_ref(f"refs/heads/{branch}", sha)
            self.projects[name] = repo
            log.info("created project %s (%s)", name, ", ".join(branches))
            return repo.path

    def branch_head(self, project: str, branch: str) -> str:
        sha = self.repo(project).rev_parse(f"refs/heads/{branch}")
        if sha is None:
            raise ReviewError(f"branch {branch} not found in {project}")
        return sha

    def push_branch_commit(self, project: str, branch: str, files: dict[str, str | None],
                           message: str = "Direct push", user: str = "admin") -> str:
        with self.lock:
            repo = self.repo(project)
            old = repo.rev_parse(f"refs/heads/{branch}")
            ident = self.ident(user)
            sha = repo.commit(old, files, message.rstrip("\n") + "\n", ident, ident, self.now())
            repo.update_ref(f"refs/heads/{branch}", sha, old or "0" * 40)
            self._emit_ref_updated(project, f"refs/heads/{branch}", old, sha, user)
            return sha

    def ref_pushed(self, project: str, ref: str, old: str, new: str, user: str) -> None:
        """A ref changed by a push over SSH (not by the API)."""
        with self.lock:
            zero = "0" * 40
            self._emit_ref_updated(project, ref, None if old == zero else old,
                                   None if new == zero else new, user)

    def _emit_ref_updated(self, project: str, ref: str, old: str | None, new: str | None,
                          user: str) -> None:
        self._emit({
            "type": "ref-updated",
            "submitter": self.render.account(user),
            "refUpdate": {"oldRev": old or "0" * 40, "newRev": new or "0" * 40,
                          "refName": ref, "project": project},
            "eventCreatedOn": self.now(),
        })

    # --- changes and patch sets ------------------------------------------
    def _new_change_id(self, project: str, subject: str, number: int) -> str:
        seed = f"{project}\0{subject}\0{number}\0{os.urandom(8).hex()}"
        return "I" + hashlib.sha1(seed.encode()).hexdigest()  # an id, not security

    @staticmethod
    def _commit_message(subject: str, body: str, depends_on: list[str], change_id: str) -> str:
        parts = [subject.strip()]
        if body.strip():
            parts.append(body.strip())
        footers = [f"Depends-On: {d}" for d in depends_on] + [f"Change-Id: {change_id}"]
        parts.append("\n".join(footers))
        return "\n\n".join(parts) + "\n"

    def _make_patchset(self, change: Change, number: int, parent: str, message: str,
                       uploader: str, previous: PatchSet | None) -> PatchSet:
        sha = self.repo(change.project).commit(parent, change.files, message,
                                               self.ident(change.owner), self.ident(uploader),
                                               self.now())
        return self.record_patchset(change, number, sha, [parent], message, uploader, previous)

    def record_patchset(self, change: Change, number: int, sha: str, parents: list[str],
                        message: str, uploader: str, previous: PatchSet | None) -> PatchSet:
        """A patch set for an existing commit: its change ref, stats and kind."""
        repo = self.repo(change.project)
        ref = change_ref(change.number, number)
        repo.update_ref(ref, sha)
        stats = repo.diff_stats(parents[0] if parents else None, sha)
        if previous is None:
            kind = "REWORK"
        elif previous.parents == parents and repo.tree_of(previous.revision) == repo.tree_of(sha):
            kind = "NO_CHANGE" if previous.commit_message == message else "NO_CODE_CHANGE"
        else:
            kind = "REWORK"
        return PatchSet(number=number, revision=sha, parents=list(parents), ref=ref,
                        uploader=uploader, author=change.owner, created_on=self.now(),
                        kind=kind, size_insertions=sum(f.insertions for f in stats),
                        size_deletions=-sum(f.deletions for f in stats),
                        files=stats, commit_message=message)

    def new_change_number(self) -> int:
        with self.lock:
            number = self._next_number
            self._next_number += 1
            return number

    def create_change(self, project: str, branch: str = "master", subject: str = "A change",
                      files: dict[str, str | None] | None = None, message_body: str = "",
                      depends_on: list[str] | tuple[str, ...] = (),
                      parent_change: int | None = None, owner: str = "alice",
                      topic: str | None = None) -> int:
        with self.lock:
            self.require_user(owner)
            repo = self.repo(project)
            if parent_change is not None:
                parent_obj = self.change(parent_change)
                if parent_obj.project != project:
                    raise ValueError("parent_change must be in the same project")
                parent = parent_obj.current.revision
            else:
                head = repo.rev_parse(f"refs/heads/{branch}")
                if head is None:
                    raise ValueError(f"branch {branch} does not exist in {project}")
                parent = head
            number = self.new_change_number()
            if files is None:
                safe = "".join(c if c.isalnum() else "-" for c in subject.lower())[:40]
                files = {f"changes/{number}-{safe}.txt": f"{subject}\n"}
            change_id = self._new_change_id(project, subject, number)
            now = self.now()
            change = Change(number=number, project=project, branch=branch, change_id=change_id,
                            owner=owner, subject=subject.strip().splitlines()[0], topic=topic,
                            status=STATUS_NEW, created_on=now, last_updated=now,
                            depends_on=list(depends_on), files=dict(files))
            message = self._commit_message(subject, message_body, list(depends_on), change_id)
            ps = self._make_patchset(change, 1, parent, message, owner, None)
            change.patchsets.append(ps)
            change.messages.append(Message(now, owner, "Uploaded patch set 1.", 1))
            self.changes[number] = change
            log.info("created change %d,1 in %s (%s)", number, project, change.subject)
            self.emit_patchset_created(change, ps)
            return number

    def emit_patchset_created(self, change: Change, ps: PatchSet) -> None:
        event = self._base_event("patchset-created", change, ps)
        event["uploader"] = self.render.account(ps.uploader)
        self._emit(event)

    def add_patchset(self, number: int, files: dict[str, str | None] | None = None,
                     subject: str | None = None, uploader: str = "alice",
                     message_body: str | None = None, rebase: bool = False) -> int:
        """New patch set: ``files`` replaces/extends the change's files; ``rebase``
        puts it on the current branch head instead of the previous parent."""
        with self.lock:
            self.require_user(uploader)
            change = self.change(number)
            if not change.is_open:
                raise ReviewError(f"change {number} is closed")
            prev = change.current
            if files:
                change.files.update(files)
            if subject is not None:
                change.subject = subject.strip().splitlines()[0]
            parent = prev.parents[0]
            if rebase:
                parent = self.branch_head(change.project, change.branch)
            body = message_body
            if body is None:
                # Keep the previous body (without the subject and footer paragraph).
                paras = prev.commit_message.strip().split("\n\n")
                body = "\n\n".join(paras[1:-1])
            message = self._commit_message(subject or prev.commit_message.splitlines()[0],
                                           body, change.depends_on, change.change_id)
            ps = self._make_patchset(change, prev.number + 1, parent, message, uploader, prev)
            if rebase and ps.kind == "REWORK" and not files and subject is None:
                ps.kind = "TRIVIAL_REBASE"
            change.patchsets.append(ps)
            change.last_updated = ps.created_on
            change.messages.append(Message(ps.created_on, uploader,
                                           f"Uploaded patch set {ps.number}.", ps.number))
            self.emit_patchset_created(change, ps)
            return ps.number

    # --- reviews ------------------------------------------------------------
    def check_label(self, name: str, value: int, user: str | None = None) -> Label:
        label = self.labels.get(name)
        if label is None:
            raise ReviewError(f'label "{name}" is not a configured label')
        permitted = label.voters is None or user is None or user in label.voters
        if not label.min <= value <= label.max or (value != 0 and not permitted):
            raise ReviewError(f'Applying label "{name}": {value:+d} is restricted')
        return label

    def restrict_label(self, name: str, users: list[str] | tuple[str, ...] | None) -> None:
        with self.lock:
            label = self.labels.get(name)
            if label is None:
                raise ValueError(f"unknown label {name!r}")
            self.labels[name] = dataclasses.replace(
                label, voters=None if users is None else frozenset(users))

    def set_topic(self, number: int, topic: str | None, user: str) -> None:
        with self.lock:
            self.require_user(user)
            change = self.change(number)
            old, change.topic = change.topic, topic or None
            change.last_updated = self.now()
            change.messages.append(Message(change.last_updated, user,
                                           f"Topic set to {topic}" if topic else
                                           "Topic removed", change.current.number))
            event = self._base_event("topic-changed", change, change.current)
            del event["patchSet"]
            event["changer"] = self.render.account(user)
            event["oldTopic"] = old or ""
            self._emit(event)

    def add_reviewer(self, number: int, reviewer: str, adder: str) -> None:
        with self.lock:
            self.require_user(reviewer)
            self.require_user(adder)
            change = self.change(number)
            event = self._base_event("reviewer-added", change, change.current)
            event["reviewer"] = self.render.account(reviewer)
            event["adder"] = self.render.account(adder)
            self._emit(event)

    def review(self, number: int, patchset: int | None = None, user: str = "bob",
               labels: dict[str, int] | None = None, message: str = "", *,
               submit: bool = False, abandon: bool = False, restore: bool = False) -> None:
        """Apply a review like `gerrit review`; raises ReviewError with Gerrit's text."""
        labels = dict(labels or {})
        with self.lock:
            self.require_user(user)
            change = self.change(number)
            ps = change.patchset(patchset) if patchset is not None else change.current
            if ps is None:
                raise ReviewError(f'"{number},{patchset}" no such patch set')
            for name, value in labels.items():
                self.check_label(name, int(value), user)
            if labels and ps is not change.current:
                raise ReviewError(f"Cannot post votes on outdated patch set {ps.number}")
            if labels and not change.is_open and not restore:
                raise ReviewError(f"change {number} is closed")
            if restore:
                self._restore(change, user, "")
            self._apply_review(change, ps, user, labels, message)
            if abandon:
                self._abandon(change, user, "")
            if submit:
                self._submit(change, user)

    def _apply_review(self, change: Change, ps: PatchSet, user: str, labels: dict[str, int],
                      message: str) -> None:
        changed: dict[str, tuple[int, int]] = {}
        now = self.now()
        first_vote = not any(user in by_user for by_user in ps.votes.values())
        for name, value in labels.items():
            value = int(value)
            by_user = ps.votes.setdefault(name, {})
            old = by_user[user].value if user in by_user else 0
            if old == value:
                continue
            changed[name] = (old, value)
            if value == 0:
                by_user.pop(user, None)
            else:
                by_user[user] = Vote(name, value, user, now)
        if not changed and not message:
            return
        summary = " ".join(self.labels[n].describe_value(v) for n, (_, v) in changed.items())
        text = f"Patch Set {ps.number}:" + (f" {summary}" if summary else "")
        if message:
            text += "\n\n" + message
        change.messages.append(Message(now, user, text, ps.number))
        change.last_updated = now
        if changed and first_vote and user != change.owner:
            event = self._base_event("reviewer-added", change, ps)
            event["reviewer"] = self.render.account(user)
            self._emit(event)
        # Like Gerrit (PostReview -> StreamEventsApiListener): every label the
        # author may vote, with the current value ("0" if none); oldValue only
        # on labels this review changed.
        approvals = []
        for name, label in self.labels.items():
            if label.voters is not None and user not in label.voters:
                continue
            vote = ps.votes.get(name, {}).get(user)
            entry = {"type": name, "description": name,
                     "value": str(vote.value if vote else 0)}
            if name in changed:
                entry["oldValue"] = str(changed[name][0])
            approvals.append(entry)
        event = self._base_event("comment-added", change, ps)
        event["author"] = self.render.account(user)
        if approvals:
            event["approvals"] = approvals
        event["comment"] = text
        self._emit(event)

    def abandon(self, number: int, user: str, reason: str = "") -> None:
        with self.lock:
            self.require_user(user)
            self._abandon(self.change(number), user, reason)

    def _abandon(self, change: Change, user: str, reason: str) -> None:
        if not change.is_open:
            raise ReviewError(f"change is {change.status.lower()}")
        change.status = STATUS_ABANDONED
        change.last_updated = self.now()
        change.messages.append(Message(change.last_updated, user,
                                       "Abandoned" + (f"\n\n{reason}" if reason else ""),
                                       change.current.number))
        event = self._base_event("change-abandoned", change, change.current)
        event["abandoner"] = self.render.account(user)
        event["reason"] = reason
        self._emit(event)

    def restore(self, number: int, user: str, reason: str = "") -> None:
        with self.lock:
            self.require_user(user)
            self._restore(self.change(number), user, reason)

    def _restore(self, change: Change, user: str, reason: str) -> None:
        if change.status != STATUS_ABANDONED:
            raise ReviewError("change is " + ("merged" if change.status == STATUS_MERGED
                                              else "new"))
        change.status = STATUS_NEW
        change.last_updated = self.now()
        change.messages.append(Message(change.last_updated, user,
                                       "Restored" + (f"\n\n{reason}" if reason else ""),
                                       change.current.number))
        event = self._base_event("change-restored", change, change.current)
        event["restorer"] = self.render.account(user)
        event["reason"] = reason
        self._emit(event)

    # --- submit -------------------------------------------------------------
    def submit(self, number: int, user: str = "admin") -> tuple[bool, str | None]:
        with self.lock:
            try:
                self._submit(self.change(number), user)
            except ReviewError as e:
                return False, str(e)
            return True, None

    def _submit_problem(self, change: Change) -> str | None:
        if change.status == STATUS_MERGED:
            return "change is merged"
        if change.status == STATUS_ABANDONED:
            return "change is abandoned"
        ps = change.current
        for name, label in self.labels.items():
            votes = [v.value for v in ps.votes.get(name, {}).values()]
            if label.blocking and label.min < 0 and label.min in votes:
                return f"submit requirement '{name}' is unsatisfied (blocked by {label.min:+d})"
            if name in self.submit_requires and label.max not in votes:
                return f"submit requirement '{name}' is unsatisfied"
        for parent in ps.parents:
            for other in self.changes.values():
                if other is change or other.project != change.project:
                    continue
                if other.status != STATUS_MERGED and any(p.revision == parent
                                                          for p in other.patchsets):
                    return (f"Depends on change that was not submitted. Commit "
                            f"{ps.revision} depends on commit {parent}, of change "
                            f"{other.number} which cannot be merged.")
        return None

    def _submit(self, change: Change, user: str) -> None:
        problem = self._submit_problem(change)
        if problem is not None:
            raise ReviewError(f"Failed to submit 1 change due to the following problems:\n"
                              f"Change {change.number}: {problem}")
        repo = self.repo(change.project)
        ref = f"refs/heads/{change.branch}"
        head = repo.rev_parse(ref)
        ps = change.current
        now = self.now()
        try:
            if head is None or repo.is_ancestor(head, ps.revision):
                new = ps.revision
            elif repo.is_ancestor(ps.revision, head):
                new = head  # already contained in the branch
            else:
                tree, conflicts = repo.merge_tree(head, ps.revision)
                if tree is None:
                    log.info("change %d conflicts with %s: %s", change.number, ref, conflicts)
                    raise ReviewError(
                        f"Failed to submit 1 change due to the following problems:\n"
                        f"Change {change.number}: Change could not be merged due to a path "
                        f"conflict. Please rebase the change locally and upload the rebased "
                        f"commit for review.")
                msg = (f'Merge "{change.subject}"\n\n'
                       f"Change-Id: {change.change_id}\n")
                new = repo.commit_tree(tree, [head, ps.revision], msg, self.ident(user),
                                       SERVER_IDENT, now)
            if new != head:
                repo.update_ref(ref, new, head or "0" * 40)
        except GitError as e:
            log.error("submit of %d failed in git: %s", change.number, e)
            raise ReviewError(f"Change {change.number}: internal server error") from e
        change.status = STATUS_MERGED
        change.merged_revision = new
        change.last_updated = now
        change.messages.append(Message(now, user, "Change has been successfully merged by "
                                       f"{self.ident(user).name}", ps.number))
        log.info("merged change %d into %s %s as %s", change.number, change.project, ref,
                 new[:12])
        if new != head:
            self._emit_ref_updated(change.project, ref, head, new, user)
        event = self._base_event("change-merged", change, ps)
        event["submitter"] = self.render.account(user)
        event["newRev"] = new
        self._emit(event)

    # --- lookups ------------------------------------------------------------
    def find_patchsets(self, target: str, project: str | None = None,
                       branch: str | None = None) -> list[tuple[Change, PatchSet]]:
        """Resolve a `gerrit review` target: ``CHANGE,PS`` or a (abbreviated) SHA."""
        if "," in target:
            num, _, psn = target.partition(",")
            if not (num.isdigit() and psn.isdigit()):
                raise ReviewError(f'"{target}" is not a valid patch set')
            change = self.changes.get(int(num))
            ps = change.patchset(int(psn)) if change else None
            if change is None or ps is None or (project and change.project != project):
                raise ReviewError(f'"{target}" no such patch set')
            return [(change, ps)]
        if not (4 <= len(target) <= 40 and all(c in "0123456789abcdef" for c in target.lower())):
            raise ReviewError(f'"{target}" is not a valid patch set')
        found = [(c, p) for c in self.changes.values() for p in c.patchsets
                 if p.revision.startswith(target.lower())
                 and (not project or c.project == project)
                 and (not branch or c.branch == branch)]
        if not found:
            raise ReviewError(f'"{target}" no such patch set')
        if len({p.revision for _, p in found}) > 1 or len(found) > 1:
            raise ReviewError(f'"{target}" matches multiple patch sets')
        return found
