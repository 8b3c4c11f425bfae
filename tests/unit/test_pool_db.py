"""Node/image records: atomic transitions on real SQLite and, marked
integration, on a real PostgreSQL 15 (tests/fixtures/postgres.py)."""

from __future__ import annotations

import threading

import pytest

from gatekeeper.model.states import ImageState, NodeState
from gatekeeper.nodes.db import PoolStore
from gatekeeper.store.db import create_engine, redact_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_db_url")
    return f"sqlite:///{tmp_path}/sub/pool.db"  # the parent is created


@pytest.fixture
def store(db_url):
    engine = create_engine(db_url)
    yield PoolStore(engine)
    engine.dispose()


def test_node_lifecycle(store):
    n = store.create_node("deb", "a", now=1.0, image="debian", private_key="/k")
    assert n.state == NodeState.BUILDING and n.id > 0
    assert store.transition(n.id, [NodeState.BUILDING], NodeState.READY, 2.0, host="127.0.0.1", port=2222)
    assert not store.transition(n.id, [NodeState.BUILDING], NodeState.READY, 3.0)
    got = store.get_node(n.id)
    assert (got.state, got.state_time, got.port) == (NodeState.READY, 2.0, 2222)
    assert [x.id for x in store.list_nodes([NodeState.READY], label="deb")] == [n.id]
    assert store.list_nodes([NodeState.READY], provider="other") == []
    with pytest.raises(TypeError):
        store.create_node("deb", "a", now=1.0, bogus=1)


def test_concurrent_claims_never_share_a_node(store):
    for _ in range(5):
        n = store.create_node("deb", "a", now=1.0)
        store.transition(n.id, [NodeState.BUILDING], NodeState.READY, 1.0)
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
    assert {n.state for n in store.list_nodes()} == {NodeState.IN_USE}


def test_every_node_transition_is_conditional(store):
    # Each move the pool, the service and the CLI make, from the right state
    # only; the wrong from-state leaves the record as it was.
    moves = [(NodeState.BUILDING, NodeState.READY), (NodeState.READY, NodeState.IN_USE), (NodeState.IN_USE, NodeState.HOLD), (NodeState.HOLD, NodeState.USED),
             (NodeState.USED, NodeState.DELETING), (NodeState.DELETING, NodeState.DELETED)]
    n = store.create_node("deb", "a", now=1.0)
    for i, (src, dst) in enumerate(moves, start=2):
        wrong = [s for s in (NodeState.BUILDING, NodeState.READY, NodeState.IN_USE, NodeState.HOLD, NodeState.USED, NodeState.DELETING) if s != src]
        assert not store.transition(n.id, wrong, dst, float(i))
        assert store.get_node(n.id).state == src
        assert store.transition(n.id, [src], dst, float(i))
    assert store.get_node(n.id).state == NodeState.DELETED
    assert store.list_nodes([NodeState.DELETED]) == [store.get_node(n.id)]
    other = [(NodeState.BUILDING, NodeState.FAILED), (NodeState.FAILED, NodeState.HOLD), (NodeState.HOLD, NodeState.DELETING)]
    m = store.create_node("deb", "a", now=1.0)
    for src, dst in other:
        assert store.transition(m.id, [src], dst, 5.0)
    assert not store.transition(m.id, [NodeState.READY, NodeState.IN_USE], NodeState.DELETED, 6.0)
    assert store.get_node(m.id).state == NodeState.DELETING


def test_values_round_trip_exactly(store):
    # Epoch seconds keep their fraction (float8, not float4); free text longer
    # than any VARCHAR bound (the CLI passes an operator's reason as typed).
    t = 1763900000.123456
    reason = "why " * 600
    n = store.create_node("deb", "a", now=t, host_key="ssh-ed25519 " + "A" * 3000)
    assert store.transition(n.id, [NodeState.BUILDING], NodeState.READY, t + 0.5, host="127.0.0.1", port=2200)
    assert store.claim_ready("deb", "b1", t + 1.25, project="org/p", job="j").id == n.id
    assert store.transition(n.id, [NodeState.IN_USE], NodeState.HOLD, t + 2, hold_until=t + 3600.75,
                            hold_reason=reason)
    got = store.get_node(n.id)
    assert (got.created, got.state_time, got.hold_until) == (t, t + 2, t + 3600.75)
    assert got.hold_reason == reason and got.host_key.endswith("A" * 3000)
    assert (got.build, got.project, got.job, got.port) == ("b1", "org/p", "j", 2200)
    ah = store.add_autohold("org/p", "j", 1, None, reason, t)
    assert (ah.reason, ah.hold_for, ah.created) == (reason, None, t)


def test_claim_takes_the_longest_ready_of_its_label(store):
    ids = {}
    for t, label in ((3.0, "deb"), (1.0, "deb"), (2.0, "deb"), (0.5, "other")):
        n = store.create_node(label, "a", now=0.0)
        store.transition(n.id, [NodeState.BUILDING], NodeState.READY, t)
        ids[(label, t)] = n.id
    order = [store.claim_ready("deb", f"b{i}", 9.0).id for i in range(3)]
    assert order == [ids[("deb", 1.0)], ids[("deb", 2.0)], ids[("deb", 3.0)]]
    assert store.claim_ready("deb", "b9", 9.0) is None
    assert store.get_node(ids[("other", 0.5)]).state == NodeState.READY


