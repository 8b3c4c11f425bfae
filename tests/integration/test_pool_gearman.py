"""Claims and releases over real Gearman (gear.Server and gearmand)."""

from __future__ import annotations

import threading

import pytest

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.claimer import GearmanNodeClaimer, NodeClaimError
from gatekeeper.nodes.fakecloud import FakeCloud
from gatekeeper.nodes.gearsvc import PoolGearmanWorker
from gatekeeper.nodes.service import PoolService
from tests.fixtures.pool import FakeReadyCheck, cloud_provider, pool_config, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def pool(gearman_server, pool_store, pool_services):
    cloud = FakeCloud("c1")
    svc = PoolService(pool_store, pool_config([cloud_provider(cloud, max_servers=20)],
                                              min_ready=6),
                      ready_check=FakeReadyCheck([cloud]))
    pool_services.append(svc.start())
    gw = PoolGearmanWorker(svc, gearman_server.host, gearman_server.port).start()
    claimers: list[GearmanNodeClaimer] = []

    def claimer() -> GearmanNodeClaimer:
        c = GearmanNodeClaimer(gearman_server.host, gearman_server.port)
        claimers.append(c)
        return c

    yield svc, claimer
    for c in claimers:
        c.close()
    gw.stop()


def test_concurrent_claims_over_gearman_never_share(pool, pool_store):
    svc, claimer = pool
    wait_for(lambda: len(pool_store.list_nodes([NodeState.READY])) == 6)
    clients = [claimer() for _ in range(3)]
    leases, errors = [], []
    by_build = {}
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            lease = clients[i % 3].claim("deb", f"build-{i}", timeout=20)
            with lock:
                leases.append(lease)
                by_build[f"build-{i}"] = lease
        except NodeClaimError as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = [lease.node_id for lease in leases]
    assert len(ids) == 9 and len(set(ids)) == 9  # more than were ready: some waited
    builds = {pool_store.get_node(int(lease.node_id)).build for lease in leases}
    assert builds == {f"build-{i}" for i in range(9)}
    # Each build holds the node the pool gave it (not another build's).
    assert all(pool_store.get_node(int(lease.node_id)).build == build
               for build, lease in by_build.items())
    assert all(lease.provider == "c1" and lease.host_key for lease in leases)


def test_release_over_gearman(pool, pool_store):
    svc, claimer = pool
    c = claimer()
    lease = c.claim("deb", "b1", timeout=20)
    assert pool_store.get_node(int(lease.node_id)).state == NodeState.IN_USE
    c.release(lease, "hold", hold_for=60, reason="failed")
    assert pool_store.get_node(int(lease.node_id)).state == NodeState.HOLD
    with pytest.raises(NodeClaimError, match="not in use"):
        c.release(lease, "used")
    # No pool serves the label: nobody answers, the claim times out.
    c.margin = 0.3
    with pytest.raises(NodeClaimError, match="no answer"):
        c.claim("nope", "b2", timeout=0.1)
