"""Gearman over TLS (gear's ssl options): embedded server, launcher, worker, admin,
the pool's claim worker and the workers' node claimer."""

from __future__ import annotations

import json
import subprocess

import pytest

from gatekeeper.gearman import admin
from gatekeeper.gearman.launcher import GearmanLauncher
from gatekeeper.gearman.server import EmbeddedGearmanServer
from gatekeeper.interfaces import BuildRequest
from gatekeeper.model.events import BuildCompleted
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.claimer import GearmanNodeClaimer, NodeClaimError
from gatekeeper.nodes.fakecloud import FakeCloud
from gatekeeper.nodes.gearsvc import PoolGearmanWorker
from gatekeeper.nodes.service import PoolService
from tests.fixtures.gearman_workers import EventLog, ScriptedWorker
from tests.fixtures.pool import FakeReadyCheck, cloud_provider, pool_config, wait_for

pytestmark = pytest.mark.integration


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", cwd=d)
    return {n: (str(d / f"{n}.key"), str(d / f"{n}.pem"), str(d / "ca.pem"))
            for n in ("server", "client")}


def test_build_over_tls(pki):
    server = EmbeddedGearmanServer("127.0.0.1", 0, *pki["server"]).start()
    events = EventLog()
    la = GearmanLauncher("127.0.0.1", server.port, events, ssl_key=pki["client"][0],
                         ssl_cert=pki["client"][1], ssl_ca=pki["client"][2]).start()

    def ok(w, job):
        job.sendWorkComplete(json.dumps({"result": "SUCCESS"}))

    worker = ScriptedWorker("127.0.0.1", server.port, "tls-worker", ["build:unit"], ok,
                            ssl=pki["client"])
    try:
        assert la.wait_for_server(10)
        target = admin.AdminTarget("127.0.0.1", server.port, *pki["client"])
        assert admin.registered(target, "build:unit")
        req = BuildRequest("tls1", "unit", None, {"ZUUL_UUID": "tls1"})
        la.launch(req)
        assert events.wait_for(BuildCompleted, "tls1")[0].result == "SUCCESS"
        # Without a client certificate the server refuses to talk.
        with pytest.raises(admin.AdminError):
            admin.status(admin.AdminTarget("127.0.0.1", server.port), timeout=2)
    finally:
        worker.stop()
        la.stop()
        server.stop()


def test_node_claim_over_tls(pki, pool_store, pool_services):
    server = EmbeddedGearmanServer("127.0.0.1", 0, *pki["server"]).start()
    cloud = FakeCloud("c1")
    svc = PoolService(pool_store, pool_config([cloud_provider(cloud, max_servers=4)],
                                              min_ready=1),
                      ready_check=FakeReadyCheck([cloud]))
    pool_services.append(svc.start())
    key, cert, ca = pki["client"]
    gw = claimer = None
    try:
        gw = PoolGearmanWorker(svc, "127.0.0.1", server.port, ssl_key=key, ssl_cert=cert,
                               ssl_ca=ca).start(timeout=10)
        target = admin.AdminTarget("127.0.0.1", server.port, *pki["client"])
        assert admin.registered(target, "node:claim:deb")
        wait_for(lambda: len(pool_store.list_nodes([NodeState.READY])) == 1)
        claimer = GearmanNodeClaimer("127.0.0.1", server.port, connect_timeout=10,
                                     ssl_key=key, ssl_cert=cert, ssl_ca=ca)
        lease = claimer.claim("deb", "tls-build", timeout=20)
        assert pool_store.get_node(int(lease.node_id)).state == NodeState.IN_USE
        claimer.release(lease, "used")
        with pytest.raises(NodeClaimError, match="not in use"):
            claimer.release(lease, "used")
    finally:
        if claimer is not None:
            claimer.close()
        if gw is not None:
            gw.stop()
        server.stop()
