"""The worker service on real Gearman (gear.Server and gearmand), real sshd nodes,
real git and rsync: the scheduler's launcher submits, the worker builds."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import gear
import pytest

from gatekeeper.gearman.launcher import GearmanLauncher
from gatekeeper.gearman.nodelay import NoDelayClient, has_nodelay
from gatekeeper.gearman.protocol import build_function, encode, stop_function
from gatekeeper.interfaces import BuildRequest
from gatekeeper.model.events import BuildCompleted, BuildFailing, BuildStarted
from gatekeeper.worker.service import GearServer, WorkerService, build_functions
from tests.fixtures import worker as fx
from tests.fixtures.gearman import GearmanServerHandle
from tests.fixtures.gearman_workers import EventLog
from tests.fixtures.worker import DEVSTACK, GATE_SCRIPT, JOB, LABEL, WorkerEnv, build_args, wait_for

pytestmark = pytest.mark.integration

git_sources = fx.git_sources
worker_env = fx.worker_env


@pytest.fixture
def service(worker_env: WorkerEnv, gearman_server: GearmanServerHandle
            ) -> Iterator[WorkerService]:
    fns = build_functions([(JOB, LABEL), ("other-job", "nolabel")], worker_env.claimer.labels)
    svc = WorkerService(worker_env.executor, fns,
                        [GearServer(gearman_server.host, gearman_server.port)], max_builds=2)
    svc.start(connect_timeout=10)
    yield svc
    svc.stop(abort=True, timeout=60)


@pytest.fixture
def client(gearman_server: GearmanServerHandle) -> Iterator[gear.Client]:
    c = NoDelayClient(client_id="test-client")
    c.addServer(gearman_server.host, gearman_server.port)
    c.waitForServer(10)
    yield c
    c.shutdown()


def submit(client: gear.Client, name: str, args: bytes | str, unique: str) -> gear.Job:
    job = gear.TextJob(name, args, unique)
    client.submitJob(job, timeout=10)
    return job


def request_for(env: WorkerEnv, uuid: str, ref: str, sha: str, change: int = 1234,
                **kw: Any) -> BuildRequest:
    """The launcher's request for the build ``build_args`` describes."""
    params = {k: v for k, v in build_args(env, uuid, ref, sha, change=change).items()
              if k != "gatekeeper"}
    return BuildRequest(uuid=uuid, job=JOB, label=LABEL, parameters=params, timeout=120,
                        run=GATE_SCRIPT, projects=(DEVSTACK,), **kw)


def test_launcher_to_worker_end_to_end(worker_env: WorkerEnv, service: WorkerService,
                                       gearman_server: GearmanServerHandle) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"feature.txt": "via gearman\n"})
    events = EventLog()
    launcher = GearmanLauncher(gearman_server.host, gearman_server.port, events).start()
    try:
        assert launcher.wait_for_server(10)
        launcher.launch(request_for(env, "e2e00000001", ref, sha, change=4242))
        started = events.wait_for(BuildStarted, "e2e00000001", timeout=60)[0]
        done = events.wait_for(BuildCompleted, "e2e00000001", timeout=120)[0]
    finally:
        launcher.stop()
    assert started.worker == "w1" and started.provider == "local-test"
    assert done.result == "SUCCESS", done
    assert done.node == started.node
    log_path = "42/4242/1/gate/gate-devstack/e2e0000"
    assert done.url == f"http://127.0.0.1:1/logs/{log_path}/"
    console = (env.settings.log_root / log_path / "console.txt").read_text()
    assert console.startswith("NODE_PROVIDER=local-test\n")
    node = next(n for n in env.nodes if n.name == done.node)
    assert (node.workdir / "org/project/feature.txt").read_text() == "via gearman\n"


def test_registers_only_servable_jobs_with_nodelay(service: WorkerService) -> None:
    assert service.functions == [build_function(JOB), build_function(JOB, LABEL)]
    for w in (service._build_worker, service._stop_worker):
        assert w is not None
        conns = w.active_connections
        assert conns and all(has_nodelay(c.conn) for c in conns)


