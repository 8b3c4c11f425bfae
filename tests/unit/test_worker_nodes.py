"""The static node claimer: atomic claims, blocking, holds with expiry."""

from __future__ import annotations

import threading

import pytest

from gatekeeper.worker.nodes import NodeClaimError, StaticNode, StaticNodeClaimer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def nodes(n: int, labels: tuple[str, ...] = ("small",)) -> list[StaticNode]:
    return [StaticNode(name=f"n{i}", host="127.0.0.1", port=2200 + i, labels=labels,
                       private_key="/k", host_key="ssh-ed25519 AAAA", workdir=f"/w{i}")
            for i in range(n)]


def test_claim_gives_a_lease_with_node_details() -> None:
    c = StaticNodeClaimer(nodes(1))
    lease = c.claim("small", "b1", 1)
    assert (lease.node_id, lease.label, lease.port, lease.host_key) == ("n0", "small", 2200,
                                                                        "ssh-ed25519 AAAA")
    assert lease.extra == {"workdir": "/w0"} and lease.provider == "static"
    assert "/k" not in repr(lease)  # the key path is not in reprs (logs)


def test_unknown_label_fails_at_once() -> None:
    with pytest.raises(NodeClaimError, match="no static node has label"):
        StaticNodeClaimer(nodes(1)).claim("big", "b1", 3600)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ValueError):
        StaticNodeClaimer(nodes(1) + nodes(1))


def test_claim_times_out_when_all_busy_and_wakes_on_release() -> None:
    c = StaticNodeClaimer(nodes(1))
    lease = c.claim("small", "b1", 1)
    with pytest.raises(NodeClaimError, match="no free node"):
        c.claim("small", "b2", 0.01)
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(c.claim("small", "b3", 30).node_id))
    t.start()
    c.release(lease, "used")
    t.join(30)
    assert got == ["n0"]


def test_concurrent_claims_never_share_a_node() -> None:
    c = StaticNodeClaimer(nodes(3))
    in_use: set[str] = set()
    lock = threading.Lock()
    errors: list[str] = []
    claims = [0]

    def worker(i: int) -> None:
        for j in range(30):
            lease = c.claim("small", f"b{i}-{j}", 30)
            with lock:
                if lease.node_id in in_use:
                    errors.append(f"{lease.node_id} given twice")
                in_use.add(lease.node_id)
                claims[0] += 1
            with lock:
                in_use.discard(lease.node_id)
            c.release(lease, "used")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and claims[0] == 240
    assert all(s["build"] is None for s in c.state())


def test_hold_expires_on_the_clock_and_unhold() -> None:
    clock = FakeClock()
    c = StaticNodeClaimer(nodes(2), clock=clock)
    lease = c.claim("small", "b1", 1)
    c.claim("small", "busy", 1)  # n1 stays busy: only n0 can come back
    c.release(lease, "hold", hold_for=3600, reason="failed build")
    st = c.state()[0]
    assert st["held_until"] == 4600.0 and st["hold_reason"] == "failed build"
    with pytest.raises(NodeClaimError):
        c.claim("small", "b2", 0.01)
    clock.now += 3600
    lease2 = c.claim("small", "b2", 0.01)
    assert lease2.node_id == "n0"
    c.release(lease2, "hold", hold_for=None)  # held until an operator releases it
    assert c.state()[0]["held_until"] == float("inf")
    assert c.unhold("n0") and not c.unhold("n0")
    assert c.claim("small", "b3", 0.01).node_id == "n0"


def test_release_checks_state_and_ignores_unclaimed() -> None:
    c = StaticNodeClaimer(nodes(1))
    lease = c.claim("small", "b1", 1)
    with pytest.raises(ValueError):
        c.release(lease, "deleted")
    c.release(lease, "used")
    c.release(lease, "used")  # twice: logged, harmless
    assert c.state()[0]["build"] is None
    assert c.labels == frozenset({"small"})


def test_builds_never_hold_the_last_node_of_a_label() -> None:
    """One static node, a failed build: the node goes back into service."""
    c = StaticNodeClaimer(nodes(1))
    lease = c.claim("small", "b1", 1)
    c.release(lease, "hold", hold_for=3600, reason="failed build")
    assert c.state()[0]["held_until"] is None
    assert c.claim("small", "b2", 0.01).node_id == "n0"


@pytest.mark.parametrize("count, max_held, held", [(2, 0.5, 1), (3, 0.5, 1), (4, 0.5, 2),
                                                   (4, 1.0, 3), (4, 0.0, 0), (5, 0.25, 1)])
def test_hold_cap_per_label(count: int, max_held: float, held: int) -> None:
    c = StaticNodeClaimer(nodes(count), max_held=max_held)
    leases = [c.claim("small", f"b{i}", 1) for i in range(count)]
    for lease in leases:  # every build failed
        c.release(lease, "hold", hold_for=3600, reason="failed")
    assert sum(1 for st in c.state() if st["held_until"] is not None) == held


