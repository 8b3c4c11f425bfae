"""Does this event (and its change) enter this pipeline — and why (not)?

``match_trigger`` is pure and returns reasons in plain words, so the same
function decides enqueues and answers "why didn't my change enqueue?"
(``gatekeeper events``). Its name and signature are a stable API.

``triggered_pipelines`` makes the same decision without words, for the
scheduler: only the triggers listening to the event's type are looked at
(an index built once per layout), and no reason is formatted. The two are
kept equal by tests/unit/core/test_filters.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from gatekeeper.layout.model import (
    ApprovalMatch,
    GerritTrigger,
    Layout,
    Pipeline,
    PipelineRequire,
    normalize_label,
)
from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.events import EventApproval, TriggerEvent

__all__ = ["Match", "check_requirements", "match_trigger", "normalize_label",
           "triggered_pipelines"]

# Labels seen in events and on changes are few: normalize each once.
_norm = lru_cache(maxsize=1024)(normalize_label)


@dataclass
class Match:
    matched: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.matched

    def explain(self) -> str:
        return "\n".join(self.reasons)


def _values(m: ApprovalMatch) -> str:
    if not m.values:
        return "any value"
    return "/".join(f"{v:+d}" for v in m.values)


def describe_approval(m: ApprovalMatch) -> str:
    text = f"{m.label} {_values(m)}"
    if m.username is not None:
        text += f" by username ~ /{m.username.pattern}/"
    if m.email is not None:
        text += f" by email ~ /{m.email.pattern}/"
    if m.newer_than is not None:
        text += f" newer than {m.newer_than}s"
    if m.older_than is not None:
        text += f" older than {m.older_than}s"
    return text


def _event_approval_matches(m: ApprovalMatch, a: EventApproval, event: TriggerEvent) -> bool:
    # cheapest test first: Gerrit >= 2.13 sends every vote with each comment;
    # only a vote that changed in this event (old_value differs) counts as carried by it.
    if a.old_value is not None and a.old_value == a.value:
        return False
    if m.values and a.value not in m.values:
        return False
    if _norm(a.label) != m.norm:
        return False
    if m.username is not None and not m.username.search(event.account_username or ""):
        return False
    if m.email is not None and not m.email.search(event.account_email or ""):
        return False
    return True


def change_approval_matches(m: ApprovalMatch, a: Approval, now: float | None) -> bool:
    if _norm(a.label) != m.norm:
        return False
    if m.values and a.value not in m.values:
        return False
    if m.username is not None and not m.username.search(a.username or ""):
        return False
    if m.email is not None and not m.email.search(a.email or ""):
        return False
    if (m.newer_than is not None or m.older_than is not None) and now is not None:
        if a.granted_on is None:
            return False
        age = now - a.granted_on
        if m.newer_than is not None and age > m.newer_than:
            return False
        if m.older_than is not None and age < m.older_than:
            return False
    return True


def _has_approval(change: Change, m: ApprovalMatch, now: float | None) -> bool:
    return any(change_approval_matches(m, a, now) for a in change.approvals)


def _check_trigger(t: GerritTrigger, event: TriggerEvent, change: Change | Ref | None,
                   now: float | None) -> list[str]:
    """Why trigger ``t`` does not match (empty list: it matches)."""
    why: list[str] = []
    if event.type not in t.events:
        return [f"event type {event.type} is not one of {', '.join(t.events)}"]
    if t.branches:
        branch = event.branch
        if branch is None and change is not None:
            branch = change.branch
        if branch is None or not any(p.match(branch) for p in t.branches):
            pats = ", ".join(p.pattern for p in t.branches)
            why.append(f"branch {branch!r} does not match {pats}")
    if t.refs:
        ref = event.ref or ""
        if not any(p.match(ref) for p in t.refs):
            why.append(f"ref {ref!r} does not match {', '.join(p.pattern for p in t.refs)}")
    if t.ignore_deletes and event.type == "ref-updated" and event.newrev \
            and not event.newrev.strip("0"):
        why.append("the ref was deleted (ignore-deletes)")
    if t.approvals and not any(_event_approval_matches(m, a, event)
                               for m in t.approvals for a in event.approvals):
        carried = ", ".join(f"{a.label} {a.value:+d}" for a in event.approvals) or "no votes"
        wanted = " or ".join(describe_approval(m) for m in t.approvals)
        why.append(f"the event carries {carried}; it needs a new vote {wanted}")
    if t.comments:
        text = event.comment or ""
        if not any(p.search(text) for p in t.comments):
            pats = ", ".join(f"/{p.pattern}/" for p in t.comments)
            why.append(f"the comment does not match {pats}")
    if t.usernames and not any(p.search(event.account_username or "") for p in t.usernames):
        why.append(f"username {event.account_username!r} does not match "
                   f"{', '.join(p.pattern for p in t.usernames)}")
    if t.emails and not any(p.search(event.account_email or "") for p in t.emails):
        why.append(f"email {event.account_email!r} does not match "
                   f"{', '.join(p.pattern for p in t.emails)}")
    if t.require_approvals or t.reject_approvals:
        if isinstance(change, Change):
            for m in t.require_approvals:
                if not _has_approval(change, m, now):
                    why.append(f"the change lacks the required vote {describe_approval(m)}")
            for m in t.reject_approvals:
                if _has_approval(change, m, now):
                    why.append(f"the change has the rejected vote {describe_approval(m)}")
        elif change is None:
            why.append("the change is unknown, so its votes cannot be checked")
    return why


def _requirement_failures(req: PipelineRequire, change: Change, now: float | None) -> list[str]:
    why = []
    if req.open is not None and change.is_open != req.open:
        why.append(f"the change is {'open' if change.is_open else 'not open'}")
    if req.current_patchset is not None and change.is_current_patchset != req.current_patchset:
        why.append(f"patchset {change.patchset} is "
                   f"{'current' if change.is_current_patchset else 'not current'}")
    if req.status and change.status not in req.status:
        why.append(f"status {change.status} is not one of {', '.join(req.status)}")
    for m in req.approvals:
        if not _has_approval(change, m, now):
            why.append(f"it lacks the vote {describe_approval(m)}")
    return why


def check_requirements(pipeline: Pipeline, change: Change | Ref | None,
                       now: float | None = None) -> Match:
    """The pipeline's require/reject conditions on the change itself."""
    if isinstance(change, Ref):
        return Match(True, ["pipeline requirements apply to changes, not refs"])
    if change is None:
        return Match(False, ["the change is unknown to the source"])
    reasons = []
    for why in _requirement_failures(pipeline.require, change, now):
        reasons.append(f"pipeline {pipeline.name} requires otherwise: {why}")
    rej = pipeline.reject
    rejected = []
    if rej.open is not None and change.is_open == rej.open:
        rejected.append(f"the change is {'open' if change.is_open else 'not open'}")
    if rej.current_patchset is not None and change.is_current_patchset == rej.current_patchset:
        rejected.append(f"patchset {change.patchset} is "
                        f"{'current' if change.is_current_patchset else 'not current'}")
    if rej.status and change.status in rej.status:
        rejected.append(f"status is {change.status}")
    for m in rej.approvals:
        if _has_approval(change, m, now):
            rejected.append(f"it has the vote {describe_approval(m)}")
    for why in rejected:
        reasons.append(f"pipeline {pipeline.name} rejects it: {why}")
    if reasons:
        return Match(False, reasons)
    return Match(True, [f"the change meets pipeline {pipeline.name}'s requirements"])


