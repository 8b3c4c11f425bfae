"""Fan-out of stream events to every `gerrit stream-events` subscriber.

Each subscriber owns an unbounded queue of ready-to-send JSON lines so a
slow client never blocks the emulator. ``pause()`` holds events back (in
order) until ``resume()``; events published while paused are delivered then."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("gatekeeper.sim.gerrit.events")

HISTORY = 10_000


@dataclass(eq=False)
class Subscriber:
    username: str
    types: frozenset[str]  # empty = all
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    # Called by drop_all(mode): "connection" closes the SSH connection,
    # "channel" closes only the channel (no exit status), "exit" ends the
    # command with exit status 0 (a clean end of stream).
    drop: Callable[[str], None] | None = None
    end_status: int | None = None

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._subscribers: list[Subscriber] = []
        self._paused = False
        self._held: list[dict[str, Any]] = []
        # The most recent events published, in order (bounded for long runs).
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    def subscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(sub)
            self._changed.notify_all()

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
            self._changed.notify_all()

    def count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def wait_for_count(self, n: int, timeout: float) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: len(self._subscribers) >= n, timeout)

    def wait_for_count_below(self, n: int, timeout: float) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: len(self._subscribers) < n, timeout)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.history.append(event)
            if self._paused:
                self._held.append(event)
                return
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        log.debug("event %s to %d subscriber(s)", event.get("type"), len(self._subscribers))
        for sub in self._subscribers:
            if sub.wants(event.get("type", "")):
                sub.lines.put(line)

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            held, self._held = self._held, []
            for event in held:
                self._deliver(event)

    def drop_all(self, mode: str = "connection") -> int:
        if mode not in ("connection", "channel", "exit"):
            raise ValueError(f"drop mode must be connection, channel or exit, not {mode!r}")
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            if mode == "exit":
                sub.end_status = 0
            elif sub.drop is not None:
                sub.drop(mode)
            sub.lines.put(None)  # wake the writer so it notices the channel is gone
        return len(subs)

    def inject_raw(self, line: str) -> int:
        """Send ``line`` verbatim to every subscriber (malformed-input tests)."""
        with self._lock:
            if not line.endswith("\n"):
                line += "\n"
            for sub in self._subscribers:
                sub.lines.put(line)
            return len(self._subscribers)