def test_contended_claims_hand_out_every_node_once(store):
    # Every claimer wants the same oldest node at the same moment: each node
    # must go to exactly one build, and no claim may come back empty while
    # ready nodes remain (a lost race moves on to the next node).
    nodes, threads, per_thread = 24, 8, 3
    for _ in range(nodes):
        n = store.create_node("deb", "a", now=1.0)
        store.transition(n.id, [NodeState.BUILDING], NodeState.READY, 1.0)
    got: dict[int, str] = {}
    dup: list[int] = []
    empty: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def claimer(i: int) -> None:
        start.wait(10)
        for k in range(per_thread):
            build = f"b{i}-{k}"
            n = store.claim_ready("deb", build, 2.0)
            with lock:
                if n is None:
                    empty.append(build)
                elif n.id in got:
                    dup.append(n.id)
                else:
                    got[n.id] = build

    ts = [threading.Thread(target=claimer, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not any(t.is_alive() for t in ts)
    assert (dup, empty, len(got)) == ([], [], nodes)
    assert {n.id: n.build for n in store.list_nodes([NodeState.IN_USE])} == got


def test_concurrent_autohold_consumption_counts_down_once(store):
    ah = store.add_autohold("org/p", "j", 3, 60.0, "flaky", 1.0)
    used: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def consume() -> None:
        start.wait(10)
        got = store.consume_autohold("org/p", "j")
        if got is not None:
            with lock:
                used.append(got.id)

    ts = [threading.Thread(target=consume) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert used == [ah.id] * 3
    assert store.list_autoholds() == []


def test_images_versioned(store):
    a = store.create_image("p", "debian", 1.0)
    b = store.create_image("p", "debian", 2.0)
    c = store.create_image("q", "debian", 2.0)
    assert (a.version, b.version, c.version) == (1, 2, 1)
    assert store.transition_image(a.id, [ImageState.BUILDING], ImageState.READY, 3.0, external_id="img-1")
    assert store.get_image(a.id).external_id == "img-1"
    assert [i.id for i in store.list_images([ImageState.READY], provider="p")] == [a.id]
    assert not store.transition_image(b.id, [ImageState.READY], ImageState.DELETING, 4.0)
    assert store.transition_image(b.id, [ImageState.BUILDING], ImageState.FAILED, 4.0)
    for src, dst in ((ImageState.READY, ImageState.DELETING), (ImageState.DELETING, ImageState.DELETED)):
        assert store.transition_image(a.id, [src], dst, 5.0)
    assert [i.id for i in store.list_images([ImageState.DELETED, ImageState.FAILED])] == [a.id, b.id]


def test_autohold_consumed(store):
    store.add_autohold("proj", "job", 2, 3600.0, "debug", 1.0)
    assert store.consume_autohold("proj", "other") is None
    assert store.consume_autohold("proj", "job").hold_for == 3600.0
    assert store.list_autoholds()[0].count == 1
    assert store.consume_autohold("proj", "job") is not None
    assert store.list_autoholds() == []
    assert store.consume_autohold("proj", "job") is None


def test_restart_keeps_records(db_url):
    e1 = create_engine(db_url)
    s1 = PoolStore(e1)
    n = s1.create_node("deb", "a", now=1.0)
    s1.transition(n.id, [NodeState.BUILDING], NodeState.USED, 2.0)
    s1.add_autohold("org/p", "j", 2, None, "keep", 1.0)
    img = s1.create_image("p", "debian", 1.0)
    e1.dispose()  # the first process is gone
    e2 = create_engine(db_url)
    s2 = PoolStore(e2)  # creating the schema again is a no-op
    assert s2.get_node(n.id).state == NodeState.USED
    assert [(a.project, a.count, a.hold_for) for a in s2.list_autoholds()] == [
        ("org/p", 2, None)]
    assert s2.create_image("p", "debian", 2.0).version == img.version + 1
    assert s2.create_node("deb", "a", now=3.0).id > n.id
    e2.dispose()


def test_redact_url():
    assert "s3cret" not in redact_url("postgresql://u:s3cret@db/x")


def test_schema_and_claim_compile_for_postgresql():
    # No PostgreSQL server in the unit tests: at least the DDL and the claim
    # statement must compile for its dialect (no SQLite-only constructs).
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateTable

    from gatekeeper.nodes.db import Base, claim_statement

    pg = postgresql.dialect()
    for table in Base.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=pg))
        if table.name == "pool_autohold_keys":  # keyed by its request's id
            assert "ssh_key TEXT NOT NULL" in ddl
            continue
        if table.name == "worker_nodes":  # keyed by worker and node name
            assert "PRIMARY KEY (worker, name)" in ddl and "state_time FLOAT NOT NULL" in ddl
            continue
        # SERIAL keys; FLOAT without precision is float8 in PostgreSQL (epoch
        # seconds keep their fraction).
        assert "id SERIAL NOT NULL" in ddl and "created FLOAT NOT NULL" in ddl
    sql = str(claim_statement("deb", "b1", 1.0).compile(dialect=pg))
    assert "RETURNING pool_nodes.id" in sql and "LIMIT" in sql
    assert "WHERE pool_nodes.id = (SELECT" in sql
    # Concurrent claims pick different nodes on PostgreSQL; SQLite has no
    # row locks and must not be handed the clause.
    assert "FOR UPDATE SKIP LOCKED)" in sql
    lite = str(claim_statement("deb", "b1", 1.0).compile(dialect=sqlite.dialect()))
    assert "RETURNING" in lite and "FOR UPDATE" not in lite
