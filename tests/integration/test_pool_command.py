"""``gatekeeper pool -c CONFIG`` as a process: local nodes, Gearman claims,
metrics on loopback, clean stop on SIGTERM, and a restart that keeps nodes."""

from __future__ import annotations

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
def local_nodes_cleanup(tmp_path):
    """Whatever happens, stop the sshd nodes the pool process left running."""
    yield
    from gatekeeper.nodes.providers.local import LocalProvider
    LocalProvider("lo", tmp_path / "state/pool/local/lo").close()


def test_pool_command(tmp_path, gear_server, client_key, local_nodes_cleanup):
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
