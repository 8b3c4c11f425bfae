"""Reading the build history and the last status snapshot.

Typed, read-only queries for the web pages, ETAs and gate strategies (a
separate process may call them: they need only an Engine on the database,
see ``gatekeeper.store.migrate.open_store``). Newest first everywhere. The
scheduler writes these tables (``gatekeeper.store.recorder``).

These signatures are a contract with the web service and the gate
strategies: add keyword arguments, do not change the existing ones."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.store import schema

PASSING = ("SUCCESS",)


@dataclass(frozen=True)
class MergedChange:
    """One change (or ref) a build set merged, in merge order."""

    project: str
    branch: str
    ref: str
    change: int | None = None
    patchset: int | None = None
    revision: str = ""


@dataclass(frozen=True)
class BuildRecord:
    uuid: str
    buildset: str
    pipeline: str
    project: str
    branch: str
    change: int | None
    patchset: int | None
    ref: str
    job: str
    result: str | None  # None: still running (or the scheduler never learned)
    attempt: int
    voting: bool
    launch_time: float | None
    start_time: float | None
    end_time: float | None
    node: str | None
    provider: str | None
    worker: str | None
    log_url: str | None
    message: str | None

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.start_time)


@dataclass(frozen=True)
class BuildsetRecord:
    uuid: str
    item: str  # the queue item's uuid
    pipeline: str
    project: str
    branch: str
    change: int | None
    patchset: int | None
    ref: str
    newrev: str
    result: str | None  # SUCCESS, FAILURE, MERGER_FAILURE, RESET, DEQUEUED, None: open
    message: str
    changes: tuple[MergedChange, ...]  # what it tested: the changes ahead, then its own
    base_item: str | None
    created: float
    completed: float | None


@dataclass(frozen=True)
class BuildFilter:
    """Conditions on builds; None means any."""

    project: str | None = None
    pipeline: str | None = None
    job: str | None = None
    change: int | None = None
    patchset: int | None = None
    branch: str | None = None
    result: str | None = None
    buildset: str | None = None
    voting: bool | None = None


@dataclass(frozen=True)
class BuildsetFilter:
    project: str | None = None
    pipeline: str | None = None
    change: int | None = None
    patchset: int | None = None
    branch: str | None = None
    result: str | None = None


@dataclass(frozen=True)
class StatusSnapshot:
    time: float  # when the scheduler turn that made it ended (scheduler clock)
    data: dict[str, Any]  # the status.json document


def _where(table: sa.Table, f: Any) -> list[sa.ColumnElement[bool]]:
    out = []
    for fld in fields(f):
        value = getattr(f, fld.name)
        if value is not None:
            out.append(table.c[fld.name] == value)
    return out


def _build(row: Any) -> BuildRecord:
    return BuildRecord(**{f.name: getattr(row, f.name) for f in fields(BuildRecord)})


def _buildset(row: Any) -> BuildsetRecord:
    values = {f.name: getattr(row, f.name) for f in fields(BuildsetRecord) if f.name != "changes"}
    changes = tuple(MergedChange(**c) for c in json.loads(row.changes or "[]"))
    return BuildsetRecord(changes=changes, **values)


def builds(engine: Engine, filters: BuildFilter | None = None, limit: int = 50,
           offset: int = 0) -> list[BuildRecord]:
    """Builds matching ``filters``, newest launch first."""
    b = schema.builds
    q = (sa.select(b).where(*_where(b, filters or BuildFilter()))
         .order_by(b.c.launch_time.desc(), b.c.uuid).limit(limit).offset(offset))
    with engine.connect() as conn:
        return [_build(r) for r in conn.execute(q)]


def build(engine: Engine, uuid: str) -> BuildRecord | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.builds).where(schema.builds.c.uuid == uuid)).first()
    return _build(row) if row else None


def buildsets(engine: Engine, filters: BuildsetFilter | None = None, limit: int = 50,
              offset: int = 0) -> list[BuildsetRecord]:
    """Build sets matching ``filters``, newest first."""
    s = schema.buildsets
    q = (sa.select(s).where(*_where(s, filters or BuildsetFilter()))
         .order_by(s.c.created.desc(), s.c.uuid).limit(limit).offset(offset))
    with engine.connect() as conn:
        return [_buildset(r) for r in conn.execute(q)]


def buildset(engine: Engine, uuid: str) -> BuildsetRecord | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.buildsets)
                           .where(schema.buildsets.c.uuid == uuid)).first()
    return _buildset(row) if row else None


def builds_of_buildset(engine: Engine, uuid: str) -> list[BuildRecord]:
    """The builds of one build set, in launch order."""
    b = schema.builds
    q = sa.select(b).where(b.c.buildset == uuid).order_by(b.c.launch_time, b.c.job, b.c.attempt)
    with engine.connect() as conn:
        return [_build(r) for r in conn.execute(q)]


def builds_of_change(engine: Engine, change: int, patchset: int | None = None,
                     limit: int = 200) -> list[BuildRecord]:
    """Every build that tested ``change`` as its own change (newest first)."""
    return builds(engine, BuildFilter(change=change, patchset=patchset), limit=limit)


def job_durations(engine: Engine, job: str, last: int = 10, project: str | None = None,
                  results: tuple[str, ...] = PASSING) -> list[float]:
    """Run times (seconds) of the ``last`` builds of ``job`` ending in ``results``,
    newest first."""
    b = schema.builds
    q = (sa.select(b.c.start_time, b.c.end_time)
         .where(b.c.job == job, b.c.result.in_(results), b.c.start_time.is_not(None),
                b.c.end_time.is_not(None))
         .order_by(b.c.end_time.desc()).limit(last))
    if project is not None:
        q = q.where(b.c.project == project)
    with engine.connect() as conn:
        return [max(0.0, e - s) for s, e in conn.execute(q)]


def median_duration(engine: Engine, job: str, last: int = 10,
                    project: str | None = None) -> float | None:
    """Median run time of the last ``last`` successful builds of ``job`` (None: none yet)."""
    d = job_durations(engine, job, last, project)
    return statistics.median(d) if d else None


def job_results(engine: Engine, job: str, last: int = 100, project: str | None = None,
                pipeline: str | None = None) -> list[BuildRecord]:
    """The last ``last`` finished builds of ``job`` (newest first): the material
    for flake rates (same change and patchset, different results)."""
    b = schema.builds
    q = (sa.select(b).where(b.c.job == job, b.c.result.is_not(None))
         .order_by(b.c.end_time.desc()).limit(last))
    if project is not None:
        q = q.where(b.c.project == project)
    if pipeline is not None:
        q = q.where(b.c.pipeline == pipeline)
    with engine.connect() as conn:
        return [_build(r) for r in conn.execute(q)]


def status_snapshot(engine: Engine) -> StatusSnapshot | None:
    """The status document of the scheduler's last turn (None: never written)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.status.c.time, schema.status.c.data)
                           .where(schema.status.c.id == 1)).first()
    return StatusSnapshot(row.time, json.loads(row.data)) if row else None