def test_malformed_arguments_fail_and_worker_keeps_serving(
        worker_env: WorkerEnv, service: WorkerService, client: gear.Client) -> None:
    env = worker_env
    marker = env.tmp / "PWNED"
    ref, sha = env.sources.make_change({"x": "1\n"})
    bad: list[Any] = [
        b"\xff\xfe not utf-8 {",
        "[1, 2, 3]",
        json.dumps({"ZUUL_UUID": "abcdef12"}),  # no gatekeeper object
        encode(build_args(env, "bad00000001", ref, sha,
                          params={"ZUUL_BRANCH": f"$(touch {marker})"})),
        encode(build_args(env, "bad00000002", ref, sha,
                          params={"ZUUL_REF": f"refs/x;touch {marker}"})),
        encode(build_args(env, "bad00000003", ref, sha, params={"ZUUL_URL": "--upload-pack=x"})),
        encode(build_args(env, "bad00000004", ref, sha, run="../../etc/passwd")),
        encode({**build_args(env, "bad00000005", ref, sha), "BAD NAME": "x"}),
    ]
    jobs = [submit(client, build_function(JOB, LABEL), b, f"bad-{i}") for i, b in enumerate(bad)]
    wait_for(lambda: all(j.complete for j in jobs), 30, "an answer for every malformed build")
    # Refused with the reason, and "do not retry": the same arguments fail again.
    results = [json.loads(j.data[-1]) for j in jobs]
    assert all(not j.failure for j in jobs)
    assert [(r["result"], r["retry"]) for r in results] == [("ERROR", False)] * len(bad)
    assert all(r["message"].startswith("worker refused the job: ") for r in results)
    assert "invalid run script '../../etc/passwd'" in results[6]["message"]
    # Still serving: a good build completes.
    good = submit(client, build_function(JOB, LABEL),
                  encode(build_args(env, "good0000001", ref, sha)), "good0000001")
    wait_for(lambda: good.complete, 120, "the good build")
    assert not good.failure
    assert json.loads(good.data[-1])["result"] == "SUCCESS"
    assert not marker.exists()


def test_concurrent_builds_get_distinct_nodes_and_stop_request_aborts(
        worker_env: WorkerEnv, service: WorkerService, client: gear.Client) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"SLEEP_GATE": "600\n"})
    jobs = {u: submit(client, build_function(JOB, LABEL),
                      encode(build_args(env, u, ref, sha)), u)
            for u in ("conc0000001", "conc0000002")}
    pidfiles = [n.workdir / ".gatekeeper/standin-sleep.pids" for n in env.nodes]
    # Both builds are sleeping at the same time, each on its own node.
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pidfiles), 90,
             "both builds running")
    nodes = {u: json.loads(j.data[0])["node"] for u, j in jobs.items()}
    assert sorted(nodes.values()) == ["node0", "node1"]
    assert sorted(service.running_builds) == sorted(jobs)
    stop = submit(client, stop_function("w1"), encode({"uuid": "conc0000001"}), "stop-1")
    wait_for(lambda: stop.complete, 30, "stop reply")
    assert json.loads(stop.data[-1]) == {"uuid": "conc0000001", "stopping": True}
    wait_for(lambda: jobs["conc0000001"].complete, 60, "aborted build")
    res = json.loads(jobs["conc0000001"].data[-1])
    assert res["result"] == "CANCELED" and res["worker"] == "w1"
    assert (env.settings.log_root / res["log_path"] / "console.txt").exists()
    assert not jobs["conc0000002"].complete
    # Clean stop with abort: the other build is aborted, reported, and the worker leaves.
    service.stop(abort=True, timeout=60)
    wait_for(lambda: jobs["conc0000002"].complete, 30, "second build")
    assert json.loads(jobs["conc0000002"].data[-1])["result"] == "CANCELED"
    for pid_file in pidfiles:
        pids = [int(p) for p in pid_file.read_text().split()]
        wait_for(lambda pids=pids: all(_gone(p) for p in pids), 10, "remote processes gone")


def _gone(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def test_build_functions_filter() -> None:
    jobs = [("a", "small"), ("b", "big"), ("c", None), ("d", "small")]
    assert build_functions(jobs, {"small"}) == ["build:a", "build:a:small", "build:d",
                                               "build:d:small"]
    assert build_functions(jobs, {"small", "big"}, only=["b"]) == ["build:b", "build:b:big"]


def test_clean_stop_lets_running_builds_finish(worker_env: WorkerEnv, service: WorkerService,
                                               client: gear.Client) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"x": "1\n"})
    job = submit(client, build_function(JOB, LABEL),
                 encode(build_args(env, "fin00000001", ref, sha, params={"STANDIN_SLEEP": "3"})),
                 "fin00000001")
    pidfiles = [n.workdir / ".gatekeeper/standin-sleep.pids" for n in env.nodes]
    wait_for(lambda: any(p.exists() and p.read_text().strip() for p in pidfiles), 60,
             "the build to run")
    service.stop(abort=False, timeout=120)  # returns once the build has finished
    wait_for(lambda: job.complete, 30, "the result")
    assert not job.failure
    assert json.loads(job.data[-1])["result"] == "SUCCESS"
    assert service.running_builds == []


