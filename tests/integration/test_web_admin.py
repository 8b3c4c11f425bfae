"""Web ↔ Gearman ↔ scheduler: status, explain and the admin API with its
token, and ``gatekeeper client`` against it (real gear.Server, real HTTP; the
scheduler runs its loop thread with the core harness's Gerrit double)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.gearman.rpcclient import RPCClient
from gatekeeper.gearman.rpclistener import RPCListener
from gatekeeper.services.web import AppServer
from gatekeeper.web.app import WebData, create_app
from gatekeeper.web.sources import PoolDatabase, SchedulerRPC
from tests.integration.e2e_support import wait_for
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout

pytestmark = pytest.mark.integration

TOKEN = "tok-3f9a1c-secret"


class Site:
    def __init__(self, harness: Harness, web: AppServer, rpc: SchedulerRPC):
        self.h, self.web, self.rpc = harness, web, rpc

    def call(self, path: str, body: dict[str, Any] | None = None, token: str | None = TOKEN,
             method: str = "POST") -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.web.url + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def items(self, pipeline: str) -> list[str]:
        _, data = self.call(f"api/status?pipeline={pipeline}", method="GET")
        return [i["change"] for p in data["pipelines"] for q in p["queues"] for i in q["items"]]


@pytest.fixture
def site(gear_server: Any, tmp_path: Path) -> Iterator[Site]:
    h = Harness(layout())
    # The harness's clock is virtual and stands still: take the status snapshot the web
    # reads at every turn that changed something, not once per (virtual) second.
    h.sched.status_every = 0.0
    listener = RPCListener(h.sched, gear_server.host, gear_server.port).start()
    client = RPCClient(gear_server.host, gear_server.port).start()
    rpc = SchedulerRPC(client, ttl=0.0)
    pool = PoolDatabase(f"sqlite:///{tmp_path}/pool.sqlite")
    web = AppServer(create_app(WebData(status=rpc, manager=rpc, pool=pool, admin_token=TOKEN)),
                    "127.0.0.1", 0).start()
    h.sched.start()
    try:
        yield Site(h, web, rpc)
    finally:
        h.sched.stop()
        web.stop()
        client.stop()
        listener.stop()


def test_admin_needs_the_token_and_reaches_the_scheduler(site: Site,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.DEBUG)
    a = site.h.source.add("org/project")
    b = site.h.source.add("org/project")
    body = {"pipeline": "gate", "project": "org/project", "change": a.number}
    assert site.call("api/admin/enqueue", body, token=None)[0] == 401
    assert site.call("api/admin/enqueue", body, token="wrong")[0] == 401
    assert site.items("gate") == []  # nothing reached the scheduler
    assert site.call("api/admin/enqueue", body) == (200, {"ok": True})
    assert site.call("api/admin/enqueue", {**body, "change": b.number}) == (200, {"ok": True})
    # The status is the snapshot of the scheduler's last turn: it may lag a turn.
    wait_for(lambda: site.items("gate") == [f"{a.number},1", f"{b.number},1"], 30, "enqueued")

    code, err = site.call("api/admin/enqueue", {**body, "pipeline": "nope"})
    assert code == 400 and err["error"] == "no pipeline named nope"
    code, err = site.call("api/admin/promote", {"pipeline": "gate", "changes": ["x"]})
    assert code == 400 and "change numbers" in err["error"]

    assert site.call("api/admin/promote", {"pipeline": "gate", "changes": [b.number]}) == (
        200, {"ok": True})
    wait_for(lambda: site.items("gate") == [f"{b.number},1", f"{a.number},1"], 30, "promoted")
    assert site.call("api/admin/dequeue", {"pipeline": "gate", "change": a.number}) == (
        200, {"ok": True})
    wait_for(lambda: site.items("gate") == [f"{b.number},1"], 30, "dequeued")
    with urllib.request.urlopen(site.web.url + f"explain/{a.number}", timeout=30) as r:
        assert "dequeued by an operator" in r.read().decode()
    # The harness's scheduler has no layout files: the refusal comes back in words.
    assert site.call("api/admin/reconfigure", {}) == (400, {
        "error": "new layout rejected; keeping the old one: no layout loader configured"})

    assert TOKEN not in caplog.text  # not in any log line, at any level


def test_autohold_add_list_delete(site: Site) -> None:
    body = {"project": "org/project", "job": "project-test1", "count": 2, "reason": "flaky"}
    assert site.call("api/admin/autoholds", body, token=None)[0] == 401
    code, data = site.call("api/admin/autoholds", body)
    assert code == 200 and data["autohold"]["count"] == 2
    ah = data["autohold"]["id"]
    code, data = site.call("api/autoholds", method="GET", token=None)
    assert [a["job"] for a in data["autoholds"]] == ["project-test1"]
    assert site.call("api/admin/autoholds", {**body, "count": 0})[0] == 400
    # A developer's key: a plain public key line only (no authorized_keys options)
    code, err = site.call("api/admin/autoholds", {**body, "ssh_key": 'command="sh" ssh-ed25519 AAAA'})
    assert code == 400 and err["error"].startswith("ssh_key: expected an OpenSSH public key")
    key = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVYg0ZkC8rJ7y1hT0fV6N0pSKoZr6jZf7dIcn3rVd4J"
           " alice@laptop")
    code, data = site.call("api/admin/autoholds", {**body, "ssh_key": key})
    assert code == 200 and data["autohold"]["developer_key"] == "alice@laptop"
    site.call(f"api/admin/autoholds/{data['autohold']['id']}", method="DELETE")
    assert site.call(f"api/admin/autoholds/{ah}", method="DELETE", token=None)[0] == 401
    assert site.call(f"api/admin/autoholds/{ah}", method="DELETE") == (200, {"ok": True})
    assert site.call(f"api/admin/autoholds/{ah}", method="DELETE")[0] == 404
    assert site.call("api/nodes", method="GET")[1] == {"nodes": []}


def client(site: Site, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **({"GATEKEEPER_TOKEN": token} if token else {})}
    return subprocess.run([sys.executable, "-m", "gatekeeper.cli", "client", "--url",
                           site.web.url, *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=Path(__file__).parents[2])


def test_client_tables_json_and_one_line_errors(site: Site) -> None:
    a = site.h.source.add("org/project", subject="[bold]markup[/bold] stays text")
    r = client(site, "enqueue", "--pipeline", "check", "--project", "org/project",
               "--change", f"{a.number},1")
    assert r.returncode == 0 and "enqueue: done" in r.stdout, r.stderr
    wait_for(lambda: site.items("check") == [f"{a.number},1"], 30, "the change in check")
    r = client(site, "status")
    assert r.returncode == 0 and "org/project" in r.stdout and "project-merge" in r.stdout
    r = client(site, "--json", "status", "--pipeline", "check")
    assert json.loads(r.stdout)["items_shown"] == 1
    r = client(site, "promote", "--pipeline", "gate", "1", token="wrong")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "client: the web service refused the token: " \
                       "a valid bearer token is required\n"
    r = client(site, "dequeue", "--pipeline", "check", "--change", "1", token=None)
    assert r.returncode == 2 and r.stderr.startswith("client: an admin token is needed")
    r = subprocess.run([sys.executable, "-m", "gatekeeper.cli", "client", "--url",
                        "http://127.0.0.1:9/", "status"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("client: cannot reach the web service at http://127.0.0.1:9/")
