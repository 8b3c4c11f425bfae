"""Run one build the way devstack-gate did.

claim a node -> WORK_DATA -> clone the projects at the speculative refs ->
rsync the workspace to the node -> run the job's script over ssh (console
streamed to console.txt) -> enforce the timeout / honour a stop request ->
collect the logs -> release (or hold) the node -> publish the logs -> result.

Results: SUCCESS / FAILURE (the script's exit status), TIMED_OUT, CANCELED
(stop request), NODE_FAILURE (no node, or the node could not be reached
before or while the script ran: the scheduler may retry elsewhere) and
ERROR (the workspace could not be prepared)."""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gatekeeper.interfaces import NodeClaimer, NodeLease
from gatekeeper.model.states import BuildResult, NodeState
from gatekeeper.ssh import SshError
from gatekeeper.worker import logs
from gatekeeper.worker.buildargs import BuildSpec
from gatekeeper.worker.ssh import SSH_FAILED, SshNode
from gatekeeper.worker.workspace import WorkspaceBuilder, WorkspaceError

log = logging.getLogger("gatekeeper.worker.executor")

# Progress steps reported with WORK_STATUS (numerator / STEPS).
STEPS = 6
STEP_CLAIMED, STEP_PREPARED, STEP_PUSHED, STEP_RAN, STEP_COLLECTED, STEP_DONE = range(1, 7)
STEP_NAMES = ("claimed", "workspace prepared", "workspace copied", "script done",
              "logs collected", "done")


class BuildReporter(Protocol):
    """Where progress goes (the Gearman job in the service, a list in tests)."""

    def data(self, payload: dict[str, object]) -> None: ...

    def status(self, numerator: int, denominator: int) -> None: ...


@dataclass
class ExecutorSettings:
    worker_name: str
    jobs_root: Path  # private per-build directories: jobs_root/<uuid>
    log_root: Path  # published logs: log_root/<LOG_PATH>
    log_url: str  # URL of log_root
    claim_timeout: float = 3600.0
    default_timeout: float = 3 * 3600.0  # for jobs without a timeout
    hold_for: float = 24 * 3600.0  # hold of a failed build's node
    gzip_threshold: int = logs.DEFAULT_GZIP_THRESHOLD
    kill_grace: float = 10.0  # TERM -> KILL of the remote process group
    connect_timeout: float = 15.0
    poll_interval: float = 0.2
    keep_build_dirs: bool = False  # keep jobs_root/<uuid> after the build (debugging)


@dataclass
class BuildOutcome:
    result: BuildResult
    log_url: str | None = None
    log_path: str | None = None
    node: str | None = None
    provider: str | None = None
    message: str = ""
    heads: list[str] = field(default_factory=list)
    retry: bool = True  # False: another attempt would end the same way

    def payload(self, worker: str, elapsed: float) -> dict[str, object]:
        return {"result": self.result, "log_url": self.log_url, "url": self.log_url,
                "log_path": self.log_path, "node": self.node, "provider": self.provider,
                "worker": worker, "message": self.message, "elapsed": round(elapsed, 3),
                "retry": self.retry}


