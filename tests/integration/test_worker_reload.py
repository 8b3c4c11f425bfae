"""Worker reload (SIGHUP) on real Gearman (gear.Server and gearmand): new jobs'
functions are registered; a function is never unregistered while a build of it
runs (gearmand would requeue that build and refuse its result); a bad layout
changes nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gear
import pytest

from gatekeeper.gearman import admin
from gatekeeper.gearman.nodelay import NoDelayClient
from gatekeeper.gearman.protocol import build_function, encode, stop_function
from gatekeeper.nodes.localsshd import LocalSshd
from gatekeeper.worker.service import GearServer, WorkerService
from tests.fixtures import worker as fx
from tests.fixtures.gearman import GearmanServerHandle
from tests.fixtures.worker import JOB, LABEL, GitSources, WorkerEnv, build_args, wait_for
from tests.integration.test_worker_command import LAYOUT, write_config

pytestmark = pytest.mark.integration

git_sources = fx.git_sources
worker_env = fx.worker_env

JOB_Y = """
  - name: job-y
    label: {label}
    run: .gatekeeper/jobs/devstack-vm-gate.sh
    projects: [openstack-dev/devstack]
"""


def with_job_y(layout: str) -> str:
    return layout.replace("projects:\n  - name: org/project",
                          JOB_Y.format(label=LABEL).lstrip("\n")
                          + "projects:\n  - name: org/project").replace(
        f"gate: [{JOB}, other]", f"gate: [{JOB}, other, job-y]")


@pytest.fixture
def client(gearman_server: GearmanServerHandle) -> Iterator[gear.Client]:
    c = NoDelayClient(client_id="reload-test")
    c.addServer(gearman_server.host, gearman_server.port)
    c.waitForServer(10)
    yield c
    c.shutdown()


def registered(server: GearmanServerHandle, fn: str) -> bool:
    return admin.registered(admin.AdminTarget(server.host, server.port), fn)


def test_sighup_registers_new_jobs_and_a_bad_layout_changes_nothing(
        tmp_path: Path, gearman_server: GearmanServerHandle, sshd_nodes: list[LocalSshd],
        client_key: Path, git_sources: GitSources, client: gear.Client) -> None:
    cfg = write_config(tmp_path, gearman_server, sshd_nodes, client_key)
    layout = tmp_path / "layout.yaml"
    assert layout.read_text() == LAYOUT
    out_file = tmp_path / "worker.out"
    with out_file.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gatekeeper.cli", "worker", "-c", str(cfg),
             "--git-base-url", git_sources.upstream_url],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    try:
        wait_for(lambda: registered(gearman_server, build_function(JOB, LABEL)), 60,
                 "the worker to register")
        assert not registered(gearman_server, build_function("job-y", LABEL))
        layout.write_text(with_job_y(LAYOUT))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in out_file.read_text(), 30, "the reload")
        for fn in (build_function("job-y"), build_function("job-y", LABEL)):
            wait_for(lambda fn=fn: registered(gearman_server, fn), 10, fn)
        ref, sha = git_sources.make_change({"y": "1\n"})
        env = SimpleNamespace(sources=git_sources)
        job = gear.TextJob(build_function("job-y", LABEL),
                           encode(build_args(env, "rel00000001", ref, sha,  # type: ignore[arg-type]
                                             job="job-y")), "rel00000001")
        client.submitJob(job, timeout=10)
        wait_for(lambda: job.complete, 120, "the build of the new job")
        result = json.loads(job.data[-1])
        assert result["result"] == "SUCCESS", result
        # A broken layout: logged with file, line and key; the functions stay.
        layout.write_text(with_job_y(LAYOUT).replace("label: elsewhere", "label: [oops]"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rejected" in out_file.read_text(), 30, "the rejected reload")
        text = out_file.read_text()
        assert f"{layout}:" in text and ".label: expected str" in text and "Traceback" not in text
        for fn in (build_function(JOB, LABEL), build_function("job-y", LABEL)):
            assert registered(gearman_server, fn), fn
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, out_file.read_text()


def test_reload_never_unregisters_a_function_while_its_build_runs(
        worker_env: WorkerEnv, gearman_server: GearmanServerHandle,
        client: gear.Client) -> None:
    env = worker_env
    fn, other = build_function(JOB, LABEL), build_function("job-y", LABEL)
    svc = WorkerService(env.executor, [fn], [GearServer(gearman_server.host,
                                                        gearman_server.port)], max_builds=2)
    svc.start(connect_timeout=10)
    try:
        ref, sha = env.sources.make_change({"SLEEP_GATE": "600\n"})
        job = gear.TextJob(fn, encode(build_args(env, "ret00000001", ref, sha)), "ret00000001")
        client.submitJob(job, timeout=10)
        wait_for(lambda: svc.running_builds == ["ret00000001"], 60, "the build to start")
        svc.reload([other])  # the running build's function leaves the layout
        wait_for(lambda: registered(gearman_server, other), 10, "the new function")
        assert svc.registered_functions == [fn, other]
        assert registered(gearman_server, fn)
        stop = gear.TextJob(stop_function("w1"), encode({"uuid": "ret00000001"}), "stop-r1")
        client.submitJob(stop, timeout=10)
        # The result is accepted: the build was not taken from this worker.
        wait_for(lambda: job.complete, 60, "the build's result")
        assert not job.failure
        assert json.loads(job.data[-1])["result"] == "CANCELED"
        wait_for(lambda: svc.registered_functions == [other], 30, "the idle worker to retire")
        wait_for(lambda: not registered(gearman_server, fn), 30, "CANT_DO to reach the server")
        # Re-adding works, and the worker still takes builds.
        svc.reload([fn, other])
        assert svc.registered_functions == [other, fn]
        wait_for(lambda: registered(gearman_server, fn), 10, "the re-added function")
    finally:
        svc.stop(abort=True, timeout=60)
