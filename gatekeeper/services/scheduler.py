"""The scheduler process: the core's loop wired to Gerrit and Gearman.

Everything here is wiring; decisions live in ``gatekeeper.core``. Built from
the service configuration so that ``gatekeeper scheduler`` and
``gatekeeper all-in-one`` start exactly the same thing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gatekeeper.config import Config
from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout
from gatekeeper.layout.model import Layout
from gatekeeper.model.events import ResultEvent
from gatekeeper.store.journal import StateJournal
from gatekeeper.store.lock import SchedulerLock
from gatekeeper.store.migrate import open_store
from gatekeeper.store.outbox import Outbox, ReportSender, gerrit_applied
from gatekeeper.store.recorder import HistoryRecorder
from gatekeeper.store.snapshot import SnapshotWriter

log = logging.getLogger("gatekeeper.services.scheduler")

LOCK_CHECK_EVERY = 2.0  # seconds between checks that the PostgreSQL lock is still ours


def load_service_layout(config: Config, paths: tuple[str, ...] | None = None) -> Layout:
    """The layout files of ``scheduler.layout`` (or ``paths``), merged, with job
    labels checked against the labels the config knows (when it knows any)."""
    labels = config.known_labels() or None
    return load_layout(list(paths or config.scheduler.layout), known_labels=labels)


class SchedulerProcess:
    """Gerrit connection + Gearman launcher/merger client + the scheduler loop."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time,
                 on_fatal: Callable[[str], None] | None = None, with_gearman: bool = False,
                 standby: bool = False):
        from gatekeeper.gearman.launcher import GearmanLauncher
        from gatekeeper.gearman.mergeclient import GearmanMerger
        from gatekeeper.gerrit.connection import GerritConnection
        from gatekeeper.scheduler import Scheduler

        self.config = config
        layout = load_service_layout(config)  # a bad layout stops start-up (UserError)
        g = config.gearman
        self.gerrit = GerritConnection.from_config(
            config.gerrit, self._on_trigger, on_fatal=on_fatal,
            git_url=f"ssh://{config.gerrit.user}@{config.gerrit.server}:{config.gerrit.port}")
        self.launcher = GearmanLauncher(g.server, g.port, self._on_result, ssl_key=g.ssl_key,
                                        ssl_cert=g.ssl_cert, ssl_ca=g.ssl_ca)
        self.merger = GearmanMerger(g.server, g.port, self._on_result, ssl_key=g.ssl_key,
                                    ssl_cert=g.ssl_cert, ssl_ca=g.ssl_ca)
        self.scheduler = Scheduler(
            layout, self.gerrit.source, self.gerrit.reporter, self.launcher, self.merger,
            clock, status_url=config.scheduler.status_url,
            git_url=config.merger.url or "",
            layout_loader=lambda paths: load_service_layout(config, paths or None))
        self.with_gearman = with_gearman  # run the embedded server when configured
        self.gearman_server = None
        self.rpc = None
        self._started = False
        self.on_fatal = on_fatal
        # State, outbox and history in the database (a bad one stops start-up here).
        self.db = open_store(config.database.url)
        self.lock = SchedulerLock(self.db)
        self.standby = standby  # wait for the lock (PostgreSQL) instead of refusing
        self.outbox = Outbox(self.db, self.gerrit.reporter,
                             gerrit_applied(self.gerrit.source, config.gerrit.user), clock)
        self.sender = ReportSender(self.outbox)
        self.snapshots = SnapshotWriter(self.db)
        self.scheduler.attach_store(
            StateJournal(self.db, HistoryRecorder(config.scheduler.history_days)),
            self.outbox, self.sender, self.snapshots)
        self.mailer = mailer_from_config(config)  # smtp: reports, on their own thread
        if self.mailer is not None:
            self.mailer.use_outbox(self.db, clock)  # rows committed with their turn
        self.scheduler.effects.mailer = self.mailer
        self._stopping = threading.Event()
        self._takeover: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self.active = threading.Event()  # set once this process runs the pipelines
        from gatekeeper.metrics.registry import statsd_client
        from gatekeeper.metrics.scheduler import SchedulerMetrics

        sc = config.scheduler
        self.metrics = SchedulerMetrics(
            self.scheduler.status, self.db,
            gerrit_connected=lambda: bool(self.gerrit.watcher.connected),
            outbox_backlog=lambda: len(self.outbox.pending()),
            statsd=statsd_client(sc.statsd, sc.statsd_prefix))

    def _on_trigger(self, event: object) -> None:
        self.metrics.event(str(getattr(event, "type", "unknown")))
        self.scheduler.add_trigger_event(event)  # type: ignore[arg-type]

    def _on_result(self, event: ResultEvent) -> None:
        self.scheduler.add_result_event(event)

    def start(self) -> SchedulerProcess:
        if self._started:
            return self
        self._started = True
        self._stopping.clear()
        if self.lock.try_acquire():
            self._run_active()
        elif self.standby and self.lock.can_wait:
            self._takeover = threading.Thread(target=self._wait_and_take_over,
                                              name="gatekeeper-standby", daemon=True)
            self._takeover.start()
        else:
            self._started = False
            self.lock.acquire(self._stopping)  # raises the clear UserError
        return self

    def _wait_and_take_over(self) -> None:
        try:
            if self.lock.acquire(self._stopping):
                self._run_active()
        except Exception as e:
            log.exception("standby: taking over failed")
            if self.on_fatal is not None:
                self.on_fatal(f"standby: taking over failed: {e}")

    def _run_active(self) -> None:
        """Restore → reconcile with Gerrit → catch up from the last event → serve."""
        started = time.monotonic()
        if self.with_gearman:
            self.gearman_server = start_gearman(self.config)
        self.launcher.start()
        self.merger.start()
        self.scheduler.restore()
        if self.scheduler.resume_time is not None:
            self.gerrit.catchup.resume(self.scheduler.resume_time,
                                       self.scheduler.handled_events())
        self.sender.start()
        if self.mailer is not None:
            self.mailer.start()
        self.snapshots.start()
        self.scheduler.start()
        self.rpc = self._start_rpc()
        self.metrics.start()
        self.gerrit.start()
        self.active.set()
        if self.lock.can_wait:  # a standby may take the lock if we lose it: watch it
            self._watch = threading.Thread(target=self._watch_lock, name="gatekeeper-lock",
                                           daemon=True)
            self._watch.start()
        log.info("scheduler active in %.1fs: %d pipelines, %d projects, %d jobs, "
                 "%d items restored", time.monotonic() - started,
                 len(self.scheduler.layout.pipelines), len(self.scheduler.layout.projects),
                 len(self.scheduler.layout.jobs),
                 sum(len(s.items()) for s in self.scheduler.engine.states.values()))

    def _watch_lock(self) -> None:
        """The lock's connection ended (database restart, network): a standby
        may be active now, so this process must stop at once."""
        while not self._stopping.wait(LOCK_CHECK_EVERY):
            if not self.lock.alive():
                msg = (f"database {self.lock.where()}: lost the scheduler lock (its "
                       "connection ended); stopping so that only one scheduler runs")
                log.error("%s", msg)
                self.scheduler.stop(timeout=5)  # no further turn, no further report
                if self.on_fatal is not None:
                    self.on_fatal(msg)
                return

    def _start_rpc(self):  # -> RPCListener
        """The scheduler's RPC face (status, explain, management) for the web."""
        from gatekeeper.gearman.rpclistener import RPCListener

        g = self.config.gearman
        return RPCListener(self.scheduler, g.server, g.port, ssl_key=g.ssl_key,
                           ssl_cert=g.ssl_cert, ssl_ca=g.ssl_ca,
                           metrics=self.metrics.render).start()

    def reload(self) -> None:
        """SIGHUP: re-read the layout files; a bad layout keeps the old one."""
        from gatekeeper.model.events import Reconfigure

        self.scheduler.add_management_event(Reconfigure())

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._takeover is not None:
            self._takeover.join(30)
            self._takeover = None
        # Stop the inputs first, then the loop, then the outputs.
        self.gerrit.stop()
        if self.rpc is not None:
            self.rpc.stop()
            self.rpc = None
        self.metrics.stop()
        self.scheduler.stop()
        self.sender.stop()
        if self.mailer is not None:
            self.mailer.stop()
        self.snapshots.stop()
        self.merger.stop()
        self.launcher.stop()
        if self.gearman_server is not None:
            self.gearman_server.stop()
            self.gearman_server = None
        self.active.clear()
        self.lock.release()
        log.info("scheduler stopped")


