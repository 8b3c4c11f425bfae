"""``GerritConnection``: the watcher, the event delay, the source and the reporter.

Events are held ``event_delay`` seconds before they reach the scheduler's
trigger queue, because Gerrit's query data lags its events (Zuul waited
~10 s). The delay line is one thread that releases events in arrival order;
the source cache is invalidated when an event arrives and again when it is
released."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.catchup import CatchUp
from gatekeeper.gerrit.reporter import GerritReporter
from gatekeeper.gerrit.source import GerritSource
from gatekeeper.gerrit.ssh import GerritError, GerritSSH
from gatekeeper.gerrit.watcher import GerritWatcher
from gatekeeper.model.events import TriggerEvent
from gatekeeper.ssh import SshTarget

log = logging.getLogger("gatekeeper.gerrit.connection")


class EventDelay:
    """Holds each event ``delay`` seconds (from its arrival), then calls ``sink``."""

    def __init__(self, delay: float, sink: Callable[[TriggerEvent], None],
                 before_release: Callable[[TriggerEvent], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if delay < 0:
            raise ValueError("event_delay must be >= 0")
        self.delay = delay
        self.sink = sink
        self.before_release = before_release
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: deque[tuple[float, TriggerEvent]] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def put(self, event: TriggerEvent) -> None:
        with self._cond:
            self._queue.append((self.clock() + self.delay, event))
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gerrit-event-delay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._queue:
                        wait = self._queue[0][0] - self.clock()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, event = self._queue.popleft()
            try:
                if self.before_release is not None:
                    self.before_release(event)
                self.sink(event)
            except Exception:
                log.exception("Trigger sink failed for %s", event.describe())


class GerritConnection:
    """Everything the scheduler needs from one Gerrit.

    ``trigger_sink`` receives each :class:`TriggerEvent` after ``event_delay``
    (the scheduler's trigger queue ``put``); ``on_fatal`` gets one message if
    the stream gives up (authentication/host-key failure)."""

    def __init__(self, host: str, port: int, username: str, private_key: str | None,
                 trigger_sink: Callable[[TriggerEvent], None], *,
                 known_hosts: str | None = None, host_key_checking: bool = True,
                 event_delay: float = 0.5, keepalive: int = 15,
                 backoff: Backoff | None = None, catchup_margin: float = 120.0,
                 report_attempts: int = 3, report_backoff: Backoff | None = None,
                 git_url: str | None = None, subscribe: Sequence[str] = (),
                 connect_timeout: float = 10.0, command_timeout: float = 60.0,
                 on_fatal: Callable[[str], None] | None = None, name: str = "gerrit"):
        self.name = name
        self.target = SshTarget(host=host, port=port, username=username, private_key=private_key,
                                known_hosts=known_hosts, host_key_checking=host_key_checking,
                                connect_timeout=connect_timeout, keepalive=keepalive)
        self.ssh = GerritSSH(self.target, command_timeout=command_timeout)
        self.source = GerritSource(self.ssh, git_url=git_url)
        self.reporter = GerritReporter(self.ssh, attempts=report_attempts, backoff=report_backoff)
        self.catchup = CatchUp(margin=catchup_margin)
        self.delay = EventDelay(event_delay, trigger_sink, before_release=self.source.on_event)
        self.watcher = GerritWatcher(
            host, port, username, private_key, self._on_event, known_hosts=known_hosts,
            host_key_checking=host_key_checking, keepalive=keepalive, backoff=backoff,
            connect_timeout=connect_timeout, catchup=self.catchup, subscribe=subscribe,
            on_fatal=on_fatal)
        self._started = False

    @classmethod
    def from_config(cls, gerrit_config, trigger_sink: Callable[[TriggerEvent], None],
                    **overrides) -> GerritConnection:
        """From ``gatekeeper.config.GerritConfig`` (``gerrit:`` section); keyword
        arguments override or add settings (e.g. ``on_fatal``)."""
        g = gerrit_config
        kw: dict = dict(known_hosts=g.known_hosts, host_key_checking=g.host_key_checking,
                        event_delay=g.event_delay)
        kw.update(overrides)
        return cls(g.server, g.port, g.user, g.private_key, trigger_sink, **kw)

    def _on_event(self, event: TriggerEvent) -> None:
        self.source.on_event(event)
        self.delay.put(event)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.delay.start()
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()
        self.delay.stop()
        self.ssh.close()
        self._started = False

    @property
    def error(self) -> str | None:
        return self.watcher.error

    def server_version(self) -> tuple[int, int, int] | None:
        """Gerrit's version from ``gerrit version`` (None if it cannot be told)."""
        from gerritlib.gerrit import Gerrit  # its version parser is sound; its SSH is not used

        try:
            res = self.ssh.run(["gerrit", "version"], timeout=15)
        except GerritError as e:
            log.warning("Cannot ask Gerrit for its version: %s", e)
            return None
        words = res.stdout.split()
        if not res.ok or not words:
            return None
        try:
            major, minor, micro = Gerrit.parseGerritVersion(None, words[-1])
            return int(major), int(minor), int(micro)
        except (ValueError, IndexError):
            return None