def match_trigger(pipeline: Pipeline, event: TriggerEvent, change: Change | Ref | None,
                  now: float | None = None) -> Match:
    """Whether ``event`` (about ``change``) enters ``pipeline``, with reasons.

    ``now`` (epoch seconds) is used for newer-than/older-than vote filters;
    it defaults to the event's timestamp."""
    now = now if now is not None else event.timestamp
    if event.type == "timer":
        if event.pipeline == pipeline.name and pipeline.timer_triggers:
            return Match(True, [f"timer {event.timespec or ''} of pipeline {pipeline.name}"])
        return Match(False, [f"timer event for pipeline {event.pipeline}, not {pipeline.name}"])
    if event.source != pipeline.source:
        return Match(False, [f"event from {event.source}; pipeline {pipeline.name} "
                             f"listens to {pipeline.source}"])
    if not pipeline.gerrit_triggers:
        return Match(False, [f"pipeline {pipeline.name} has no gerrit trigger"])
    reasons: list[str] = []
    hit = None
    for n, trig in enumerate(pipeline.gerrit_triggers, 1):
        why = _check_trigger(trig, event, change, now)
        if not why:
            hit = n
            reasons.append(f"trigger #{n} ({', '.join(trig.events)}) matches")
            break
        reasons.append(f"trigger #{n} does not match: " + "; ".join(why))
    if hit is None:
        return Match(False, reasons)
    req = check_requirements(pipeline, change, now)
    return Match(req.matched, reasons + req.reasons)


