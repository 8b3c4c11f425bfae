"""Open the scheduler's database and bring its schema up to date (Alembic).

Run on every start, programmatically (no alembic.ini). A database this
release cannot vouch for is refused with one clear error and left exactly as
it is: a file that is not a database (or is corrupt), a schema revision this
release does not know (written by a newer Gatekeeper), or scheduler tables
without a recorded revision."""

from __future__ import annotations

import logging
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


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
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


def upgrade(engine: Engine) -> None:
    where = f"database {engine.url.render_as_string(hide_password=True)}"
    try:
        with engine.connect() as conn:
            current = _checked_revision(conn, where)
            head = head_revision()
            if current == head:
                return
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            log.info("%s: schema %s -> %s", where, current or "empty", head)
            command.upgrade(cfg, "head")
            conn.commit()
    except UserError:
        raise
    except sa.exc.DBAPIError as e:
        first = str(e.orig or e).strip().splitlines()[0]
        raise UserError(f"{where}: cannot be used: {first} (is it a database? "
                        "nothing was changed)") from None


def _checked_revision(conn: Connection, where: str) -> str | None:
    """The schema revision of the database, after refusing what we must not touch."""
    names = set(sa.inspect(conn).get_table_names())  # fails on a file that is no database
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    heads = ctx.get_current_heads()
    if not heads:
        ours = names & set(metadata.tables)
        if ours:
            raise UserError(f"{where}: has scheduler tables ({', '.join(sorted(ours))}) but no "
                            f"{VERSION_TABLE}: not made by this Gatekeeper; nothing was changed")
        return None
    script = ScriptDirectory.from_config(alembic_config())
    for rev in heads:
        try:
            known = script.get_revision(rev)
        except Exception:
            known = None
        if known is None:
            raise UserError(f"{where}: schema revision {rev!r} is unknown to this Gatekeeper "
                            f"(made by a newer release?); upgrade Gatekeeper or use another "
                            "database; nothing was changed")
    if len(heads) > 1:
        raise UserError(f"{where}: several schema revisions {sorted(heads)}; nothing was changed")
    return heads[0]
