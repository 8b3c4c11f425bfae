"""Run a service until SIGTERM/SIGINT (shared by long-running commands)."""

from __future__ import annotations

import signal
import threading


def wait_for_signal() -> int:
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    while not stop.wait(3600):
        pass
    return 0
