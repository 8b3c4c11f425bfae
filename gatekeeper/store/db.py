"""Database engine helper shared by every component that persists state.

SQLite is the default (a file next to the service's state); PostgreSQL works
with the same models because they use only portable types and constructs."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("gatekeeper.store.db")


def create_engine(url: str) -> Engine:
    """An Engine for ``url`` (``sqlite:///path``, ``postgresql://...``).

    For SQLite the parent directory is created, connections may be shared
    between threads, and the database runs in WAL mode with a busy timeout so
    a CLI command and the service can use it at the same time."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    db = parsed.database or ""
    if db and db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, future=True, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        if db and db != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no corruption on a crash, a commit costs no fsync
            # (only a power loss can drop the last transactions).
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def redact_url(url: str) -> str:
    """``url`` with any password hidden, for logs."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
