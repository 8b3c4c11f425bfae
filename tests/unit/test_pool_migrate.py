"""The pool's schema under Alembic: made and upgraded on open, beside the
scheduler's in one database, older create_all databases adopted, anything
else refused untouched; on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from gatekeeper.errors import UserError
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.db import Base, PoolStore
from gatekeeper.nodes.devkeys import DevKeyStore
from gatekeeper.nodes.migrate import VERSION_TABLE, head_revision
from gatekeeper.store import migrate
from gatekeeper.store.db import create_engine
from gatekeeper.store.schema import VERSION_TABLE as SCHED_VERSION_TABLE
from gatekeeper.store.schema import metadata as sched_metadata

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_db_url")
    return f"sqlite:///{tmp_path}/gatekeeper.sqlite"


def revision(engine, table=VERSION_TABLE):
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": table}
                                          ).get_current_heads()


def differences(engine, metadata):
    with engine.connect() as conn:
        return [d for d in compare_metadata(MigrationContext.configure(conn), metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table")]


def legacy_schema(engine, workdir: bool, indexes: bool = True) -> None:
    """The tables as create_all made them before the migrations (optionally
    from before ``workdir``, or killed before the indexes): VARCHAR(1024)
    reasons, no developer-key table."""
    m = sa.MetaData()
    for t in Base.metadata.sorted_tables:
        if t.name in ("pool_autohold_keys", "worker_nodes"):  # never made by create_all
            continue
        cols = []
        for c in t.columns:
            if c.name == "workdir" and not workdir:
                continue
            kind = sa.String(1024) if c.name in ("hold_reason", "reason") else c.type
            cols.append(sa.Column(c.name, kind, primary_key=c.primary_key,
                                  nullable=c.nullable, index=c.index and indexes))
        sa.Table(t.name, m, *cols)
    m.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO pool_nodes (label, provider, image, port, username, key_ref, state, "
            "state_time, hold_reason, build, project, job, created) VALUES ('deb', 'a', '', 22, "
            "'gk', '/k', 'hold', 1.0, 'keep me', '', '', '', 1.0)"))
        conn.execute(sa.text(
            "INSERT INTO pool_autoholds (project, job, count, reason, created) "
            "VALUES ('org/p', 'j', 2, 'r', 1.0)"))


def test_open_makes_the_schema_at_head_and_again_keeps_the_data(db_url):
    engine = create_engine(db_url)
    store = PoolStore(engine)
    assert revision(engine) == (head_revision(),)
    assert differences(engine, Base.metadata) == []  # the migrations make what db.py says
    node = store.create_node("deb", "a", now=1.0, workdir="/w")
    engine.dispose()
    engine = create_engine(db_url)
    assert PoolStore(engine).get_node(node.id).workdir == "/w"
    engine.dispose()


def test_shares_a_database_with_the_scheduler(db_url):
    engine = migrate.open_store(db_url)
    PoolStore(engine)
    assert revision(engine, SCHED_VERSION_TABLE) == (migrate.head_revision(),)
    assert revision(engine) == (head_revision(),)
    both = sa.MetaData()
    for t in [*sched_metadata.tables.values(), *Base.metadata.tables.values()]:
        t.to_metadata(both)
    assert differences(engine, both) == []
    engine.dispose()
    migrate.open_store(db_url).dispose()  # the scheduler accepts the pool's tables beside it


@pytest.mark.parametrize("workdir", [True, False])
def test_a_create_all_database_is_adopted_with_its_rows(db_url, workdir):
    engine = create_engine(db_url)
    legacy_schema(engine, workdir)
    store = PoolStore(engine)
    assert revision(engine) == (head_revision(),)
    [n] = store.list_nodes()
    assert (n.state, n.hold_reason, n.private_key, n.workdir) == (NodeState.HOLD, "keep me",
                                                                   "/k", None)
    [ah] = store.list_autoholds()
    DevKeyStore(engine).set(ah.id, "ssh-ed25519 AAAA")  # the table came with the adoption
    store.update_node(n.id, hold_reason="x" * 5000)  # TEXT now, also on PostgreSQL
    diff = differences(engine, Base.metadata)
    if engine.dialect.name == "sqlite":  # VARCHAR(1024) left: SQLite stores TEXT either way
        diff = [d for d in diff if not (isinstance(d, list) and d[0][0] == "modify_type")]
    assert diff == []
    engine.dispose()


def test_an_adoption_killed_midway_leaves_the_database_as_it_was(db_url, monkeypatch):
    engine = create_engine(db_url)
    legacy_schema(engine, workdir=False, indexes=False)
    calls = []

    def dies(self, *a, **kw):  # after the add_column and an index
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(self, *a, **kw)

    real = Operations.create_index
    monkeypatch.setattr(Operations, "create_index", dies)
    engine = create_engine(db_url)
    with pytest.raises(KeyboardInterrupt):
        PoolStore(engine)
    monkeypatch.undo()
    names = set(sa.inspect(engine).get_table_names())
    assert "pool_autohold_keys" not in names and VERSION_TABLE not in names
    assert "workdir" not in {c["name"] for c in sa.inspect(engine).get_columns("pool_nodes")}
    assert sa.inspect(engine).get_indexes("pool_nodes") == []
    assert PoolStore(engine).list_nodes()[0].hold_reason == "keep me"
    assert differences(engine, Base.metadata) == [] or engine.dialect.name == "sqlite"
    engine.dispose()


def test_two_processes_opening_an_old_database_upgrade_it_once(db_url):
    legacy_schema(create_engine(db_url), workdir=False)
    engines = [create_engine(db_url) for _ in range(2)]
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_(engine):
        go.wait()
        try:
            PoolStore(engine)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert revision(engines[0]) == (head_revision(),)
    for e in engines:
        e.dispose()


def test_a_newer_schema_is_refused_and_left_alone(db_url):
    engine = create_engine(db_url)
    PoolStore(engine).create_node("deb", "a", now=1.0)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'pool_9999'"))
    with pytest.raises(UserError, match=r"pool schema revision 'pool_9999' is unknown to this "
                                        r"Gatekeeper.*nothing was changed") as e:
        PoolStore(engine)
    assert "\n" not in str(e.value)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() \
            == "pool_9999"
        assert conn.execute(sa.text("SELECT count(*) FROM pool_nodes")).scalar() == 1
    engine.dispose()


def test_pool_tables_of_another_shape_are_refused_untouched(tmp_path):
    path = tmp_path / "g.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE pool_nodes (id INTEGER PRIMARY KEY, colour TEXT)")
    with pytest.raises(UserError, match=r"has pool tables \(pool_nodes\) but no "
                                        f"{VERSION_TABLE}: pool_nodes has unknown columns "
                                        r"colour and no columns .*label.*nothing was changed"):
        PoolStore(create_engine(f"sqlite:///{path}"))
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["pool_nodes"]


def test_a_migrated_table_without_a_version_is_refused(tmp_path):
    path = tmp_path / "g.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE worker_nodes (worker TEXT)")
    with pytest.raises(UserError, match="worker_nodes was never made without a version"):
        PoolStore(create_engine(f"sqlite:///{path}"))


def test_a_file_that_is_no_database_is_refused_untouched(tmp_path):
    path = tmp_path / "g.sqlite"
    junk = b"this is not sqlite\x00" * 500
    path.write_bytes(junk)
    with pytest.raises(UserError, match=r"g.sqlite: cannot be used: file is not a database"):
        PoolStore(create_engine(f"sqlite:///{path}"))
    assert path.read_bytes() == junk
