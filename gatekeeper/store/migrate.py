"""Open a database and bring a component's schema up to date (Alembic).

Two schemas may share one database, each with its own migrations and version
table: the scheduler's (``gatekeeper/store/migrations``) and the node pool's
(``gatekeeper/nodes/migrations``, see ``gatekeeper.nodes.db``). Run on every
open, programmatically (no alembic.ini). A database this release cannot vouch
for is refused with one clear error and left exactly as it is: a file that is
not a database (or is corrupt), a schema revision this release does not know
(written by a newer Gatekeeper), or a schema's tables without a recorded
revision (the pool's own from before its migrations are adopted instead,
when their shape is one an earlier release made).

An upgrade runs in one transaction that first takes a lock (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), so two
processes opening an old database upgrade it once, one after the other, and
a kill -9 during an upgrade leaves the database as it was (SQLite's DDL is
transactional, but Python's sqlite3 would not open a transaction for it)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from gatekeeper.errors import UserError
from gatekeeper.store.db import create_engine
from gatekeeper.store.schema import VERSION_TABLE, metadata

log = logging.getLogger("gatekeeper.store.migrate")
# Alembic announces every plugin and its context at INFO on each start: noise.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).with_name("migrations")
_UPGRADE_LOCK = 0x67746D67  # "gtmg": PostgreSQL advisory lock key of upgrades


@dataclass(frozen=True)
class Schema:
    """One component's tables and the migrations that make them."""

    name: str  # "scheduler", "pool": in messages
    migrations: Path
    version_table: str
    metadata: sa.MetaData
    # Tables of the schema but no version table: None refuses; else a check
    # of the inspected database returning why it cannot be adopted (None: it
    # can, and the first revision completes it).
    adopt: Callable[[sa.engine.Inspector], str | None] | None = None


SCHEDULER = Schema("scheduler", MIGRATIONS, VERSION_TABLE, metadata)


def alembic_config(schema: Schema = SCHEDULER) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(schema.migrations))
    return cfg


@functools.cache
def _script(schema: Schema) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(schema))


def head_revision(schema: Schema = SCHEDULER) -> str:
    head = _script(schema).get_current_head()
    assert head is not None
    return head


def open_store(url: str) -> Engine:
    """An Engine on ``url`` whose scheduler schema is at this release's head."""
    engine = create_engine(url)
    try:
        upgrade(engine)
    except UserError:
        engine.dispose()
        raise
    return engine


def upgrade(engine: Engine, schema: Schema = SCHEDULER) -> None:
    where = f"database {engine.url.render_as_string(hide_password=True)}"
    head = head_revision(schema)
    try:
        with engine.connect() as conn:
            if _checked_revision(conn, where, schema) == head:
                return
        with engine.connect() as conn:
            _lock_for_upgrade(conn)
            current = _checked_revision(conn, where, schema)  # another may have done it
            if current == head:
                conn.rollback()
                return
            cfg = alembic_config(schema)
            cfg.attributes["connection"] = conn
            log.info("%s: %s schema %s -> %s", where, schema.name, current or "empty", head)
            command.upgrade(cfg, "head")
            conn.commit()
    except UserError:
        raise
    except sa.exc.DBAPIError as e:
        first = str(e.orig or e).strip().splitlines()[0]
        raise UserError(f"{where}: cannot be used: {first} (is it a database? "
                        "nothing was changed)") from None


def _lock_for_upgrade(conn: Connection) -> None:
    """Start the upgrade's transaction holding the lock that serializes upgrades."""
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's transaction has begun; sqlite3 sends no BEGIN before
        # DDL, so we do (a write lock at once: busy_timeout waits for another).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})


def _checked_revision(conn: Connection, where: str, schema: Schema = SCHEDULER) -> str | None:
    """The schema revision of the database, after refusing what we must not touch."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())  # fails on a file that is no database
    ctx = MigrationContext.configure(conn, opts={"version_table": schema.version_table})
    heads = ctx.get_current_heads()
    if not heads:
        ours = names & set(schema.metadata.tables)
        if ours:
            why = ("not made by this Gatekeeper" if schema.adopt is None
                   else schema.adopt(inspector))
            if why is not None:
                raise UserError(f"{where}: has {schema.name} tables ({', '.join(sorted(ours))}) "
                                f"but no {schema.version_table}: {why}; nothing was changed")
        return None
    for rev in heads:
        try:
            known = _script(schema).get_revision(rev)
        except Exception:
            known = None
        if known is None:
            raise UserError(f"{where}: {schema.name} schema revision {rev!r} is unknown to this "
                            f"Gatekeeper (made by a newer release?); upgrade Gatekeeper or use "
                            "another database; nothing was changed")
    if len(heads) > 1:
        raise UserError(f"{where}: several {schema.name} schema revisions {sorted(heads)}; "
                        "nothing was changed")
    return heads[0]
