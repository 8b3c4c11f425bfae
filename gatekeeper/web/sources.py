"""Where the web service gets its data: small interfaces and their adapters.

The pages and the API only see these protocols, so the status can come
from the scheduler over Gearman today and from the database's snapshot
tomorrow without a page changing; tests give them fixed data."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gatekeeper.gearman.protocol import (
    EXPLAIN_FUNCTION,
    MANAGE_FUNCTION,
    METRICS_FUNCTION,
    STATUS_FUNCTION,
)
from gatekeeper.gearman.rpcclient import RPCClient, RPCError


class Unavailable(Exception):
    """The data source cannot answer now (the message says why, in words)."""


class StatusSource(Protocol):
    def status(self) -> dict[str, Any]: ...
    def explain(self, change: str) -> str: ...


class Manager(Protocol):
    """Admin actions on the scheduler; returns an error text or None."""

    def manage(self, action: str, args: dict[str, Any]) -> str | None: ...


class EtaSource(Protocol):
    """How long a job usually takes (median of its last successful runs)."""

    def job_eta(self, project: str, job: str) -> float | None: ...


class NoHistory:
    def job_eta(self, project: str, job: str) -> float | None:
        return None


class SchedulerRPC:
    """Status, explain and management from the scheduler over Gearman.

    The status is cached for ``ttl`` seconds: a hundred browsers polling the
    page cost the scheduler one snapshot per ``ttl``, not a hundred."""

    def __init__(self, client: RPCClient, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 10.0):
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self.timeout = timeout
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def _call(self, function: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self.client.call(function, args, timeout=self.timeout)
        except RPCError as e:
            raise Unavailable(str(e)) from None

    def status(self) -> dict[str, Any]:
        with self._lock:  # one snapshot request at a time; the others wait for it
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            data = self._call(STATUS_FUNCTION)
            if "error" in data and "pipelines" not in data:
                raise Unavailable(str(data["error"]))
            self._cached = (self.clock(), data)
            return data

    def explain(self, change: str) -> str:
        data = self._call(EXPLAIN_FUNCTION, {"change": change})
        if "error" in data:
            raise Unavailable(str(data["error"]))
        return str(data.get("text", ""))

    def metrics(self) -> str:
        """The scheduler's Prometheus text."""
        return str(self._call(METRICS_FUNCTION).get("text", ""))

    def manage(self, action: str, args: dict[str, Any]) -> str | None:
        data = self._call(MANAGE_FUNCTION, {**args, "action": action})
        with self._lock:
            self._cached = None  # the next page shows the change
        return str(data["error"]) if data.get("error") else None


class PoolRecords(Protocol):
    """The pool's nodes and autohold requests (its database)."""

    def nodes(self) -> list[dict[str, Any]]: ...
    def autoholds(self) -> list[dict[str, Any]]: ...
    def add_autohold(self, project: str, job: str, count: int, hold_for: float | None,
                     reason: str, ssh_key: str = "") -> dict[str, Any]: ...
    def delete_autohold(self, ah_id: int) -> bool: ...


class PoolDatabase:
    """PoolRecords from the pool's database (what ``gatekeeper nodes list`` reads)."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        self.url = url
        self.clock = clock
        self._store: Any = None
        self._lock = threading.Lock()

    def _db(self) -> Any:
        with self._lock:  # opened on first use: the web starts without the database
            if self._store is None:
                from gatekeeper.nodes.db import PoolStore
                from gatekeeper.store.db import create_engine

                try:
                    self._store = PoolStore(create_engine(self.url))
                except Exception as e:  # UserError's words hide the password
                    words = "; ".join(getattr(e, "messages", None) or [type(e).__name__])
                    raise Unavailable(f"the pool database cannot be opened: {words}"
                                      ) from None
            return self._store

    def nodes(self) -> list[dict[str, Any]]:
        from gatekeeper.nodes.db import LIVE_STATES

        now = self.clock()
        return [{"id": n.id, "label": n.label, "provider": n.provider, "state": n.state,
                 "host": n.host, "port": n.port, "username": n.username,
                 "external_id": n.external_id, "build": n.build, "project": n.project,
                 "job": n.job, "age": round(now - n.state_time), "hold_until": n.hold_until,
                 "hold_reason": n.hold_reason}
                for n in self._db().list_nodes(list(LIVE_STATES))]

    def _keys(self) -> Any:
        from gatekeeper.nodes.devkeys import DevKeyStore

        return DevKeyStore(self._db().engine)

    def autoholds(self) -> list[dict[str, Any]]:
        keys = self._keys().all()
        return [_autohold(a, keys.get(a.id)) for a in self._db().list_autoholds()]

    def add_autohold(self, project: str, job: str, count: int, hold_for: float | None,
                     reason: str, ssh_key: str = "") -> dict[str, Any]:
        ah = self._db().add_autohold(project, job, count, hold_for, reason, self.clock())
        if ssh_key:
            self._keys().set(ah.id, ssh_key)
        return _autohold(ah, ssh_key or None)

    def delete_autohold(self, ah_id: int) -> bool:
        self._keys().delete(ah_id)
        return bool(self._db().delete_autohold(ah_id))


def _autohold(a: Any, key: str | None) -> dict[str, Any]:
    # The public key's comment says whose it is; the key itself is not repeated.
    whose = key.split(" ", 2)[2] if key and key.count(" ") >= 2 else ("yes" if key else "")
    return {"id": a.id, "project": a.project, "job": a.job, "count": a.count,
            "hold_for": a.hold_for, "reason": a.reason, "created": a.created,
            "developer_key": whose}
