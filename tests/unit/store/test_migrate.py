"""Schema migrations: run on open, idempotent, refuse what they cannot vouch for."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gatekeeper.errors import UserError
from gatekeeper.store.migrate import head_revision, open_store
from gatekeeper.store.schema import VERSION_TABLE, metadata


def test_open_creates_the_schema_at_head_and_again_changes_nothing(db_url):
    engine = open_store(db_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}).get_current_heads() == (head_revision(),)
        # The migrations make exactly what schema.py declares.
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if d[0] != "remove_table"] == []
        conn.execute(sa.insert(metadata.tables["sched_meta"]).values(key="k", value="1"))
        conn.commit()
    engine.dispose()
    engine = open_store(db_url)  # a second start keeps the data
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM sched_meta")).scalar() == "1"
    engine.dispose()


def test_sqlite_is_in_wal_mode(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path}/g.sqlite")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_newer_schema_is_refused_and_left_alone(db_url):
    engine = open_store(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
        conn.execute(sa.insert(metadata.tables["sched_meta"]).values(key="k", value="1"))
    engine.dispose()
    with pytest.raises(UserError, match=r"schema revision '9999_future' is unknown.*"
                                        r"nothing was changed") as e:
        open_store(db_url)
    assert "\n" not in str(e.value)
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() \
            == "9999_future"
        assert conn.execute(sa.text("SELECT value FROM sched_meta")).scalar() == "1"
    engine.dispose()


def test_scheduler_tables_without_a_version_are_refused(tmp_path):
    path = tmp_path / "g.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sched_items (uuid TEXT)")
    with pytest.raises(UserError, match="has scheduler tables .*sched_items.* no "
                                        + VERSION_TABLE):
        open_store(f"sqlite:///{path}")


def test_a_file_that_is_no_database_is_refused_untouched(tmp_path):
    path = tmp_path / "g.sqlite"
    junk = b"this is not sqlite\x00" * 500
    path.write_bytes(junk)
    with pytest.raises(UserError, match=r"g.sqlite: cannot be used: file is not a database"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == junk
    assert not (tmp_path / "g.sqlite-wal").exists() or \
        (tmp_path / "g.sqlite-wal").stat().st_size == 0


def test_a_corrupt_database_is_refused_untouched(tmp_path):
    path = tmp_path / "g.sqlite"
    open_store(f"sqlite:///{path}").dispose()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, after the header
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="cannot be used: .*malformed"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == bytes(data)
