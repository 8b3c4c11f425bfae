"""Writes the status document of the last scheduler turn to the database.

Its own thread with a one-slot mailbox (the newest document wins): encoding
the document of a long queue takes far longer than a turn, and neither the
scheduler nor a web process reading ``history.status_snapshot`` waits for it."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from sqlalchemy.engine import Engine

log = logging.getLogger("gatekeeper.store.snapshot")


class SnapshotWriter:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._next: tuple[float, dict[str, Any]] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0

    def put(self, now: float, doc: dict[str, Any]) -> None:
        with self._lock:
            self._next = (now, doc)
        self._wake.set()

    def start(self) -> SnapshotWriter:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gatekeeper-status",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def write_pending(self) -> bool:
        from gatekeeper.store.journal import put_status

        with self._lock:
            nxt, self._next = self._next, None
        if nxt is None:
            return False
        text = json.dumps(nxt[1], separators=(",", ":"))
        with self.engine.begin() as conn:
            put_status(conn, nxt[0], text)
        self.written += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                self.write_pending()
            except Exception:
                log.exception("writing the status snapshot failed")
        try:
            self.write_pending()  # the last one before a clean stop
        except Exception:
            log.exception("writing the status snapshot failed")
