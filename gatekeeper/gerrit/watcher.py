"""The ``gerrit stream-events`` watcher: one thread, one SSH connection at a time.

Written on paramiko rather than gerritlib's ``GerritWatcher`` because of its
measured defects (see LIBRARIES.md): it reads one line per poll (a burst
waits for the next event), reconnects instantly and leaks the old client
when the stream ends with exit 0, has no stop(), accepts unknown host keys
and retries forever on a bad key. Here: every complete line in the buffer is
delivered at once, any end of the stream (clean or not) closes the client
and reconnects after capped exponential backoff with jitter, stop() joins,
host keys are verified, only the configured key is offered, and an
authentication or host-key failure is reported once and ends the watcher.
After every reconnect, and on the first connect of a scheduler that resumed
from its database (``CatchUp.resume``), :class:`CatchUp` fills the gap."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

import paramiko

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.catchup import CatchUp
from gatekeeper.gerrit.events import parse_line, truncate
from gatekeeper.gerrit.query import QueryError
from gatekeeper.gerrit.ssh import (
    GerritError,
    GerritFatalError,
    SshTarget,
    close_client,
    connect,
    run_on_client,
)
from gatekeeper.model.events import TriggerEvent
from gatekeeper.shell import command_line

log = logging.getLogger("gatekeeper.gerrit.watcher")

MAX_LINE = 16 * 1024 * 1024  # a "line" this long without a newline is garbage


class GerritWatcher:
    """Streams events from Gerrit to ``event_sink`` on a thread of its own.

    ``event_sink`` is called on the watcher thread with each parsed
    :class:`TriggerEvent` (synthetic ones from catch-up included); it must be
    quick (put it on a queue). ``on_fatal`` is called once with a message when
    the watcher gives up (authentication or host-key failure)."""

    def __init__(self, host: str, port: int, username: str, private_key: str | None,
                 event_sink: Callable[[TriggerEvent], None], known_hosts: str | None = None,
                 host_key_checking: bool = True, keepalive: int = 15,
                 backoff: Backoff | None = None, stable_after: float = 30.0,
                 connect_timeout: float = 10.0, catchup: CatchUp | None = None,
                 subscribe: Sequence[str] = (),
                 on_fatal: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None,
                 rand: Callable[[], float] = random.random,
                 poll_interval: float = 0.5, catchup_timeout: float = 120.0):
        self.target = SshTarget(host=host, port=port, username=username, private_key=private_key,
                                known_hosts=known_hosts, host_key_checking=host_key_checking,
                                connect_timeout=connect_timeout, keepalive=keepalive)
        self.event_sink = event_sink
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self.catchup = catchup if catchup is not None else CatchUp()
        self.subscribe = tuple(subscribe)
        self.on_fatal = on_fatal
        self.clock = clock
        self.rand = rand
        self.poll_interval = poll_interval
        self.catchup_timeout = catchup_timeout
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._pending_since: float | None = None  # a catch-up still owed
        self._catchup_retry_at = 0.0
        self._catchup_failures = 0
        self.error: str | None = None  # set when the watcher gave up
        self.connects = 0
        self.drops = 0
        self.events_delivered = 0
        self.catchups = 0

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("watcher already started")
        self._thread = threading.Thread(target=self._run, name="gerrit-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            client = self._client
        if client is not None:
            close_client(client)  # wakes the reader
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("Gerrit watcher thread did not stop within %ss", timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def catchup_pending(self) -> bool:
        """A reconnect's catch-up has not succeeded yet (it is retried)."""
        return self._pending_since is not None

    def wait_connected(self, timeout: float) -> bool:
        """Until the stream is up (or the watcher gave up / timed out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected.wait(0.05):
                return True
            if self.error is not None or not self.alive:
                return False
        return self._connected.is_set()

    # --- the loop -----------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        ever_connected = False
        while not self._stop.is_set():
            try:
                client = connect(self.target)
            except GerritFatalError as e:
                self._give_up(str(e))
                return
            except GerritError as e:
                attempt += 1
                delay = self.backoff.delay(attempt, self.rand)
                log.warning("Gerrit stream: %s; retrying in %.1fs", e, delay)
                self._sleep(delay)
                continue
            except Exception:  # a bug must not end the watcher silently
                log.exception("Unexpected error connecting to Gerrit")
                attempt += 1
                self._sleep(self.backoff.delay(attempt, self.rand))
                continue
            with self._lock:
                if self._stop.is_set():
                    close_client(client)
                    return
                self._client = client
            self.connects += 1
            if (ever_connected or self.catchup.resumed) and self._pending_since is None:
                self._pending_since = self.catchup.since()
            ever_connected = True
            started = self.clock()
            try:
                why = self._stream(client)
            except Exception as e:  # transport errors, and bugs: log, reconnect
                why = f"{type(e).__name__}: {e}"
                if not isinstance(e, OSError | EOFError | paramiko.SSHException | GerritError):
                    log.exception("Unexpected error in the Gerrit stream")
            finally:
                self._connected.clear()
                with self._lock:
                    self._client = None
                close_client(client)
            if self._stop.is_set():
                break
            self.drops += 1
            if self._pending_since is None:
                self._pending_since = self.catchup.since()
            if self.clock() - started >= self.stable_after:
                attempt = 0
            attempt += 1
            delay = self.backoff.delay(attempt, self.rand)
            log.warning("Gerrit stream ended (%s); reconnecting in %.1fs", why, delay)
            self._sleep(delay)
        log.debug("Gerrit watcher stopped")

    def _give_up(self, message: str) -> None:
        self.error = message
        log.error("Gerrit stream: %s; giving up (fix the configuration and restart)", message)
        if self.on_fatal is not None:
            try:
                self.on_fatal(message)
            except Exception:
                log.exception("on_fatal callback failed")

    def _stream(self, client: paramiko.SSHClient) -> str:
        transport = client.get_transport()
        if transport is None:
            return "no transport"
        chan = transport.open_session(timeout=self.target.connect_timeout)
        argv = ["gerrit", "stream-events"]
        for t in self.subscribe:
            argv += ["-s", t]
        chan.exec_command(command_line(argv))
        chan.settimeout(self.poll_interval)
        self._connected.set()
        self.catchup.note_connected()
        log.info("Gerrit stream connected to %s", self.target.describe())
        self._maybe_catch_up(client)
        buf = b""
        while not self._stop.is_set():
            try:
                data = chan.recv(65536)
            except TimeoutError:
                if not transport.is_active():
                    return "connection lost"
                self._maybe_catch_up(client)
                continue
            if not data:
                return self._end_reason(chan)
            buf += data
            if b"\n" not in data:
                if len(buf) > MAX_LINE:
                    log.warning("Discarding %d bytes without a newline from Gerrit", len(buf))
                    buf = b""
                continue
            # Deliver every complete line now: a burst must not wait for the next event.
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._handle_line(line, client)
            self._maybe_catch_up(client)  # a failed catch-up retries on busy streams too
        return "stopped"

    def _end_reason(self, chan: paramiko.Channel) -> str:
        status = chan.recv_exit_status() if chan.exit_status_ready() else None
        err = b""
        try:
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(4096)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        text = truncate(err.decode("utf-8", "replace").strip(), 300)
        return f"exit status {status}" + (f": {text}" if text else "")

    def _handle_line(self, line: bytes, client: paramiko.SSHClient) -> None:
        ev = parse_line(line)
        if ev is None:
            return
        if ev.type == "dropped-output":
            # Gerrit dropped events for us (we were slow): the gap must be queried.
            log.warning("Gerrit dropped stream output; catching up")
            if self._pending_since is None:
                self._pending_since = self.catchup.since()
            self._catchup_retry_at = 0.0
            self._maybe_catch_up(client)
            return
        if not self.catchup.admit(ev):
            log.debug("Not delivering %s again (catch-up had it)", ev.describe())
            return
        self._deliver(ev)

    def _deliver(self, ev: TriggerEvent) -> None:
        try:
            self.event_sink(ev)
            self.events_delivered += 1
        except Exception:
            log.exception("Event sink failed for %s", ev.describe())

    def _maybe_catch_up(self, client: paramiko.SSHClient) -> None:
        since = self._pending_since
        if since is None or self.clock() < self._catchup_retry_at:
            return
        try:
            events = self.catchup.collect(
                lambda argv: run_on_client(client, argv, timeout=self.catchup_timeout), since)
        except (GerritError, QueryError) as e:
            # Keep the window; try again on this connection a little later.
            self._catchup_failures += 1
            self._catchup_retry_at = self.clock() + self.backoff.delay(
                self._catchup_failures + 2, self.rand)
            log.warning("Catch-up query failed (%s); will retry", e)
            return
        self._pending_since = None
        self._catchup_failures = 0
        self.catchups += 1
        for ev in events:
            self._deliver(ev)