# --- the scheduler's decision: the same answers, no words -----------------

def _carries_vote(wanted: tuple[ApprovalMatch, ...], event: TriggerEvent) -> bool:
    for m in wanted:
        for a in event.approvals:
            if _event_approval_matches(m, a, event):
                return True
    return False


def _has_vote(change: Change, m: ApprovalMatch, now: float | None) -> bool:
    """``_has_approval`` without a generator (the scheduler's hot path)."""
    for a in change.approvals:
        if change_approval_matches(m, a, now):
            return True
    return False


def _trigger_matches(t: GerritTrigger, event: TriggerEvent, change: Change | Ref | None,
                     now: float | None) -> bool:
    """``not _check_trigger(...)`` for a trigger listening to the event's type."""
    if t.branches:
        branch = event.branch
        if branch is None and change is not None:
            branch = change.branch
        if branch is None or not any(p.match(branch) for p in t.branches):
            return False
    if t.refs:
        ref = event.ref or ""
        if not any(p.match(ref) for p in t.refs):
            return False
    if t.ignore_deletes and event.type == "ref-updated" and event.newrev \
            and not event.newrev.strip("0"):
        return False
    if t.approvals and not _carries_vote(t.approvals, event):
        return False
    if t.comments:
        text = event.comment or ""
        for f in t.comment_filters:
            if f.search(text):
                break
        else:
            return False
    if t.usernames and not any(p.search(event.account_username or "") for p in t.usernames):
        return False
    if t.emails and not any(p.search(event.account_email or "") for p in t.emails):
        return False
    if t.require_approvals or t.reject_approvals:
        if isinstance(change, Change):
            if not all(_has_approval(change, m, now) for m in t.require_approvals):
                return False
            if any(_has_approval(change, m, now) for m in t.reject_approvals):
                return False
        elif change is None:
            return False
    return True


def _requirements_met(pipeline: Pipeline, change: Change | Ref | None,
                      now: float | None) -> bool:
    """``check_requirements(...).matched``."""
    if isinstance(change, Ref):
        return True
    if change is None:
        return False
    req, rej = pipeline.require, pipeline.reject
    if req.open is not None and change.is_open != req.open:
        return False
    if req.current_patchset is not None and change.is_current_patchset != req.current_patchset:
        return False
    if req.status and change.status not in req.status:
        return False
    for m in req.approvals:
        if not _has_vote(change, m, now):
            return False
    if rej.open is not None and change.is_open == rej.open:
        return False
    if rej.current_patchset is not None and change.is_current_patchset == rej.current_patchset:
        return False
    if rej.status and change.status in rej.status:
        return False
    for m in rej.approvals:
        if _has_vote(change, m, now):
            return False
    return True


_Listening = tuple[tuple[Pipeline, tuple[GerritTrigger, ...]], ...]


def _listening(layout: Layout, event_type: str) -> _Listening:
    """Pipelines (in layout order) with the gerrit triggers that listen to
    ``event_type``; computed once per layout and event type."""
    index = layout.trigger_index
    hit = index.get(event_type)
    if hit is None:
        found = []
        for p in layout.pipelines.values():
            trigs = tuple(t for t in p.gerrit_triggers if event_type in t.events)
            if trigs:
                found.append((p, trigs))
        hit = index[event_type] = tuple(found)
    return hit  # type: ignore[return-value]


def triggered_pipelines(layout: Layout, event: TriggerEvent, change: Change | Ref | None,
                        now: float | None = None) -> list[str]:
    """The names of the pipelines ``event`` enters: exactly those for which
    ``match_trigger`` matches, in layout order."""
    now = now if now is not None else event.timestamp
    if event.type == "timer":
        p = layout.pipelines.get(event.pipeline or "")
        return [p.name] if p is not None and p.timer_triggers else []
    out = []
    for pipeline, trigs in _listening(layout, event.type):
        if event.source != pipeline.source:
            continue
        for t in trigs:
            if _trigger_matches(t, event, change, now):
                if _requirements_met(pipeline, change, now):
                    out.append(pipeline.name)
                break
    return out
