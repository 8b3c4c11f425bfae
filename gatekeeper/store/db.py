"""Database engine helper shared by every component that persists state.

SQLite is the default (a file next to the service's state); PostgreSQL works
with the same models because they use only portable types and constructs
(the ``postgres`` extra installs its driver, psycopg 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.store.db")


def create_engine(url: str) -> Engine:
    """An Engine for ``url`` (``sqlite:///path``, ``postgresql://...``).

    For SQLite the parent directory is created, connections may be shared
    between threads, and the database runs in WAL mode with a busy timeout so
    a CLI command and the service can use it at the same time.
    ``postgresql://`` (and ``postgres://``) mean psycopg 3: SQLAlchemy would
    pick psycopg2, which Gatekeeper does not install; an explicit driver
    (``postgresql+psycopg2://``) is used as given."""
    parsed = postgres_driver(sa.engine.make_url(url))
    if parsed.get_backend_name() != "sqlite":
        log.debug("engine for %s", parsed.render_as_string(hide_password=True))
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as e:  # the driver is an optional extra
            raise UserError(f"database {parsed.render_as_string(hide_password=True)}: "
                            f"driver module {e.name!r} is not installed "
                            "(pip install 'gatekeeper[postgres]' for psycopg)") from None
        except sa.exc.NoSuchModuleError:
            raise UserError(f"database {parsed.render_as_string(hide_password=True)}: "
                            f"unknown database kind {parsed.drivername!r}") from None
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


def postgres_driver(url: sa.engine.URL) -> sa.engine.URL:
    """``url`` with psycopg 3 as the driver when it names PostgreSQL without one."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def redact_url(url: str) -> str:
    """``url`` with any password hidden, for logs."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
