"""Mail outbox: digest mails of smtp reporters, sent after their turn commits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sched_mail_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("sender", sa.String(255), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_sched_mail_outbox_sent", "sched_mail_outbox", ["sent", "id"])


def downgrade() -> None:
    op.drop_index("ix_sched_mail_outbox_sent", table_name="sched_mail_outbox")
    op.drop_table("sched_mail_outbox")
