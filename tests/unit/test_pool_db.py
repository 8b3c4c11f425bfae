"""Node/image records: atomic transitions on real SQLite."""

from __future__ import annotations

import threading

import pytest

from gatekeeper.nodes.db import BUILDING, IN_USE, READY, USED, PoolStore
from gatekeeper.store.db import create_engine, redact_url


@pytest.fixture
def store(tmp_path):
    return PoolStore(create_engine(f"sqlite:///{tmp_path}/pool.db"))


def test_node_lifecycle(store):
    n = store.create_node("deb", "a", now=1.0, image="debian", key_ref="/k")
    assert n.state == BUILDING and n.id > 0
    assert store.transition(n.id, [BUILDING], READY, 2.0, host="127.0.0.1", port=2222)
    assert not store.transition(n.id, [BUILDING], READY, 3.0)
    got = store.get_node(n.id)
    assert (got.state, got.state_time, got.port) == (READY, 2.0, 2222)
    assert [x.id for x in store.list_nodes([READY], label="deb")] == [n.id]
    assert store.list_nodes([READY], provider="other") == []
    with pytest.raises(TypeError):
        store.create_node("deb", "a", now=1.0, bogus=1)


def test_concurrent_claims_never_share_a_node(store):
    for _ in range(5):
        n = store.create_node("deb", "a", now=1.0)
        store.transition(n.id, [BUILDING], READY, 1.0)
    got: list[int] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        n = store.claim_ready("deb", f"b{i}", 2.0)
        if n:
            with lock:
                got.append(n.id)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 5 and len(set(got)) == 5
    assert {n.state for n in store.list_nodes()} == {IN_USE}


def test_images_versioned(store):
    a = store.create_image("p", "debian", 1.0)
    b = store.create_image("p", "debian", 2.0)
    c = store.create_image("q", "debian", 2.0)
    assert (a.version, b.version, c.version) == (1, 2, 1)
    assert store.transition_image(a.id, [BUILDING], READY, 3.0, external_id="img-1")
    assert store.get_image(a.id).external_id == "img-1"
    assert [i.id for i in store.list_images([READY], provider="p")] == [a.id]


def test_autohold_consumed(store):
    store.add_autohold("proj", "job", 2, 3600.0, "debug", 1.0)
    assert store.consume_autohold("proj", "other") is None
    assert store.consume_autohold("proj", "job").hold_for == 3600.0
    assert store.list_autoholds()[0].count == 1
    assert store.consume_autohold("proj", "job") is not None
    assert store.list_autoholds() == []
    assert store.consume_autohold("proj", "job") is None


def test_restart_keeps_records(tmp_path):
    url = f"sqlite:///{tmp_path}/sub/pool.db"
    s1 = PoolStore(create_engine(url))
    n = s1.create_node("deb", "a", now=1.0)
    s1.transition(n.id, [BUILDING], USED, 2.0)
    s2 = PoolStore(create_engine(url))
    assert s2.get_node(n.id).state == USED


def test_redact_url():
    assert "s3cret" not in redact_url("postgresql://u:s3cret@db/x")


def test_schema_and_claim_compile_for_postgresql():
    # No PostgreSQL server in the unit tests: at least the DDL and the claim
    # statement must compile for its dialect (no SQLite-only constructs).
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    from gatekeeper.nodes.db import Base, claim_statement

    pg = postgresql.dialect()
    for table in Base.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=pg))
        # SERIAL keys; FLOAT without precision is float8 in PostgreSQL (epoch
        # seconds keep their fraction).
        assert "id SERIAL NOT NULL" in ddl and "created FLOAT NOT NULL" in ddl
    sql = str(claim_statement("deb", "b1", 1.0).compile(dialect=pg))
    assert "RETURNING pool_nodes.id" in sql and "LIMIT" in sql
    assert "WHERE pool_nodes.id = (SELECT" in sql
