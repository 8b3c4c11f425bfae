"""Scheduler state, report outbox, build history, status snapshot.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sched_items",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("finished", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_sched_items_finished", "sched_items", ["finished"])
    op.create_table(
        "sched_queues",
        sa.Column("pipeline", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "sched_meta",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "sched_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("change", sa.String(255), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_sched_decisions_pipeline", "sched_decisions", ["pipeline", "id"])
    op.create_table(
        "sched_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("change", sa.Integer, nullable=False),
        sa.Column("patchset", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("submit", sa.Boolean, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent", sa.Float, nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_sched_outbox_sent", "sched_outbox", ["sent", "id"])
    op.create_table(
        "sched_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "buildsets",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("change", sa.Integer, nullable=True),
        sa.Column("patchset", sa.Integer, nullable=True),
        sa.Column("ref", sa.String(1024), nullable=False),
        sa.Column("newrev", sa.String(64), nullable=False),
        sa.Column("result", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("base_item", sa.String(64), nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("completed", sa.Float, nullable=True),
    )
    op.create_index("ix_buildsets_change", "buildsets", ["change", "patchset"])
    op.create_index("ix_buildsets_created", "buildsets", ["created"])
    op.create_index("ix_buildsets_project", "buildsets", ["project", "created"])
    op.create_table(
        "builds",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("buildset", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("change", sa.Integer, nullable=True),
        sa.Column("patchset", sa.Integer, nullable=True),
        sa.Column("ref", sa.String(1024), nullable=False),
        sa.Column("job", sa.String(255), nullable=False),
        sa.Column("result", sa.String(64), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("voting", sa.Boolean, nullable=False),
        sa.Column("launch_time", sa.Float, nullable=True),
        sa.Column("start_time", sa.Float, nullable=True),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("provider", sa.String(255), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("log_url", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_index("ix_builds_job", "builds", ["job", "end_time"])
    op.create_index("ix_builds_change", "builds", ["change", "patchset"])
    op.create_index("ix_builds_buildset", "builds", ["buildset"])
    op.create_index("ix_builds_end", "builds", ["end_time"])


def downgrade() -> None:
    for table in ("builds", "buildsets", "sched_status", "sched_outbox", "sched_decisions",
                  "sched_meta", "sched_queues", "sched_items"):
        op.drop_table(table)
