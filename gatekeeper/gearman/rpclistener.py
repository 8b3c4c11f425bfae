"""The scheduler's RPC face over Gearman: status, explain and management.

The web service (another process, maybe another host) asks the scheduler
through these functions instead of reading its memory; management requests
become management events, handled on the scheduler's loop like SIGHUP's
reload, and answered once handled. One gear worker thread takes the jobs;
a management job is answered from the loop thread (gear's send is
thread-safe), so a slow loop never blocks status requests for long."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import gear

from gatekeeper.gearman.jobloop import RequestLoop, answer
from gatekeeper.gearman.nodelay import NoDelayWorker
from gatekeeper.gearman.protocol import (
    EXPLAIN_FUNCTION,
    MANAGE_FUNCTION,
    METRICS_FUNCTION,
    STATUS_FUNCTION,
)
from gatekeeper.model.events import Answered, Dequeue, Enqueue, Promote, Reconfigure, Request

log = logging.getLogger("gatekeeper.gearman.rpclistener")

FUNCTIONS = (STATUS_FUNCTION, EXPLAIN_FUNCTION, MANAGE_FUNCTION, METRICS_FUNCTION)


class SchedulerLike(Protocol):
    def last_status(self) -> dict[str, Any]: ...
    def explain(self, change: int | str) -> str: ...
    def add_management_event(self, event: object) -> None: ...


class BadRequest(ValueError):
    pass


def _int(args: dict[str, Any], key: str, required: bool = False) -> int | None:
    v = args.get(key)
    if v is None or v == "":
        if required:
            raise BadRequest(f"{key} is required")
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise BadRequest(f"{key}: {v!r} is not a number") from None


def _str(args: dict[str, Any], key: str, required: bool = True) -> str:
    v = args.get(key)
    if v is None or v == "":
        if required:
            raise BadRequest(f"{key} is required")
        return ""
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string")
    return v


def management_event(args: dict[str, Any]) -> Request:
    """The management event a ``gatekeeper:manage`` request asks for."""
    action = args.get("action")
    if action == "reconfigure":
        return Reconfigure()
    if action == "enqueue":
        number, ref = _int(args, "change"), _str(args, "ref", required=False)
        if number is None and not ref:
            raise BadRequest("enqueue needs change or ref")
        return Enqueue(_str(args, "pipeline"), _str(args, "project"), number,
                       _int(args, "patchset"), ref or None, _str(args, "oldrev", False) or None,
                       _str(args, "newrev", False) or None)
    if action == "dequeue":
        number, ref = _int(args, "change"), _str(args, "ref", required=False)
        if number is None and not ref:
            raise BadRequest("dequeue needs change or ref")
        return Dequeue(_str(args, "pipeline"), _str(args, "project", required=False), number,
                       ref or None)
    if action == "promote":
        changes = args.get("changes")
        if not isinstance(changes, list) or not changes:
            raise BadRequest("promote needs a list of changes")
        try:
            numbers = tuple(int(c) for c in changes)
        except (TypeError, ValueError):
            raise BadRequest("changes must be change numbers") from None
        return Promote(_str(args, "pipeline"), numbers)
    raise BadRequest(f"unknown action {action!r}")


class RPCListener(RequestLoop):
    # An answer that cannot be sent is logged and forgotten: nothing was handed
    # over (a management event is handled whether or not its asker still waits).
    INTERNAL_ERROR = "internal error in the scheduler"
    _what = "scheduler RPC"

    def __init__(self, scheduler: SchedulerLike, host: str, port: int,
                 name: str = "gatekeeper-scheduler-rpc", ssl_key: str | None = None,
                 ssl_cert: str | None = None, ssl_ca: str | None = None,
                 metrics: Callable[[], str] | None = None):
        self.scheduler = scheduler
        self.metrics = metrics  # the scheduler's metrics as Prometheus text
        self.host, self.port, self.name = host, port, name
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self._stop = threading.Event()

    def start(self) -> RPCListener:
        w = NoDelayWorker(self.name)
        key, cert, ca = self._ssl
        w.addServer(self.host, self.port, ssl_key=key, ssl_cert=cert, ssl_ca=ca)
        for fn in FUNCTIONS:  # registered again by gear on every reconnect
            w.registerFunction(fn)
        self._start_loop(w, "scheduler-rpc")
        return self

    def _request(self, job: gear.WorkerJob, name: str, args: dict[str, Any]) -> None:
        if name == STATUS_FUNCTION:
            # The last turn's snapshot (at most ~1 s old): a status request never waits
            # for the scheduler's lock, however long its turn.
            answer(job, self.scheduler.last_status())
        elif name == METRICS_FUNCTION:
            answer(job, {"text": self.metrics() if self.metrics else ""})
        elif name == EXPLAIN_FUNCTION:
            answer(job, {"text": self.scheduler.explain(str(args.get("change", "")))})
        elif name == MANAGE_FUNCTION:
            try:
                event = management_event(args)
            except BadRequest as e:
                answer(job, {"error": str(e)})
                return
            log.info("management request %s from the web", args.get("action"))

            def answered(err: str | None) -> None:
                answer(job, {"error": err} if err else {"ok": True})

            self.scheduler.add_management_event(Answered(event, answered))
        else:
            answer(job, {"error": f"unknown function {name}"})
