"""The build executor against real sshd nodes, real git (daemon) and real rsync."""

from __future__ import annotations

import gzip
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.gearman.protocol import build_function
from gatekeeper.worker.buildargs import parse_build_args
from gatekeeper.worker.executor import BuildOutcome
from gatekeeper.worker.ssh import SshNode
from tests.fixtures import worker as fx
from tests.fixtures.worker import (
    DEVSTACK,
    JOB,
    LABEL,
    PROJECT,
    WorkerEnv,
    build_args,
    git,
    wait_for,
)

git_sources = fx.git_sources
worker_env = fx.worker_env

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def data(self, payload: dict[str, object]) -> None:
        self.events.append(("data", payload))

    def status(self, n: int, d: int) -> None:
        self.events.append(("status", (n, d)))


class RecordingClaimer:
    """Wraps the real claimer to record releases."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.releases: list[tuple[str, str, float | None]] = []

        self.claims: list[tuple[str, str]] = []  # (project, job) passed for autohold
        self.results: list[str] = []

    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> Any:
        self.claims.append((project, job))
        return self.inner.claim(label, build_uuid, timeout)

    def release(self, lease: Any, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> None:
        self.releases.append((lease.node_id, state, hold_for))
        self.results.append(result)
        self.inner.release(lease, state, hold_for, reason)


def run_build(env: WorkerEnv, args: dict[str, Any], stop: threading.Event | None = None
              ) -> tuple[BuildOutcome, Recorder, RecordingClaimer]:
    rec, claimer = Recorder(), RecordingClaimer(env.claimer)
    env.executor.claimer = claimer
    spec = parse_build_args(build_function(JOB, LABEL), args)
    out = env.executor.run(spec, rec, stop or threading.Event())
    return out, rec, claimer


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


def node_of(env: WorkerEnv, name: str | None) -> Any:
    return next(n for n in env.nodes if n.name == name)


def test_success_speculative_workspace_logs_and_release(worker_env: WorkerEnv) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"feature.txt": "speculative\n"}, subject="Add feature")
    args = build_args(env, "a1b2c3d4e5f6", ref, sha, change=98765,
                      params={"STANDIN_BIG_LOG": str(200 * 1024)})
    args["gatekeeper"]["artifacts"] = ["stack/devstacklog.txt", "missing/thing",
                                       "stack/.stack-stat*"]
    made: list[SshNode] = []

    def connect(lease: Any, state: Path) -> SshNode:
        made.append(SshNode(lease, state))
        return made[-1]

    env.executor._connect = connect
    out, rec, claimer = run_build(env, args)
    assert out.result == "SUCCESS", out
    # The build's shared ssh connection (ControlMaster) is gone with it.
    assert len(made) == 1 and made[0]._control_dir is None
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if b"gk-ssh-" in _read(p) and str(made[0].known_hosts).encode() in _read(p)]
    node = node_of(env, out.node)
    # The node's workspace holds the speculative tree of the change, and devstack.
    ws = node.workdir
    assert (ws / PROJECT / "feature.txt").read_text() == "speculative\n"
    assert (ws / DEVSTACK / "stack.sh").exists()
    # WORK_DATA first, with the node; progress after.
    kind, data = rec.events[0]
    assert kind == "data" and data["node"] == out.node and data["provider"] == "local-test"
    assert data["worker"] == "w1" and data["url"] == out.log_url
    assert [e for e in rec.events if e[0] == "status"][-1] == ("status", (6, 6))
    # Published at LOG_PATH.
    assert out.log_path == "65/98765/1/gate/gate-devstack/a1b2c3d"
    assert out.log_url == f"http://127.0.0.1:1/logs/{out.log_path}/"
    pub = env.settings.log_root / out.log_path
    console = (pub / "console.txt").read_text()
    lines = console.splitlines()
    assert lines[0] == "NODE_PROVIDER=local-test"
    assert f"  {PROJECT}: {sha[:7]} Add feature ({ref})" in lines
    assert any(line.startswith(f"  {DEVSTACK}: ") and "(master)" in line for line in lines)
    assert lines.index("Git heads:") < 30
    assert "devstack gate: SUCCESS" in console
    assert "SUCCESS n-api" in console
    # .log -> .txt, big text gzipped, syslog and artifacts collected.
    logs = pub / "logs"
    assert (logs / "screen-key.txt").read_text().count("listening") == 1
    assert not list(logs.glob("*.log"))
    big = logs / "screen-big.txt.gz"
    assert big.exists() and not (logs / "screen-big.txt").exists()
    assert len(gzip.decompress(big.read_bytes())) == 200 * 1024
    assert "key[" in (logs / "syslog.txt").read_text()
    assert "stack.sh completed" in (logs / "devstacklog.txt").read_text()
    assert "PASSWORD=<hidden>" in (logs / "localrc.txt").read_text()
    assert "artifact missing/thing not found on the node" in console
    assert (logs / ".stack-status").read_text() == "ok\n"  # matched by the wildcard artifact
    assert not list(logs.glob("*[*]*"))
    # Released for reuse; the private build dir is gone.
    assert claimer.releases == [(out.node, "used", None)]
    assert not (env.settings.jobs_root / "a1b2c3d4e5f6").exists()


def test_failure_holds_node(worker_env: WorkerEnv) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"FAIL_GATE": "broken\n"})
    out, _, claimer = run_build(env, build_args(env, "fail0000001", ref, sha))
    assert out.result == "FAILURE"
    assert claimer.releases == [(out.node, "hold", 24 * 3600.0)]
    # The pool needs these to apply `gatekeeper autohold PROJECT JOB`.
    assert claimer.claims == [("org/project", JOB)] and claimer.results == ["FAILURE"]
    held = [s for s in env.claimer.state() if s["name"] == out.node][0]
    assert held["held_until"] is not None and held["build"] is None
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "FAILED gate (org/project/FAIL_GATE)" in console
    # hold_on_failure: false releases the node for reuse.
    ref, sha = env.sources.make_change({"FAIL_GATE": "broken\n"})
    out, _, claimer = run_build(env, build_args(env, "fail0000002", ref, sha,
                                                hold_on_failure=False))
    assert out.result == "FAILURE"
    assert claimer.releases == [(out.node, "used", None)]


def pids_gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie is gone for our purpose only if it is not ours; check its state.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            return False
    return True


def test_timeout_kills_remote_process_group(worker_env: WorkerEnv) -> None:
    env = worker_env
    # The executor's clock is ours: the build times out when the test says so,
    # once the job is asleep on the node (no race with a wall-clock timeout).
    skew = [0.0]
    env.executor._clock = lambda: time.monotonic() + skew[0]
    ref, sha = env.sources.make_change({"x": "1\n"})
    args = build_args(env, "time0000001", ref, sha, params={"STANDIN_SLEEP": "600"},
                      timeout=300)
    result: list[tuple[BuildOutcome, RecordingClaimer]] = []
    t = threading.Thread(target=lambda: result.append(run_build(env, args)[::2]))
    t.start()
    pidfiles = [n.workdir / ".gatekeeper/standin-sleep.pids" for n in env.nodes]
    wait_for(lambda: any(p.exists() and p.read_text().strip() for p in pidfiles), 60,
             "the job to sleep")
    skew[0] = 301.0
    t.join(60)
    out, claimer = result[0]
    assert out.result == "TIMED_OUT" and out.message == "timed out after 300s"
    node = node_of(env, out.node)
    pids = [int(p) for p in (node.workdir / ".gatekeeper/standin-sleep.pids").read_text().split()]
    assert len(pids) == 2
    wait_for(lambda: pids_gone(pids), 10, "remote processes to die")
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "Build timed out" in console
    # TERM first; KILL when the group outlives the grace (the job's EXIT trap copying
    # logs can take that long on a loaded machine).
    assert re.search(r"\*\*\* job \d+ (terminated \(TERM\)|killed \(KILL\))", console)
    assert "exercise.sh: sleeping 600 seconds" in console
    # Logs were still collected after the kill.
    assert (env.settings.log_root / out.log_path / "logs" / "screen-key.txt").exists()
    assert claimer.releases == [(out.node, "hold", 24 * 3600.0)]


def test_stop_request_aborts_with_logs(worker_env: WorkerEnv) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"SLEEP_GATE": "600\n"})
    stop = threading.Event()
    result: list[BuildOutcome] = []
    claimer_box: list[RecordingClaimer] = []

    def go() -> None:
        out, _, claimer = run_build(env, build_args(env, "stop0000001", ref, sha), stop)
        result.append(out)
        claimer_box.append(claimer)

    t = threading.Thread(target=go)
    t.start()
    pidfiles = [n.workdir / ".gatekeeper/standin-sleep.pids" for n in env.nodes]
    wait_for(lambda: any(p.exists() and p.read_text().strip() for p in pidfiles), 60,
             "the job to sleep")
    # The console is streamed, live, to where it is published (the WORK_DATA url).
    live = env.settings.log_root / "34/1234/1/gate/gate-devstack/stop000" / "console.txt"
    wait_for(lambda: "exercise.sh: sleeping 600 seconds" in live.read_text(), 30,
             "the live console")
    stop.set()
    t.join(60)
    assert not t.is_alive()
    out = result[0]
    assert out.result == "CANCELED"
    pids = [int(p) for f in pidfiles if f.exists() for p in f.read_text().split()]
    wait_for(lambda: pids_gone(pids), 10, "remote processes to die")
    pub = env.settings.log_root / out.log_path
    assert "Stop requested" in (pub / "console.txt").read_text()
    assert (pub / "logs" / "syslog.txt").exists()
    assert claimer_box[0].releases == [(out.node, "used", None)]


def test_hostile_values_never_execute(worker_env: WorkerEnv) -> None:
    env = worker_env
    marker = env.tmp / "PWNED"
    hostile = [f"$(touch {marker})", f"`touch {marker}`", f"'; touch {marker}; '",
               f"\"; touch {marker}; \"", f"a\ntouch {marker}", f"x && touch {marker} #"]
    ref, sha = env.sources.make_change({"x": "1\n"})
    params = {f"HOSTILE_{i}": v for i, v in enumerate(hostile)}
    params["ZUUL_CHANGE_IDS"] = hostile[0]
    params["DEVSTACK_GATE_VIRT_DRIVER"] = hostile[1]
    args = build_args(env, "host0000001", ref, sha, params=params)
    args["ZUUL_PIPELINE"] = "gate"
    out, _, _ = run_build(env, args)
    assert out.result == "SUCCESS", (env.settings.log_root / out.log_path / "console.txt"
                                     ).read_text()
    assert not marker.exists()
    # The job saw the values literally: the stand-in printed VIRT_DRIVER from localrc.
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert f"VIRT_DRIVER=`touch {marker}`" in console


def test_unreachable_node_is_node_failure(worker_env: WorkerEnv) -> None:
    env = worker_env
    for n in env.nodes:
        n.stop()
    ref, sha = env.sources.make_change({"x": "1\n"})
    out, _, claimer = run_build(env, build_args(env, "dead0000001", ref, sha))
    assert out.result == "NODE_FAILURE"
    assert claimer.releases and claimer.releases[0][1] == "used"
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert console.startswith("NODE_PROVIDER=local-test\n")
    assert "cannot copy the workspace" in console


def test_missing_project_is_error_and_node_released(worker_env: WorkerEnv) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"x": "1\n"})
    args = build_args(env, "miss0000001", ref, sha, projects=[DEVSTACK, "org/nonexistent"])
    out, _, claimer = run_build(env, args)
    assert out.result == "ERROR"
    assert "cannot clone org/nonexistent" in out.message
    assert claimer.releases == [(out.node, "used", None)]


def test_missing_speculative_ref_is_error_not_a_branch_test(worker_env: WorkerEnv) -> None:
    env = worker_env
    _, sha = env.sources.make_change({"x": "1\n"})
    out, _, claimer = run_build(env, build_args(env, "nref0000001",
                                                "refs/gatekeeper/master/Zmissing", sha))
    assert out.result == "ERROR"
    assert "refs/gatekeeper/master/Zmissing not found" in out.message
    assert claimer.releases == [(out.node, "used", None)]
    # A ref item (no change): the branch tip is what is tested.
    ref, sha = env.sources.make_change({"x": "1\n"})
    args = build_args(env, "nref0000002", "refs/heads/nonexistent", sha,
                      params={"ZUUL_CHANGE": "", "ZUUL_PATCHSET": "", "ZUUL_CHANGES": "",
                              "ZUUL_NEWREV": sha, "ZUUL_PIPELINE": "post"})
    out, _, _ = run_build(env, args)
    assert out.result == "SUCCESS", out
    assert out.log_path == f"{sha[:2]}/{sha}/post/gate-devstack/nref000"
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "  org/project: " in console and "(master)" in console


def _mux_master(node: SshNode) -> int:
    """The pid of the build's ssh ControlMaster process."""
    control = str(node._control_dir).encode()
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        cmd = _read(p)
        if control in cmd and b"[mux]" in cmd:
            return int(p.parent.name)
    raise AssertionError("no ssh master process")


