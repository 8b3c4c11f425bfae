"""Run a service until SIGTERM/SIGINT (shared by long-running commands)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("gatekeeper.commands")


class Service(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...
    def reload(self) -> None: ...


def wait_for_signal() -> int:
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    # SIGHUP means "reload" across Gatekeeper; a service with nothing to reload
    # must not die of it (Python's default) when an operator HUPs every process.
    signal.signal(signal.SIGHUP, lambda *_: log.info("SIGHUP: nothing to reload here"))
    while not stop.wait(3600):
        pass
    return 0


def serve(make: Callable[[Callable[[str], None]], Service]) -> int:
    """Run a reloadable service until SIGTERM/SIGINT, or until it reports a
    fatal error (``make`` receives the ``on_fatal`` callback): exit 1 then.
    SIGHUP calls ``reload()``."""
    stop = threading.Event()
    fatal: list[str] = []

    def on_fatal(msg: str) -> None:
        fatal.append(msg)
        stop.set()

    service = make(on_fatal)
    signal.signal(signal.SIGHUP, lambda *_: service.reload())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service.start()
        while not stop.wait(3600):
            pass
    finally:
        service.stop()
    if fatal:
        log.error("stopping: %s", fatal[0])
        return 1
    return 0
