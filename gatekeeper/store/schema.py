"""The scheduler's tables (SQLAlchemy Core), in the database the pool uses.

The migrations in ``gatekeeper/store/migrations`` create exactly these
(a test compares them); change both together and add a revision.

- ``sched_*``: the scheduler's state, one row per queue item and per queue,
  rewritten when the Door reports a change to it (see ``journal.py``), the
  changes each item's build set is tested on (written once per build set), the
  report outbox, meta values (last event time, ...) and decisions about
  changes that never became items;
- ``buildsets`` / ``builds``: build history, like Zuul's SQL reporter;
- ``sched_status``: the status document of the last scheduler turn, for a
  web process that must not wait for the scheduler."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

VERSION_TABLE = "gatekeeper_schema_version"

items = sa.Table(
    "sched_items", metadata,
    sa.Column("uuid", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("queue", sa.String(255), nullable=False),
    # 0: in a queue; else the order in which it left (for ``explain``).
    sa.Column("finished", sa.BigInteger, nullable=False, default=0),
    sa.Column("data", sa.Text, nullable=False),  # JSON, see serial.py
    sa.Index("ix_sched_items_finished", "finished"),
)

# The changes an item's build set is tested on (every change ahead, then its
# own): set once per build set and up to the queue's length, so written only
# when the build set gets them, not with every rewrite of the item's row.
item_changes = sa.Table(
    "sched_item_changes", metadata,
    sa.Column("item", sa.String(64), primary_key=True),
    sa.Column("buildset", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON, see serial.changes_json
)

queues = sa.Table(
    "sched_queues", metadata,
    sa.Column("pipeline", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: window, items in order, ...
)

meta = sa.Table(
    "sched_meta", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
)

# The Gerrit change events acted on in the last minutes, which catch-up after a
# restart must not deliver again: a row added with the turn that handled each
# (rewriting them all per event cost 245 ms a turn at 3,000 events).
events = sa.Table(
    "sched_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),  # the event's timestamp
    sa.Column("data", sa.Text, nullable=False),  # JSON, see scheduler.event_to_dict
    sa.Index("ix_sched_events_time", "time"),
)

decisions = sa.Table(
    "sched_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("change", sa.String(255), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_sched_decisions_pipeline", "pipeline", "id"),
)

outbox = sa.Table(
    "sched_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False, unique=True),  # the decision
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("change", sa.Integer, nullable=False),
    sa.Column("patchset", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON {label: value}
    sa.Column("submit", sa.Boolean, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    # Sends begun: > 0 and not sent means Gerrit may have applied it.
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("sent", sa.Float, nullable=True),  # when Gerrit answered
    sa.Column("ok", sa.Boolean, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_sched_outbox_sent", "sent", "id"),
)

# Mail reports (smtp: in a reporter), written with the turn that decided them
# and sent by the mail thread (gatekeeper/mail/outbox.py).
mail_outbox = sa.Table(
    "sched_mail_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False, unique=True),  # item, build set, point
    sa.Column("recipients", sa.Text, nullable=False),  # JSON list of addresses
    sa.Column("sender", sa.String(255), nullable=True),  # None: smtp.from
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("sent", sa.Float, nullable=True),  # when it was delivered or given up
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_sched_mail_outbox_sent", "sent", "id"),
)

status = sa.Table(
    "sched_status", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the status.json document
)

buildsets = sa.Table(
    "buildsets", metadata,
    sa.Column("uuid", sa.String(64), primary_key=True),
    sa.Column("item", sa.String(64), nullable=False),  # queue item uuid
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False, default=""),
    sa.Column("change", sa.Integer, nullable=True),  # None for a ref
    sa.Column("patchset", sa.Integer, nullable=True),
    sa.Column("ref", sa.String(1024), nullable=False, default=""),
    sa.Column("newrev", sa.String(64), nullable=False, default=""),
    sa.Column("result", sa.String(64), nullable=True),
    sa.Column("message", sa.Text, nullable=False, default=""),
    # JSON list of the changes merged for it, in order (those ahead, then its own).
    sa.Column("changes", sa.Text, nullable=False, default="[]"),
    sa.Column("base_item", sa.String(64), nullable=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("completed", sa.Float, nullable=True),
    sa.Index("ix_buildsets_change", "change", "patchset"),
    sa.Index("ix_buildsets_created", "created"),
    sa.Index("ix_buildsets_project", "project", "created"),
)

builds = sa.Table(
    "builds", metadata,
    sa.Column("uuid", sa.String(64), primary_key=True),
    sa.Column("buildset", sa.String(64), nullable=False),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False, default=""),
    sa.Column("change", sa.Integer, nullable=True),
    sa.Column("patchset", sa.Integer, nullable=True),
    sa.Column("ref", sa.String(1024), nullable=False, default=""),
    sa.Column("job", sa.String(255), nullable=False),
    sa.Column("result", sa.String(64), nullable=True),  # None: running
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("voting", sa.Boolean, nullable=False, default=True),
    sa.Column("launch_time", sa.Float, nullable=True),
    sa.Column("start_time", sa.Float, nullable=True),
    sa.Column("end_time", sa.Float, nullable=True),
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("provider", sa.String(255), nullable=True),
    sa.Column("worker", sa.String(255), nullable=True),
    sa.Column("log_url", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Index("ix_builds_job", "job", "end_time"),
    sa.Index("ix_builds_change", "change", "patchset"),
    sa.Index("ix_builds_buildset", "buildset"),
    sa.Index("ix_builds_end", "end_time"),
)
