"""Live consoles in the web: one stream per build from its worker, many readers.

The first reader of a running build makes the hub submit a
``console:WORKER`` Gearman job (see ``gatekeeper.worker.console_stream``);
its WORK_DATA chunks land in the build's :class:`Feed`, and every reader
(browser or ``gatekeeper client console``) follows the feed from its own
offset. A hundred readers cost the worker one stream. Feeds of ended
builds are dropped a while after the end, so late readers still get the
whole text at once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid as uuidlib
from collections.abc import AsyncIterator
from typing import Any

import gear

from gatekeeper.gearman.jobclient import ForwardingClient, JobOwner
from gatekeeper.gearman.protocol import decode, encode

KEEP_ENDED = 120.0  # seconds an ended feed stays for late readers
MAX_FEED = 64 * 1024 * 1024  # bytes kept per build (a runaway console is cut here)


class Feed:
    def __init__(self, build: str):
        self.build = build
        self.buf = bytearray()
        self.done = False
        self.error: str | None = None
        self.ended_at: float | None = None
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for loop, ev in waiters:
            loop.call_soon_threadsafe(ev.set)

    def append(self, data: bytes) -> None:
        with self._lock:
            room = MAX_FEED - len(self.buf)
            if room > 0:
                self.buf += data[:room]
            self._wake()

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            if self.done:
                return
            self.done, self.error, self.ended_at = True, error, time.monotonic()
            self._wake()

    async def follow(self, offset: int = 0, keepalive: float = 15.0) -> AsyncIterator[bytes]:
        """The text from ``offset`` as it arrives, until the build ends."""
        loop = asyncio.get_running_loop()
        while True:
            ev = asyncio.Event()
            with self._lock:
                data = bytes(self.buf[offset:])
                done = self.done
                if not data and not done:
                    self._waiters.append((loop, ev))
            if data:
                offset += len(data)
                yield data
                continue
            if done:
                return
            try:
                await asyncio.wait_for(ev.wait(), keepalive)
            except TimeoutError:
                yield b""  # lets the server notice a reader that went away


class ConsoleHub(JobOwner):
    def __init__(self, host: str, port: int, ssl_key: str | None = None,
                 ssl_cert: str | None = None, ssl_ca: str | None = None):
        self.host, self.port = host, port
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self._lock = threading.Lock()
        self._feeds: dict[str, Feed] = {}
        self._jobs: dict[str, Feed] = {}  # gear unique -> feed

    def start(self) -> ConsoleHub:
        key, cert, ca = self._ssl
        self._client = ForwardingClient(self, "gatekeeper-web-console")
        self._client.addServer(self.host, self.port, ssl_key=key, ssl_cert=cert, ssl_ca=ca,
                               keepalive=True, tcp_keepidle=60, tcp_keepintvl=15, tcp_keepcnt=4)
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.shutdown()
            self._client = None
        with self._lock:
            for f in self._feeds.values():
                f.finish("the web service is stopping")

    def streaming(self) -> int:
        """Builds whose console is being streamed from a worker now."""
        with self._lock:
            return len(self._jobs)

    def existing(self, build: str) -> Feed | None:
        """The feed of ``build`` if one is streaming or recently ended cleanly."""
        with self._lock:
            feed = self._feeds.get(build)
        return None if feed is None or (feed.done and feed.error) else feed

    def feed(self, build: str, worker: str) -> Feed:
        """The feed of running build ``build`` on ``worker`` (started on first use)."""
        now = time.monotonic()
        with self._lock:
            for k, f in list(self._feeds.items()):  # forget long-ended feeds
                if f.ended_at is not None and now - f.ended_at > KEEP_ENDED:
                    del self._feeds[k]
            feed = self._feeds.get(build)
            if feed is not None and not (feed.done and feed.error):
                return feed
            feed = self._feeds[build] = Feed(build)
            unique = uuidlib.uuid4().hex
            self._jobs[unique] = feed
        client = self._client
        if client is None:
            feed.finish("the web service is stopping")
            return feed
        job = gear.Job(f"console:{worker}", encode({"uuid": build, "offset": 0}).encode(),
                       unique=unique)
        try:
            client.submitJob(job, timeout=5.0)
        except (gear.GearmanError, OSError) as e:
            self._settle(unique, f"cannot ask worker {worker}: {e or type(e).__name__}")
        return feed

    def _feed_of(self, job: gear.Job) -> tuple[str, Feed | None]:
        unique = job.unique if isinstance(job.unique, str) else job.unique.decode()
        with self._lock:
            return unique, self._jobs.get(unique)

    def _settle(self, unique: str, error: str | None) -> None:
        with self._lock:
            feed = self._jobs.pop(unique, None)
        if feed is not None:
            feed.finish(error)

    def _on_data(self, job: gear.Job, raw: bytes) -> None:
        _, feed = self._feed_of(job)
        job.data[:] = []  # gear keeps every chunk; the feed has them
        if feed is not None and raw:
            feed.append(raw)

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        unique, _ = self._feed_of(job)
        try:
            err: Any = decode(raw).get("error")
        except ValueError:
            err = "bad answer from the worker"
        self._settle(unique, str(err) if err else None)

    def _on_lost(self, job: gear.Job, why: str) -> None:
        unique, _ = self._feed_of(job)
        self._settle(unique, why)


def find_running(status: dict[str, Any], build: str) -> tuple[dict[str, Any] | None, bool]:
    """The status entry of job ``build`` and whether it is running on a worker."""
    for p in status.get("pipelines", []):
        for q in p.get("queues", []):
            for item in q.get("items", []):
                for j in item.get("jobs", []):
                    if j.get("uuid") == build:
                        return j, bool(j.get("worker")) and not j.get("result")
    return None, False