@pytest.mark.parametrize("node_down", [False, True])
def test_connection_or_node_lost_mid_build_is_node_failure(worker_env: WorkerEnv,
                                                           node_down: bool) -> None:
    env = worker_env
    made: list[SshNode] = []

    def connect(lease: Any, state: Path) -> SshNode:
        made.append(SshNode(lease, state))
        return made[-1]

    env.executor._connect = connect
    ref, sha = env.sources.make_change({"SLEEP_GATE": "600\n"})
    result: list[tuple[BuildOutcome, RecordingClaimer]] = []
    t = threading.Thread(target=lambda: result.append(
        run_build(env, build_args(env, "lost0000001", ref, sha))[::2]))
    t.start()
    pidfiles = {n.name: n.workdir / ".gatekeeper/standin-sleep.pids" for n in env.nodes}
    busy = wait_for(lambda: next((name for name, p in pidfiles.items()
                                  if p.exists() and p.read_text().strip()), None), 60,
                    "the job to sleep")
    node = node_of(env, busy)
    pgid = int((node.workdir / ".gatekeeper/job.pid").read_text())
    try:
        master = _mux_master(made[0])  # before node.stop(), which ends the sessions
        if node_down:
            node.stop()  # no new connections; the running job is left behind
        try:
            os.kill(master, signal.SIGKILL)  # the connection breaks
        except ProcessLookupError:
            pass  # node.stop() broke it already
        t.join(60)
        out, claimer = result[0]
        assert out.result == "NODE_FAILURE", out
        assert claimer.releases == [(busy, "used", None)]
        console = (env.settings.log_root / out.log_path / "console.txt").read_text()
        if node_down:
            assert "NODE_FAILURE: lost the node during the build" in console
        else:
            assert "lost the connection to the node" in console
            assert re.search(r"\*\*\* job \d+ (terminated|killed)", console)
            pids = [int(p) for p in pidfiles[busy].read_text().split()]
            wait_for(lambda: pids_gone(pids), 10, "remote processes to die")
            assert "Collecting logs" in console
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)  # what a dead node would have taken with it
        except ProcessLookupError:
            pass


