"""The pool's nodes, images, autohold requests and their developer keys.

Creates what is missing and completes the tables a release before the pool's
migrations made with create_all (``gatekeeper.nodes.migrate``, which checked
their shape first): the ``workdir`` column, the indexes, and, on PostgreSQL,
TEXT for the free-text reasons (they were VARCHAR(1024)). Rows are kept.

Revision ID: pool_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "pool_0001"
down_revision = None
branch_labels = None
depends_on = None

INDEXES = {
    "pool_nodes": ("label", "provider", "state"),
    "pool_images": ("provider", "image", "state"),
}


def tables() -> list[sa.Table]:
    m = sa.MetaData()
    return [
        sa.Table(
            "pool_nodes", m,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("label", sa.String(255), nullable=False),
            sa.Column("provider", sa.String(255), nullable=False),
            sa.Column("image", sa.String(255), nullable=False),
            sa.Column("image_id", sa.Integer, nullable=True),
            sa.Column("external_id", sa.String(255), nullable=True),
            sa.Column("host", sa.String(255), nullable=True),
            sa.Column("port", sa.Integer, nullable=False),
            sa.Column("username", sa.String(255), nullable=False),
            sa.Column("key_ref", sa.String(1024), nullable=False),
            sa.Column("host_key", sa.Text, nullable=True),
            sa.Column("state", sa.String(32), nullable=False),
            sa.Column("state_time", sa.Float, nullable=False),
            sa.Column("hold_until", sa.Float, nullable=True),
            sa.Column("hold_reason", sa.Text, nullable=False),
            sa.Column("build", sa.String(255), nullable=False),
            sa.Column("project", sa.String(255), nullable=False),
            sa.Column("job", sa.String(255), nullable=False),
            sa.Column("static_name", sa.String(255), nullable=True),
            sa.Column("workdir", sa.String(1024), nullable=True),
            sa.Column("created", sa.Float, nullable=False),
        ),
        sa.Table(
            "pool_images", m,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("provider", sa.String(255), nullable=False),
            sa.Column("image", sa.String(255), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("external_id", sa.String(255), nullable=True),
            sa.Column("template_id", sa.String(255), nullable=True),
            sa.Column("state", sa.String(32), nullable=False),
            sa.Column("state_time", sa.Float, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
        ),
        sa.Table(
            "pool_autoholds", m,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("project", sa.String(255), nullable=False),
            sa.Column("job", sa.String(255), nullable=False),
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("hold_for", sa.Float, nullable=True),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
        ),
        sa.Table(
            "pool_autohold_keys", m,
            sa.Column("autohold", sa.Integer, primary_key=True),
            sa.Column("ssh_key", sa.Text, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in tables():
        if table.name not in existing:
            table.create(bind)
            have_indexes: set[str] = set()
        else:
            have = {c["name"]: c for c in inspector.get_columns(table.name)}
            for col in table.columns:
                if col.name not in have:  # only workdir: the shape was checked
                    op.add_column(table.name, sa.Column(col.name, col.type, nullable=True))
                elif (bind.dialect.name != "sqlite" and isinstance(col.type, sa.Text)
                      and not isinstance(have[col.name]["type"], sa.Text)):
                    op.alter_column(table.name, col.name, type_=sa.Text,
                                    existing_nullable=col.nullable)
            have_indexes = {ix["name"] for ix in inspector.get_indexes(table.name)
                            if ix["name"]}
        for column in INDEXES.get(table.name, ()):
            name = f"ix_{table.name}_{column}"
            if name not in have_indexes:
                op.create_index(name, table.name, [column])


def downgrade() -> None:
    for table in reversed(tables()):
        op.drop_table(table.name)
