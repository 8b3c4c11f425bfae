"""Gerrit ``stream-events`` JSON -> :class:`TriggerEvent`.

Gerrit's documentation says any field may be missing, and the field shapes
changed between 2.x and 3.x (``number`` as a string or an int, approval
values as strings, ``oldValue`` since 2.13, ``refName`` with or without
``refs/heads/``). Everything here is tolerant: a malformed or unknown line is
logged (truncated) and skipped, never raised."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gatekeeper.model.events import EventApproval, TriggerEvent

log = logging.getLogger("gatekeeper.gerrit.events")

# Who did it, per event type, in order of preference (3.x name first where
# Gerrit renamed a field).
ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "patchset-created": ("uploader",),
    "draft-published": ("uploader",),
    "comment-added": ("author",),
    "change-merged": ("submitter",),
    "merge-failed": ("submitter",),
    "change-abandoned": ("abandoner",),
    "change-restored": ("restorer",),
    "ref-updated": ("submitter",),
    "reviewer-added": ("reviewer", "adder"),
    "reviewer-deleted": ("reviewer", "remover"),
    "topic-changed": ("changer",),
    "hashtags-changed": ("editor",),
    "wip-state-changed": ("changer",),
    "private-state-changed": ("changer",),
    "vote-deleted": ("remover", "deleter", "reviewer"),
    "change-deleted": ("deleter",),
    "assignee-changed": ("changer",),
    "project-created": (),
    "ref-replicated": (),
    "ref-replication-scheduled": (),
    "ref-replication-done": (),
    "dropped-output": (),
}
KNOWN_TYPES = frozenset(ACCOUNT_FIELDS)
MAX_LOGGED = 200  # characters of a bad line that make it into the log

T = TypeVar("T")


def _maker(cls: type[T]) -> Callable[..., T]:
    """A constructor for the frozen dataclass ``cls`` taking keywords, filling
    in the defaults without the generated ``__init__`` (which sets each of a
    TriggerEvent's 20 fields with ``object.__setattr__``: a third of the
    cost of a line). Falls back to ``cls`` for classes it cannot build so."""
    if not dataclasses.is_dataclass(cls) or "__slots__" in vars(cls) \
            or hasattr(cls, "__post_init__"):
        return cls
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            return cls  # a fresh default per instance: keep the real __init__
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
    new, set_attr = object.__new__, object.__setattr__

    def make(**fields: Any) -> T:
        obj = new(cls)
        d = defaults.copy()
        d.update(fields)
        set_attr(obj, "__dict__", d)  # one dict, handed over whole
        return obj
    return make


_new_event = _maker(TriggerEvent)
_new_approval = _maker(EventApproval)


def truncate(text: str, limit: int = MAX_LOGGED) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def to_int(value: Any) -> int | None:
    """Gerrit 2.x sends numbers as strings ("42", "-1"); 3.x as ints."""
    if type(value) is int:  # the usual case first (bool is not int here)
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)  # also takes " 2", "+2", "-1"
        except ValueError:
            pass
        s = value.strip()
        if s.startswith("+"):
            s = s[1:]
        try:
            return int(s)
        except ValueError:
            return None
    return None


def to_float(value: Any) -> float | None:
    if type(value) is int:
        return float(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_EMPTY: Mapping[str, Any] = {}


def _dict(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # what json gives; Mapping's isinstance is slow
        return value
    if value is None:  # a missing field: most events lack change, patchSet or refUpdate
        return _EMPTY
    return value if isinstance(value, Mapping) else _EMPTY


def _str(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if isinstance(value, str) and value != "":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


# Votes repeat (a few labels, a few values): each distinct raw vote is parsed
# once and its frozen EventApproval shared.
_VOTES: dict[tuple[Any, ...], EventApproval | None] = {}
_VOTES_LIMIT = 4096


def _parse_vote(a: Mapping[str, Any]) -> EventApproval | None:
    label = a.get("type")
    if type(label) is not str or not label:
        label = _str(label) or _str(a.get("description"))
    value = to_int(a.get("value"))
    if label is None or value is None:
        return None
    return _new_approval(label=label, value=value, old_value=to_int(a.get("oldValue")))


def parse_approvals(raw: Any) -> tuple[EventApproval, ...]:
    """``approvals``: [{"type": "Code-Review", "value": "2", "oldValue": "0"}, ...]."""
    if not isinstance(raw, list):
        return ()
    out: list[EventApproval] = []
    for a in raw:
        if type(a) is not dict:
            a = _dict(a)
            if not a:
                continue
        t, d, v, o = a.get("type"), a.get("description"), a.get("value"), a.get("oldValue")
        # with the types: 1, 1.0 and True are equal keys but not the same vote
        key = (t, d, v, o, type(t), type(d), type(v), type(o))
        try:
            vote = _VOTES[key]
        except KeyError:
            vote = _parse_vote(a)
            if len(_VOTES) >= _VOTES_LIMIT:
                _VOTES.clear()
            _VOTES[key] = vote
        except TypeError:  # an unhashable field: a malformed vote
            vote = _parse_vote(a)
        if vote is not None:
            out.append(vote)
    return tuple(out)


def full_ref(ref_name: str | None) -> str | None:
    """Gerrit 2.x sent ``master`` for branch updates; 2.13+ sends ``refs/heads/master``."""
    if not ref_name:
        return None
    return ref_name if ref_name.startswith("refs/") else f"refs/heads/{ref_name}"


def branch_of(ref_name: str | None) -> str | None:
    if not ref_name:
        return None
    if ref_name.startswith("refs/heads/"):
        return ref_name[len("refs/heads/"):]
    if ref_name.startswith("refs/"):
        return None
    return ref_name


def _account(data: Mapping[str, Any], etype: str) -> Mapping[str, Any]:
    for name in ACCOUNT_FIELDS.get(etype, ()):
        acct = data.get(name)
        if type(acct) is dict or (acct is not None and isinstance(acct, Mapping)):
            return acct
    return _EMPTY


def event_from_dict(data: Any) -> TriggerEvent | None:
    """One decoded stream-events object -> TriggerEvent; None (logged) if unusable."""
    if type(data) is not dict and not isinstance(data, Mapping):
        log.warning("Skipping Gerrit event that is not a JSON object: %s",
                    truncate(_safe_dump(data)))
        return None
    etype = data.get("type")
    if not isinstance(etype, str) or not etype:
        log.warning("Skipping Gerrit event without a type: %s", truncate(_safe_dump(data)))
        return None
    if etype not in KNOWN_TYPES:
        log.info("Skipping Gerrit event of unknown type %r", truncate(etype, 60))
        return None

    get = data.get
    change = get("change")
    if type(change) is not dict:
        change = _dict(change)
    patchset = get("patchSet")
    if type(patchset) is not dict or not patchset:
        patchset = _dict(patchset) or _dict(get("patchset"))  # draft-published in 2.x docs
    ref_update = get("refUpdate")
    if type(ref_update) is not dict:
        ref_update = _dict(ref_update)
    acct = _account(data, etype)

    # each field: the usual shape (a non-empty str, an int) inline, else the tolerant helper
    project = change.get("project")
    if type(project) is not str or not project:
        project = _str(project) or _str(ref_update.get("project"))
        if project is None:
            # project-created: projectName; ref-replicated: project
            project = _str(get("projectName")) or _str(get("project"))
    branch = change.get("branch")
    if type(branch) is not str or not branch:
        branch = _str(branch)
    ref = patchset.get("ref")
    if type(ref) is not str or not ref:
        ref = _str(ref)
    oldrev = newrev = None
    if etype == "ref-updated":
        ref = full_ref(_str(ref_update.get("refName")))
        branch = branch_of(_str(ref_update.get("refName")))
        oldrev = _str(ref_update.get("oldRev"))
        newrev = _str(ref_update.get("newRev"))
    elif etype in ("ref-replicated", "ref-replication-scheduled", "ref-replication-done"):
        ref = full_ref(_str(get("ref")))
        branch = branch_of(_str(get("ref")))
    elif etype == "change-merged":
        newrev = _str(get("newRev"))
    elif etype == "project-created":
        branch = branch_of(_str(get("projectHead")))
    if newrev is None and etype != "ref-updated":
        newrev = patchset.get("revision")
        if type(newrev) is not str or not newrev:
            newrev = _str(newrev)

    comment = get("comment")
    if type(comment) is not str and not isinstance(comment, str):
        comment = _str(get("reason"))  # abandon/restore/merge-failed reasons

    number = change.get("number")
    if type(number) is not int:
        number = to_int(number)
    ps_number = patchset.get("number")
    if type(ps_number) is not int:
        ps_number = to_int(ps_number)
    change_id = change.get("id")
    if type(change_id) is not str or not change_id:
        change_id = _str(change_id)
    username, email, name = acct.get("username"), acct.get("email"), acct.get("name")
    if type(username) is not str or not username:
        username = _str(username)
    if type(email) is not str or not email:
        email = _str(email)
    if type(name) is not str or not name:
        name = _str(name)
    approvals = get("approvals")
    created = get("eventCreatedOn")
    return _new_event(
        type=etype,
        project=project,
        branch=branch,
        ref=ref,
        change_number=number,
        patchset=ps_number,
        change_id=change_id,
        oldrev=oldrev,
        newrev=newrev,
        comment=comment,
        approvals=parse_approvals(approvals) if approvals is not None else (),
        account_username=username,
        account_email=email,
        account_name=name,
        timestamp=float(created) if type(created) is int else to_float(created),
    )


# the C scanner behind json.loads (set in JSONDecoder.__init__; typeshed omits it)
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _decode(line: str) -> Any:
    """``json.loads(line)`` for a stripped line, without its Python-level
    wrapper (whitespace regexes, three frames: ~10 % of a line's cost). A line
    the scanner does not take whole goes to ``json.loads`` for its answer
    (object or error), so the result is json.loads's in every case."""
    try:
        data, end = _scan_once(line, 0)
    except (StopIteration, ValueError, RecursionError):
        return json.loads(line)
    if end != len(line):
        return json.loads(line)
    return data


def parse_line(line: str | bytes) -> TriggerEvent | None:
    """One line of ``gerrit stream-events`` output; None when it is skipped."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line:
        return None
    try:
        data = _decode(line)
    except json.JSONDecodeError as e:
        log.warning("Skipping malformed Gerrit event line (%s): %s", e.msg, truncate(line))
        return None
    try:
        return event_from_dict(data)
    except Exception:  # a parser bug must not kill the watcher
        log.exception("Failed to parse Gerrit event: %s", truncate(line))
        return None


def _safe_dump(data: Any) -> str:
    try:
        return json.dumps(data, sort_keys=True)
    except (TypeError, ValueError):
        return repr(data)
