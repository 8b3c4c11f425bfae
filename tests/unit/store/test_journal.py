"""What a turn writes: only what changed, and after a failed transaction, all of it again."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from alembic import command

from gatekeeper.store import history, schema
from gatekeeper.store.migrate import alembic_config, open_store
from tests.unit.store.support import StoredHarness, restart


@contextlib.contextmanager
def statements(engine):
    """The SQL the engine runs meanwhile (first words of each)."""
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, many):
        seen.append(" ".join(statement.split()[:4]))

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def changes_of(h: StoredHarness):
    return {i.display_name: [c.number for c in i.build_set.changes] for i in h.items()}


def builds_history(h: StoredHarness):
    return sorted(((b.job, b.change, b.attempt, b.result) for b in history.builds(h.db, limit=500)),
                  key=str)


def test_a_build_set_changes_are_written_once_and_a_turn_sets_only_what_changed(store):
    h = StoredHarness(store)
    changes = [h.source.add("org/project") for _ in range(3)]
    for c in changes:
        h.approve(c)
    h.release("project-merge")
    on = changes_of(h)
    assert on == {"1,1": [1], "2,1": [1, 2], "3,1": [1, 2, 3]}
    with statements(store) as seen:
        h.release("project-test1", changes[2])  # not the head: nothing else moves
    assert not [s for s in seen if "sched_item_changes" in s]
    assert "UPDATE sched_items SET data=?" in seen or \
        "UPDATE sched_items SET data=%(data)s::VARCHAR" in seen
    build_updates = [s for s in seen if s.startswith("UPDATE builds SET")]
    assert build_updates and all("buildset" not in s and "job" not in s for s in build_updates)
    restart(h)
    assert changes_of(h) == on


def test_a_reset_rewrites_the_changes_behind_and_restart_finds_them(store):
    h = StoredHarness(store)
    changes = [h.source.add("org/project") for _ in range(3)]
    for c in changes:
        h.approve(c)
    h.release("project-merge")
    h.fail("project-test1", changes[0])  # the items behind are tested again without it
    h.release("project-merge")
    on = changes_of(h)
    assert on["2,1"] == [2] and on["3,1"] == [2, 3], on
    restart(h)
    assert changes_of(h) == on
    h.release_all()
    assert h.merged == [2, 3]


def test_rows_an_older_release_wrote_are_read_and_move_on_the_next_write(db_url):
    engine = open_store(db_url)
    h = StoredHarness(engine)
    changes = [h.source.add("org/project") for _ in range(2)]
    for c in changes:
        h.approve(c)
    h.release("project-merge")
    on = changes_of(h)
    cfg = alembic_config()
    with engine.begin() as conn:  # back to 0002: the changes inside the item rows
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "sched_item_changes" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    h.db = open_store(db_url)  # upgraded again: an empty changes table
    restart(h)
    assert changes_of(h) == on
    with h.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.item_changes)) \
            .scalar() == 2  # both items were written by the restart's turn
    h.release_all()
    assert h.merged == [1, 2]
    h.db.dispose()


def test_a_turn_whose_transaction_failed_is_written_whole_by_the_next(store):
    h = StoredHarness(store)
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.release("project-merge", a)
    failed = []

    def fail_once(conn, cursor, statement, params, context, many):
        if not failed and statement.startswith("UPDATE builds"):
            failed.append(statement)
            raise RuntimeError("the database went away")

    sa.event.listen(store, "before_cursor_execute", fail_once)
    # One turn: b enqueued (a new row), a's merge build finishes (a history row
    # changes), ... the transaction fails after some of it was executed.
    h.approve(b)
    h.release("project-test1", a)
    assert failed
    sa.event.remove(store, "before_cursor_execute", fail_once)
    h.clock.advance(1)
    h.release("project-merge", b)  # the next turns write it all
    on, queue, builds = changes_of(h), h.queue(), builds_history(h)
    restart(h)
    assert h.queue() == queue == ["1,1", "2,1"]
    assert changes_of(h) == on
    finished = {(job, change, result) for job, change, _, result in builds_history(h)
                if result == "SUCCESS"}
    assert {("project-test1", 1, "SUCCESS"), ("project-merge", 2, "SUCCESS")} <= finished
    assert len(builds_history(h)) >= len(builds)
    h.release_all()
    assert h.merged == [1, 2]


def test_items_that_left_keep_their_changes_row_as_long_as_their_own(store, monkeypatch):
    from gatekeeper.store import journal

    monkeypatch.setattr(journal, "FINISHED_KEPT", 2)
    h = StoredHarness(store)
    for _ in range(5):
        h.approve(h.source.add("org/project"))
    h.release_all()
    assert h.merged == [1, 2, 3, 4, 5]
    with store.connect() as conn:
        items = set(conn.execute(sa.select(schema.items.c.uuid)).scalars())
        with_changes = set(conn.execute(sa.select(schema.item_changes.c.item)).scalars())
    assert len(items) == 2 and with_changes == items
