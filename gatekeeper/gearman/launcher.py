"""Launch builds as Gearman jobs and turn Gearman traffic into build events.

One gear job per build: function ``build:JOB`` (``build:JOB:LABEL`` when
the job has a node label), unique id = build uuid, JSON arguments = the
build parameters (ZUUL_* at the top level, where job scripts expect them)
plus a ``gatekeeper`` object describing the job (see protocol.py).

Threads: launch() and cancel() only queue work and return; one submitter
thread talks to the server (registration checks, submissions, cancels,
stop requests); gear's poll thread delivers packets to the handlers below,
which emit events to ``event_sink``. Every build gets exactly one
BuildCompleted, except a build cancelled before it was submitted.

Label fallback: when ``build:JOB:LABEL`` has no worker but ``build:JOB``
has, the build goes to ``build:JOB`` (the label travels in the arguments,
so a worker registering only per job still claims the right node).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gear

from gatekeeper.gearman import admin
from gatekeeper.gearman.jobclient import ForwardingClient, JobOwner
from gatekeeper.gearman.protocol import (
    STOP_PREFIX,
    build_function,
    decode,
    encode,
    stop_function,
)
from gatekeeper.interfaces import BuildRequest, EventSink
from gatekeeper.model.events import (
    BuildCompleted,
    BuildFailing,
    BuildProgress,
    BuildStarted,
    ResultEvent,
)
from gatekeeper.model.states import WORKER_RESULTS, BuildResult

log = logging.getLogger("gatekeeper.gearman.launcher")

PRIORITY = {"high": gear.PRECEDENCE_HIGH, "normal": gear.PRECEDENCE_NORMAL,
            "low": gear.PRECEDENCE_LOW}

# Build states, as this launcher knows them.
PENDING, SUBMITTED, RUNNING, DONE = "pending", "submitted", "running", "done"


def one_line(text: str, limit: int = 300) -> str:
    """A reason as one line of at most ``limit`` characters (for reports)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def build_arguments(request: BuildRequest) -> dict[str, Any]:
    """The JSON object a worker receives for ``request``."""
    args: dict[str, Any] = dict(request.parameters)
    args["gatekeeper"] = {
        "job": request.job,
        "label": request.label,
        "timeout": request.timeout,
        "run": request.run,
        "artifacts": list(request.artifacts),
        "projects": list(request.projects),
        "hold_on_failure": request.hold_on_failure,
        "failure_output": list(request.failure_output),
    }
    return args


@dataclass
class _Build:
    request: BuildRequest
    state: str = PENDING
    function: str = ""
    job: gear.TextJob | None = None
    worker: str | None = None
    node: str | None = None
    provider: str | None = None
    url: str | None = None
    abort: bool = False  # cancel() was called after submission
    created: float = field(default_factory=time.monotonic)
    waiting: bool = False  # for a worker to register its function
    stop_sent_to: set[str] = field(default_factory=set)


