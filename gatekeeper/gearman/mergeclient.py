"""``Merger`` over Gearman: submits ``merger:merge`` and reports MergeCompleted.

merge() only queues the request; a submitter thread hands it to Gearman.
If no merger is registered the job waits in Gearman until one is (mergers
may start after the scheduler). A merger that fails or disappears, or a
lost server connection, ends the request with MergeCompleted(merged=False,
error=...): the scheduler treats that as an infrastructure error."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

import gear

from gatekeeper.gearman.jobclient import ForwardingClient, JobOwner
from gatekeeper.gearman.protocol import MERGE_FUNCTION, UPDATE_FUNCTION, decode, encode
from gatekeeper.interfaces import EventSink, MergeRequest
from gatekeeper.merger.payload import merge_args, parse_merge_result
from gatekeeper.model.events import MergeCompleted, ResultEvent

log = logging.getLogger("gatekeeper.gearman.mergeclient")


class GearmanMerger(JobOwner):
    def __init__(self, host: str, port: int, event_sink: EventSink,
                 client_name: str = "gatekeeper-merge-client", ssl_key: str | None = None,
                 ssl_cert: str | None = None, ssl_ca: str | None = None,
                 submit_timeout: float = 30.0):
        self.host = host
        self.port = port
        self.event_sink = event_sink
        self.client_name = client_name
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self.submit_timeout = submit_timeout
        self._lock = threading.Lock()
        self._pending: dict[str, gear.TextJob] = {}  # request uuid -> job
        self._work: queue.Queue[tuple[str, object] | None] = queue.Queue()
        self._client: ForwardingClient | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> GearmanMerger:
        if self._client is None:
            self._start_client(self.client_name, self.host, self.port, self._ssl, self._run,
                               "gearman-merge-client")
        return self

    def stop(self) -> None:
        self._stop_client(self._work, self.submit_timeout + 5)

    # --- Merger protocol (scheduler thread) ---------------------------------

    def merge(self, request: MergeRequest) -> None:
        if self._client is None:
            raise RuntimeError("GearmanMerger.start() was not called")
        self._work.put(("merge", request))

    def update(self, projects: Sequence[str]) -> None:
        """Ask a merger to fetch ``projects`` (fire and forget)."""
        self._work.put(("update", list(projects)))

    # --- submitter thread ---------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            what, arg = item
            try:
                if what == "merge":
                    assert isinstance(arg, MergeRequest)
                    self._submit_merge(arg)
                else:
                    self._submit_update(arg)  # type: ignore[arg-type]
            except Exception:
                log.exception("merge client: %s failed", what)
                if what == "merge":
                    assert isinstance(arg, MergeRequest)
                    self._emit(MergeCompleted(arg.uuid, False, error="could not submit"))

    def _submit_merge(self, request: MergeRequest) -> None:
        client = self._client
        assert client is not None
        job = gear.TextJob(MERGE_FUNCTION, encode(merge_args(request)), unique=request.uuid)
        with self._lock:
            self._pending[request.uuid] = job
        try:
            client.waitForServer(self.submit_timeout)
            client.submitJob(job, timeout=self.submit_timeout)
        except (gear.TimeoutError, gear.GearmanError) as e:
            self._settle(job, MergeCompleted(request.uuid, False,
                                             error=f"gearman server unavailable: {e}"))
            return
        log.info("merge %s submitted (%d items)", request.uuid, len(request.items))

    def _submit_update(self, projects: list[str]) -> None:
        client = self._client
        assert client is not None
        client.waitForServer(self.submit_timeout)
        client.submitJob(gear.TextJob(UPDATE_FUNCTION, encode({"projects": projects})),
                         background=True, timeout=self.submit_timeout)

    # --- gear poll thread ---------------------------------------------------

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        uuid = job.unique
        if not uuid:
            return
        try:
            event = parse_merge_result(uuid, decode(raw))
        except ValueError as e:
            event = MergeCompleted(uuid, False, error=f"bad result from the merger: {e}")
        self._settle(job, event)

    def _on_lost(self, job: gear.Job, why: str) -> None:
        if job.unique:
            # Reports quote this: say who failed, not which packet said so.
            if why.startswith("worker "):
                why = "the merger failed"
            self._settle(job, MergeCompleted(job.unique, False, error=why))

    def _settle(self, job: gear.Job, event: MergeCompleted) -> None:
        with self._lock:
            if self._pending.get(event.request_uuid) is not job:
                return  # settled already
            del self._pending[event.request_uuid]
        self._emit(event)

    def _emit(self, event: ResultEvent) -> None:
        try:
            self.event_sink(event)
        except Exception:
            log.exception("event sink failed for %r", event)
