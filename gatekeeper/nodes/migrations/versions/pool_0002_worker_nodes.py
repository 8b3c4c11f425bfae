"""Static nodes of workers (``worker.nodes``): their claims and holds, so
``gatekeeper nodes`` shows and manages them like the pool's nodes, and a
held node stays held across a worker restart.

Revision ID: pool_0002
Revises: pool_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "pool_0002"
down_revision = "pool_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_nodes",
        sa.Column("worker", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("labels", sa.String(1024), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_time", sa.Float, nullable=False),
        sa.Column("build", sa.String(255), nullable=False),
        sa.Column("hold_until", sa.Float, nullable=True),
        sa.Column("hold_reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_nodes")
