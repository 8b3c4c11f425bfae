"""A gear worker and the one thread that takes its jobs (the scheduler's RPC,
the pool's node functions, a worker's console streams all serve this way)."""

from __future__ import annotations

import logging
import threading

import gear

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
