"""Writing the build history (``builds``/``buildsets``) from the scheduler.

Called at the end of each scheduler turn, in the same transaction as the
state (``journal.py``), with the items the Door saw change. Only rows whose
content changed since the last write are touched (a fingerprint per row), and
only their columns that changed (an index on a column SET is rewritten, on
SQLite, even when its value is the same), so a turn costs what it changed,
not what is queued."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gatekeeper.model.change import Change
from gatekeeper.model.runtime import Build, BuildSet, QueueItem
from gatekeeper.model.states import BuildResult
from gatekeeper.store import schema, stmt
from gatekeeper.store.serial import changes_json
from gatekeeper.store.undo import Undo

log = logging.getLogger("gatekeeper.store.recorder")

RETENTION_EVERY = 3600.0  # seconds between deletions of expired history


class HistoryRecorder:
    def __init__(self, retention_days: float = 0.0):
        self.retention = retention_days * 86400.0  # 0: keep forever
        self._rows: dict[str, tuple[Any, ...]] = {}  # uuid -> fingerprint last written
        self._current: dict[str, str] = {}  # item uuid -> its build set last written
        self._last_expiry = 0.0

    def write(self, conn: Connection, items: list[tuple[QueueItem, bool]], now: float,
              replaced: Sequence[tuple[QueueItem, BuildSet, Build]] = (),
              undo: Undo | None = None) -> None:
        """Record the build sets and builds of ``items`` ((item, left its queue)),
        and ``replaced``: earlier attempts no longer in their build set (a job
        run again within the turn), each its own row with its attempt number,
        so that a failure rerun at once is in the history (flake rates). What it
        remembers of the rows goes through ``undo``: the caller undoes it if the
        transaction fails."""
        undo = undo or Undo()
        for item, bs, b in replaced:
            self._write_build(conn, item, bs, b, undo)
            if b.result is not None:
                undo.pop(self._rows, b.uuid)
        for item, left in items:
            bs = item.build_set
            old = self._current.get(item.uuid)
            if old is not None and old != bs.uuid:
                self._close(conn, old, "RESET", now)
            if not bs.is_fresh:
                if old != bs.uuid:
                    undo.set(self._current, item.uuid, bs.uuid)
                self._write_buildset(conn, item, bs, now, undo)
                for b in bs.builds.values():
                    self._write_build(conn, item, bs, b, undo)
            if left:
                undo.pop(self._current, item.uuid)
                if not bs.is_fresh:
                    self._close(conn, bs.uuid, "DEQUEUED", now)
                    undo.pop(self._rows, bs.uuid)
                    for b in bs.builds.values():
                        undo.pop(self._rows, b.uuid)
        if self.retention and now - self._last_expiry >= RETENTION_EVERY:
            self._last_expiry = now  # a failed expiry is only tried again later
            self.expire(conn, now - self.retention)

    def _changed(self, uuid: str, values: dict[str, Any], undo: Undo) -> dict[str, Any] | None:
        """The columns of the row ``uuid`` to SET for it to hold ``values`` (those
        that differ from its last write); None: it holds them."""
        fp = tuple(values.values())
        old = self._rows.get(uuid)
        if old == fp:
            return None
        undo.set(self._rows, uuid, fp)
        if old is None or len(old) != len(fp):
            return dict(values)
        return {k: v for (k, v), was in zip(values.items(), old, strict=True)
                if v != was}

    @staticmethod
    def _put(conn: Connection, table: sa.Table, uuid: str, changed: dict[str, Any],
             row: dict[str, Any]) -> None:
        """UPDATE ``changed``; INSERT ``row`` if there is none (first write, expired)."""
        if conn.execute(stmt.update(table, ("uuid",), tuple(changed)),
                        dict(k_uuid=uuid, **changed)).rowcount == 0:
            conn.execute(stmt.insert(table), dict(uuid=uuid, **row))

    def _write_buildset(self, conn: Connection, item: QueueItem, bs: BuildSet,
                        now: float, undo: Undo) -> None:
        c = item.change
        values: dict[str, Any] = dict(
            item=item.uuid, pipeline=item.pipeline, project=c.project, branch=c.branch or "",
            change=c.number, patchset=c.patchset,
            ref=c.ref, newrev="" if isinstance(c, Change) else c.newrev,
            result=bs.result, message=bs.merge_error or "",
            changes=changes_json(bs), base_item=bs.base_item)
        changed = self._changed(bs.uuid, values, undo)
        if changed is None:
            return
        completed = now if bs.result is not None else None
        self._put(conn, schema.buildsets, bs.uuid, {**changed, "completed": completed},
                  {**values, "completed": completed, "created": now})

    def _write_build(self, conn: Connection, item: QueueItem, bs: BuildSet, b: Build,
                     undo: Undo) -> None:
        c = item.change
        values = dict(buildset=bs.uuid, pipeline=item.pipeline, project=c.project,
                      branch=c.branch or "",
                      change=c.number, patchset=c.patchset,
                      ref=c.ref, job=b.job, result=b.result, attempt=b.attempt,
                      voting=b.voting, launch_time=b.launch_time, start_time=b.start_time,
                      end_time=b.end_time, node=b.node, provider=b.provider, worker=b.worker,
                      log_url=b.url, message=b.message)
        changed = self._changed(b.uuid, values, undo)
        if changed is not None:
            self._put(conn, schema.builds, b.uuid, changed, values)

    def _close(self, conn: Connection, bs_uuid: str, result: str, now: float) -> None:
        """A build set left behind: what never finished was cancelled."""
        b, s = schema.builds, schema.buildsets
        conn.execute(sa.update(b).where(b.c.buildset == bs_uuid, b.c.result.is_(None))
                     .values(result=BuildResult.CANCELED, end_time=now))
        conn.execute(sa.update(s).where(s.c.uuid == bs_uuid, s.c.result.is_(None))
                     .values(result=result, completed=now))
        conn.execute(sa.update(s).where(s.c.uuid == bs_uuid, s.c.completed.is_(None))
                     .values(completed=now))

    def expire(self, conn: Connection, before: float) -> None:
        b, s = schema.builds, schema.buildsets
        old = sa.select(s.c.uuid).where(s.c.created < before, s.c.completed.is_not(None))
        n = conn.execute(sa.delete(b).where(b.c.buildset.in_(old))).rowcount
        m = conn.execute(sa.delete(s).where(s.c.created < before,
                                            s.c.completed.is_not(None))).rowcount
        if n or m:
            log.info("history: %d builds and %d build sets older than the retention deleted",
                     n, m)

