"""The libcloud traps from LIBRARIES.md, each pinned by a test, plus the
fake cloud's own behaviour and the metrics outputs."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request

import pytest
from libcloud.compute.base import NodeDriver
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState

from gatekeeper.nodes.fakecloud import PROVIDER_NAME, FakeCloud, add_cloud, remove_cloud
from gatekeeper.nodes.metrics import MetricsHTTPServer, PoolMetrics, Registry, Statsd
from gatekeeper.nodes.providers import META_NODE, META_POOL, BootSpec, ProviderError
from gatekeeper.nodes.providers.cloud import LibcloudProvider, classify, state_value
from gatekeeper.nodes.runtime import Health
from gatekeeper.nodes.service import PoolService
from tests.fixtures.pool import FakeReadyCheck, cloud_provider, pool_config, wait_for

SPEC = BootSpec("debian", "base-debian", "gk", "/k")


@pytest.fixture
def cloud():
    c = add_cloud(FakeCloud("acct", api_latency=0.002))
    yield c
    remove_cloud("acct")


def test_fake_driver_comes_from_libclouds_registry(cloud):
    cls = get_driver(PROVIDER_NAME)
    assert issubclass(cls, NodeDriver)
    assert cls("acct").cloud is cloud


def test_driver_calls_are_serialised_per_provider(cloud):
    # Raw concurrent use of one driver is what libcloud cannot take (the
    # fake cloud detects it)...
    drv = get_driver(PROVIDER_NAME)("acct")
    errors: list[Exception] = []

    def hammer(fn):
        for _ in range(20):
            try:
                fn()
            except RuntimeError as e:
                errors.append(e)

    threads = [threading.Thread(target=hammer, args=(drv.list_nodes,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors, "the fake cloud should detect overlapping calls"
    # ...and the provider adapter never does it.
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    errors.clear()
    threads = [threading.Thread(target=hammer, args=(p.list_servers,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_rate_limit_spaces_calls(cloud):
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    p = LibcloudProvider("acct", PROVIDER_NAME, "acct", rate=2.0, clock=lambda: now[0],
                         sleep=sleep)
    for _ in range(3):
        p.list_servers()
    assert slept == [0.5, 0.5]


def test_node_state_stored_as_value_strings(cloud):
    # NodeState members hash by identity: only .value strings leave the adapter.
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    s = p.create_server("n", SPEC, None, {})
    assert type(s.state) is str and s.state == "running"
    assert state_value(NodeState.RUNNING) == "running" and state_value("pending") == "pending"
    assert {state_value(NodeState.RUNNING), state_value(NodeState.RUNNING)} == {"running"}


def test_openstack_driver_gets_api_2():
    p = LibcloudProvider("os", "openstack", "user", "pw",
                         driver_args={"ex_force_auth_url": "http://127.0.0.1:1/",
                                      "ex_force_auth_version": "3.x_password"})
    assert type(p._driver).__name__ == "OpenStack_2_NodeDriver"


def test_own_server_polled_not_wait_until_running(cloud):
    cloud.duplicate_listing = True  # some clouds list a server twice
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    s = p.create_server("n", SPEC, None, {})
    drv = get_driver(PROVIDER_NAME)("acct")
    with pytest.raises(Exception, match="(?i)duplicate|unique|multiple"):
        drv.wait_until_running([drv.list_nodes()[0]], wait_period=0.01, timeout=1)
    assert p.get_server(s.id).id == s.id
    assert [x.id for x in p.list_servers()] == [s.id]


def test_servers_tagged_with_metadata(cloud):
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    s = p.create_server("n", SPEC, None, {META_POOL: "gk1", META_NODE: "7"})
    assert p.get_server(s.id).metadata == {META_POOL: "gk1", META_NODE: "7"}


def test_quota_and_errors_classified(cloud):
    cloud.max_instances = 0
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    with pytest.raises(ProviderError) as e:
        p.create_server("n", SPEC, None, {})
    assert e.value.kind == "quota"
    cloud.down = True
    with pytest.raises(ProviderError) as e:
        p.list_servers()
    assert e.value.kind == "error"
    assert classify(Exception("Quota exceeded for cores")) == "quota"


def test_snapshots(cloud):
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct")
    s = p.create_server("n", SPEC, None, {})
    img = p.create_image(s.id, "snap")
    assert p.image_status(img) == "ready"
    p.delete_image(img)
    assert p.image_status(img) == "missing"


def test_secrets_never_logged(caplog, pool_store, pool_services):
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-cloud-password"
    cloud = FakeCloud("acct2", secret=secret, create_fail_rate=0.5, seed=1)
    prov = cloud_provider(cloud, health=Health(threshold=100))
    svc = PoolService(pool_store, pool_config([prov], min_ready=2),
                      ready_check=FakeReadyCheck([cloud]))
    pool_services.append(svc.start())
    wait_for(lambda: len(pool_store.list_nodes(["ready"])) == 2)
    with pytest.raises(ProviderError) as e:
        LibcloudProvider("acct2", PROVIDER_NAME, "acct2", "wrong-" + secret)
    assert secret not in str(e.value)
    assert secret not in caplog.text
    assert "Internal Server Error" in caplog.text  # the failures were logged


def test_prometheus_and_statsd():
    reg = Registry()
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    recv.settimeout(5)
    statsd = Statsd("127.0.0.1", recv.getsockname()[1])
    m = PoolMetrics(reg, statsd)
    m.launch("cloud-a", "deb", "ready", 12.5)
    m.launch("cloud-a", "deb", "error.quota")
    m.claim("deb", 0.004)
    m.node_states({("ready", "deb", "cloud-a"): 2})
    text = reg.render()
    assert ('gatekeeper_pool_launches_total{label="deb",provider="cloud-a",result="ready"} 1'
            in text)
    assert "# TYPE gatekeeper_pool_claim_seconds summary" in text
    assert 'gatekeeper_pool_nodes{label="deb",provider="cloud-a",state="ready"} 2' in text
    got = {recv.recv(200).decode() for _ in range(5)}
    assert "nodepool.launch.provider.cloud-a.ready:1|c" in got
    assert "nodepool.launch.provider.cloud-a.ready:12500.000000|ms" in got
    http = MetricsHTTPServer(reg).start()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{http.port}/metrics", timeout=5).read()
        assert b"gatekeeper_pool_launches_total" in body
    finally:
        http.stop()
        statsd.close()
        recv.close()


def test_fake_cloud_in_virtual_time():
    now = [0.0]
    c = add_cloud(FakeCloud("virt", boot_delay=30, delete_delay=10, image_delay=60,
                            clock=lambda: now[0]))
    try:
        p = LibcloudProvider("virt", PROVIDER_NAME, "virt")
        s = p.create_server("n", SPEC, None, {})
        assert p.get_server(s.id).state == "pending" and p.get_server(s.id).host is None
        now[0] = 30
        assert p.get_server(s.id).state == "running"
        img = p.create_image(s.id, "snap")
        assert p.image_status(img) == "building"
        now[0] = 90
        assert p.image_status(img) == "ready"
        p.delete_server(s.id)
        assert p.get_server(s.id).state == "stopping"  # deleting takes a while
        now[0] = 101
        assert p.get_server(s.id) is None
        s2 = p.create_server("n", SPEC, img, {})
        assert s2.id != s.id  # ids are never reused (unlike libcloud's Dummy driver)
        assert c.servers[s2.id].image_id == img
    finally:
        remove_cloud("virt")


def test_list_cache_shares_one_listing_between_polls(cloud):
    now = [0.0]
    p = LibcloudProvider("acct", PROVIDER_NAME, "acct", clock=lambda: now[0], list_cache=5.0)
    ids = [p.create_server(f"n{i}", SPEC, None, {}).id for i in range(5)]
    cloud.calls.clear()
    for _ in range(3):
        assert all(p.get_server(i).state == "running" for i in ids)
    assert cloud.calls.count("list_nodes") == 1 and "ex_get_node" not in cloud.calls
    now[0] = 5.0
    p.get_server(ids[0])
    assert cloud.calls.count("list_nodes") == 2
    # A create or delete invalidates: a new server is never "missing".
    new = p.create_server("x", SPEC, None, {})
    assert p.get_server(new.id) is not None
    p.delete_server(new.id)
    assert p.get_server(new.id) is None  # the cache saw the delete
