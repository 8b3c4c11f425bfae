"""Alembic environment of the pool's schema: always run from
``gatekeeper.store.migrate`` with an open connection (no alembic.ini, no URL)."""

from alembic import context

from gatekeeper.nodes.migrate import POOL

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=POOL.metadata,
                  version_table=POOL.version_table, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
