"""Item changes: a build set's changes in a row of their own, written once.

Rows written before (their changes inside ``sched_items.data``) are read as
they are and move to this table the next time their item is written.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sched_item_changes",
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("buildset", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    # Back into the item rows, where the older release reads them.
    conn = op.get_bind()
    items = sa.table("sched_items", sa.column("uuid"), sa.column("data"))
    changes = sa.table("sched_item_changes", sa.column("item"), sa.column("buildset"),
                       sa.column("data"))
    for row in conn.execute(sa.select(changes)).all():
        text = conn.execute(sa.select(items.c.data).where(items.c.uuid == row.item)).scalar()
        if text is None:
            continue
        d = json.loads(text)
        if "changes" not in d and d["build_set"]["uuid"] == row.buildset:
            d["changes"] = json.loads(row.data)
            conn.execute(sa.update(items).where(items.c.uuid == row.item)
                         .values(data=json.dumps(d, separators=(",", ":"))))
    op.drop_table("sched_item_changes")