def test_refused_build_ends_with_its_reason_and_no_retry(
        worker_env: WorkerEnv, service: WorkerService,
        gearman_server: GearmanServerHandle) -> None:
    """A run script outside the workspace: the worker refuses it at once; the
    launcher hears why and that a retry would be refused too."""
    env = worker_env
    ref, sha = env.sources.make_change({"f.txt": "x\n"})
    params = {k: v for k, v in build_args(env, "refused0001", ref, sha).items()
              if k != "gatekeeper"}
    events = EventLog()
    launcher = GearmanLauncher(gearman_server.host, gearman_server.port, events).start()
    try:
        assert launcher.wait_for_server(10)
        launcher.launch(BuildRequest(uuid="refused0001", job=JOB, label=LABEL, parameters=params,
                                     run="/srv/jobs/job.sh"))
        done = events.wait_for(BuildCompleted, "refused0001", timeout=60)[0]
    finally:
        launcher.stop()
    assert done.result == "ERROR"
    assert done.message == ("worker refused the job: invalid run script '/srv/jobs/job.sh': "
                            "must be relative to the workspace")
    assert done.retry is False
    assert not any(isinstance(e, BuildStarted) for e in events.events)  # no node was claimed
    assert service.running_builds == []


def test_restarted_scheduler_stops_a_build_waiting_for_a_node(
        worker_env: WorkerEnv, gearman_server: GearmanServerHandle, client: gear.Client,
        caplog: pytest.LogCaptureFixture) -> None:
    """A build the earlier scheduler launched that a worker took but never reported
    started (it waits for a node) is stopped by the restarted scheduler's abandon,
    instead of running to a result nobody can receive."""
    env = worker_env
    caplog.set_level(logging.INFO, logger="gatekeeper")
    fns = build_functions([(JOB, LABEL)], env.claimer.labels)
    svc = WorkerService(env.executor, fns,
                        [GearServer(gearman_server.host, gearman_server.port)], max_builds=3)
    svc.start(connect_timeout=10)
    try:
        ref, sha = env.sources.make_change({"SLEEP_GATE": "600\n"})
        sleepers = [submit(client, build_function(JOB, LABEL),
                           encode(build_args(env, u, ref, sha)), u)
                    for u in ("busy0000001", "busy0000002")]
        wait_for(lambda: all(j.data for j in sleepers), 90, "both nodes taken")
        old = GearmanLauncher(gearman_server.host, gearman_server.port, EventLog()).start()
        assert old.wait_for_server(10)
        old.launch(request_for(env, "wait0000003", ref, sha))
        wait_for(lambda: "wait0000003" in svc.running_builds, 30, "third build taken")
        old.stop()  # the scheduler is gone; its build waits on the worker for a node
        new = GearmanLauncher(gearman_server.host, gearman_server.port, EventLog()).start()
        try:
            assert new.wait_for_server(10)
            new.abandon("wait0000003", None)
            wait_for(lambda: "wait0000003" not in svc.running_builds, 30,
                     "the abandoned build stopped")
        finally:
            new.stop()
        assert sorted(svc.running_builds) == ["busy0000001", "busy0000002"]
        # stopped by the request, not ended by the claim timing out (30 s here)
        assert any("wait0000003: stop requested (its scheduler restarted)" in r.getMessage()
                   for r in caplog.records)
    finally:
        svc.stop(abort=True, timeout=60)


def test_failure_output_reports_early_and_fails_the_build(
        worker_env: WorkerEnv, service: WorkerService,
        gearman_server: GearmanServerHandle) -> None:
    """A job output line matching failure-output: BuildFailing while the build runs
    (WORK_DATA), then FAILURE though the script exited 0; the console says why."""
    env = worker_env
    ref, sha = env.sources.make_change({"ok.txt": "fine\n"})
    events = EventLog()
    launcher = GearmanLauncher(gearman_server.host, gearman_server.port, events).start()
    try:
        assert launcher.wait_for_server(10)
        launcher.launch(request_for(env, "fout0000001", ref, sha, change=4343,
                                    failure_output=(r"^devstack gate: \S+ change 4343\b",
                                                    "never printed")))
        early = events.wait_for(BuildFailing, "fout0000001", timeout=90)[0]
        done = events.wait_for(BuildCompleted, "fout0000001", timeout=120)[0]
    finally:
        launcher.stop()
    assert early.pattern == r"^devstack gate: \S+ change 4343\b"
    assert done.result == "FAILURE"
    assert done.message == r"its output matched failure-output /^devstack gate: \S+ change 4343\b/"
    console = (env.settings.log_root / "43/4343/1/gate/gate-devstack/fout000"
               / "console.txt").read_text()
    assert "Script exited with status 0" in console
    assert "*** this line matches failure-output" in console


def test_bad_failure_output_is_refused(worker_env: WorkerEnv, service: WorkerService,
                                       client: gear.Client) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"x": "1\n"})
    job = submit(client, build_function(JOB, LABEL),
                 encode(build_args(env, "fbad0000001", ref, sha, failure_output=["(unclosed"])),
                 "fbad0000001")
    wait_for(lambda: job.complete, 30, "the refusal")
    result = json.loads(job.data[-1])
    assert result["result"] == "ERROR" and "'failure_output': bad regex" in result["message"]
