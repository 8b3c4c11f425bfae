"""``gerrit query --format=JSON``: building the command and reading its rows.

Pure functions; the SSH round trip lives in the callers. The answer is one
JSON object per line and ends with a ``{"type": "stats", ...}`` row."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.gerrit.events import to_int, truncate
from gatekeeper.model.change import Approval, Change

log = logging.getLogger("gatekeeper.gerrit.query")

# Zuul's footer: one Change-Id per line, anywhere in the message, any case.
DEPENDS_ON_RE = re.compile(r"^depends-on:\s*(I[0-9a-f]{40})\s*$", re.MULTILINE | re.IGNORECASE)
# Gerrit's pseudo files in --files output.
MAGIC_FILES = frozenset({"/COMMIT_MSG", "/MERGE_LIST", "/PATCHSET_LEVEL"})
QUERY_OPTIONS = ("--current-patch-set", "--all-approvals", "--patch-sets", "--dependencies",
                 "--commit-message", "--files", "--comments")


class QueryError(Exception):
    """Gerrit refused a query (its ``{"type":"error","message":...}`` row) or
    answered something that is not a query result. The emulator raises it too."""


@dataclass
class QueryResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def more_changes(self) -> bool:
        return bool(self.stats.get("moreChanges"))


def query_argv(terms: Sequence[str], options: Sequence[str] = ("--current-patch-set",),
               start: int | None = None) -> list[str]:
    for o in options:
        if o not in QUERY_OPTIONS:
            raise ValueError(f"unsupported query option {o}")
    argv = ["gerrit", "query", "--format=JSON", *options]
    if start:
        argv += ["--start", str(int(start))]
    # Gerrit joins the remaining arguments into one query string.
    return argv + [str(t) for t in terms]


def parse_query_output(text: str) -> QueryResult:
    """Rows and the stats row; an ``error`` row becomes a :class:`QueryError`."""
    result = QueryResult()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            log.warning("Skipping malformed query row: %s", truncate(line))
            continue
        if not isinstance(data, dict):
            continue
        kind = data.get("type")
        if kind == "stats":
            result.stats = data
        elif kind == "error":
            raise QueryError(str(data.get("message", "query error"))[:500])
        else:
            result.rows.append(data)
    return result


def depends_on(commit_message: str | None) -> list[str]:
    seen: list[str] = []
    for m in DEPENDS_ON_RE.finditer(commit_message or ""):
        cid = m.group(1)
        cid = "I" + cid[1:].lower()
        if cid not in seen:
            seen.append(cid)
    return seen


def _d(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_approval(raw: Any) -> Approval | None:
    a = _d(raw)
    label = _s(a.get("type")) or _s(a.get("description"))
    value = to_int(a.get("value"))
    if not label or value is None:
        return None
    by = _d(a.get("by"))
    return Approval(label=label, value=value, username=_s(by.get("username")) or None,
                    email=_s(by.get("email")) or None, granted_on=to_int(a.get("grantedOn")))


def _status(row: Mapping[str, Any]) -> str:
    status = _s(row.get("status"))
    if status:
        return status.upper()
    open_ = row.get("open")
    return "NEW" if open_ is None or open_ else "MERGED"


def pick_patchset(row: Mapping[str, Any], patchset: int | None) -> Mapping[str, Any] | None:
    current = _d(row.get("currentPatchSet"))
    if patchset is None or to_int(current.get("number")) == patchset:
        return current or None
    for ps in row.get("patchSets") or ():
        if to_int(_d(ps).get("number")) == patchset:
            return _d(ps)
    return None


def change_from_row(row: Mapping[str, Any], patchset: int | None = None) -> Change | None:
    """A query row -> Change at ``patchset`` (current when None); None if that
    patchset is not in the row or the row has no number."""
    number = to_int(row.get("number"))
    ps = pick_patchset(row, patchset)
    if number is None or ps is None:
        return None
    ps_number = to_int(ps.get("number"))
    if ps_number is None:
        return None
    current = to_int(_d(row.get("currentPatchSet")).get("number"))
    owner = _d(row.get("owner"))
    approvals = [a for a in (parse_approval(x) for x in ps.get("approvals") or ()) if a]
    files: list[str] | None = None
    if isinstance(ps.get("files"), list):
        files = [f for f in (_s(_d(x).get("file")) for x in ps["files"])
                 if f and f not in MAGIC_FILES]
    needed = []
    for dep in row.get("dependsOn") or ():
        dep = _d(dep)
        n = to_int(dep.get("number"))
        if n is not None and dep.get("isCurrentPatchSet") is True and n not in needed:
            needed.append(n)
    message = _s(row.get("commitMessage"))
    return Change(
        project=_s(row.get("project")),
        branch=_s(row.get("branch")),
        number=number,
        patchset=ps_number,
        change_id=_s(row.get("id")),
        ref=_s(ps.get("ref")) or f"refs/changes/{number % 100:02d}/{number}/{ps_number}",
        revision=_s(ps.get("revision")),
        parents=[p for p in ps.get("parents") or () if isinstance(p, str)],
        subject=_s(row.get("subject")),
        commit_message=message,
        owner_username=_s(owner.get("username")) or None,
        owner_email=_s(owner.get("email")) or None,
        owner_name=_s(owner.get("name")) or None,
        url=_s(row.get("url")),
        topic=_s(row.get("topic")) or None,
        status=_status(row),
        is_current_patchset=(current is None or current == ps_number),
        approvals=approvals,
        files=files,
        depends_on=depends_on(message),
        needed_by_parent=needed,
        last_updated=to_int(row.get("lastUpdated")),
    )