def test_script_exit_255_is_failure_not_node_failure(worker_env: WorkerEnv) -> None:
    env = worker_env
    ref, sha = env.sources.make_change({"exit255.sh": "#!/bin/sh\necho bye\nexit 255\n"})
    # git keeps the mode: make the script executable in the change.
    work = env.sources.root / "scratch" / f"c{env.sources.counter}"
    git(work, "update-index", "--chmod=+x", "exit255.sh")
    git(work, "commit", "-q", "--amend", "--no-edit")
    git(work, "push", "-q", "-f", "origin", f"HEAD:{ref}")
    sha = git(work, "rev-parse", "HEAD")
    out, _, _ = run_build(env, build_args(env, "e2550000001", ref, sha,
                                          run="org/project/exit255.sh"))
    assert out.result == "FAILURE", out
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "bye" in console and "NODE_FAILURE" not in console


def test_site_job_script_from_jobs_dir_runs_on_the_node(worker_env: WorkerEnv,
                                                        tmp_path: Path) -> None:
    """worker.jobs_dir: the site's scripts land in .gatekeeper/jobs/ of every
    workspace (executable), beside the shipped ones, and run from there."""
    env = worker_env
    jobs = tmp_path / "site-jobs"
    (jobs / "unit").mkdir(parents=True)
    script = jobs / "unit/run.sh"
    script.write_text('#!/bin/sh\necho "site script in $PWD for $ZUUL_PROJECT"\n'
                      'test -x .gatekeeper/jobs/devstack-vm-gate.sh\n')
    script.chmod(0o755)
    env.executor.workspace.jobs_dir = jobs
    try:
        ref, sha = env.sources.make_change({"x": "1\n"})
        out, _, _ = run_build(env, build_args(env, "site0000001", ref, sha,
                                              run=".gatekeeper/jobs/unit/run.sh"))
    finally:
        env.executor.workspace.jobs_dir = None
    assert out.result == "SUCCESS", out
    console = (env.settings.log_root / out.log_path / "console.txt").read_text()
    assert "site script in " in console and "for org/project" in console