class Console:
    """console.txt, appended to line by line from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "a", encoding="utf-8", errors="replace", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._f.close()


NodeConnector = Callable[[NodeLease, Path], SshNode]


class BuildExecutor:
    """Runs builds; one instance is shared by all executor threads of a worker."""

    def __init__(self, settings: ExecutorSettings, claimer: NodeClaimer,
                 workspace: WorkspaceBuilder, connect: NodeConnector | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.claimer = claimer
        self.workspace = workspace
        self._connect = connect or (lambda lease, state: SshNode(
            lease, state, connect_timeout=settings.connect_timeout))
        self._clock = clock
        self._started: dict[str, float] = {}  # build uuid -> start (for step timings)

    def log_url_for(self, log_path: str) -> str:
        return f"{self.settings.log_url.rstrip('/')}/{log_path}/"

    def run(self, spec: BuildSpec, reporter: BuildReporter, stop: threading.Event) -> BuildOutcome:
        s = self.settings
        build_dir = s.jobs_root / spec.uuid
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        out = BuildOutcome(BuildResult.ERROR, log_path=spec.log_path)
        self._started[spec.uuid] = self._clock()
        try:
            return self._run(spec, reporter, stop, build_dir, out)
        finally:
            self._started.pop(spec.uuid, None)
            if not s.keep_build_dirs:
                shutil.rmtree(build_dir, ignore_errors=True)

    def _run(self, spec: BuildSpec, reporter: BuildReporter, stop: threading.Event,
             build_dir: Path, out: BuildOutcome) -> BuildOutcome:
        s = self.settings
        if not spec.label:
            out.result, out.message = BuildResult.ERROR, f"job {spec.job} has no node label"
            out.retry = False
            return out
        try:
            lease = self._claim(spec, stop)
        except Exception as e:  # any claimer failure: the scheduler retries the build
            log.warning("build %s: cannot claim a %s node: %s", spec.uuid, spec.label, e)
            out.result, out.message = BuildResult.NODE_FAILURE, f"no node: {e}"
            return out
        if lease is None:
            out.result, out.message = BuildResult.CANCELED, "stopped while waiting for a node"
            return out
        out.node, out.provider = lease.node_id, lease.provider
        out.log_url = self.log_url_for(spec.log_path)
        console = self._open_console(spec, build_dir)
        release_state = NodeState.USED
        try:
            reporter.data({"worker": s.worker_name, "node": lease.node_id,
                           "provider": lease.provider, "url": out.log_url})
            self._step(spec, reporter, STEP_CLAIMED)
            try:
                out.result = self._on_node(spec, lease, reporter, stop, build_dir, console, out)
            except Exception as e:  # a bug of ours: still release the node and publish
                log.exception("build %s: internal error", spec.uuid)
                console(f"ERROR: internal error of the worker: {type(e).__name__}: {e}")
                out.result, out.message = BuildResult.ERROR, f"internal error: {type(e).__name__}"
            if (out.result in (BuildResult.FAILURE, BuildResult.TIMED_OUT) and spec.hold_on_failure
                    and s.hold_for > 0):
                release_state = NodeState.HOLD
            console(f"Build {spec.uuid}: {out.result}")
        finally:
            console.close()
            self._release(lease, release_state, spec, out.result)
        try:
            logs.publish(console.path, build_dir / "collected",
                         s.log_root / spec.log_path, s.gzip_threshold)
        except OSError as e:
            log.error("build %s: cannot publish logs to %s: %s", spec.uuid,
                      s.log_root / spec.log_path, e)
            out.message = (out.message + "; " if out.message else "") + "logs not published"
            out.log_url = None
        self._step(spec, reporter, STEP_DONE)
        log.info("build %s (%s) on %s: %s", spec.uuid, spec.job, lease.node_id, out.result)
        return out

    def _open_console(self, spec: BuildSpec, build_dir: Path) -> Console:
        """The console, written live where it is published (the WORK_DATA url
        shows a running build); in the build dir if the log root is unwritable."""
        try:
            return Console(logs.start_log_dir(self.settings.log_root / spec.log_path)
                           / logs.CONSOLE)
        except OSError as e:
            log.error("build %s: cannot write logs under %s: %s", spec.uuid,
                      self.settings.log_root, e)
            return Console(build_dir / logs.CONSOLE)

    def _claim(self, spec: BuildSpec, stop: threading.Event) -> NodeLease | None:
        """Claim a node; None if ``stop`` is set first.

        ``NodeClaimer.claim`` blocks and cannot be interrupted, so it runs on
        its own thread; a lease that arrives after a stop is released at once."""
        assert spec.label
        box: list[NodeLease | BaseException] = []
        done = threading.Event()
        lock = threading.Lock()  # decides who owns a lease arriving during a stop
        abandoned = [False]

        def claim() -> None:
            try:
                got: NodeLease | BaseException = self.claimer.claim(
                    spec.label or "", spec.uuid, self.settings.claim_timeout,
                    project=spec.project, job=spec.job)
            except BaseException as e:  # handed to the build thread
                got = e
            with lock:
                box.append(got)
                done.set()
                orphan = abandoned[0]
            if orphan and isinstance(got, NodeLease):
                self._release(got, NodeState.USED, spec, BuildResult.CANCELED)

        threading.Thread(target=claim, name=f"claim-{spec.uuid[:7]}", daemon=True).start()
        while not done.wait(self.settings.poll_interval):
            if stop.is_set():
                with lock:
                    if not done.is_set():
                        abandoned[0] = True
                        log.info("build %s: stopped while waiting for a %s node", spec.uuid,
                                 spec.label)
                        return None
                break  # the claim finished meanwhile: go on (and abort just after)
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def _step(self, spec: BuildSpec, reporter: BuildReporter, step: int) -> None:
        log.debug("build %s: %s (%.2fs)", spec.uuid, STEP_NAMES[step - 1],
                  self._clock() - self._started.get(spec.uuid, self._clock()))
        reporter.status(step, STEPS)

    def _release(self, lease: NodeLease, state: str, spec: BuildSpec, result: str) -> None:
        try:
            self.claimer.release(lease, state,
                                 hold_for=self.settings.hold_for if state == NodeState.HOLD else None,
                                 reason=f"build {spec.uuid} ({spec.job}) {result}",
                                 build=spec.uuid, result=result)
        except Exception:  # the pool reaps leaked claims; the build result stands
            log.exception("build %s: releasing node %s failed", spec.uuid, lease.node_id)

    def _on_node(self, spec: BuildSpec, lease: NodeLease, reporter: BuildReporter,
                 stop: threading.Event, build_dir: Path, console: Console,
                 out: BuildOutcome) -> BuildResult:
        s = self.settings
        console(f"NODE_PROVIDER={lease.provider}")
        console(f"NODE_NAME={lease.node_id}")
        console(f"WORKER={s.worker_name}")
        console(f"Building {spec.job} ({spec.uuid}) for {spec.project} "
                f"{spec.params.get('ZUUL_CHANGE', '')},{spec.params.get('ZUUL_PATCHSET', '')}")
        if stop.is_set():
            console("Build aborted before it started")
            return BuildResult.CANCELED
        workspace = build_dir / "workspace"
        try:
            heads = self.workspace.prepare(workspace, spec, console)
        except WorkspaceError as e:
            console(f"ERROR preparing the workspace: {e}")
            out.message = str(e)
            return BuildResult.ERROR
        console("Git heads:")
        for h in heads:
            console(f"  {h.line()}")
        out.heads = [h.line() for h in heads]
        if spec.run and not (workspace / spec.run).is_file():
            # Still run it: if the change removed the script, FAILURE is the right answer.
            console(f"WARNING: the run script {spec.run} is not in the workspace")
        self._step(spec, reporter, STEP_PREPARED)
        if stop.is_set():
            console("Build aborted before it started")
            return BuildResult.CANCELED
        try:
            node = self._connect(lease, build_dir / "ssh")
        except (ValueError, OSError) as e:
            console(f"NODE_FAILURE: bad node details: {e}")
            out.retry = False  # the same node details next time
            out.message = str(e)
            return BuildResult.NODE_FAILURE
        try:
            try:
                console(f"Copying the workspace to {lease.node_id}:{node.workdir}")
                node.push(workspace)
            except (SshError, OSError) as e:
                console(f"NODE_FAILURE: cannot copy the workspace to the node: {e}")
                out.message = str(e)
                return BuildResult.NODE_FAILURE
            self._step(spec, reporter, STEP_PUSHED)
            result = self._run_script(spec, lease, node, stop, console, out, reporter)
            self._step(spec, reporter, STEP_RAN)
            if result != BuildResult.NODE_FAILURE or node_reachable(node):
                console("Collecting logs")
                logs.collect(node, build_dir / "collected", spec.artifacts, console)
            self._step(spec, reporter, STEP_COLLECTED)
            return result
        finally:
            node.close()

    def _run_script(self, spec: BuildSpec, lease: NodeLease, node: SshNode,
                    stop: threading.Event, console: Console, out: BuildOutcome,
                    reporter: BuildReporter) -> BuildResult:
        s = self.settings
        if not spec.run:
            console(f"Job {spec.job} has no script to run")
            out.message, out.retry = "the job has no run script", False
            return BuildResult.ERROR
        env = dict(spec.params)
        env.update(NODE_PROVIDER=lease.provider, NODE_NAME=lease.node_id)
        env.pop("WORKSPACE", None)  # set by the job wrapper on the node (absolute path)
        timeout = spec.timeout or s.default_timeout
        console(f"Running {spec.run} (timeout {timeout:g}s)")
        started = self._clock()
        watch = FailureWatch(spec.failure_output, console, reporter)
        proc = node.start_job([f"./{spec.run}"], env, watch if spec.failure_output else console)
        why: BuildResult | None = None
        while True:
            rc = proc.wait(s.poll_interval)
            if rc is not None:
                break
            if stop.is_set():
                why = BuildResult.CANCELED
            elif self._clock() - started > timeout:
                why = BuildResult.TIMED_OUT
            if why:
                break
        elapsed = self._clock() - started
        if why:
            stopped = why == BuildResult.CANCELED
            console(f"*** {'Stop requested' if stopped else 'Build timed out'} "
                    f"after {elapsed:.0f}s: killing the job's process group")
            try:
                console(f"*** {node.kill_job(s.kill_grace)}")
            except SshError as e:
                console(f"*** could not kill the remote job: {e}")
            proc.terminate(grace=s.kill_grace)
            out.message = "stopped" if stopped else f"timed out after {timeout:g}s"
            return why
        console(f"Script exited with status {rc} after {elapsed:.0f}s")
        if watch.matched is not None:
            out.message = f"its output matched failure-output /{watch.matched}/"
            return BuildResult.FAILURE  # whatever the script's status: reported as failing
        if rc == 0:
            return BuildResult.SUCCESS
        if rc == SSH_FAILED:
            # Also ssh's status when the connection broke: ask the node what the job did.
            try:
                status = node.job_status()
                if status is None:
                    console(f"*** {node.kill_job(s.kill_grace)}")  # whatever is left of it
            except SshError as e:
                console(f"NODE_FAILURE: lost the node during the build: {e}")
                out.message = str(e)
                return BuildResult.NODE_FAILURE
            if status is None:
                console("NODE_FAILURE: lost the connection to the node during the build")
                out.message = "lost the connection to the node"
                return BuildResult.NODE_FAILURE
        return BuildResult.FAILURE


class FailureWatch:
    """The job's output on its way to the console: the first line matching one of
    the job's ``failure-output`` patterns is reported at once (WORK_DATA
    ``failing``), so the scheduler can treat the build as failed while it runs;
    the build then ends FAILURE. Called from the output reader thread."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...], console: Callable[[str], None],
                 reporter: BuildReporter) -> None:
        self.patterns = patterns
        self.console = console
        self.reporter = reporter
        self.matched: str | None = None

    def __call__(self, line: str) -> None:
        self.console(line)
        if self.matched is not None:
            return
        for p in self.patterns:
            if p.search(line):
                self.matched = p.pattern
                self.console(f"*** this line matches failure-output /{p.pattern}/: the build "
                             "fails (reported now; the job runs on for its logs)")
                try:
                    self.reporter.data({"failing": p.pattern})
                except Exception as e:  # the result still says FAILURE
                    log.warning("early failure not reported: %s", e)
                return


def node_reachable(node: SshNode) -> bool:
    try:
        node.run(["true"], timeout=30)
        return True
    except SshError:
        return False
