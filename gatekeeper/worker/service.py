"""The worker service: Gearman in, builds out.

Two gear connections per server: one takes ``build:JOB[:LABEL]`` jobs, but
only while an executor slot is free (a worker never grabs a build it cannot
start); the other serves ``stop:<worker-name>`` at any time, so a stop
request reaches a worker whose slots are all busy.

``reload(functions)`` changes the ``build:`` functions while serving: new
ones are registered at once; a dropped one is unregistered only once no
build of it runs here, because gearmand requeues the jobs a worker is
running for a function it unregisters (CANT_DO) and refuses their results."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gear

from gatekeeper.gearman import protocol
from gatekeeper.gearman.nodelay import NoDelayTextWorker
from gatekeeper.worker.buildargs import BadBuildArgs, parse_build_args
from gatekeeper.worker.console_stream import ConsoleStreamer
from gatekeeper.worker.executor import BuildExecutor

log = logging.getLogger("gatekeeper.worker.service")


@dataclass(frozen=True)
class GearServer:
    host: str
    port: int = 4730
    ssl_key: str | None = None
    ssl_cert: str | None = None
    ssl_ca: str | None = None


def build_functions(jobs: Iterable[tuple[str, str | None]], labels: Iterable[str],
                    only: Iterable[str] | None = None) -> list[str]:
    """The ``build:`` functions to register for ``(job, label)`` pairs.

    A job is served when its label is one of ``labels`` (what the claimer
    can provide) and, if ``only`` is given, its name is listed there."""
    labels = set(labels)
    allowed = set(only) if only is not None else None
    out: list[str] = []
    for job, label in jobs:
        if not label or label not in labels or (allowed is not None and job not in allowed):
            continue
        for fn in (protocol.build_function(job), protocol.build_function(job, label)):
            if fn not in out:
                out.append(fn)
    return out


class _GearReporter:
    def __init__(self, job: gear.WorkerJob) -> None:
        self._job = job

    def data(self, payload: dict[str, object]) -> None:
        try:
            self._job.sendWorkData(protocol.encode(payload))
        except Exception as e:  # the client may be gone; the build goes on
            log.warning("WORK_DATA for %s not sent: %s", self._job.unique, e)

    def status(self, numerator: int, denominator: int) -> None:
        try:
            self._job.sendWorkStatus(numerator, denominator)
        except Exception as e:
            log.warning("WORK_STATUS for %s not sent: %s", self._job.unique, e)


@dataclass
class _Running:
    uuid: str
    job: gear.WorkerJob
    stop: threading.Event
    thread: threading.Thread
    log_path: str = ""  # where its console is written (under log_root)


class WorkerService:
    """The worker's Gearman identity is ``executor.settings.worker_name``: the
    name builds report in WORK_DATA is the one ``stop:<name>`` reaches."""

    def __init__(self, executor: BuildExecutor, functions: Sequence[str],
                 servers: Sequence[GearServer], max_builds: int = 1,
                 on_stop: Callable[[], None] | None = None) -> None:
        if max_builds < 1:
            raise ValueError("max_builds must be at least 1")
        self.name = executor.settings.worker_name
        self.executor = executor
        self.functions = list(functions)  # what the service should serve
        self._reg_lock = threading.Lock()  # guards functions, _registered, _retiring
        self._registered: list[str] = []  # build functions announced with CAN_DO
        self._retiring: set[str] = set()  # to unregister once no build of them is here
        self.servers = list(servers)
        self.max_builds = max_builds
        self._slots = threading.Semaphore(max_builds)
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()
        self._build_worker: gear.Worker | None = None
        self._stop_worker: gear.Worker | None = None
        self._console: ConsoleStreamer | None = None  # live console for the web
        self._threads: list[threading.Thread] = []
        self._on_stop = on_stop  # e.g. closing the pool claimer's Gearman client

    # -- lifecycle -------------------------------------------------------------
    def _connect(self, client_id: str) -> gear.Worker:
        w = NoDelayTextWorker(client_id=client_id)
        for s in self.servers:
            w.addServer(s.host, s.port, s.ssl_key, s.ssl_cert, s.ssl_ca, keepalive=True,
                        tcp_keepidle=60, tcp_keepintvl=15, tcp_keepcnt=4)
        return w

    def start(self, connect_timeout: float | None = 30.0) -> WorkerService:
        """Connect, register and start serving (returns once registered)."""
        self._build_worker = self._connect(self.name)
        self._stop_worker = self._connect(f"{self.name}-stop")
        for w in (self._build_worker, self._stop_worker):
            w.waitForServer(timeout=connect_timeout)
        with self._reg_lock:
            for fn in self.functions:
                self._build_worker.registerFunction(fn)
            self._registered = list(self.functions)
        self._stop_worker.registerFunction(protocol.stop_function(self.name))
        self._console = ConsoleStreamer(self.name, self.executor.settings.log_root,
                                        self.servers, self._log_path_of).start(connect_timeout)
        for target, tname in ((self._serve_builds, "builds"), (self._serve_stops, "stops")):
            t = threading.Thread(target=target, name=f"worker-{tname}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("worker %s serving %d functions with %d executors: %s", self.name,
                 len(self.functions), self.max_builds, ", ".join(self.functions))
        return self

    def _log_path_of(self, uuid: str) -> str | None:
        """LOG_PATH of build ``uuid`` while it runs here (None: not running)."""
        with self._lock:
            r = self._running.get(uuid)
            return r.log_path if r is not None else None

    def stop(self, abort: bool = False, timeout: float | None = None) -> None:
        """Stop taking builds; ``abort`` running ones (CANCELED) or let them finish."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        bw, sw = self._build_worker, self._stop_worker
        if bw is not None:
            # No GRAB_JOB is sent once nobody waits in getJob(): no new builds.
            # Functions stay registered until the connections close: gearmand
            # forgets the jobs a worker is running when it unregisters (CANT_DO /
            # RESET_ABILITIES), and their results would be refused.
            bw.stopWaitingForJobs()
        self._slots.release()  # wake the dispatcher if it waits for a slot
        if self._threads:
            # Once the dispatcher has exited no build can start: the snapshot below
            # then holds every build still to abort or wait for.
            self._threads[0].join(timeout=30)
        with self._lock:
            running = list(self._running.values())
        log.info("worker %s stopping: %d running builds will be %s", self.name, len(running),
                 "aborted" if abort else "finished")
        if abort:
            for r in running:
                r.stop.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for r in running:
            r.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if sw is not None:
            sw.stopWaitingForJobs()
        for w in (bw, sw):
            if w is not None:
                w.shutdown()
        if self._console is not None:
            self._console.stop()
        for t in self._threads:
            t.join(timeout=10)
        if self._on_stop is not None:
            try:
                self._on_stop()
            except Exception:
                log.exception("worker %s: cleanup failed", self.name)
        log.info("worker %s stopped", self.name)

    def reload(self, functions: Sequence[str]) -> None:
        """Serve ``functions`` from now on (e.g. after a layout reload)."""
        new = list(dict.fromkeys(functions))
        bw = self._build_worker
        with self._reg_lock:
            if bw is None or self._stopping.is_set():
                self.functions = new  # not serving: start() registers these
                return
            added = [fn for fn in new if fn not in self._registered]
            for fn in added:
                # job_lock: registerFunction may send GRAB_JOB on a sleeping
                # connection, which gear's packet thread does under that lock.
                with bw.job_lock, bw.broadcast_lock:
                    bw.registerFunction(fn)
                self._registered.append(fn)
            self._retiring = {fn for fn in self._registered if fn not in new}
            self.functions = new
            retiring = sorted(self._retiring)
        log.info("worker %s reloaded: %d functions, added: %s; to remove when idle: %s",
                 self.name, len(new), ", ".join(added) or "none", ", ".join(retiring) or "none")
        if retiring:
            self._wake_dispatcher()

    @property
    def registered_functions(self) -> list[str]:
        """The ``build:`` functions currently registered on Gearman."""
        with self._reg_lock:
            return list(self._registered)

    def _wake_dispatcher(self) -> None:
        """Interrupt a getJob() so the dispatcher retires functions. If it is
        just about to call getJob it is not woken: the removal then waits for
        the next build to be taken or to end (late, never unsafe)."""
        bw = self._build_worker
        if bw is not None and not self._stopping.is_set():
            bw.stopWaitingForJobs()

    def _retire(self) -> None:
        """Unregister retiring functions no build here runs or waits for.
        Called by the dispatcher only, between getJob() calls."""
        bw = self._build_worker
        assert bw is not None
        # Drains any GRAB_JOB in flight (a job it brings lands in job_queue and
        # counts as busy below); gear sends no other until getJob() is called.
        bw.stopWaitingForJobs()
        with self._reg_lock, self._lock:
            busy = {_fname(r.job) for r in self._running.values()}
            busy |= {_fname(j) for j in list(bw.job_queue.queue) if j is not None}
            done = sorted(self._retiring - busy)
            for fn in done:
                with bw.broadcast_lock:
                    bw.unRegisterFunction(fn)
                self._registered.remove(fn)
                self._retiring.discard(fn)
            left = sorted(self._retiring)
        if done:
            log.info("worker %s unregistered %s%s", self.name, ", ".join(done),
                     f" ({', '.join(left)} still building here)" if left else "")

    @property
    def running_builds(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # -- builds ------------------------------------------------------------------
    def _serve_builds(self) -> None:
        assert self._build_worker is not None
        while not self._stopping.is_set():
            self._slots.acquire()
            if self._stopping.is_set():
                break
            if self._retiring:
                try:
                    self._retire()
                except Exception:
                    log.exception("worker %s: unregistering functions failed", self.name)
            try:
                job = self._build_worker.getJob()
            except gear.InterruptedError:
                self._slots.release()
                if self._stopping.is_set():
                    break
                continue  # woken by _wake_dispatcher
            except Exception:
                log.exception("getJob failed")
                self._slots.release()
                continue
            if not self._accept(job):
                self._slots.release()

    def _accept(self, job: gear.WorkerJob) -> bool:
        """Start a thread for ``job``; False (slot unused) if it was refused."""
        try:
            args = protocol.decode(job.binary_arguments)
            spec = parse_build_args(job.name, args)
        except (BadBuildArgs, ValueError) as e:
            log.warning("refusing %s (%s): malformed arguments: %s", job.name, job.unique, e)
            self._refuse(job, f"worker refused the job: {e}")
            return False
        with self._lock:
            if spec.uuid in self._running:
                log.warning("refusing %s: build %s is already running here", job.name, spec.uuid)
                self._fail(job)
                return False
            r = _Running(spec.uuid, job, threading.Event(), threading.Thread(
                target=self._build, args=(spec, job), name=f"build-{spec.uuid[:7]}",
                daemon=True), spec.log_path)
            self._running[spec.uuid] = r
        r.thread.start()
        return True

    def _refuse(self, job: gear.WorkerJob, why: str) -> None:
        """End ``job`` with its reason: the same arguments would be refused again."""
        try:
            job.sendWorkComplete(protocol.encode({"result": "ERROR", "message": why,
                                                  "retry": False, "worker": self.name}))
        except Exception as e:
            log.warning("refusal of %s not sent: %s", job.unique, e)

    @staticmethod
    def _fail(job: gear.WorkerJob) -> None:
        try:
            job.sendWorkFail()
        except Exception as e:
            log.warning("WORK_FAIL for %s not sent: %s", job.unique, e)

    def _build(self, spec: Any, job: gear.WorkerJob) -> None:
        started = time.monotonic()
        stop = self._running[spec.uuid].stop
        try:
            log.info("build %s: %s starting", spec.uuid, job.name)
            outcome = self.executor.run(spec, _GearReporter(job), stop)
            payload = protocol.encode(outcome.payload(self.name, time.monotonic() - started))
            try:
                job.sendWorkComplete(payload)
            except Exception as e:
                log.error("build %s: result %s not delivered: %s", spec.uuid, outcome.result, e)
        except Exception:
            log.exception("build %s: executor crashed", spec.uuid)
            self._fail(job)
        finally:
            with self._lock:
                self._running.pop(spec.uuid, None)
            self._slots.release()
            if self._retiring:
                self._wake_dispatcher()

    # -- stop requests ----------------------------------------------------------------
    def _serve_stops(self) -> None:
        assert self._stop_worker is not None
        while True:
            try:
                job = self._stop_worker.getJob()
            except gear.InterruptedError:
                return
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("getJob (stop) failed")
                continue
            self._handle_stop(job)

    def _handle_stop(self, job: gear.WorkerJob) -> None:
        try:
            args = protocol.decode(job.binary_arguments)
        except ValueError as e:
            log.warning("malformed stop request: %s", e)
            self._fail(job)
            return
        uuid = args.get("uuid")
        if "uuids" in args:  # a restarted scheduler's builds whose worker it never learnt
            many = args["uuids"] if isinstance(args["uuids"], list) else []
            with self._lock:
                mine = [self._running[u] for u in many
                        if isinstance(u, str) and u in self._running]
            for m in mine:
                log.info("build %s: stop requested (its scheduler restarted)", m.uuid)
                m.stop.set()
            reply: dict[str, object] = {"stopping": sorted(m.uuid for m in mine)}
        else:
            with self._lock:
                r = self._running.get(uuid) if isinstance(uuid, str) else None
            if r is not None:
                log.info("build %s: stop requested", uuid)
                r.stop.set()
            else:
                log.info("stop request for build %s, which is not running here", uuid)
            reply = {"uuid": uuid, "stopping": r is not None}
        try:
            job.sendWorkComplete(protocol.encode(reply))
        except Exception as e:
            log.warning("stop reply not sent: %s", e)


def _fname(job: gear.WorkerJob) -> str:
    name = job.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