def mailer_from_config(config: Config) -> Any:  # -> MailSender | None
    if config.smtp is None:
        return None
    from gatekeeper.mail.sender import MailSender, SmtpSettings

    s = config.smtp
    return MailSender(SmtpSettings(s.server, s.port, s.sender, s.starttls, s.username,
                                   s.password, s.timeout))


def check_config_files(config: Config) -> None:
    """Fail early, in words, on files the scheduler cannot run without."""
    import os

    for what, path in (("gerrit.private_key", config.gerrit.private_key),):
        if not os.path.isfile(path):
            raise UserError(f"{config.path}: {what}: {path}: no such file")


def start_gearman(config: Config):  # -> EmbeddedGearmanServer | None
    """The embedded Gearman server when ``gearman.embedded`` (else None)."""
    if not config.gearman.embedded:
        return None
    from gatekeeper.gearman.server import EmbeddedGearmanServer

    g = config.gearman
    server = EmbeddedGearmanServer(g.server, g.port, ssl_key=g.ssl_key, ssl_cert=g.ssl_cert,
                                   ssl_ca=g.ssl_ca)
    try:
        return server.start()
    except OSError as e:
        raise UserError(f"{config.path}: gearman: cannot listen on {g.server}:{g.port}: "
                        f"{e.strerror or e}") from e
