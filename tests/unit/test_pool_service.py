"""The pool service over the fake libcloud cloud (real threads, SQLite; the
claim/release/autohold paths also on a real PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.fakecloud import FakeCloud
from gatekeeper.nodes.runtime import Health
from gatekeeper.nodes.service import PoolService
from tests.fixtures.pool import (
    POOL_BACKENDS,
    FakeReadyCheck,
    cloud_provider,
    pool_config,
    wait_for,
)


def ready(store, label="deb"):
    return [n for n in store.list_nodes([NodeState.READY]) if n.label == label]


def start(pool_services, store, clouds, providers, **kw):
    svc = PoolService(store, pool_config(providers, **kw), ready_check=FakeReadyCheck(clouds))
    pool_services.append(svc.start())
    return svc


def claim_sync(svc, label="deb", build="b1", timeout=10.0, **kw):
    done = threading.Event()
    out = {}

    def reply(lease, err):
        out["lease"], out["err"] = lease, err
        done.set()

    svc.claim(label, build, timeout, reply, **kw)
    assert done.wait(timeout + 5)
    return out["lease"], out["err"]


def test_min_ready_reached_and_restored_after_claims(pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=2)
    wait_for(lambda: len(ready(pool_store)) == 2, what="2 ready")
    leases = [claim_sync(svc, build=f"b{i}")[0] for i in range(2)]
    assert len({lease["node_id"] for lease in leases}) == 2
    assert leases[0]["provider"] == "c1" and leases[0]["host"] == "127.0.0.1"
    wait_for(lambda: len(ready(pool_store)) == 2, what="min-ready restored")
    assert {n.state for n in pool_store.list_nodes()} == {NodeState.READY, NodeState.IN_USE}


@pytest.mark.parametrize("pool_store", POOL_BACKENDS, indirect=True)
def test_release_used_deletes_and_hold_keeps(pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=2)
    wait_for(lambda: len(ready(pool_store)) == 2)
    a, _ = claim_sync(svc, build="ba")
    b, _ = claim_sync(svc, build="bb")
    assert svc.release(a["node_id"], "used", build="other") != ""  # not its build
    assert svc.release(a["node_id"], "used", build="ba") == ""
    assert svc.release(b["node_id"], "hold", hold_for=3600, reason="tests failed") == ""
    assert svc.release(b["node_id"], "used") != ""  # not in use any more
    wait_for(lambda: pool_store.get_node(int(a["node_id"])).state == NodeState.DELETED)
    held = pool_store.get_node(int(b["node_id"]))
    assert held.state == NodeState.HOLD and held.hold_reason == "tests failed"
    gone = pool_store.get_node(int(a["node_id"])).external_id
    assert gone not in {s.id for s in cloud.live_servers()}


def test_claim_waits_for_a_node_and_demand_launches(pool_store, pool_services):
    cloud = FakeCloud("c1", boot_delay=0.3)
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=0)
    lease, err = claim_sync(svc, timeout=15)
    assert err == "" and lease is not None
    # The address is the one the server has once RUNNING (unknown at create).
    assert lease["host"] == "127.0.0.1" and cloud.alive("127.0.0.1", lease["port"])
    assert pool_store.get_node(int(lease["node_id"])).state == NodeState.IN_USE


def test_claim_timeout_and_unknown_label(pool_store, pool_services):
    cloud = FakeCloud("c1", max_instances=0)
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=0)
    lease, err = claim_sync(svc, timeout=0.2)
    assert lease is None and "in time" in err
    lease, err = claim_sync(svc, label="nope")
    assert lease is None and "unknown label" in err


def test_one_provider_failing_other_serves(pool_store, pool_services):
    bad = FakeCloud("bad", create_fail_rate=1.0)
    good = FakeCloud("good")
    provs = [cloud_provider(bad), cloud_provider(good)]
    svc = start(pool_services, pool_store, [bad, good], provs, min_ready=3)
    wait_for(lambda: len(ready(pool_store)) == 3)
    assert {n.provider for n in ready(pool_store)} == {"good"}
    assert provs[0].health.failures >= 1
    wait_for(lambda: 'gatekeeper_pool_nodes{label="deb",provider="good",state="ready"} 3'
             in svc.metrics.registry.render(), what="gauges updated")
    assert 'gatekeeper_pool_provider_healthy{provider="bad"} 0' in svc.metrics.registry.render()


def test_quota_error_sends_launches_elsewhere_and_max_servers_holds(pool_store, pool_services):
    small = FakeCloud("small", max_instances=1)  # the cloud's quota is below max-servers
    big = FakeCloud("big")
    provs = [cloud_provider(small, max_servers=5), cloud_provider(big, max_servers=3)]
    svc = start(pool_services, pool_store, [small, big], provs, min_ready=4)
    wait_for(lambda: len(ready(pool_store)) == 4)
    assert len(small.live_servers()) <= 1 and len(big.live_servers()) <= 3
    assert svc.metrics.registry.value(
        "launches_total", {"provider": "small", "label": "deb", "result": "error.quota"}) >= 1


def test_active_but_dead_nodes_never_handed_out(pool_store, pool_services):
    cloud = FakeCloud("c1", dead_rate=0.5, seed=3)
    check = FakeReadyCheck([cloud])
    prov = cloud_provider(cloud, boot_timeout=0.3, launch_retries=5,
                          health=Health(threshold=100))
    svc = PoolService(pool_store, pool_config([prov], min_ready=3),
                      ready_check=check)
    pool_services.append(svc.start())
    wait_for(lambda: len(ready(pool_store)) == 3)
    for i in range(3):
        lease, _ = claim_sync(svc, build=f"b{i}")
        assert cloud.alive("127.0.0.1", lease["port"])
    dead = [s for s in cloud.servers.values() if s.dead]
    assert cloud.created_total > 3 or not dead  # some were dead and replaced


def test_boot_timeout_deletes_and_retries(pool_store, pool_services):
    cloud = FakeCloud("c1", dead_rate=0.5, seed=4)  # seed 4: servers 1 and 2 never boot
    prov = cloud_provider(cloud, boot_timeout=0.2, launch_retries=5)
    prov.health.threshold = 100
    svc = start(pool_services, pool_store, [cloud], [prov], min_ready=1)
    wait_for(lambda: len(ready(pool_store)) == 1, what="a node despite dead servers")
    assert svc.metrics.registry.value(
        "launches_total", {"provider": "c1", "label": "deb", "result": "error.boot-timeout"}) >= 1
    wait_for(lambda: not [s for s in cloud.live_servers() if s.dead], what="dead ones deleted")


def test_boot_timeout_retried_elsewhere(pool_store, pool_services):
    dead = FakeCloud("dead", dead_rate=1.0)
    good = FakeCloud("good")
    provs = [cloud_provider(dead, boot_timeout=0.2, launch_retries=1), cloud_provider(good)]
    start(pool_services, pool_store, [dead, good], provs, min_ready=2)
    wait_for(lambda: len(ready(pool_store)) == 2)
    assert {n.provider for n in ready(pool_store)} == {"good"}
    assert dead.created_total >= 1


def test_max_servers_never_exceeded_under_churn(pool_store, pool_services):
    a = FakeCloud("a", seed=1, create_fail_rate=0.3, delete_fail_rate=0.3)
    b = FakeCloud("b", seed=2, silent_delete_fail_rate=0.3)
    provs = [cloud_provider(a, max_servers=2), cloud_provider(b, max_servers=2)]
    for p in provs:
        p.health.threshold = 100
    svc = start(pool_services, pool_store, [a, b], provs, min_ready=3)
    peak = {"a": 0, "b": 0}
    for i in range(8):
        wait_for(lambda: ready(pool_store), what="a ready node")
        lease, _ = claim_sync(svc, build=f"b{i}")
        svc.release(lease["node_id"], "used")
        for c in (a, b):
            live = [s for s in c.live_servers() if s.deleted_at is None]
            peak[c.name] = max(peak[c.name], len(live))
    assert peak["a"] <= 2 and peak["b"] <= 2


@pytest.mark.parametrize("pool_store", POOL_BACKENDS, indirect=True)
def test_concurrent_claims_never_share(pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud, max_servers=20)],
                min_ready=6)
    wait_for(lambda: len(ready(pool_store)) == 6)
    got = []
    threads = [threading.Thread(target=lambda i=i: got.append(claim_sync(svc, build=f"b{i}")))
               for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [lease["node_id"] for lease, _ in got]
    assert len(ids) == 10 and len(set(ids)) == 10


@pytest.mark.parametrize("pool_store", POOL_BACKENDS, indirect=True)
def test_autohold(pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=2)
    pool_store.add_autohold("org/p", "unit", 1, None, "debug flake", 0.0)
    wait_for(lambda: len(ready(pool_store)) == 2)
    a, _ = claim_sync(svc, build="x", project="org/p", job="unit")
    assert svc.release(a["node_id"], "used", result="FAILURE") == ""
    n = pool_store.get_node(int(a["node_id"]))
    assert n.state == NodeState.HOLD and n.hold_until is None and "debug flake" in n.hold_reason
    wait_for(lambda: len(ready(pool_store)) == 2)
    b, _ = claim_sync(svc, build="y", project="org/p", job="unit")
    svc.release(b["node_id"], "used", result="FAILURE")
    assert pool_store.get_node(int(b["node_id"])).state in (NodeState.USED, NodeState.DELETED, "deleting")


def test_hold_expires_and_node_is_deleted(pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=1)
    wait_for(lambda: ready(pool_store))
    lease, _ = claim_sync(svc)
    wait_for(lambda: ready(pool_store), what="the replacement (the held node is not the last)")
    assert svc.release(lease["node_id"], "hold", hold_for=0.2, reason="debug") == ""
    node = pool_store.get_node(int(lease["node_id"]))
    assert node.state == NodeState.HOLD
    wait_for(lambda: pool_store.get_node(node.id).state == NodeState.DELETED, what="hold expired")
    assert node.external_id not in {s.id for s in cloud.live_servers()}


def test_stuck_launch_taken_off_building(pool_store, pool_services):
    from gatekeeper.nodes.planner import Timeouts
    from gatekeeper.ssh import SshError

    hang = threading.Event()

    def stuck_check(t):  # the ready check hangs (a wedged SSH connection)
        hang.wait(30)
        raise SshError("released")

    cloud = FakeCloud("c1")
    cfg = pool_config([cloud_provider(cloud, boot_timeout=60)], min_ready=1,
                      timeouts=Timeouts(building=0.2, delete_retry=0.1))
    svc = PoolService(pool_store, cfg, ready_check=stuck_check)
    pool_services.append(svc.start())
    try:
        wait_for(lambda: any(n.state == "deleting" for n in pool_store.list_nodes()),
                 what="stuck node taken off building")
    finally:
        hang.set()


def test_provider_outage_mid_run(pool_store, pool_services):
    a, b = FakeCloud("a"), FakeCloud("b")
    provs = [cloud_provider(a, max_servers=2), cloud_provider(b, max_servers=2)]
    svc = start(pool_services, pool_store, [a, b], provs, min_ready=2,
                reap_interval=0.1)
    wait_for(lambda: {n.provider for n in ready(pool_store)} == {"a", "b"})
    a.down = True  # the whole API of cloud a fails from now on
    served = []
    for i in range(4):
        lease, err = claim_sync(svc, build=f"o{i}", timeout=20)
        assert lease is not None, err
        served.append(lease["provider"])
        assert svc.release(lease["node_id"], "used") == ""
    assert served.count("b") >= 3  # a's one ready node, then only b
    stuck = [n for n in pool_store.list_nodes(provider="a") if n.state == "deleting"]
    assert stuck, "a's used node cannot be deleted during the outage"
    a.down = False  # recovery: the delete is retried and verified
    wait_for(lambda: all(pool_store.get_node(n.id).state == NodeState.DELETED for n in stuck))
    assert not [s for s in a.live_servers() if s.id in {n.external_id for n in stuck}]


def test_static_hosts_registered_and_removed(pool_store):
    from gatekeeper.nodes.providers.static import StaticHost, StaticProvider
    from gatekeeper.nodes.runtime import LabelSpec, ProviderRuntime
    from gatekeeper.nodes.service import PoolConfig

    def service(hosts):
        static = StaticProvider("rack", tuple(StaticHost(h, "127.0.0.1", "metal", 22)
                                              for h in hosts))
        cfg = PoolConfig("p", {"rack": ProviderRuntime("rack", "static", static=static)},
                         {"metal": LabelSpec("metal", "", 0)})
        return PoolService(pool_store, cfg)

    service(["m1", "m2"]).register_static()
    nodes = {n.static_name: n for n in pool_store.list_nodes()}
    assert set(nodes) == {"m1", "m2"} and {n.state for n in nodes.values()} == {NodeState.USED}
    pool_store.transition(nodes["m1"].id, [NodeState.USED], NodeState.READY, 1.0)
    pool_store.transition(nodes["m2"].id, [NodeState.USED], NodeState.IN_USE, 1.0)
    service(["m1", "m2"]).register_static()  # a restart: nothing new
    assert len(pool_store.list_nodes()) == 2
    service(["m2"]).register_static()  # m1 removed from the config
    assert pool_store.get_node(nodes["m1"].id).state == NodeState.DELETED
    assert pool_store.get_node(nodes["m2"].id).state == NodeState.IN_USE


def test_a_build_cannot_hold_the_last_node_of_a_label(pool_store, pool_services):
    """min_ready 0: the claim launches the label's only node; a failed build's
    hold would take the label out of service, so the node is used instead.
    An autohold (an operator's explicit request) is not capped."""
    cloud = FakeCloud("c1")
    svc = start(pool_services, pool_store, [cloud], [cloud_provider(cloud)], min_ready=0)
    a, err = claim_sync(svc, build="ba")
    assert not err
    assert svc.release(a["node_id"], "hold", hold_for=3600, reason="tests failed") == ""
    assert pool_store.get_node(int(a["node_id"])).state in (NodeState.USED, NodeState.DELETING, NodeState.DELETED)
    pool_store.add_autohold("org/p", "unit", 1, None, "debug", 0.0)
    b, err = claim_sync(svc, build="bb", project="org/p", job="unit")
    assert not err
    assert svc.release(b["node_id"], "used", result="FAILURE") == ""
    assert pool_store.get_node(int(b["node_id"])).state == NodeState.HOLD
