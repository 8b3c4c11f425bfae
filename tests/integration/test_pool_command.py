"""``gatekeeper pool -c CONFIG`` as a process: local nodes, Gearman claims,
metrics on loopback, clean stop on SIGTERM, and a restart that keeps nodes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gatekeeper.model.states import NodeState
from gatekeeper.netutil import free_port
from gatekeeper.nodes.claimer import GearmanNodeClaimer
from gatekeeper.nodes.db import PoolStore
from gatekeeper.store.db import create_engine
from tests.fixtures.owned import owner_dir, stop_orphans, stop_owned
from tests.fixtures.pool import wait_for

pytestmark = pytest.mark.integration


def start(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", "pool", "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).parents[2])


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


@pytest.fixture
def site(tmp_path):
    """The directory of the pool's config and state, named for its owner
    (tests/fixtures/owned.py). Whatever happens, nothing is left running:
    what an earlier run killed before its teardown left is stopped first; at
    teardown the nodes in the state dir, then anything else naming this
    directory (the pool process, an sshd whose directory is gone)."""
    stop_orphans()
    d = owner_dir(tmp_path)
    yield d
    from gatekeeper.nodes.providers.local import LocalProvider
    LocalProvider("lo", d / "state/pool/local/lo").close()
    stop_owned(d)


def test_pool_command(site, gear_server, client_key):
    tmp_path = site  # the config, and the state dir beside it, in the marked directory
    metrics_port = free_port()
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(f"""
gerrit: {{server: 127.0.0.1, user: gk, sshkey: {client_key}}}
gearman: {{server: {gear_server.host}, port: {gear_server.port}, embedded: false}}
scheduler: {{layout: [layout.yaml], state_dir: state}}
pool:
  id: cmdtest
  tick_interval: 0.1
  poll_interval: 0.05
  metrics: {{listen: "127.0.0.1:{metrics_port}"}}
  labels:
    - {{name: local, image: plain, min_ready: 2}}
  providers:
    - name: lo
      driver: local
      max_servers: 3
      boot_timeout: 30
      images: [{{name: plain, private_key: {client_key}}}]
""")
    store = PoolStore(create_engine(f"sqlite:///{tmp_path}/state/gatekeeper.sqlite"))
    proc = start(cfg)
    out = ""
    try:
        wait_for(lambda: len(store.list_nodes([NodeState.READY])) == 2 or proc.poll() is not None,
                 timeout=60, what="2 ready nodes")
        assert proc.poll() is None
        claimer = GearmanNodeClaimer(gear_server.host, gear_server.port)
        try:
            lease = claimer.claim("local", "cmd-build", timeout=30)
        finally:
            claimer.close()
        assert lease.provider == "lo" and Path(lease.extra["workdir"]).is_dir()
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                      timeout=10).read().decode()
        assert 'gatekeeper_pool_launches_total{label="local",provider="lo",result="ready"}' \
            in body
    finally:
        out = stop(proc)
    assert "Traceback" not in out
    # Restarted: the in-use node is still in use, its sshd still serves,
    # and min-ready is kept next to it.
    proc = start(cfg)
    try:
        claimer = GearmanNodeClaimer(gear_server.host, gear_server.port)
        try:
            second = claimer.claim("local", "cmd-build-2", timeout=30)  # served after restart
        finally:
            claimer.close()
        assert second.node_id != lease.node_id
        assert store.get_node(int(lease.node_id)).state == NodeState.IN_USE
        assert store.get_node(int(second.node_id)).state == NodeState.IN_USE
        wait_for(lambda: len(store.list_nodes([NodeState.READY])) == 1, timeout=60)  # max_servers 3
    finally:
        stop(proc)


def test_an_earlier_runs_leftover_nodes_are_stopped(tmp_path, client_key):
    """A pytest killed mid-test left an sshd node running and its tmp dir was
    deleted since: stop_orphans finds it by the mark in its command line
    alone, and leaves a live run's marked processes alone."""
    from gatekeeper.nodes.localsshd import LocalSshd, wait_for_ssh_banner

    keys = [client_key.with_suffix(".pub").read_text()]
    dead = tmp_path / "gk-test-owner-999999999-0-0dead"  # no such process: that run is over
    live = owner_dir(tmp_path)
    nodes = [LocalSshd(d / "node", keys).start() for d in (dead, live)]
    shutil.rmtree(dead)  # pytest removed the old run's tmp dir
    try:
        assert stop_orphans()  # the orphan's sshd
        assert not wait_for_ssh_banner("127.0.0.1", nodes[0].port, 0.5)
        assert wait_for_ssh_banner("127.0.0.1", nodes[1].port, 5)
    finally:
        assert stop_owned(live)
    assert not wait_for_ssh_banner("127.0.0.1", nodes[1].port, 0.5)
