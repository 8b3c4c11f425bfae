"""The node pool's schema under Alembic (``gatekeeper/nodes/migrations``).

The pool's tables may share a database with the scheduler's (``pool.database``
defaults to ``database.url``), so they have their own migrations and version
table; ``gatekeeper.store.migrate`` runs both kinds the same way.

Releases before these migrations made the pool's tables with
``metadata.create_all``, which never changed a table once made: such a
database has no version table and one of the shapes below (``workdir`` came
later; ``pool_autohold_keys`` was made on first use). It is adopted:
revision pool_0001 keeps its tables and rows and adds what is missing. Any
other shape is refused, untouched."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.nodes.db import Base
from gatekeeper.store import migrate

VERSION_TABLE = "gatekeeper_pool_schema_version"

# The columns create_all made, per table, and those an older release lacked.
LEGACY_COLUMNS: dict[str, frozenset[str]] = {
    "pool_nodes": frozenset({
        "id", "label", "provider", "image", "image_id", "external_id", "host", "port",
        "username", "key_ref", "host_key", "state", "state_time", "hold_until", "hold_reason",
        "build", "project", "job", "static_name", "workdir", "created"}),
    "pool_images": frozenset({
        "id", "provider", "image", "version", "external_id", "template_id", "state",
        "state_time", "created"}),
    "pool_autoholds": frozenset({
        "id", "project", "job", "count", "hold_for", "reason", "created"}),
    "pool_autohold_keys": frozenset({"autohold", "ssh_key"}),
}
LATE_COLUMNS: dict[str, frozenset[str]] = {"pool_nodes": frozenset({"workdir"})}


def adoptable(inspector: sa.engine.Inspector) -> str | None:
    """None if the pool tables in the inspected database are ones an earlier
    release made with create_all; else why not."""
    for table in sorted(set(inspector.get_table_names()) & set(Base.metadata.tables)):
        if table not in LEGACY_COLUMNS:  # made by a migration: its version is missing
            return f"{table} was never made without a version: not made by this Gatekeeper"
        have = {c["name"] for c in inspector.get_columns(table)}
        extra = have - LEGACY_COLUMNS[table]
        missing = LEGACY_COLUMNS[table] - LATE_COLUMNS.get(table, frozenset()) - have
        if extra or missing:
            parts = ([f"unknown columns {', '.join(sorted(extra))}"] if extra else []) + \
                    ([f"no columns {', '.join(sorted(missing))}"] if missing else [])
            return f"{table} has {' and '.join(parts)}: not made by this Gatekeeper"
    return None


POOL = migrate.Schema("pool", Path(__file__).with_name("migrations"), VERSION_TABLE,
                      Base.metadata, adopt=adoptable)


def upgrade(engine: Engine) -> None:
    """The pool's schema on ``engine`` at this release's head, or UserError."""
    migrate.upgrade(engine, POOL)


def head_revision() -> str:
    return migrate.head_revision(POOL)
