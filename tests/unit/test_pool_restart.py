"""Restart safety and the leak reaper (fake cloud, real SQLite, threads; the
restart reconcile also on a real PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from libcloud.compute.providers import get_driver

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.fakecloud import PROVIDER_NAME, FakeCloud
from gatekeeper.nodes.providers import META_IMAGE, META_NODE, META_POOL
from gatekeeper.nodes.service import PoolService
from tests.fixtures.pool import (
    POOL_BACKENDS,
    FakeReadyCheck,
    cloud_provider,
    pool_config,
    wait_for,
)


def boot(cloud: FakeCloud, meta: dict[str, str]) -> str:
    """A server created straight through libcloud (as a crashed pool left it)."""
    drv = get_driver(PROVIDER_NAME)(cloud.name)
    image = drv.get_image("img-base-debian")
    size = drv.list_sizes()[0]
    return drv.create_node(name="x", size=size, image=image, ex_metadata=meta).id


@pytest.mark.parametrize("pool_store", POOL_BACKENDS, indirect=True)
def test_restart_with_nodes_in_every_state(pool_store, pool_services):
    cloud = FakeCloud("c1")
    prov = cloud_provider(cloud)
    cfg = pool_config([prov], min_ready=2, reap_interval=0.2)
    first = PoolService(pool_store, cfg, ready_check=FakeReadyCheck([cloud]))
    pool_services.append(first.start())
    wait_for(lambda: len(pool_store.list_nodes([NodeState.READY])) == 2)
    first.stop()  # the pool goes away; its servers stay

    now = time.time()
    ready_nodes = pool_store.list_nodes([NodeState.READY])
    in_use, held = ready_nodes
    pool_store.transition(in_use.id, [NodeState.READY], NodeState.IN_USE, now, build="b1")
    pool_store.transition(held.id, [NodeState.READY], NodeState.HOLD, now, hold_until=now + 3600)

    def node_with_server(state: str, **kw):
        n = pool_store.create_node("deb", "c1", now, state=NodeState.BUILDING)
        sid = boot(cloud, {META_POOL: "test-pool", META_NODE: str(n.id)})
        pool_store.transition(n.id, [NodeState.BUILDING], state, now, external_id=sid,
                              host="127.0.0.1", **kw)
        return n.id, sid

    building, building_sid = node_with_server(NodeState.BUILDING)
    used, used_sid = node_with_server(NodeState.USED)
    expired, expired_sid = node_with_server(NodeState.HOLD, hold_until=now - 1)
    deleting, deleting_sid = node_with_server(NodeState.DELETING)
    failed, failed_sid = node_with_server(NodeState.FAILED)
    vanished, vanished_sid = node_with_server(NodeState.READY)
    cloud.servers.pop(vanished_sid)  # the cloud lost it
    leaked_sid = boot(cloud, {META_POOL: "test-pool", META_NODE: "99999"})
    template_sid = boot(cloud, {META_POOL: "test-pool", META_IMAGE: "4242"})
    foreign_sid = boot(cloud, {META_POOL: "someone-else", META_NODE: str(used)})
    untagged_sid = boot(cloud, {})

    second = PoolService(pool_store, cfg, ready_check=FakeReadyCheck([cloud]))
    pool_services.append(second.start())

    gone = {building_sid, used_sid, expired_sid, deleting_sid, failed_sid, leaked_sid,
            template_sid}

    def settled() -> bool:
        live = {s.id for s in cloud.live_servers()}
        return not (gone & live) and all(
            pool_store.get_node(i).state == NodeState.DELETED
            for i in (building, used, expired, deleting, failed, vanished))

    wait_for(settled, what="restart reconciled")
    live = {s.id for s in cloud.live_servers()}
    assert {foreign_sid, untagged_sid} <= live  # not ours: untouched
    assert pool_store.get_node(in_use.id).state == NodeState.IN_USE  # a build still has it
    assert pool_store.get_node(held.id).state == NodeState.HOLD
    assert in_use.external_id in live and held.external_id in live
    # min-ready is restored around the in-use and held nodes.
    wait_for(lambda: len(pool_store.list_nodes([NodeState.READY])) == 2)
    # The build that had its node before the restart can still release it.
    assert second.release(str(in_use.id), "used", build="b1") == ""
    wait_for(lambda: pool_store.get_node(in_use.id).state == NodeState.DELETED)
    assert second.metrics.registry.value("leaks_total", {"provider": "c1"}) >= 2


def test_leaked_servers_reaped_periodically(pool_store, pool_services):
    cloud = FakeCloud("c1")
    cfg = pool_config([cloud_provider(cloud)], min_ready=0, reap_interval=0.1)
    svc = PoolService(pool_store, cfg, ready_check=FakeReadyCheck([cloud]))
    pool_services.append(svc.start())
    leak = boot(cloud, {META_POOL: "test-pool", META_NODE: "12345"})
    other = boot(cloud, {META_POOL: "other-pool", META_NODE: "12345"})
    wait_for(lambda: leak not in {s.id for s in cloud.live_servers()}, what="leak reaped")
    assert other in {s.id for s in cloud.live_servers()}


def test_verified_delete_survives_silent_delete_failures(pool_store, pool_services):
    cloud = FakeCloud("c1", silent_delete_fail_rate=0.7, seed=5, delete_delay=0.05)
    prov = cloud_provider(cloud)
    svc = PoolService(pool_store, pool_config([prov], min_ready=1),
                      ready_check=FakeReadyCheck([cloud]))
    svc.actions.redelete = 0.05
    pool_services.append(svc.start())
    node = wait_for(lambda: pool_store.list_nodes([NodeState.READY]))[0]
    pool_store.transition(node.id, [NodeState.READY], NodeState.USED, time.time())
    wait_for(lambda: pool_store.get_node(node.id).state == NodeState.DELETED, timeout=30)
    assert node.external_id not in {s.id for s in cloud.live_servers()}