def test_hold_cap_counts_every_label_of_the_node() -> None:
    c = StaticNodeClaimer(nodes(2, ("small",)) + [
        StaticNode(name="big", host="127.0.0.1", labels=("small", "big"))])
    lease = c.claim("big", "b1", 1)
    c.release(lease, "hold", hold_for=3600)  # the only 'big' node: not held
    assert all(st["held_until"] is None for st in c.state())


# -- records in the pool's database (gatekeeper nodes shows and manages them) --

@pytest.fixture
def engine(tmp_path):
    from gatekeeper.nodes.db import PoolStore
    from gatekeeper.store.db import create_engine

    e = create_engine(f"sqlite:///{tmp_path}/gk.sqlite")
    PoolStore(e)  # the pool schema, worker_nodes included
    yield e
    e.dispose()


def recorded(engine) -> dict[str, tuple[str, str, float | None, str]]:
    from gatekeeper.worker.noderecords import list_worker_nodes

    return {w.ident: (w.state, w.build, w.hold_until, w.hold_reason)
            for w in list_worker_nodes(engine)}


def test_claims_releases_and_holds_are_recorded(engine) -> None:
    from gatekeeper.worker.noderecords import WorkerNodeRecords

    clock = FakeClock()
    c = StaticNodeClaimer(nodes(3), clock=clock, records=WorkerNodeRecords(engine, "w1"))
    assert recorded(engine) == {f"w1/n{i}": ("ready", "", None, "") for i in range(3)}
    lease = c.claim("small", "b1", 1)
    assert recorded(engine)["w1/n0"] == ("in-use", "b1", None, "")
    c.release(lease, "hold", hold_for=60, reason="build b1 failed")
    assert recorded(engine)["w1/n0"] == ("hold", "", 1060.0, "build b1 failed")
    clock.now += 61
    c.state()  # the hold expires
    assert recorded(engine)["w1/n0"] == ("ready", "", None, "")
    second = c.claim("small", "b2", 1)
    c.release(second, "hold", hold_for=None, reason="forever")
    assert recorded(engine)["w1/n0"] == ("hold", "", None, "forever")  # NULL: until released


def test_an_operator_holds_and_releases_a_worker_node(engine) -> None:
    from gatekeeper.model.states import NodeState
    from gatekeeper.worker.noderecords import WorkerNodeRecords, operator_transition

    c = StaticNodeClaimer(nodes(2), clock=FakeClock(), records=WorkerNodeRecords(engine, "w1"))
    assert operator_transition(engine, "w1/n0", [NodeState.READY], NodeState.HOLD, 1.0,
                               hold_reason="look at its disk")
    held = {s["name"]: s["hold_reason"] for s in c.state() if s["held_until"] is not None}
    assert held == {"n0": "look at its disk"}
    assert c.claim("small", "b1", 1).node_id == "n1"
    with pytest.raises(NodeClaimError):
        c.claim("small", "b2", 0.01)  # n0 held, n1 busy
    assert operator_transition(engine, "w1/n0", [NodeState.HOLD], NodeState.READY, 2.0)
    assert c.claim("small", "b2", 1).node_id == "n0"


def test_holds_survive_a_worker_restart(engine) -> None:
    from gatekeeper.worker.noderecords import WorkerNodeRecords

    clock = FakeClock()
    c = StaticNodeClaimer(nodes(3), clock=clock, records=WorkerNodeRecords(engine, "w1"))
    c.release(c.claim("small", "b1", 1), "hold", hold_for=3600, reason="debug me")
    c.claim("small", "b2", 1)  # n1 in use when the worker dies
    other = StaticNodeClaimer(nodes(1), clock=clock, records=WorkerNodeRecords(engine, "w2"))
    restarted = StaticNodeClaimer(nodes(2), clock=clock,  # n2 left the config
                                  records=WorkerNodeRecords(engine, "w1"))
    assert recorded(engine) == {"w1/n0": ("hold", "", 4600.0, "debug me"),
                                "w1/n1": ("ready", "", None, ""),
                                "w2/n0": ("ready", "", None, "")}
    assert restarted.claim("small", "b3", 1).node_id == "n1"
    assert other.claim("small", "b4", 1).node_id == "n0"  # another worker's n0 is its own


def test_a_failing_database_does_not_stop_builds(engine, caplog) -> None:
    import sqlalchemy as sa

    from gatekeeper.worker.noderecords import WorkerNodeRecords

    c = StaticNodeClaimer(nodes(2), clock=FakeClock(), records=WorkerNodeRecords(engine, "w1"))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE worker_nodes"))
    lease = c.claim("small", "b1", 1)
    c.release(lease, "hold", hold_for=60, reason="r")
    assert [s["name"] for s in c.state() if s["held_until"] is not None] == ["n0"]
    assert "could not" in caplog.text
