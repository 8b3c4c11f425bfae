"""The merger service: ``merger:merge`` / ``merger:update`` on Gearman.

One thread takes one job at a time, so each repository sees a single
merge at a time (the Merger locks per repository as well, for callers with
their own threads). Bad payloads and failures never end the service: a
request it cannot parse completes with an error; anything unexpected is
logged and answered with WORK_FAIL."""

from __future__ import annotations

import logging
import socket
import threading
import time

import gear

from gatekeeper.gearman.nodelay import NoDelayTextWorker
from gatekeeper.gearman.protocol import MERGE_FUNCTION, UPDATE_FUNCTION, decode, encode
from gatekeeper.merger.merger import Merger
from gatekeeper.merger.payload import merge_result, parse_merge_args

log = logging.getLogger("gatekeeper.merger.service")


class MergerService:
    def __init__(self, merger: Merger, gearman_host: str, gearman_port: int,
                 zuul_url: str | None, name: str | None = None,
                 ssl_key: str | None = None, ssl_cert: str | None = None,
                 ssl_ca: str | None = None, prune_interval: float = 3600.0):
        self.merger = merger
        self.gearman_host = gearman_host
        self.gearman_port = gearman_port
        # Job scripts join "$ZUUL_URL/$ZUUL_PROJECT": no trailing slash.
        self.zuul_url = zuul_url.rstrip("/") if zuul_url else None
        self.name = name or f"merger-{socket.gethostname()}"
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self.prune_interval = prune_interval
        self._worker: NoDelayTextWorker | None = None
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self.handled = 0

    def start(self) -> MergerService:
        key, cert, ca = self._ssl
        self._worker = NoDelayTextWorker(client_id=self.name)
        self._worker.addServer(self.gearman_host, self.gearman_port, ssl_key=key,
                               ssl_cert=cert, ssl_ca=ca, keepalive=True, tcp_keepidle=60,
                               tcp_keepintvl=15, tcp_keepcnt=4)
        self._worker.registerFunction(MERGE_FUNCTION)
        self._worker.registerFunction(UPDATE_FUNCTION)
        self._thread = threading.Thread(target=self._run, name="merger", daemon=True)
        self._thread.start()
        log.info("merger %s serving %s and %s via %s:%s; ZUUL_URL %s", self.name,
                 MERGE_FUNCTION, UPDATE_FUNCTION, self.gearman_host, self.gearman_port,
                 self.zuul_url)
        return self

    def wait_for_server(self, timeout: float) -> bool:
        assert self._worker is not None
        try:
            self._worker.waitForServer(timeout)
            return True
        except gear.TimeoutError:
            return False

    def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.merger.git_timeout + 10)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            worker = self._worker
            if worker is None:
                return
            try:
                job = worker.getJob()
            except gear.InterruptedError:
                return
            except Exception:
                log.exception("merger: getJob failed")
                time.sleep(1)
                continue
            self._handle(job)
            self.handled += 1
            self._maybe_prune()

    def _handle(self, job: gear.TextWorkerJob) -> None:
        try:
            try:
                args = decode(job.arguments)
            except ValueError as e:
                log.warning("merger: %s with bad payload: %s", job.name, e)
                job.sendWorkComplete(encode({"merged": False, "error": f"bad request: {e}"}))
                return
            if job.name == MERGE_FUNCTION:
                result = self._merge(args)
            elif job.name == UPDATE_FUNCTION:
                result = self._update(args)
            else:
                log.warning("merger: unexpected function %s", job.name)
                job.sendWorkFail()
                return
            job.sendWorkComplete(encode(result))
        except Exception:
            log.exception("merger: %s %s failed", job.name, job.unique)
            try:
                job.sendWorkFail()
            except Exception:
                log.exception("merger: could not report the failure of %s", job.unique)

    def _merge(self, args: dict[str, object]) -> dict[str, object]:
        try:
            request = parse_merge_args(args)
        except ValueError as e:
            log.warning("merger: bad merge request: %s", e)
            return {"merged": False, "error": f"bad request: {e}"}
        done = self.merger.merge(request.items, request.ref_name, uuid=request.uuid)
        return merge_result(done, self.zuul_url)

    def _update(self, args: dict[str, object]) -> dict[str, object]:
        projects = args.get("projects")
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            return {"updated": {}, "error": "bad request: projects must be a list of names"}
        try:
            return {"updated": self.merger.update(projects), "error": None}
        except Exception as e:  # git or name errors: report, keep serving
            log.warning("merger: update of %s failed: %s", projects, e)
            return {"updated": {}, "error": str(e)}

    def _maybe_prune(self) -> None:
        now = time.time()
        if now - self._last_prune < self.prune_interval:
            return
        self._last_prune = now
        try:
            self.merger.prune(now)
        except Exception:
            log.exception("merger: pruning failed")
