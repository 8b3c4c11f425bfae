"""Handled Gerrit events (against catch-up repeats after a restart): a row each,
added with the turn that handled it, not all of them rewritten per event."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from gatekeeper.model.events import EventApproval, TriggerEvent
from gatekeeper.scheduler import EVENTS_KEPT, event_from_dict, event_to_dict
from gatekeeper.store import schema
from gatekeeper.store.migrate import alembic_config, open_store
from tests.unit.store.support import StoredHarness, restart
from tests.unit.store.test_journal import statements


def rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.events)).scalar()


def meta_events(engine) -> dict:
    with engine.connect() as conn:
        return json.loads(conn.execute(sa.select(schema.meta.c.value)
                                       .where(schema.meta.c.key == "events")).scalar())


def keys(events) -> list:
    return [(e.type, e.change_number, e.patchset, e.timestamp, e.approvals) for e in events]


def test_encoding_round_trips():
    for ev in [TriggerEvent("comment-added", project="p", change_number=3, patchset=2,
                            comment="recheck", timestamp=5.5, account_username="bob",
                            approvals=(EventApproval("Workflow", 1, old_value=0),)),
               TriggerEvent("patchset-created", project="p", change_number=1, patchset=1,
                            timestamp=1.0, synthetic=True),
               TriggerEvent("ref-updated", project="p", ref="refs/heads/master",
                            oldrev="a" * 40, newrev="b" * 40, timestamp=2.0)]:
        d = event_to_dict(ev)
        assert None not in d.values()
        assert event_from_dict(json.loads(json.dumps(d))) == ev


def test_each_event_adds_a_row_and_restart_reads_them(store):
    h = StoredHarness(store)
    changes = [h.source.add("org/project") for _ in range(3)]
    h.approve(changes[0])
    h.approve(changes[1])
    before = rows(store)
    assert before == len(h.sched.handled_events()) > 0
    with statements(store) as seen:
        h.approve(changes[2])
    added = rows(store) - before
    assert added == 1  # the one comment-added
    assert [s for s in seen if "sched_events" in s] == ["INSERT INTO sched_events (time,"]
    assert "recent" not in meta_events(store)  # the meta value stays small
    handled = keys(h.sched.handled_events())
    restart(h)
    assert keys(h.sched.handled_events()) == handled


def test_events_older_than_kept_are_deleted(store):
    h = StoredHarness(store)
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    first = rows(store)
    h.clock.advance(EVENTS_KEPT + 60)
    h.approve(b)
    assert rows(store) == 1 and first >= 1
    assert [e.change_number for e in h.sched.handled_events()] == [2]
    restart(h)
    assert [e.change_number for e in h.sched.handled_events()] == [2]


def test_an_older_release_events_move_to_rows_and_back(db_url):
    engine = open_store(db_url)
    h = StoredHarness(engine)
    for c in [h.source.add("org/project") for _ in range(2)]:
        h.approve(c)
    handled = keys(h.sched.handled_events())
    cfg = alembic_config()
    with engine.begin() as conn:  # back to 0003: the events inside the meta value
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert "sched_events" not in sa.inspect(engine).get_table_names()
    assert len(meta_events(engine)["recent"]) == len(handled)
    engine.dispose()
    h.db = open_store(db_url)  # upgraded: the events are rows again
    assert "recent" not in meta_events(h.db) and rows(h.db) == len(handled)
    restart(h)
    assert keys(h.sched.handled_events()) == handled
    h.db.dispose()
