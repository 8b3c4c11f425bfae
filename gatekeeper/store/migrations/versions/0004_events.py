"""Handled events: a row per Gerrit event acted on, instead of all of them
rewritten in ``sched_meta``'s "events" value with every turn that handled one.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_meta = sa.table("sched_meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    events = op.create_table(
        "sched_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_sched_events_time", "sched_events", ["time"])
    conn = op.get_bind()
    text = conn.execute(sa.select(_meta.c.value).where(_meta.c.key == "events")).scalar()
    if text is None:
        return
    value = json.loads(text)
    recent = value.pop("recent", None) or []
    if recent:
        op.bulk_insert(events, [{"time": float(e.get("timestamp") or 0.0),
                                 "data": json.dumps(e, separators=(",", ":"))}
                                for e in recent])
    conn.execute(sa.update(_meta).where(_meta.c.key == "events")
                 .values(value=json.dumps(value, separators=(",", ":"))))


def downgrade() -> None:
    conn = op.get_bind()
    events = sa.table("sched_events", sa.column("id"), sa.column("data"))
    recent = [json.loads(r.data) for r in conn.execute(
        sa.select(events.c.data).order_by(events.c.id))]
    text = conn.execute(sa.select(_meta.c.value).where(_meta.c.key == "events")).scalar()
    if text is not None:
        value = json.loads(text)
        value["recent"] = recent
        conn.execute(sa.update(_meta).where(_meta.c.key == "events")
                     .values(value=json.dumps(value, separators=(",", ":"))))
    op.drop_index("ix_sched_events_time", "sched_events")
    op.drop_table("sched_events")
