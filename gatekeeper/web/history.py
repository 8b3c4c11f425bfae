"""Build history for the web: the scheduler's history tables, read only.

A thin adapter over ``gatekeeper.store.history`` (the contract the store
keeps): records become plain dicts for pages and JSON, job ETAs are cached
a minute (the status page asks for every job of every item), and a
database that does not have the tables yet means "no history", not an
error. The web never migrates the schema: that is the scheduler's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from gatekeeper.web.sources import Unavailable

ETA_TTL = 60.0
ETA_RUNS = 10  # median of the last N successful runs
MAX_LIMIT = 500


def _row(record: Any) -> dict[str, Any]:
    d = asdict(record)
    if hasattr(record, "duration"):
        d["duration"] = record.duration
    return d


class HistoryDatabase:
    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.clock = clock
        self._engine: Any = None
        self._lock = threading.Lock()
        self._etas: dict[tuple[str, str], tuple[float, float | None]] = {}

    def _db(self) -> Any:
        with self._lock:
            if self._engine is None:
                from gatekeeper.store.db import create_engine

                try:
                    self._engine = create_engine(self.url)
                except Exception as e:  # UserError's words hide the password
                    words = "; ".join(getattr(e, "messages", None) or [type(e).__name__])
                    raise Unavailable(f"the history database cannot be opened: {words}"
                                      ) from None
            return self._engine

    def _query(self, fn: Callable[..., Any], *args: Any, empty: Any = None, **kw: Any) -> Any:
        import sqlalchemy as sa

        try:
            return fn(self._db(), *args, **kw)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as e:
            if "no such table" in str(e) or "does not exist" in str(e):
                return empty  # the scheduler has not created its tables yet
            raise Unavailable(f"the history database: {type(e.orig).__name__}") from None

    def builds(self, filters: dict[str, Any], limit: int, skip: int) -> list[dict[str, Any]]:
        from gatekeeper.store import history

        rows = self._query(history.builds, history.BuildFilter(**filters), limit=limit,
                           offset=skip, empty=[])
        return [_row(r) for r in rows]

    def build(self, uuid: str) -> dict[str, Any] | None:
        from gatekeeper.store import history

        r = self._query(history.build, uuid)
        return _row(r) if r is not None else None

    def buildsets(self, filters: dict[str, Any], limit: int, skip: int
                  ) -> list[dict[str, Any]]:
        from gatekeeper.store import history

        rows = self._query(history.buildsets, history.BuildsetFilter(**filters), limit=limit,
                           offset=skip, empty=[])
        return [_row(r) for r in rows]

    def buildset(self, uuid: str) -> dict[str, Any] | None:
        from gatekeeper.store import history

        r = self._query(history.buildset, uuid)
        if r is None:
            return None
        out = _row(r)
        out["builds"] = [_row(b) for b in self._query(history.builds_of_buildset, uuid,
                                                      empty=[])]
        return out

    def builds_of_change(self, change: int) -> list[dict[str, Any]]:
        from gatekeeper.store import history

        return [_row(b) for b in self._query(history.builds_of_change, change, empty=[])]

    def job_eta(self, project: str, job: str) -> float | None:
        from gatekeeper.store import history

        key, now = (project, job), self.clock()
        with self._lock:
            hit = self._etas.get(key)
        if hit is not None and now - hit[0] < ETA_TTL:
            return hit[1]
        try:
            eta = self._query(history.median_duration, job, ETA_RUNS, project)
        except Unavailable:
            eta = None
        with self._lock:
            self._etas[key] = (now, eta)
        return eta
