"""Gerrit's magic ``refs/for/<branch>[%topic=T]`` push.

git's pre-receive hook (gitops.PRE_RECEIVE) already refused pushes without
a Change-Id footer or without new commits; here, after receive-pack has
finished, every new commit becomes a change, or a new patch set of the open
change carrying its Change-Id, and the temporary ``refs/for`` ref is removed."""

from __future__ import annotations

import logging
import re

from gatekeeper.sim.gerrit.model import STATUS_NEW, Change, Message
from gatekeeper.sim.gerrit.state import GerritState

log = logging.getLogger("gatekeeper.sim.gerrit.push")

CHANGE_ID_RE = re.compile(r"^Change-Id:\s*(I[0-9a-f]{40})\s*$", re.M)
DEPENDS_ON_RE = re.compile(r"^Depends-On:\s*(\S+)\s*$", re.M)


def parse_target(ref: str) -> tuple[str, dict[str, str]]:
    """``refs/for/master%topic=x,wip`` -> ("master", {"topic": "x", "wip": ""})."""
    target = ref[len("refs/for/"):]
    branch, _, opts = target.partition("%")
    options = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        options[key] = value
    return branch.removeprefix("refs/heads/"), options


def process_push(state: GerritState, project: str, ref: str, new: str, user: str) -> list[str]:
    """Turn the pushed commits into changes; returns Gerrit-style report lines."""
    branch, options = parse_target(ref)
    repo = state.repo(project)
    report: list[str] = []
    with state.lock:
        commits = repo.git("rev-list", "--reverse", "--topo-order", new, "--not",
                           f"refs/heads/{branch}").stdout.split()
        for sha in commits:
            raw = repo.git("cat-file", "commit", sha).stdout
            message = raw.split("\n\n", 1)[1] if "\n\n" in raw else ""
            ids = CHANGE_ID_RE.findall(message)
            if not ids:  # the hook checks this; stay safe if it was bypassed
                report.append(f"error: {sha[:7]}: missing Change-Id in message footer")
                continue
            parents = repo.parents_of(sha)
            existing = [c for c in state.changes.values() if c.change_id == ids[-1]
                        and c.project == project and c.branch == branch]
            if existing:
                change = existing[0]
                if any(ps.revision == sha for ps in change.patchsets):
                    continue
                if change.status != STATUS_NEW:
                    report.append(f"error: {sha[:7]}: change {change.number} closed")
                    continue
                _new_patchset(state, change, sha, parents, message, user)
                report.append(f"  {state.render.url(change)} {change.subject}")
            else:
                change = _new_change(state, project, branch, sha, parents, message, user,
                                     ids[-1], options.get("topic") or None)
                report.append(f"  {state.render.url(change)} {change.subject} [NEW]")
        repo.delete_ref(ref)
    return report


def _files(state: GerritState, project: str, parent: str | None, sha: str
           ) -> dict[str, str | None]:
    repo = state.repo(project)
    files: dict[str, str | None] = {}
    for stat in repo.diff_stats(parent, sha):
        files[stat.path] = None if stat.type == "DELETED" else repo.read_file(sha, stat.path)
    return files


def _new_change(state: GerritState, project: str, branch: str, sha: str, parents: list[str],
                message: str, user: str, change_id: str, topic: str | None) -> Change:
    now = state.now()
    number = state.new_change_number()
    subject = message.splitlines()[0] if message else sha[:7]
    change = Change(number=number, project=project, branch=branch, change_id=change_id,
                    owner=user, subject=subject, topic=topic, status=STATUS_NEW,
                    created_on=now, last_updated=now,
                    depends_on=DEPENDS_ON_RE.findall(message),
                    files=_files(state, project, parents[0] if parents else None, sha))
    ps = state.record_patchset(change, 1, sha, parents, message, user, None)
    change.patchsets.append(ps)
    change.messages.append(Message(now, user, "Uploaded patch set 1.", 1))
    state.changes[number] = change
    log.info("push by %s created change %d in %s", user, number, project)
    state.emit_patchset_created(change, ps)
    return change


def _new_patchset(state: GerritState, change: Change, sha: str, parents: list[str],
                  message: str, user: str) -> None:
    prev = change.current
    ps = state.record_patchset(change, prev.number + 1, sha, parents, message, user, prev)
    change.patchsets.append(ps)
    change.subject = message.splitlines()[0] if message else change.subject
    change.depends_on = DEPENDS_ON_RE.findall(message)
    change.files = _files(state, change.project, parents[0] if parents else None, sha)
    change.last_updated = ps.created_on
    change.messages.append(Message(ps.created_on, user, f"Uploaded patch set {ps.number}.",
                                   ps.number))
    log.info("push by %s added patch set %d,%d", user, change.number, ps.number)
    state.emit_patchset_created(change, ps)
