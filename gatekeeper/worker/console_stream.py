"""A running build's console, streamed over Gearman: ``console:WORKER``.

The executor writes ``console.txt`` line by line as the node prints
(``executor.Console``). A reader (the web service) submits a
``console:WORKER`` job ``{"uuid", "offset"}``; this worker answers with
WORK_DATA chunks of that running build's console from ``offset`` as it
grows and WORK_COMPLETE ``{"end": OFFSET}`` once the executor wrote the
build's last line (``Build UUID: RESULT``) or the build is gone, or
``{"error"}`` (not running here). One thread per stream, so a slow reader
never delays a build; which file is read is the worker's own knowledge
(the build's LOG_PATH under ``log_root``), never a path from the request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gear

from gatekeeper.gearman import protocol
from gatekeeper.gearman.jobloop import JobLoop
from gatekeeper.gearman.nodelay import NoDelayWorker

log = logging.getLogger("gatekeeper.worker.console_stream")

POLL = 0.05  # seconds between looks at a growing file (the latency floor)
CHUNK = 64 * 1024
IDLE_LIMIT = 3 * 3600.0  # a console silent this long without its last line: give up
MISSING_LIMIT = 60.0  # no console file this long: not a build of this worker
MAX_STREAMS = 100


def console_function(worker: str) -> str:
    return f"console:{worker}"


def console_path(log_root: Path, log_path: str) -> Path | None:
    """``log_root/log_path/console.txt`` if that stays inside ``log_root``."""
    root = log_root.resolve()
    target = (root / log_path.strip("/") / "console.txt").resolve()
    return target if root in target.parents else None


class ConsoleStreamer(JobLoop):
    _what = "console"

    def __init__(self, worker_name: str, log_root: Path, servers: Sequence[Any],
                 log_path_of: Callable[[str], str | None]):
        self.name = worker_name
        self.log_path_of = log_path_of  # LOG_PATH of a running build, None: not running
        self.log_root = Path(log_root)
        self.servers = servers
        self._stop = threading.Event()
        self._streams = threading.BoundedSemaphore(MAX_STREAMS)

    def start(self, connect_timeout: float | None = 30.0) -> ConsoleStreamer:
        w = NoDelayWorker(client_id=f"{self.name}-console")
        for s in self.servers:
            w.addServer(s.host, s.port, s.ssl_key, s.ssl_cert, s.ssl_ca)
        w.waitForServer(timeout=connect_timeout)
        w.registerFunction(console_function(self.name))
        self._start_loop(w, "worker-console")
        return self

    def _take(self, job: gear.WorkerJob) -> None:
        if not self._streams.acquire(blocking=False):
            _complete(job, {"error": "too many console streams on this worker"})
            return
        threading.Thread(target=self._stream, args=(job,), name="console-stream",
                         daemon=True).start()

    def _stream(self, job: gear.WorkerJob) -> None:
        try:
            args = protocol.decode(job.arguments)
            uuid = str(args.get("uuid", ""))
            offset = max(0, int(args.get("offset") or 0))
            log_path = self.log_path_of(uuid)
            path = None if log_path is None else console_path(self.log_root, log_path)
            if path is None:
                _complete(job, {"error": f"build {uuid} is not running on {self.name}"})
                return
            _complete(job, self._follow(job, path, uuid, offset))
        except Exception as e:  # the reader went away, or a bad request
            log.debug("console stream ended: %s", e)
        finally:
            self._streams.release()

    def _follow(self, job: gear.WorkerJob, path: Path, uuid: str,
                offset: int) -> dict[str, Any]:
        last_line = f"Build {uuid}: ".encode()
        quiet_since = time.monotonic()
        seen = False
        tail = b""  # the end of what was sent: the last line may span two chunks
        while not self._stop.is_set():
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(CHUNK)
                seen = True
            except FileNotFoundError:
                data = b""
                if not seen and time.monotonic() - quiet_since > MISSING_LIMIT:
                    return {"error": "the build wrote no console", "end": offset}
            if data:
                job.sendWorkData(data)
                offset += len(data)
                tail = (tail + data)[-4096:]
                quiet_since = time.monotonic()
                lines = tail.split(b"\n")
                if any(line.startswith(last_line) for line in lines[:-1]):
                    return {"end": offset}
                continue
            if self.log_path_of(uuid) is None:  # the build ended: one last read
                try:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        rest = f.read()
                except FileNotFoundError:
                    rest = b""
                if rest:
                    job.sendWorkData(rest)
                return {"end": offset + len(rest)}
            if time.monotonic() - quiet_since > IDLE_LIMIT:
                return {"error": "the console stopped growing", "end": offset}
            self._stop.wait(POLL)
        return {"error": "the worker is stopping", "end": offset}


def _complete(job: gear.WorkerJob, payload: dict[str, Any]) -> None:
    job.sendWorkComplete(protocol.encode(payload).encode("utf-8"))
