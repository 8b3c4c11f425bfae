"""`gerrit query`: a subset of Gerrit's search language and its JSON rows.

Terms are ANDed; ``-term`` / ``NOT term`` negate. Values may be quoted
with ``"..."`` or ``{...}`` as in Gerrit. Times without a zone are UTC
(the emulator's server time zone)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatekeeper.gerrit.query import QueryError
from gatekeeper.sim.gerrit.model import STATUS_ABANDONED, STATUS_MERGED, STATUS_NEW, Change

DEFAULT_LIMIT = 500


@dataclass
class QueryOptions:
    current_patch_set: bool = False
    patch_sets: bool = False
    all_approvals: bool = False
    comments: bool = False
    commit_message: bool = False
    dependencies: bool = False
    files: bool = False
    all_reviewers: bool = False
    submit_records: bool = False
    start: int = 0
    no_limit: bool = False


@dataclass
class ParsedQuery:
    predicates: list[Callable[[Change], bool]] = field(default_factory=list)
    limit: int | None = None


_TERM = re.compile(r'\s*(-?)([A-Za-z_-]+:)?("([^"]*)"|\{([^}]*)\}|[^\s()]+)')
_AGE = re.compile(r"^(\d+)\s*([a-z]+)$")
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "mon": 2592000, "month": 2592000, "months": 2592000,
    "y": 31536000, "year": 31536000, "years": 31536000,
}
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f",
                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_time(value: str) -> int:
    for fmt in _TIME_FORMATS:
        try:
            dt = datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp())
    raise QueryError(f"Invalid timestamp: {value}")


def parse_age(value: str) -> int:
    m = _AGE.match(value.strip().lower())
    if not m or m.group(2) not in _UNITS:
        raise QueryError(f"Invalid age: {value}")
    return int(m.group(1)) * _UNITS[m.group(2)]


_STATUS = {
    "open": lambda c: c.status == STATUS_NEW,
    "new": lambda c: c.status == STATUS_NEW,
    "pending": lambda c: c.status == STATUS_NEW,
    "merged": lambda c: c.status == STATUS_MERGED,
    "abandoned": lambda c: c.status == STATUS_ABANDONED,
    "closed": lambda c: c.status != STATUS_NEW,
}


def _predicate(op: str, value: str, now: int) -> Callable[[Change], bool]:
    if op in ("status", "is"):
        if value.lower() not in _STATUS:
            raise QueryError(f"Unrecognized value: {value}")
        return _STATUS[value.lower()]
    if op == "change":
        if value.isdigit():
            return lambda c: c.number == int(value)
        return lambda c: c.change_id.startswith(value)
    if op == "project":
        return lambda c: c.project == value
    if op == "projects":
        return lambda c: c.project.startswith(value)
    if op == "branch":
        short = value.removeprefix("refs/heads/")
        return lambda c: c.branch == short
    if op == "topic":
        return lambda c: (c.topic or "") == value
    if op == "owner":
        # username, or an email whose local part is the username
        return lambda c: value in (c.owner, f"{c.owner}@{value.partition('@')[2]}")
    if op == "commit":
        v = value.lower()
        return lambda c: any(p.revision.startswith(v) for p in c.patchsets)
    if op in ("after", "since"):
        t = parse_time(value)
        return lambda c: c.last_updated >= t
    if op in ("before", "until"):
        t = parse_time(value)
        return lambda c: c.last_updated <= t
    if op == "age":
        cutoff = now - parse_age(value)
        return lambda c: c.last_updated <= cutoff
    raise QueryError(f"Unsupported operator {op}:{value}")


def parse_query(text: str, now: int) -> ParsedQuery:
    parsed = ParsedQuery()
    pos = 0
    negate_next = False
    text = text.strip()
    if not text:
        raise QueryError("query is empty")
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"line 1:{pos} no viable alternative at input '{text[pos:]}'")
        pos = m.end()
        neg, op, raw = m.group(1) == "-", m.group(2), m.group(3)
        value = m.group(4) if m.group(4) is not None else m.group(5)
        if value is None:
            value = raw
        if op is None:
            if raw == "AND":
                continue
            if raw == "NOT":
                negate_next = True
                continue
            if raw == "OR":
                raise QueryError("OR is not supported by the emulator")
            op = "change"
            if not (value.isdigit() or re.fullmatch(r"I[0-9a-f]{4,40}", value)):
                raise QueryError(f"Unsupported query: {value}")
        else:
            op = op[:-1].lower()
        neg = neg ^ negate_next
        negate_next = False
        if op == "limit":
            if not value.isdigit():
                raise QueryError(f"Invalid limit: {value}")
            parsed.limit = int(value)
            continue
        pred = _predicate(op, value, now)
        parsed.predicates.append((lambda p: (lambda c: not p(c)))(pred) if neg else pred)
    return parsed


def run_query(changes: list[Change], query: ParsedQuery, opts: QueryOptions
              ) -> tuple[list[Change], bool]:
    """Matching changes, most recently updated first, and whether more exist."""
    hits = [c for c in changes if all(p(c) for p in query.predicates)]
    hits.sort(key=lambda c: (c.last_updated, c.number), reverse=True)
    limit = query.limit if query.limit is not None else DEFAULT_LIMIT
    if opts.no_limit and query.limit is None:
        limit = len(hits)
    window = hits[opts.start:opts.start + limit]
    return window, len(hits) > opts.start + len(window)


def change_row(state: Any, change: Change, opts: QueryOptions) -> dict[str, Any]:
    """One query row; ``state`` is the GerritState (for renderer and lookups)."""
    render = state.render
    row = render.change(change, commit_message=opts.commit_message)
    row["hashtags"] = []
    row["open"] = change.is_open
    if opts.comments:
        row["comments"] = [render.message(m) for m in change.messages]
    if opts.patch_sets or opts.all_approvals:
        row["patchSets"] = [render.patchset(ps, approvals=opts.all_approvals, files=opts.files)
                            for ps in change.patchsets]
    if opts.current_patch_set:
        row["currentPatchSet"] = render.patchset(change.current, approvals=True,
                                                 files=opts.files)
    if opts.dependencies:
        depends, needed = _dependencies(state, change)
        if depends:
            row["dependsOn"] = depends
        if needed:
            row["neededBy"] = needed
    if opts.all_reviewers:
        users = sorted({u for ps in change.patchsets for by in ps.votes.values() for u in by})
        row["allReviewers"] = [render.account(u) for u in users]
    if opts.submit_records:
        row["submitRecords"] = [_submit_record(state, change)]
    return row


def _dependencies(state: Any, change: Change) -> tuple[list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
    render = state.render
    depends, needed = [], []
    parents = set(change.current.parents)
    mine = {ps.revision for ps in change.patchsets}
    for other in state.changes.values():
        if other is change or other.project != change.project:
            continue
        for ps in other.patchsets:
            if ps.revision in parents:
                depends.append(render.dependency(other, ps))
        if other.is_open and any(p in mine for p in other.current.parents):
            needed.append(render.dependency(other, other.current))
    return depends, needed


def _submit_record(state: Any, change: Change) -> dict[str, Any]:
    if not change.is_open:
        return {"status": "CLOSED"}
    labels = []
    ok = True
    for name, label in state.labels.items():
        votes = change.current.votes.get(name, {})
        blocked = [u for u, v in votes.items() if label.blocking and v.value == label.min
                   and label.min < 0]
        maxed = [u for u, v in votes.items() if v.value == label.max]
        if blocked:
            labels.append({"label": name, "status": "REJECT",
                           "by": state.render.account(blocked[0])})
            ok = False
        elif maxed:
            labels.append({"label": name, "status": "OK", "by": state.render.account(maxed[0])})
        elif name in state.submit_requires:
            labels.append({"label": name, "status": "NEED"})
            ok = False
        else:
            labels.append({"label": name, "status": "MAY"})
    return {"status": "OK" if ok else "NOT_READY", "labels": labels}


def text_row(title: str, row: dict[str, Any]) -> str:
    """Gerrit's human ``--format TEXT``: ``key: value`` lines, nested by indent."""
    lines = [title]

    def emit(value: Any, key: str, indent: str) -> None:
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            for k, v in value.items():
                emit(v, k, indent + "  ")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:")
            for item in value:
                if isinstance(item, dict):
                    lines.append(f"{indent}  [")
                    for k, v in item.items():
                        emit(v, k, indent + "    ")
                    lines.append(f"{indent}  ]")
                else:
                    lines.append(f"{indent}  {item}")
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"{indent}{key}: {text}".replace("\n", "\n" + indent + "  "))

    for key, value in row.items():
        emit(value, key, "  ")
    return "\n".join(lines) + "\n\n"
