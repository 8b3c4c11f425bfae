"""A worker's static nodes in the pool's database (table ``worker_nodes``).

The worker's StaticNodeClaimer keeps the truth in memory (it never waits for
the database to hand out a node) and writes every claim, release and hold
here, so ``gatekeeper nodes list`` (and ``--json``) show a worker's static
nodes next to the pool's and a held node stays held across a worker restart.
An operator's ``gatekeeper nodes hold WORKER/NAME`` and ``nodes delete
WORKER/NAME`` (release: back to service) are written here by the CLI and
picked up by the worker at its next claim, release or hold check (a waiting
claim checks every few seconds). A database that fails is logged and the
worker goes on with what it has in memory."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.db import worker_nodes as table

log = logging.getLogger("gatekeeper.worker.noderecords")

FOREVER = float("inf")  # a hold without an end, in memory (NULL in the table)


@dataclass(frozen=True)
class WorkerNode:
    worker: str
    name: str
    labels: tuple[str, ...]
    host: str
    port: int
    state: NodeState
    state_time: float
    build: str
    hold_until: float | None
    hold_reason: str

    @property
    def ident(self) -> str:
        """How ``gatekeeper nodes`` names it: ``WORKER/NAME``."""
        return f"{self.worker}/{self.name}"


def _snap(row: Any) -> WorkerNode:
    return WorkerNode(row.worker, row.name, tuple(x for x in row.labels.split(",") if x),
                      row.host, row.port, NodeState(row.state), row.state_time, row.build,
                      row.hold_until, row.hold_reason)


def list_worker_nodes(engine: Engine) -> list[WorkerNode]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.worker, table.c.name))
        return [_snap(r) for r in rows]


def get_worker_node(engine: Engine, ident: str) -> WorkerNode | None:
    worker, _, name = ident.rpartition("/")
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.worker == worker,
                                                  table.c.name == name)).first()
    return _snap(row) if row else None


def operator_transition(engine: Engine, ident: str, from_states: Iterable[NodeState],
                        to_state: NodeState, now: float, hold_until: float | None = None,
                        hold_reason: str = "") -> bool:
    """The CLI's hold (to HOLD) or release (to READY), only from ``from_states``."""
    worker, _, name = ident.rpartition("/")
    with engine.begin() as conn:
        return conn.execute(
            sa.update(table)
            .where(table.c.worker == worker, table.c.name == name,
                   table.c.state.in_(list(from_states)))
            .values(state=to_state, state_time=now, hold_until=hold_until,
                    hold_reason=hold_reason)).rowcount == 1


class WorkerNodeRecords:
    """One worker's rows, written by its StaticNodeClaimer (under its lock)."""

    def __init__(self, engine: Engine, worker: str):
        self.engine = engine
        self.worker = worker

    def register(self, nodes: Iterable[Any], now: float) -> dict[str, tuple[float, str]]:
        """Rows for ``nodes`` (StaticNodes); rows of nodes no longer configured
        are removed, in-use ones of an earlier process are ready again (its
        builds are gone). The holds that survive: name -> (until, reason)."""
        nodes = list(nodes)
        with self.engine.begin() as conn:
            old = {r.name: _snap(r) for r in conn.execute(
                sa.select(table).where(table.c.worker == self.worker))}
            gone = set(old) - {n.name for n in nodes}
            if gone:
                conn.execute(sa.delete(table).where(table.c.worker == self.worker,
                                                    table.c.name.in_(sorted(gone))))
            holds: dict[str, tuple[float, str]] = {}
            for n in nodes:
                was = old.get(n.name)
                values: dict[str, Any] = {"labels": ",".join(n.labels), "host": n.host,
                                          "port": n.port}
                if was is not None and was.state == NodeState.HOLD and (
                        was.hold_until is None or was.hold_until > now):
                    holds[n.name] = (was.hold_until if was.hold_until is not None else FOREVER,
                                     was.hold_reason)
                else:
                    values.update(state=NodeState.READY, state_time=now, build="",
                                  hold_until=None, hold_reason="")
                if was is None:
                    conn.execute(sa.insert(table).values(worker=self.worker, name=n.name,
                                                         **values))
                else:
                    conn.execute(sa.update(table).where(table.c.worker == self.worker,
                                                        table.c.name == n.name).values(**values))
        return holds

    def write(self, name: str, state: NodeState, now: float, build: str = "",
              hold_until: float | None = None, hold_reason: str = "") -> None:
        """Record the claimer's change; a failing database is logged, not raised."""
        until = None if hold_until == FOREVER else hold_until
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.update(table)
                             .where(table.c.worker == self.worker, table.c.name == name)
                             .values(state=state, state_time=now, build=build,
                                     hold_until=until, hold_reason=hold_reason[:1000]))
        except sa.exc.SQLAlchemyError as e:
            log.warning("node %s: could not record %s in the pool database: %s", name, state,
                        str(getattr(e, "orig", None) or e).splitlines()[0])

    def holds(self) -> dict[str, tuple[float, str]] | None:
        """Every held node of this worker as the table has it (an operator may
        have held or released one); None if the database cannot be read."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(table.c.name, table.c.hold_until,
                                              table.c.hold_reason)
                                    .where(table.c.worker == self.worker,
                                           table.c.state == NodeState.HOLD))
                return {r.name: (r.hold_until if r.hold_until is not None else FOREVER,
                                 r.hold_reason) for r in rows}
        except sa.exc.SQLAlchemyError as e:
            log.warning("could not read node holds from the pool database: %s",
                        str(getattr(e, "orig", None) or e).splitlines()[0])
            return None
