"""Alembic environment: always run from ``gatekeeper.store.migrate`` with an
open connection (no alembic.ini, no URL here)."""

from alembic import context

from gatekeeper.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
