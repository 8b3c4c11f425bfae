"""The Door's mutations made durable: the scheduler's state in the database.

Design (measured in ``bench/persistence.py``): a Door listener marks what a
turn changed (items, queues, pipelines' waiting lists, new decisions, report
decisions); at the end of the turn ``flush`` rewrites exactly those rows in
one transaction, together with the report outbox entries the turn decided,
the build history and the event watermark. Every row is a complete
snapshot of its object, so there is no journal to replay or compact: the
tables are the compacted state after the last committed turn, and a turn
costs what it changed. A crash loses at most the turn in progress; its
events are found again (results: the restart relaunches what was in
flight; Gerrit events: catch-up from the persisted watermark).

``restore`` rebuilds the pipelines' queues from the rows (links between
items are uuids) and the core's indexes (``ctx.builds``/``ctx.merges``)
from the restored items."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gatekeeper.core.door import Door, Mutation
from gatekeeper.core.engine import Engine as CoreEngine
from gatekeeper.mail.outbox import MailEntry, write_mails
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import (
    Build,
    BuildSet,
    ChangeQueue,
    HistoryEntry,
    PipelineState,
    QueueItem,
    SpeculativeChange,
)
from gatekeeper.model.states import MergeState, SubmitState
from gatekeeper.store import schema, stmt
from gatekeeper.store.outbox import OutboxEntry
from gatekeeper.store.recorder import HistoryRecorder
from gatekeeper.store.serial import (
    change_from_dict,
    change_to_dict,
    changes_json,
    item_from_dict,
    item_json,
    queue_from_dict,
    queue_to_dict,
)
from gatekeeper.store.undo import Undo

log = logging.getLogger("gatekeeper.store.journal")

FINISHED_KEPT = 500  # items that left their queue, kept for ``explain`` (as the core does)
DECISIONS_KEPT = 1000  # per pipeline


_ITEM_UPDATE = stmt.update(schema.items, ("uuid",), ("pipeline", "queue", "finished", "data"))
_ITEM_DATA = stmt.update(schema.items, ("uuid",), ("data",))
_ITEMS_PURGE = sa.delete(schema.items).where(schema.items.c.finished > 0,
                                             schema.items.c.finished <= sa.bindparam("upto"))
_OUTBOX_HAVE = sa.select(schema.outbox.c.key).where(
    schema.outbox.c.key.in_(sa.bindparam("keys", expanding=True)))
_CHANGES_UPDATE = stmt.update(schema.item_changes, ("item",), ("buildset", "data"))
_CHANGES_PURGE = sa.delete(schema.item_changes).where(schema.item_changes.c.item.in_(
    sa.select(schema.items.c.uuid).where(schema.items.c.finished > 0,
                                         schema.items.c.finished <= sa.bindparam("upto"))))
_QUEUE_UPDATE = stmt.update(schema.queues, ("pipeline", "name"), ("data",))
_META_UPDATE = stmt.update(schema.meta, ("key",), ("value",))
_STATUS_UPDATE = stmt.update(schema.status, ("id",), ("time", "data"))


def _dumps(d: Any) -> str:
    return json.dumps(d, separators=(",", ":"))


@dataclass
class Restored:
    """What ``restore`` found."""

    items: list[QueueItem] = field(default_factory=list)  # in queues, queue order
    dropped: list[tuple[QueueItem, str]] = field(default_factory=list)  # pipeline gone
    meta: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # handled, oldest first


class StateJournal:
    def __init__(self, engine: Engine, recorder: HistoryRecorder | None = None):
        self.engine = engine
        self.recorder = recorder or HistoryRecorder()
        self._items: dict[str, QueueItem] = {}
        self._left: dict[str, QueueItem] = {}
        self._queues: set[tuple[str, str]] = set()
        self._waiting: dict[str, PipelineState] = {}
        self._decisions: list[dict[str, Any]] = []
        self._reports: list[OutboxEntry] = []
        self._mails: list[MailEntry] = []
        self._meta: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []  # handled this turn: rows to add
        self._events_before: float | None = None  # rows older than this go
        self._status: tuple[float, dict[str, Any]] | None = None
        self._all = False  # a change to something we could not place: rewrite all
        self._owner: dict[str, QueueItem] = {}  # build set / build uuid -> item
        # builds launched or changed this turn -> (their build set, the build): an
        # attempt replaced within the turn (a rerun) is no longer in its build set
        self._builds: dict[str, tuple[BuildSet, Build]] = {}
        self._set_of: dict[str, BuildSet] = {}  # build uuid -> its build set
        # item uuid -> (pipeline, queue) of its row, for the items with a row in a queue
        self._persisted: dict[str, tuple[str, str]] = {}
        # item uuid -> (build set uuid, its changes) of the item's changes row, for
        # the items in queues: rewritten only when the build set or its changes differ
        self._changes: dict[str, tuple[str, tuple[SpeculativeChange, ...] | None]] = {}
        self._queue_pos: dict[tuple[str, str], int] = {}
        self._next_pos = 0
        self._finished_seq = 0
        self.report_key: str | None = None  # the report decision being carried out
        self.flushes = 0  # transactions written (the bench and tests count them)

    # --- the Door listener ----------------------------------------------

    def attach(self, door: Door) -> None:
        door.listeners.append(self.on_mutation)

    def _own(self, item: QueueItem) -> None:
        self._owner[item.build_set.uuid] = item
        for b in item.build_set.builds.values():
            self._owner[b.uuid] = item

    def on_mutation(self, m: Mutation) -> None:
        s = m.subject
        if isinstance(s, QueueItem):
            self._items[s.uuid] = s
            if m.op == "add-item":
                self._own(s)
                self._queues.add((s.pipeline, s.queue))
            elif m.op == "remove-item":
                self._left[s.uuid] = s
                self._queues.add((s.pipeline, s.queue))
            elif m.op == "new-build-set":
                self._owner[s.build_set.uuid] = s
            elif m.op == "report":
                self.report_key = m.data["key"]
        elif isinstance(s, (BuildSet, Build)):
            owner = self._owner.get(s.uuid)
            if owner is None:
                self._all = True
                return
            self._items[owner.uuid] = owner
            if m.op == "add-build" and isinstance(s, BuildSet):
                self._owner[m.data["build"]] = owner
                self._set_of[m.data["build"]] = s
                self._builds[m.data["build"]] = (s, s.builds[m.data["job"]])
            elif isinstance(s, Build) and s.uuid in self._set_of:
                self._builds[s.uuid] = (self._set_of[s.uuid], s)
        elif isinstance(s, ChangeQueue):
            self._queues.add((s.pipeline, s.name))
        elif isinstance(s, PipelineState):
            if m.op == "decision":
                self._decisions.append(dict(pipeline=s.name, change=m.data["change"],
                                            time=m.data["time"], kind=m.data["kind"],
                                            text=m.data["text"]))
            else:
                self._waiting[s.name] = s

    # --- what the scheduler adds ------------------------------------------

    def queue_report(self, entry: OutboxEntry) -> None:
        """A report to send after this turn is committed."""
        self._reports.append(entry)

    def queue_mail(self, entry: MailEntry) -> None:
        """A mail report to deliver after this turn is committed."""
        self._mails.append(entry)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value

    def add_event(self, time: float, data: dict[str, Any]) -> None:
        """A Gerrit event this turn acted on (committed with the turn)."""
        self._events.append({"time": time, "data": _dumps(data)})

    def forget_events(self, before: float) -> None:
        """Handled events older than ``before`` need not be kept."""
        self._events_before = before

    def set_status(self, now: float, data: dict[str, Any]) -> None:
        self._status = (now, data)

    def dirty(self) -> bool:
        return bool(self._items or self._left or self._queues or self._waiting or self._decisions
                    or self._reports or self._mails or self._meta or self._status or self._all
                    or self._events or self._events_before is not None)

    # --- per turn -----------------------------------------------------------

    def flush(self, core: CoreEngine, now: float) -> bool:
        """Write what this turn changed, in one transaction; True if anything."""
        if not self.dirty():
            return False
        if self._all:
            for state in core.states.values():
                for it in state.items():
                    self._items[it.uuid] = it
                    self._own(it)
                for q in state.queues:
                    self._queues.add((state.name, q.name))
        # What the bookkeeping below says about the rows must stay true if the
        # transaction fails: the next turn writes these changes again.
        undo = Undo()
        seq, pos = self._finished_seq, self._next_pos
        try:
            self._write(core, now, undo)
        except BaseException:
            undo.rollback()
            self._finished_seq, self._next_pos = seq, pos
            raise
        for it in self._left.values():
            for k in [it.build_set.uuid, *(b.uuid for b in it.build_set.builds.values())]:
                self._owner.pop(k, None)
                self._set_of.pop(k, None)
        for u, (bs, b) in self._builds.items():
            if bs.builds.get(b.job) is not b and b.result is not None:  # written for good
                self._owner.pop(u, None)
                self._set_of.pop(u, None)
        self._builds.clear()
        self._items.clear()
        self._left.clear()
        self._queues.clear()
        self._waiting.clear()
        self._decisions.clear()
        self._reports.clear()
        self._mails.clear()
        self._meta.clear()
        self._events.clear()
        self._events_before = None
        self._status = None
        self._all = False
        self.flushes += 1
        return True

    def _write(self, core: CoreEngine, now: float, undo: Undo) -> None:
        with self.engine.begin() as conn:
            self._write_items(conn, undo)
            self._write_queues(conn, core, undo)
            self._write_waiting(conn)
            if self._decisions:
                conn.execute(stmt.insert(schema.decisions), self._decisions)
            if self._reports:
                self._write_reports(conn)
            if self._mails:
                write_mails(conn, self._mails)
            for key, value in self._meta.items():
                _put_meta(conn, key, value)
            if self._events:
                conn.execute(stmt.insert(schema.events), self._events)
            if self._events_before is not None:
                conn.execute(schema.events.delete().where(
                    schema.events.c.time < self._events_before))
            history = [(it, it.uuid in self._left) for it in self._items.values()]
            replaced = [(self._owner[u], bs, b) for u, (bs, b) in self._builds.items()
                        if bs.builds.get(b.job) is not b and u in self._owner]
            self.recorder.write(conn, history, now, replaced, undo)
            if self._status is not None:
                put_status(conn, self._status[0], _dumps(self._status[1]))

    def _write_items(self, conn: Connection, undo: Undo) -> None:
        t = schema.items
        updates: list[dict[str, Any]] = []  # of the data only: a turn's usual write
        moves: list[dict[str, Any]] = []  # of every column (the item left its queue, ...)
        inserts: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []  # item changes rows to update
        new_changes: list[dict[str, Any]] = []  # to insert
        unknown: list[dict[str, Any]] = []  # may exist (an older release wrote the item's row)
        for uuid, it in self._items.items():
            left = uuid in self._left
            if left:
                self._finished_seq += 1
            bs = it.build_set
            for b in bs.builds.values():
                self._owner.setdefault(b.uuid, it)
            had = self._changes.get(uuid)
            if had is None or had[0] != bs.uuid or had[1] is not bs.changes:
                row = dict(buildset=bs.uuid, data=changes_json(bs))
                if had is not None:
                    changes.append(dict(k_item=uuid, **row))
                elif uuid in self._persisted:
                    unknown.append(dict(item=uuid, **row))
                else:
                    new_changes.append(dict(item=uuid, **row))
                undo.set(self._changes, uuid, (bs.uuid, bs.changes))
            data = item_json(it)
            where = self._persisted.get(uuid)
            if where is None:
                inserts.append(dict(uuid=uuid, pipeline=it.pipeline, queue=it.queue,
                                    finished=self._finished_seq if left else 0, data=data))
            elif left or where != (it.pipeline, it.queue):
                # SQLite rewrites an index's entry for every column SET, changed or not
                moves.append(dict(k_uuid=uuid, pipeline=it.pipeline, queue=it.queue,
                                  finished=self._finished_seq if left else 0, data=data))
            else:
                updates.append(dict(k_uuid=uuid, data=data))
            if left:
                undo.pop(self._persisted, uuid)
                undo.pop(self._changes, uuid)
            elif where != (it.pipeline, it.queue):
                undo.set(self._persisted, uuid, (it.pipeline, it.queue))
        for statement, rows in ((_ITEM_DATA, updates), (_ITEM_UPDATE, moves),
                                (stmt.insert(t), inserts), (_CHANGES_UPDATE, changes),
                                (stmt.insert(schema.item_changes), new_changes)):
            if rows:
                conn.execute(statement, rows[0] if len(rows) == 1 else rows)
        for row in unknown:
            if conn.execute(_CHANGES_UPDATE, dict(k_item=row["item"], buildset=row["buildset"],
                                                  data=row["data"])).rowcount == 0:
                conn.execute(stmt.insert(schema.item_changes), row)
        if self._left:
            upto = dict(upto=self._finished_seq - FINISHED_KEPT)
            conn.execute(_CHANGES_PURGE, upto)
            conn.execute(_ITEMS_PURGE, upto)

    def _write_queues(self, conn: Connection, core: CoreEngine, undo: Undo) -> None:
        t = schema.queues
        for pipeline, name in self._queues:
            state = core.states.get(pipeline)
            q = state.queue_named(name) if state is not None else None
            where = (t.c.pipeline == pipeline, t.c.name == name)
            if q is None:
                conn.execute(sa.delete(t).where(*where))
                undo.pop(self._queue_pos, (pipeline, name))
                continue
            data = _dumps(queue_to_dict(q))
            pos = self._queue_pos.get((pipeline, name))
            if pos is not None:
                conn.execute(_QUEUE_UPDATE, dict(k_pipeline=pipeline, k_name=name, data=data))
            else:
                pos = self._next_pos
                undo.set(self._queue_pos, (pipeline, name), pos)
                self._next_pos += 1
                conn.execute(sa.delete(t).where(*where))
                conn.execute(sa.insert(t).values(pipeline=pipeline, name=name, position=pos,
                                                 data=data))

    def _write_waiting(self, conn: Connection) -> None:
        for name, state in self._waiting.items():
            value = {dep: [change_to_dict(c) for c in changes]
                     for dep, changes in state.waiting.items()}
            _put_meta(conn, f"waiting/{name}", value)

    def _write_reports(self, conn: Connection) -> None:
        keys = [e.key for e in self._reports]
        have = set(conn.execute(_OUTBOX_HAVE, dict(keys=keys)).scalars())
        rows = [e.row() for e in self._reports if e.key not in have]
        if rows:
            conn.execute(stmt.insert(schema.outbox), rows)

    # --- restart ------------------------------------------------------------

    def restore(self, core: CoreEngine) -> Restored:
        """Load the last committed state into ``core`` (whose queues are empty)."""
        out = Restored()
        with self.engine.connect() as conn:
            qrows = conn.execute(sa.select(schema.queues).order_by(
                schema.queues.c.position)).all()
            irows = conn.execute(sa.select(schema.items.c.uuid, schema.items.c.data)
                                 .where(schema.items.c.finished == 0)).all()
            frows = conn.execute(sa.select(schema.items.c.data, schema.items.c.finished)
                                 .where(schema.items.c.finished > 0)
                                 .order_by(schema.items.c.finished.desc())
                                 .limit(FINISHED_KEPT)).all()
            meta = {r.key: json.loads(r.value) for r in conn.execute(sa.select(schema.meta))}
            out.events = [json.loads(r.data) for r in conn.execute(
                sa.select(schema.events.c.data).order_by(schema.events.c.id))]
            drows = self._decision_rows(conn, core.states.keys())
            crows = {r.item: (r.buildset, r.data)
                     for r in conn.execute(sa.select(schema.item_changes))}
        out.meta = meta

        def load(text: str) -> tuple[QueueItem, str | None]:
            d = json.loads(text)
            bs_uuid, changes = crows.get(d["uuid"], (None, None))
            if "changes" not in d and bs_uuid == d["build_set"]["uuid"]:
                d["changes"] = json.loads(changes or "[]")
            return item_from_dict(d)

        loaded = {r.uuid: load(r.data) for r in irows}
        for uuid, (it, _) in loaded.items():
            if uuid in crows:  # rewritten when the item's build set or its changes differ
                bs_uuid = crows[uuid][0]
                self._changes[uuid] = (bs_uuid, it.build_set.changes
                                       if bs_uuid == it.build_set.uuid else None)
        self._finished_seq = max((r.finished for r in frows), default=0)
        for r in reversed(frows):
            item, _ = load(r.data)
            core.ctx.finished.append(item)
        placed: set[str] = set()
        for r in qrows:
            self._queue_pos[(r.pipeline, r.name)] = r.position
            self._next_pos = max(self._next_pos, r.position + 1)
            q, uuids = queue_from_dict(r.pipeline, r.name, json.loads(r.data))
            state = core.states.get(r.pipeline)
            members = [loaded[u][0] for u in uuids if u in loaded]
            placed.update(i.uuid for i in members)
            if state is None:
                for it in members:
                    out.dropped.append((it, f"pipeline {r.pipeline} is not in the layout"))
                self._queues.add((r.pipeline, r.name))
                continue
            state.queues.append(q)
            for it in members:
                q.items.append(it)
                state.index.setdefault(it.change.key, []).append(it)
                out.items.append(it)
        by_uuid = {it.uuid: it for it in out.items}
        for it in out.items:
            ahead = by_uuid.get(loaded[it.uuid][1] or "")
            it.item_ahead = ahead
            if ahead is not None:
                ahead.items_behind.append(it)
        for uuid, (it, _) in loaded.items():
            if uuid not in placed:  # a row without its queue: never written together
                out.dropped.append((it, "its queue was not recorded"))
        for it in out.items:
            self._own(it)
            self._persisted[it.uuid] = (it.pipeline, it.queue)
        for it, _ in out.dropped:
            self._persisted[it.uuid] = (it.pipeline, it.queue)
        for name, state in core.states.items():
            for dep, changes in (meta.get(f"waiting/{name}") or {}).items():
                state.waiting[dep] = [c for c in map(change_from_dict, changes)
                                      if isinstance(c, Change)]
            for r in drows.get(name, ()):
                state.decisions.append((r.change, HistoryEntry(r.time, r.kind, r.text)))
        reindex(core)
        log.info("restored %d queued items in %d queues (%d dropped)", len(out.items),
                 len(qrows), len(out.dropped))
        return out

    @staticmethod
    def _decision_rows(conn: Connection, pipelines: Iterable[str]) -> dict[str, list[Any]]:
        t = schema.decisions
        out = {}
        for name in pipelines:
            rows = conn.execute(sa.select(t).where(t.c.pipeline == name)
                                .order_by(t.c.id.desc()).limit(DECISIONS_KEPT)).all()
            out[name] = list(reversed(rows))
        return out

    def forget_dropped(self, restored: Restored) -> None:
        """Mark the items ``restore`` could not place as finished."""
        for it, why in restored.dropped:
            it.dequeued = True
            it.dequeue_reason = why
            it.history.append(HistoryEntry(it.enqueue_time, "dequeue", why))
            self._items[it.uuid] = it
            self._left[it.uuid] = it


def reindex(core: CoreEngine) -> None:
    """``ctx.builds``/``ctx.merges``/``ctx.submits`` from the items: what is in
    flight now."""
    ctx = core.ctx
    ctx.builds.clear()
    ctx.merges.clear()
    ctx.submits.clear()
    for state in core.states.values():
        for it in state.items():
            bs = it.build_set
            for b in bs.builds.values():
                if b.result is None:
                    ctx.builds[b.uuid] = (it, bs)
            if bs.merge_state == MergeState.PENDING and bs.merge_request:
                ctx.merges[bs.merge_request] = (it, bs)
            if it.submit_state == SubmitState.SUBMITTING and it.submit_key:
                ctx.submits[it.submit_key] = it


def _put_meta(conn: Connection, key: str, value: Any) -> None:
    data = _dumps(value)
    if conn.execute(_META_UPDATE, dict(k_key=key, value=data)).rowcount == 0:
        conn.execute(stmt.insert(schema.meta), dict(key=key, value=data))


def put_status(conn: Connection, now: float, text: str) -> None:
    if conn.execute(_STATUS_UPDATE, dict(k_id=1, time=now, data=text)).rowcount == 0:
        conn.execute(stmt.insert(schema.status), dict(id=1, time=now, data=text))


def read_meta(engine: Engine, key: str) -> Any:
    with engine.connect() as conn:
        v = conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()
    return json.loads(v) if v is not None else None
