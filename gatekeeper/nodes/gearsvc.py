"""The pool's Gearman face: ``node:claim:LABEL`` and ``node:release``.

One gear worker thread takes jobs and hands them to the PoolService; a
claim that must wait for a node does not block this thread (the service
answers it later from its loop; gear's send is thread-safe). Payloads are
defined in gatekeeper.gearman.protocol:

* claim arguments ``{"build", "timeout", "project", "job"}``; result: a
  lease ``{"node_id", "label", "host", "port", "username", "private_key"
  (a key path), "provider", "host_key", "extra"}`` or ``{"error": ...}``;
* release arguments ``{"node_id", "state": "used"|"hold", "hold_for",
  "reason", "build", "result"}``; result ``{"ok": true}`` or ``{"error"}``."""

from __future__ import annotations

import logging
import threading
from typing import Any

import gear

from gatekeeper.gearman.jobloop import RequestLoop, answer
from gatekeeper.gearman.nodelay import NoDelayWorker
from gatekeeper.gearman.protocol import (
    NODE_CLAIM_PREFIX,
    NODE_RELEASE_FUNCTION,
    node_claim_function,
)
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.service import PoolService

log = logging.getLogger("gatekeeper.nodes.gearsvc")

DEFAULT_CLAIM_TIMEOUT = 3600.0


class PoolGearmanWorker(RequestLoop):
    INTERNAL_ERROR = "internal error in the pool"
    _what = "pool node request"

    def __init__(self, service: PoolService, host: str, port: int,
                 name: str = "gatekeeper-pool", ssl_key: str | None = None,
                 ssl_cert: str | None = None, ssl_ca: str | None = None):
        self.service = service
        self.host, self.port = host, port
        self._ssl = (ssl_key, ssl_cert, ssl_ca)  # gear uses TLS only when all three are set
        self.name = name
        self._stop = threading.Event()

    def functions(self) -> list[str]:
        return [node_claim_function(lb) for lb in sorted(self.service.config.labels)] + [
            NODE_RELEASE_FUNCTION]

    def start(self, timeout: float = 30.0) -> PoolGearmanWorker:
        w = NoDelayWorker(self.name)
        key, cert, ca = self._ssl
        w.addServer(self.host, self.port, ssl_key=key, ssl_cert=cert, ssl_ca=ca)
        w.waitForServer(timeout)
        for fn in self.functions():
            w.registerFunction(fn)
        self._start_loop(w, "pool-gearman")
        log.info("pool serving %s on gearman %s:%d", ", ".join(self.functions()), self.host,
                 self.port)
        return self

    def _request(self, job: gear.WorkerJob, name: str, args: dict[str, Any]) -> None:
        if name == NODE_RELEASE_FUNCTION:
            hold_for = args.get("hold_for")
            err = self.service.release(
                str(args.get("node_id", "")), str(args.get("state", NodeState.USED)),
                float(hold_for) if isinstance(hold_for, int | float) else None,
                str(args.get("reason", "")), str(args.get("build", "")),
                str(args.get("result", "")))
            answer(job, {"error": err} if err else {"ok": True})
            return
        if name.startswith(NODE_CLAIM_PREFIX):
            label = name[len(NODE_CLAIM_PREFIX):]
            timeout = args.get("timeout")
            if not isinstance(timeout, int | float) or timeout < 0:
                timeout = DEFAULT_CLAIM_TIMEOUT

            def reply(lease: dict[str, Any] | None, err: str) -> None:
                # Raises when the lease did not reach the build: the service
                # then takes the node back (PoolService._handed).
                if not answer(job, lease if lease is not None else {"error": err}):
                    raise ConnectionError(f"could not answer {job.name}")

            self.service.claim(label, str(args.get("build", "")), float(timeout), reply,
                               str(args.get("project", "")), str(args.get("job", "")))
            return
        answer(job, {"error": f"unknown function {name}"})
