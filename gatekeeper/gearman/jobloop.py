"""A gear worker and the one thread that takes its jobs (the scheduler's RPC,
the pool's node functions, a worker's console streams all serve this way),
and RequestLoop for the JSON request/answer functions."""

from __future__ import annotations

import logging
import threading
from typing import Any

import gear

from gatekeeper.gearman.protocol import decode, encode

log = logging.getLogger("gatekeeper.gearman.jobloop")


class JobLoop:
    """Subclasses say what taking a job means (``_take``, which answers the
    job itself and must not raise); ``stop`` shuts the worker down and joins
    the thread. ``_stop`` is set once stopping, for the subclass to see too."""

    _what = "gearman"  # names the loop in its log lines
    _worker: gear.Worker | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event

    def _start_loop(self, worker: gear.Worker, thread_name: str) -> None:
        self._worker = worker
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.shutdown()
        if self._thread is not None:
            self._thread.join(10)
        self._worker = self._thread = None

    def _loop(self) -> None:
        worker = self._worker
        assert worker is not None
        while not self._stop.is_set():
            try:
                job = worker.getJob()
            except gear.InterruptedError:
                return
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s: getJob failed", self._what)
                continue
            self._take(job)

    def _take(self, job: gear.WorkerJob) -> None:
        raise NotImplementedError


def answer(job: gear.WorkerJob, payload: dict[str, Any]) -> bool:
    """Complete ``job`` with ``payload`` as JSON; False (logged) if that
    failed, e.g. the client went away. A caller that handed something over
    in the answer (the pool's lease) must undo it then; others just go on."""
    try:
        job.sendWorkComplete(encode(payload).encode("utf-8"))
        return True
    except Exception as e:
        log.warning("could not answer %s: %s", job.name, e)
        return False


class RequestLoop(JobLoop):
    """A JobLoop whose jobs are JSON requests answered with a JSON object:
    ``_request`` gets the function name and the decoded arguments and
    answers (now, or later from another thread); undecodable arguments get
    ``{"error": "bad request: ..."}`` and a request that raises gets
    ``{"error": INTERNAL_ERROR}``: a bad request never stops the service."""

    INTERNAL_ERROR = "internal error"

    def _take(self, job: gear.WorkerJob) -> None:
        name = job.name if isinstance(job.name, str) else job.name.decode("utf-8", "replace")
        try:
            try:
                args = decode(job.arguments)
            except ValueError as e:
                answer(job, {"error": f"bad request: {e}"})
                return
            self._request(job, name, args)
        except Exception:
            log.exception("%s: request %s failed", self._what, name)
            answer(job, {"error": self.INTERNAL_ERROR})

    def _request(self, job: gear.WorkerJob, name: str, args: dict[str, Any]) -> None:
        raise NotImplementedError