class GearmanLauncher(JobOwner):
    """``Launcher`` over Gearman. Call start() before launch(), stop() at the end."""

    def __init__(self, host: str, port: int, event_sink: EventSink,
                 client_name: str = "gatekeeper-scheduler",
                 ssl_key: str | None = None, ssl_cert: str | None = None,
                 ssl_ca: str | None = None, submit_timeout: float = 30.0,
                 admin_timeout: float = 5.0, check_interval: float = 10.0,
                 not_registered_grace: float = 60.0):
        self.host = host
        self.port = port
        self.event_sink = event_sink
        self.client_name = client_name
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self._admin = admin.AdminTarget(host, port, ssl_key, ssl_cert, ssl_ca)
        self.submit_timeout = submit_timeout
        self.admin_timeout = admin_timeout
        self.check_interval = check_interval
        # A build whose function has no worker waits this long for one before
        # it ends NOT_REGISTERED: workers restarting (a deploy, a crash) must
        # not vote -1 on every change that arrives meanwhile.
        self.not_registered_grace = not_registered_grace
        self._waiting: dict[str, float] = {}  # uuid -> when to look for a worker again
        self._lock = threading.Lock()
        self._builds: dict[str, _Build] = {}
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._client: ForwardingClient | None = None
        self._thread: threading.Thread | None = None
        self._stop_seq = 0
        self._abandon_any: list[str] = []  # builds of an earlier process, worker unknown

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> GearmanLauncher:
        if self._client is None:
            self._start_client(self.client_name, self.host, self.port, self._ssl, self._run,
                               "gearman-launcher")
        return self

    def stop(self) -> None:
        self._stop_client(self._work, self.submit_timeout + self.admin_timeout + 5)

    @property
    def client(self) -> gear.Client | None:
        """The underlying gear client (tests inspect its sockets)."""
        return self._client

    # --- Launcher protocol (scheduler thread) -------------------------------

    def launch(self, request: BuildRequest) -> None:
        if self._client is None:
            raise RuntimeError("GearmanLauncher.start() was not called")
        with self._lock:
            if request.uuid in self._builds:
                log.warning("build %s already launched; ignoring", request.uuid)
                return
            self._builds[request.uuid] = _Build(request)
        self._work.put(("launch", request.uuid))

    def cancel(self, build_uuid: str) -> bool:
        with self._lock:
            build = self._builds.get(build_uuid)
            if build is None or build.state == DONE:
                return False
            if build.state == PENDING and build.job is None:
                # Not handed to Gearman yet: it never will be.
                build.state = DONE
                del self._builds[build_uuid]
                log.info("build %s cancelled before submission", build_uuid)
                return True
            build.abort = True
            if build.state == PENDING:
                # submitJob is under way: the server may hold the job already. _submit
                # cancels it as soon as the handle is known; CANCELED follows.
                return False
        self._work.put(("cancel", build_uuid))
        return False

    def abandon(self, build_uuid: str, worker: str | None) -> None:
        """Ask ``worker`` to stop a build an earlier scheduler process launched
        (its result cannot reach this one: Gearman foreground jobs die with
        their client). The worker aborts it and releases its node."""
        if worker is None:
            # Not known to have started: a worker may still have taken it (it is waiting
            # for a node, or its first report was not recorded). gearmand hands out no
            # queued job of a client that is gone, so asking every worker now covers it.
            with self._lock:
                first = not self._abandon_any
                self._abandon_any.append(build_uuid)
            if first:
                self._work.put(("abandon-any", ""))
            return
        self._work.put(("abandon", f"{build_uuid} {worker}"))

    def in_flight(self) -> list[str]:
        with self._lock:
            return [u for u, b in self._builds.items() if b.state != DONE]

    # --- submitter thread ---------------------------------------------------

    def _run(self) -> None:
        next_check = time.monotonic() + self.check_interval
        while True:
            wake = min([next_check, *self._waiting.values()])
            timeout = max(0.0, wake - time.monotonic())
            try:
                item = self._work.get(timeout=timeout)
            except queue.Empty:
                item = ("check", "")
            if item is None:
                return
            what, uuid = item
            try:
                if what == "launch":
                    self._submit(uuid)
                elif what == "cancel":
                    self._cancel(uuid)
                elif what == "stop":
                    self._send_stop(uuid)
                elif what == "abandon":
                    build_uuid, worker = uuid.split(" ", 1)
                    self._ask_stop(build_uuid, worker, f"stop:{build_uuid}:restart")
                elif what == "abandon-any":
                    self._stop_everywhere()
            except Exception:
                log.exception("gearman launcher: %s %s failed", what, uuid)
                if what == "launch":
                    self._finish(uuid, BuildResult.LOST, message="could not submit the build")
            now = time.monotonic()
            for due_uuid in [u for u, due in self._waiting.items() if due <= now]:
                del self._waiting[due_uuid]
                self._submit(due_uuid)
            if time.monotonic() >= next_check:
                try:
                    self._check_orphans()
                except Exception:
                    log.exception("gearman launcher: orphan check failed")
                next_check = time.monotonic() + self.check_interval

    def _choose_function(self, request: BuildRequest) -> str | None:
        status = admin.status(self._admin, timeout=self.admin_timeout)

        def has_worker(name: str) -> bool:
            st = status.get(name)
            return bool(st and st.workers > 0)

        if request.label:
            labelled = build_function(request.job, request.label)
            if has_worker(labelled):
                return labelled
        plain = build_function(request.job)
        return plain if has_worker(plain) else None

    def _submit(self, uuid: str) -> None:
        with self._lock:
            build = self._builds.get(uuid)
            if build is None or build.state != PENDING:
                return  # cancelled meanwhile
            request = build.request
        client = self._client
        assert client is not None
        try:
            client.waitForServer(self.submit_timeout)
            function = self._choose_function(request)
        except (gear.TimeoutError, admin.AdminError) as e:
            self._finish(uuid, BuildResult.LOST, message=f"gearman server unavailable: {e}")
            return
        if function is None:
            wanted = build_function(request.job, request.label)
            waited = time.monotonic() - build.created
            if waited < self.not_registered_grace:
                if not build.waiting:
                    build.waiting = True
                    log.info("build %s: no worker registered for %s yet; waiting up to %.0fs",
                             uuid, wanted, self.not_registered_grace - waited)
                self._waiting[uuid] = time.monotonic() + min(
                    1.0, self.not_registered_grace - waited)
                return
            self._finish(uuid, BuildResult.NOT_REGISTERED,
                         message=f"no worker registered for {wanted}")
            return
        job = gear.TextJob(function, encode(build_arguments(request)), unique=uuid)
        with self._lock:
            if build.state != PENDING:
                return
            build.function = function
            build.job = job
        try:
            client.submitJob(job, precedence=PRIORITY.get(request.precedence,
                                                          gear.PRECEDENCE_NORMAL),
                             timeout=self.submit_timeout)
        except gear.GearmanError as e:
            self._finish(uuid, BuildResult.LOST, message=f"could not submit: {e}")
            return
        with self._lock:
            if build.state == PENDING:
                build.state = SUBMITTED
            abort = build.abort
        log.info("build %s submitted as %s (%s)", uuid, function, job.handle)
        if abort:
            self._cancel(uuid)

    def _cancel(self, uuid: str) -> None:
        with self._lock:
            build = self._builds.get(uuid)
            if build is None or build.state in (DONE, PENDING):
                return
            job, state = build.job, build.state
        if state == SUBMITTED and job is not None and job.connection is not None:
            req = gear.CancelJobAdminRequest(job.handle)
            try:
                job.connection.sendAdminRequest(req, timeout=self.admin_timeout)
                reply = (req.response or b"").strip()
            except Exception as e:  # timeout or connection gone
                log.warning("cancel of %s: no answer from gearman: %s", uuid, e)
                reply = b""
            if reply.startswith(b"OK"):
                # gearmand then sends WORK_FAIL, gear.Server nothing: settle
                # the build now and forget the job either way.
                job.connection.related_jobs.pop(job.handle, None)
                self._finish(uuid, BuildResult.CANCELED, message="cancelled while queued")
                return
            log.info("build %s is not queued any more (%r); asking its worker to stop",
                     uuid, reply)
        self._send_stop(uuid)

    def _send_stop(self, uuid: str) -> None:
        with self._lock:
            build = self._builds.get(uuid)
            if build is None or build.state == DONE or not build.abort:
                return
            worker = build.worker
            if worker is None or worker in build.stop_sent_to:
                return  # asked already, or not started: _on_data sends it
            build.stop_sent_to.add(worker)
            self._stop_seq += 1
            unique = f"stop:{uuid}:{self._stop_seq}"
        self._ask_stop(uuid, worker, unique)

    def _ask_stop(self, uuid: str, worker: str, unique: str) -> None:
        function = stop_function(worker)
        try:
            if not admin.registered(self._admin, function, timeout=self.admin_timeout):
                log.warning("build %s: %s has no worker; the build ends when its worker "
                            "is gone", uuid, function)
                return
            assert self._client is not None
            self._client.submitJob(gear.TextJob(function, encode({"uuid": uuid}), unique=unique),
                                   timeout=self.submit_timeout)
            log.info("build %s: asked %s to stop it", uuid, worker)
        except (gear.GearmanError, admin.AdminError) as e:
            log.warning("build %s: could not ask %s to stop: %s", uuid, worker, e)

    def _stop_everywhere(self) -> None:
        """One stop request per registered worker naming every abandoned build
        whose worker is unknown (a worker not running one of them says so)."""
        with self._lock:
            uuids, self._abandon_any = self._abandon_any, []
        if not uuids:
            return
        try:
            functions = sorted(f for f, st in admin.status(
                self._admin, timeout=self.admin_timeout).items()
                if f.startswith(STOP_PREFIX) and st.workers > 0)
        except admin.AdminError as e:
            log.warning("could not ask the workers to stop %d builds of the earlier "
                        "process: %s", len(uuids), e)
            return
        assert self._client is not None
        for function in functions:
            with self._lock:
                self._stop_seq += 1
                unique = f"stop-any:{self._stop_seq}"
            try:
                self._client.submitJob(gear.TextJob(function, encode({"uuids": uuids}),
                                                    unique=unique),
                                       timeout=self.submit_timeout)
            except gear.GearmanError as e:
                log.warning("could not ask %s to stop builds of the earlier process: %s",
                            function, e)
        log.info("asked %d workers to stop %d builds of the earlier process, if they have "
                 "them", len(functions), len(uuids))

    def _check_orphans(self) -> None:
        """Settle builds whose function lost every worker.

        gearmand re-queues the job of a worker that died; with no worker
        left for its function it would wait forever. A running build's
        worker is registered for its function, so zero workers means
        nobody runs or will run it."""
        with self._lock:
            watched = [(u, b.function, b.job) for u, b in self._builds.items()
                       if b.state in (SUBMITTED, RUNNING) and b.function]
        if not watched:
            return
        try:
            status = admin.status(self._admin, timeout=self.admin_timeout)
        except admin.AdminError as e:
            log.debug("orphan check skipped: %s", e)
            return
        for uuid, function, job in watched:
            st = status.get(function)
            if st is not None and st.workers > 0:
                continue
            log.warning("build %s: no worker left for %s", uuid, function)
            if job is not None and job.connection is not None and job.handle:
                try:
                    job.connection.sendAdminRequest(gear.CancelJobAdminRequest(job.handle),
                                                    timeout=self.admin_timeout)
                except Exception as e:
                    log.debug("cancel of orphan %s: %s", uuid, e)
                job.connection.related_jobs.pop(job.handle, None)
            self._finish(uuid, BuildResult.LOST, message=f"no worker left for {function}")

    # --- gear poll thread ---------------------------------------------------

    def _build_for(self, job: gear.Job) -> _Build | None:
        build = self._builds.get(job.unique) if job.unique else None
        if build is None or build.job is not job:
            return None  # a stop request, or a build already settled
        return build

    def _on_data(self, job: gear.Job, raw: bytes) -> None:
        try:
            data = decode(raw)
        except ValueError as e:
            log.warning("ignoring WORK_DATA that is not a JSON object: %s", e)
            return
        with self._lock:
            build = self._build_for(job)
            if build is None or build.state == DONE:
                return
            first = build.state != RUNNING
            build.state = RUNNING
            for key in ("worker", "node", "provider", "url"):
                if data.get(key):
                    setattr(build, key, str(data[key]))
            event = BuildStarted(build.request.uuid, build.worker, build.node, build.provider,
                                 build.url) if first else None
            wants_stop = build.abort and build.worker not in build.stop_sent_to
        if event is not None:
            self._emit(event)
        if isinstance(data.get("failing"), str):
            self._emit(BuildFailing(build.request.uuid, data["failing"][:1000]))
        if wants_stop:
            self._work.put(("stop", build.request.uuid))

    def _on_status(self, job: gear.Job) -> None:
        with self._lock:
            build = self._build_for(job)
            if build is None or build.state == DONE:
                return
        try:
            event = BuildProgress(build.request.uuid, int(job.numerator), int(job.denominator))
        except (TypeError, ValueError):
            return
        self._emit(event)

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        with self._lock:
            build = self._build_for(job)
        if build is None:
            return
        try:
            data = decode(raw)
        except ValueError as e:
            self._finish(build.request.uuid, BuildResult.ERROR,
                         message=f"bad result from worker: {e}")
            return
        word = str(data.get("result") or "")
        message = data.get("message")
        result = BuildResult.from_worker(word)
        retry = data.get("retry") is not False
        if build.abort:
            # We asked it to stop: CANCELED whatever the worker says (as in _on_lost).
            result = BuildResult.CANCELED
        elif result is None or result not in WORKER_RESULTS:
            # A word of a newer worker (rolling upgrade) or garbage: neither the
            # change's success nor its failure: an infrastructure error, retried
            # within the job's attempts unless the worker said not to.
            message = f"worker returned an unknown result {word!r}" + (
                f": {message}" if message else "")
            result = BuildResult.ERROR
        elif result == BuildResult.CANCELED:
            # Stopped, but not by us: the worker is shutting down and aborted it.
            # Not the change's doing: LOST, launched again within the job's attempts.
            message = f"the worker stopped the build ({message or 'no reason given'})"
            result, retry = BuildResult.LOST, True
        self._finish(build.request.uuid, result, url=data.get("url"), node=data.get("node"),
                     provider=data.get("provider"), worker=data.get("worker"),
                     message=message, retry=retry)

    def _on_lost(self, job: gear.Job, why: str) -> None:
        with self._lock:
            build = self._build_for(job)
        if build is not None:
            # A build we asked to stop ends CANCELED whatever way it ends.
            self._finish(build.request.uuid,
                         BuildResult.CANCELED if build.abort else BuildResult.LOST, message=why)

    # --- helpers ------------------------------------------------------------

    def _finish(self, uuid: str, result: BuildResult, url: Any = None, node: Any = None,
                provider: Any = None, worker: Any = None, message: Any = None,
                retry: bool = True) -> None:
        with self._lock:
            build = self._builds.pop(uuid, None)
            if build is None or build.state == DONE:
                return
            build.state = DONE
            event = BuildCompleted(
                uuid, result, url=url or build.url, node=node or build.node,
                provider=provider or build.provider, worker=worker or build.worker,
                message=one_line(str(message)) if message else None, retry=retry)
        log.info("build %s: %s%s", uuid, result, f" ({message})" if message else "")
        self._emit(event)

    def _emit(self, event: ResultEvent) -> None:
        try:
            self.event_sink(event)
        except Exception:
            log.exception("event sink failed for %r", event)
