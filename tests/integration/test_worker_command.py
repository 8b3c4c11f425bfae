"""``gatekeeper worker -c CONFIG`` as a process: registers from the layout, builds,
stops on SIGTERM; bad input is one clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gear
import pytest

from gatekeeper.gearman.nodelay import NoDelayClient
from gatekeeper.gearman.protocol import build_function, encode
from gatekeeper.nodes.localsshd import LocalSshd
from tests.fixtures import worker as fx
from tests.fixtures.gearman import GearmanServerHandle
from tests.fixtures.worker import JOB, LABEL, GitSources, build_args, wait_for

pytestmark = pytest.mark.integration

git_sources = fx.git_sources

LAYOUT = f"""
pipelines:
  - name: gate
    manager: dependent
    trigger:
      gerrit:
        - event: comment-added
jobs:
  - name: {JOB}
    label: {LABEL}
    run: .gatekeeper/jobs/devstack-vm-gate.sh
    projects: [openstack-dev/devstack]
  - name: other
    label: elsewhere
projects:
  - name: org/project
    gate: [{JOB}, other]
"""


def write_config(tmp: Path, gearman: GearmanServerHandle, nodes: list[LocalSshd],
                 key: Path) -> Path:
    (tmp / "layout.yaml").write_text(LAYOUT)
    node_lines = "".join(
        f"    - {{name: {n.name}, host: {n.host}, port: {n.port}, username: {n.username}, "
        f"private_key: {key}, labels: [{LABEL}], provider: local}}\n"
        for n in nodes)
    cfg = tmp / "gatekeeper.yaml"
    cfg.write_text(f"""
gerrit: {{server: 127.0.0.1, user: gk, sshkey: {key}}}
gearman: {{server: {gearman.host}, port: {gearman.port}, embedded: false}}
scheduler: {{layout: [layout.yaml], state_dir: state}}
pool: {{labels: [elsewhere]}}
worker:
  jobs_root: state/jobs
  log_root: state/logs
  log_url: http://127.0.0.1:1/logs/
  hostname: cmd-worker
  nodes:
{node_lines}""")
    return cfg


def start(cfg: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", "worker", "-c", str(cfg),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=Path(__file__).parents[2])


def test_worker_command_builds_and_stops(tmp_path: Path, gear_server: GearmanServerHandle,
                                         sshd_nodes: list[LocalSshd], client_key: Path,
                                         git_sources: GitSources) -> None:
    cfg = write_config(tmp_path, gear_server, sshd_nodes, client_key)
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(n.known_hosts_line() + "\n" for n in sshd_nodes))
    proc = start(cfg, "--known-hosts", str(kh), "--git-base-url", git_sources.upstream_url)
    client = NoDelayClient(client_id="cmd-test")
    try:
        client.addServer(gear_server.host, gear_server.port)
        client.waitForServer(10)
        ref, sha = git_sources.make_change({"f": "1\n"})
        env = SimpleNamespace(sources=git_sources)  # build_args needs only ZUUL_URL
        job = gear.TextJob(build_function(JOB, LABEL),
                           encode(build_args(env, "cmd00000001", ref, sha)),  # type: ignore[arg-type]
                           "cmd00000001")
        # Queued by the server until the worker has registered.
        client.submitJob(job, timeout=10)
        wait_for(lambda: job.complete, 120, "the build")
        result = json.loads(job.data[-1])
        assert result["result"] == "SUCCESS", result
        assert result["worker"] == "cmd-worker"
        console = tmp_path / "state/logs" / result["log_path"] / "console.txt"
        assert console.read_text().startswith("NODE_PROVIDER=local\n")
    finally:
        client.shutdown()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "serving 2 functions" in out and "build:other" not in out
    assert "NOT verified" not in out


def test_bad_inputs_are_one_clear_error(tmp_path: Path, gear_server: GearmanServerHandle,
                                        sshd_nodes: list[LocalSshd], client_key: Path) -> None:
    cfg = write_config(tmp_path, gear_server, sshd_nodes, client_key)
    for extra, expect in [(["--job", "nope"], "--job nope: not in the layout"),
                          (["--known-hosts", str(tmp_path / "missing")], "--known-hosts"),
                          (["--job", "other"], "no job of the layout has a label")]:
        proc = start(cfg, *extra)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 2, out
        assert expect in out and "Traceback" not in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("jobs_root: state/jobs", "jobs_rot: state/jobs"))
    proc = start(bad)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "jobs_rot" in out and "Traceback" not in out
    assert os.path.basename(str(bad)) in out


def test_without_static_nodes_the_pool_claimer_is_used(
        tmp_path: Path, gear_server: GearmanServerHandle, sshd_nodes: list[LocalSshd],
        client_key: Path) -> None:
    from gatekeeper.config import load_config
    from gatekeeper.nodes.claimer import GearmanNodeClaimer
    from gatekeeper.worker.wiring import worker_from_config

    cfg_path = write_config(tmp_path, gear_server, sshd_nodes, client_key)
    text = cfg_path.read_text()
    text = text[:text.index("  nodes:")].replace("pool: {labels: [elsewhere]}",
                                                  f"pool: {{labels: [elsewhere, {LABEL}]}}")
    cfg_path.write_text(text)
    service = worker_from_config(load_config(str(cfg_path)))
    try:
        assert isinstance(service.executor.claimer, GearmanNodeClaimer)
        assert service.functions == [build_function(JOB), build_function(JOB, LABEL),
                                     "build:other", "build:other:elsewhere"]
        assert service.max_builds == 2
    finally:
        service.stop()  # closes the claimer's Gearman client
    assert not service.executor.claimer._client.running
