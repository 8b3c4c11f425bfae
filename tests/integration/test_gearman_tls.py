"""Gearman over TLS (gear's ssl options): embedded server, launcher, worker, admin."""

from __future__ import annotations

import json
import subprocess

import pytest

from gatekeeper.gearman import admin
from gatekeeper.gearman.launcher import GearmanLauncher
from gatekeeper.gearman.server import EmbeddedGearmanServer
from gatekeeper.interfaces import BuildRequest
from gatekeeper.model.events import BuildCompleted
from tests.fixtures.gearman_workers import EventLog, ScriptedWorker

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
