"""Catch-up after a stream reconnect: no approval is missed, none is delivered twice.

While the stream is down Gerrit keeps no backlog for us. On reconnect we ask
``gerrit query`` for the open changes updated since the last event we saw
(minus a safety margin), and synthesize the events a layout triggers on:

- ``patchset-created`` for current patchsets created since then,
- ``comment-added`` for review messages posted since then (rechecks, votes),
  carrying the votes the same reviewer granted with that message,
- ``comment-added`` for votes granted since then without a matching message,
- ``change-abandoned`` / ``change-restored`` for "Abandoned"/"Restored"
  messages since then (the abandoned changes come from a second query).

Every event, streamed or synthetic, passes :class:`Deduplicator`, so an
event seen on the stream is not delivered again by catch-up and vice versa.
The decisions are pure functions; :class:`CatchUp` adds state and one query.

Query: ``gerrit query --format=JSON --current-patch-set --all-approvals
--comments status:open NOT age:<N>s`` (updated within the last N seconds;
real Gerrit 2.x and 3.x support it), paged with ``--start`` while the
stats row says ``moreChanges``; rows are filtered by timestamps again here."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gatekeeper.gerrit.events import to_float, to_int
from gatekeeper.gerrit.query import QueryError, parse_query_output, query_argv
from gatekeeper.gerrit.ssh import CommandResult
from gatekeeper.model.events import EventApproval, TriggerEvent

log = logging.getLogger("gatekeeper.gerrit.catchup")

PATCHSET_PREFIX_RE = re.compile(r"^Patch Set (\d+):")
STATE_MESSAGE_RE = re.compile(r"^(Abandoned|Restored)(?:\n\n(.*))?$", re.DOTALL)
CATCHUP_OPTIONS = ("--current-patch-set", "--all-approvals", "--comments")
MAX_PAGES = 50
FLOOR_SLACK = 10.0  # seconds of clock skew between us and Gerrit tolerated at the floor


# --- pure decisions ---------------------------------------------------------


def catchup_terms(since: float, now: float, limit: int = 500,
                  status: str = "open") -> list[str]:
    """Query terms for changes in ``status`` updated at or after ``since``."""
    age = max(1, int(now - since) + 1)
    # "NOT age:" rather than "-age:": Gerrit's SSH argument parser (args4j)
    # takes an argument starting with "-" for an option.
    return [f"status:{status}", "NOT", f"age:{age}s", f"limit:{limit}"]


def _d(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _who(acct: Mapping[str, Any]) -> str | None:
    return (acct.get("username") or acct.get("email") or acct.get("name")) or None


def _approval_text(approvals: Sequence[EventApproval]) -> str:
    return " ".join(f"{a.label}{a.value:+d}" if a.value else f"{a.label}0" for a in approvals)


def synthesize(rows: Iterable[Mapping[str, Any]], since: float,
               tolerance: float = 5.0) -> list[TriggerEvent]:
    """The events implied by query ``rows`` that happened at or after ``since``,
    oldest first, all ``synthetic=True``."""
    out: list[TriggerEvent] = []
    for row in rows:
        status = str(row.get("status") or "NEW").upper()
        number = to_int(row.get("number"))
        cps = _d(row.get("currentPatchSet"))
        ps = to_int(cps.get("number"))
        if number is None or ps is None:
            continue
        base: dict[str, Any] = dict(project=row.get("project") or None,
                                    branch=row.get("branch") or None,
                                    change_number=number, change_id=row.get("id") or None,
                                    ref=cps.get("ref") or None, newrev=cps.get("revision") or None,
                                    synthetic=True)
        out.extend(_state_changes(row, ps, since, base))
        if status not in ("NEW", "DRAFT") or row.get("open") is False:
            continue  # closed: only its abandon matters (above)

        created = to_float(cps.get("createdOn"))
        if created is not None and created >= since:
            up = _d(cps.get("uploader"))
            out.append(TriggerEvent(type="patchset-created", patchset=ps, timestamp=created,
                                    account_username=up.get("username") or None,
                                    account_email=up.get("email") or None,
                                    account_name=up.get("name") or None, **base))

        # Votes on the current patchset granted since then, per reviewer.
        fresh: dict[str | None, list[tuple[float, EventApproval, Mapping[str, Any]]]] = {}
        for a in cps.get("approvals") or ():
            a = _d(a)
            granted = to_float(a.get("grantedOn"))
            value = to_int(a.get("value"))
            label = a.get("type") or a.get("description")
            if granted is None or value is None or not label or granted < since:
                continue
            by = _d(a.get("by"))
            fresh.setdefault(_who(by), []).append(
                (granted, EventApproval(label=str(label), value=value), by))
        used: set[tuple[str | None, float]] = set()

        for c in row.get("comments") or ():
            c = _d(c)
            ts = to_float(c.get("timestamp"))
            message = c.get("message")
            if ts is None or ts < since or not isinstance(message, str):
                continue
            reviewer = _d(c.get("reviewer"))
            who = _who(reviewer)
            m = PATCHSET_PREFIX_RE.match(message)
            if not m:
                # Only reviews ("Patch Set N: ...") make Gerrit emit comment-added;
                # "Uploaded patch set 2.", "Abandoned", "merged" messages do not.
                continue
            c_ps = int(m.group(1))
            approvals: list[EventApproval] = []
            if c_ps == ps:
                for granted, appr, _by in fresh.get(who, ()):
                    if abs(granted - ts) <= tolerance:
                        approvals.append(appr)
                        used.add((who, granted))
            out.append(TriggerEvent(type="comment-added", patchset=c_ps, timestamp=ts,
                                    comment=message, approvals=tuple(approvals),
                                    account_username=reviewer.get("username") or None,
                                    account_email=reviewer.get("email") or None,
                                    account_name=reviewer.get("name") or None,
                                    **{**base, "ref": base["ref"] if c_ps == ps else None}))

        for who, votes in fresh.items():
            left = sorted((v for v in votes if (who, v[0]) not in used), key=lambda v: v[0])
            # One review = the votes a reviewer granted within ``tolerance`` of each other.
            groups: list[list[tuple[float, EventApproval, Mapping[str, Any]]]] = []
            for v in left:
                if groups and v[0] - groups[-1][-1][0] <= tolerance:
                    groups[-1].append(v)
                else:
                    groups.append([v])
            for g in groups:
                by = g[0][2]
                approvals = [v[1] for v in g]
                out.append(TriggerEvent(
                    type="comment-added", patchset=ps, timestamp=max(v[0] for v in g),
                    comment=f"Patch Set {ps}: {_approval_text(approvals)}",
                    approvals=tuple(approvals), account_username=by.get("username") or None,
                    account_email=by.get("email") or None, account_name=by.get("name") or None,
                    **base))
    out.sort(key=lambda e: (e.timestamp or 0.0, e.change_number or 0))
    return out


def _state_changes(row: Mapping[str, Any], ps: int, since: float,
                   base: dict[str, Any]) -> list[TriggerEvent]:
    """change-abandoned / change-restored from Gerrit's "Abandoned" and
    "Restored" messages in the window (so a change abandoned while we were
    away leaves its queue)."""
    out = []
    for c in row.get("comments") or ():
        c = _d(c)
        ts = to_float(c.get("timestamp"))
        message = c.get("message")
        if ts is None or ts < since or not isinstance(message, str):
            continue
        m = STATE_MESSAGE_RE.match(message)
        if not m:
            continue
        who = _d(c.get("reviewer"))
        out.append(TriggerEvent(
            type="change-abandoned" if m.group(1) == "Abandoned" else "change-restored",
            patchset=ps, timestamp=ts, comment=(m.group(2) or "").strip() or None,
            account_username=who.get("username") or None,
            account_email=who.get("email") or None, account_name=who.get("name") or None,
            **base))
    return out


def _approval_set(ev: TriggerEvent) -> frozenset[tuple[str, int]]:
    return frozenset((a.label.lower(), a.value) for a in ev.approvals)


def _who_ev(ev: TriggerEvent) -> str | None:
    return ev.account_username or ev.account_email or ev.account_name


def _norm(text: str | None) -> str | None:
    return text.strip() if text else None


@dataclass(frozen=True)
class _Seen:
    who: str | None
    timestamp: float
    approvals: frozenset[tuple[str, int]]
    comment: str | None
    synthetic: bool


class Deduplicator:
    """Bounded memory of delivered change events keyed by (type, change,
    patchset); timestamps match within ``tolerance`` because Gerrit stamps
    an event and the data it queries back a moment apart."""

    def __init__(self, capacity: int = 20000, tolerance: float = 5.0):
        self.capacity = capacity
        self.tolerance = tolerance
        self._index: dict[tuple[str, int, int | None], list[_Seen]] = {}
        self._order: deque[tuple[tuple[str, int, int | None], _Seen]] = deque()

    def __len__(self) -> int:
        return len(self._order)

    def _matches(self, new: _Seen, old: _Seen) -> bool:
        if abs(new.timestamp - old.timestamp) > self.tolerance:
            return False
        if new.who and old.who and new.who != old.who:
            return False
        if new.comment and old.comment and new.comment != old.comment:
            return False
        # The synthetic side may know fewer votes than the streamed one.
        small, big = (new, old) if new.synthetic else (old, new)
        return small.approvals <= big.approvals

    def admit(self, ev: TriggerEvent) -> bool:
        """Record ``ev`` and say whether to deliver it. Streamed events are
        dropped only when catch-up already delivered them; synthetic ones when
        anything delivered them."""
        if ev.change_number is None or ev.timestamp is None:
            return True
        key = (ev.type, ev.change_number, ev.patchset)
        seen = _Seen(_who_ev(ev), ev.timestamp, _approval_set(ev), _norm(ev.comment),
                     ev.synthetic)
        for old in self._index.get(key, ()):
            if (ev.synthetic or old.synthetic) and self._matches(seen, old):
                return False
        self._index.setdefault(key, []).append(seen)
        self._order.append((key, seen))
        while len(self._order) > self.capacity:
            okey, oseen = self._order.popleft()
            lst = self._index.get(okey)
            if lst:
                lst.remove(oseen)
                if not lst:
                    del self._index[okey]
        return True


# --- state and I/O ------------------------------------------------------------

QueryRunner = Callable[[list[str]], CommandResult]


class CatchUp:
    """Tracks the last event seen and fills gaps after reconnects.

    Thread-safe: the watcher thread calls everything, the connection may read."""

    def __init__(self, margin: float = 120.0, tolerance: float = 5.0, capacity: int = 20000,
                 limit: int = 500, clock: Callable[[], float] = time.time,
                 floor_slack: float = FLOOR_SLACK):
        self.margin = margin
        self.floor_slack = floor_slack
        self.limit = limit
        self.clock = clock
        self.dedup = Deduplicator(capacity, tolerance)
        self._lock = threading.Lock()
        self._watermark: float | None = None  # newest moment we know we had seen everything
        # Never reach back before the first connection: older events were
        # never ours to deliver (the scheduler starts from Gerrit's state).
        self._floor: float | None = None
        self._resumed = False

    @property
    def watermark(self) -> float | None:
        return self._watermark

    @property
    def resumed(self) -> bool:
        """Whether ``resume`` gave a watermark from an earlier process: then
        the first connection catches up too, not only reconnects."""
        return self._resumed

    def resume(self, watermark: float, handled: Iterable[TriggerEvent] = ()) -> None:
        """Continue from an earlier process that had seen everything up to
        ``watermark``; ``handled`` are the events it acted on lately (they
        are not delivered again by catch-up)."""
        with self._lock:
            self._watermark = watermark
            self._floor = watermark - self.margin
            self._resumed = True
            for ev in handled:
                self.dedup.admit(ev)

    def note_connected(self) -> None:
        """The stream is up: nothing before now is news to a fresh subscriber."""
        with self._lock:
            if self._watermark is None:
                self._watermark = self.clock()
            if self._floor is None:
                self._floor = self.clock() - self.floor_slack

    def admit(self, ev: TriggerEvent) -> bool:
        with self._lock:
            if not ev.synthetic and ev.timestamp is not None:
                if self._watermark is None or ev.timestamp > self._watermark:
                    self._watermark = ev.timestamp
            return self.dedup.admit(ev)

    def since(self) -> float:
        """Start of the window to query after a reconnect happening now."""
        with self._lock:
            base = self._watermark if self._watermark is not None else self.clock()
            floor = self._floor
        since = base - self.margin
        return since if floor is None else max(since, floor)

    def collect(self, run_query: QueryRunner, since: float) -> list[TriggerEvent]:
        """Query Gerrit and return the synthetic events not delivered before,
        recording them as delivered. Raises GerritError/QueryError on failure
        (nothing recorded then, so a retry covers the same window)."""
        now = self.clock()
        rows: list[Mapping[str, Any]] = []
        for status in ("open", "abandoned"):
            start = 0
            for _page in range(MAX_PAGES):
                argv = query_argv(catchup_terms(since, now, self.limit, status),
                                  CATCHUP_OPTIONS, start=start or None)
                res = run_query(argv)
                if not res.ok:
                    raise QueryError(f"catch-up query failed: {res.error_text(300)}")
                page = parse_query_output(res.stdout)
                rows.extend(page.rows)
                if not page.more_changes or not page.rows:
                    break
                start += len(page.rows)
        events = synthesize(rows, since, self.dedup.tolerance)
        admitted = [e for e in events if self.admit(e)]
        with self._lock:  # everything up to the query is now covered
            if self._watermark is None or now > self._watermark:
                self._watermark = now
        log.info("Catch-up since %.0f: %d open changes updated, %d events synthesized, "
                 "%d new", since, len(rows), len(events), len(admitted))
        return admitted

