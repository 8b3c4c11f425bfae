"""NodeClaimer over the pool's Gearman functions (for workers).

``claim`` submits ``node:claim:LABEL`` and blocks until the pool answers
with a lease or the timeout passes; ``release`` submits ``node:release``.
Uses gear with TCP_NODELAY (gatekeeper.gearman.nodelay): without it each
round trip costs tens of milliseconds. A lease that arrives after the
caller gave up is released at once, so no node is stranded in-use."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import gear

from gatekeeper.gearman.jobclient import ForwardingClient, JobOwner
from gatekeeper.gearman.protocol import (
    NODE_RELEASE_FUNCTION,
    decode,
    encode,
    node_claim_function,
)
from gatekeeper.interfaces import NodeClaimError, NodeLease
from gatekeeper.model.states import NodeState

log = logging.getLogger("gatekeeper.nodes.claimer")


class GearmanNodeClaimer(JobOwner):
    """``gatekeeper.interfaces.NodeClaimer`` backed by the pool service."""

    _client: ForwardingClient  # connected in __init__, for the claimer's whole life

    def __init__(self, host: str, port: int, client_id: str = "gatekeeper-claimer",
                 connect_timeout: float = 30.0, margin: float = 10.0,
                 ssl_key: str | None = None, ssl_cert: str | None = None,
                 ssl_ca: str | None = None):
        self.margin = margin  # how much longer than the pool we wait for its answer
        self._client = ForwardingClient(self, client_id)  # every ending wakes the waiter
        self._client.addServer(host, port, ssl_key=ssl_key, ssl_cert=ssl_cert, ssl_ca=ssl_ca)
        self._client.waitForServer(connect_timeout)
        self._lock = threading.Lock()
        # gear's submitJob queues "expect JOB_CREATED" and sends SUBMIT_JOB in two
        # unlocked steps and matches answers by order: two threads submitting at
        # once could swap handles, so one build got the node the pool gave the other.
        self._submit_lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._abandoned: set[str] = set()

    def close(self) -> None:
        self._client.shutdown()

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        self._finished(job)

    def _on_lost(self, job: gear.Job, why: str) -> None:
        self._finished(job)

    def _finished(self, job: gear.Job) -> None:
        key = job.unique.decode() if isinstance(job.unique, bytes) else str(job.unique)
        with self._lock:
            ev = self._events.get(key)
            abandoned = key in self._abandoned
            self._abandoned.discard(key)
        if ev is not None:
            ev.set()
        if abandoned and job.complete and not job.failure:
            payload = _payload(job)
            if payload.get("node_id"):
                log.warning("late lease for node %s after the build gave up; releasing",
                            payload["node_id"])
                threading.Thread(target=self._release_quietly, args=(payload,),
                                 daemon=True).start()

    def _release_quietly(self, payload: dict[str, Any]) -> None:
        try:
            self._call(NODE_RELEASE_FUNCTION, {"node_id": payload["node_id"], "state": NodeState.USED,
                                               "reason": "claim abandoned"}, 60.0)
        except NodeClaimError as e:
            log.warning("could not release abandoned node %s: %s", payload["node_id"], e)

    def _call(self, function: str, args: dict[str, Any], wait: float) -> dict[str, Any]:
        key = uuid.uuid4().hex
        ev = threading.Event()
        with self._lock:
            self._events[key] = ev
        job = gear.Job(function.encode(), encode(args).encode(), unique=key.encode())
        try:
            try:
                with self._submit_lock:
                    self._client.submitJob(job, timeout=min(wait, 30.0))
            except (gear.GearmanError, OSError) as e:
                raise NodeClaimError(f"{function}: gearman: {e}") from None
            if not ev.wait(wait):
                with self._lock:
                    self._abandoned.add(key)
                raise NodeClaimError(f"{function}: no answer from the pool in {wait:g}s")
        finally:
            with self._lock:
                self._events.pop(key, None)
        if job.failure or job.exception:
            raise NodeClaimError(f"{function}: the request failed (pool down?)")
        result = _payload(job)
        if "error" in result:
            raise NodeClaimError(f"{function}: {result['error']}")
        return result

    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> NodeLease:
        started = time.monotonic()
        res = self._call(node_claim_function(label),
                         {"build": build_uuid, "timeout": timeout, "project": project,
                          "job": job}, timeout + self.margin)
        lease = NodeLease(
            node_id=str(res["node_id"]), label=str(res.get("label", label)),
            host=str(res["host"]), port=int(res.get("port", 22)),
            username=str(res.get("username", "")), private_key=str(res.get("private_key", "")),
            provider=str(res.get("provider", "")), host_key=res.get("host_key") or None,
            extra={str(k): str(v) for k, v in (res.get("extra") or {}).items()})
        log.info("build %s got node %s (%s) from %s in %.3fs", build_uuid, lease.node_id,
                 label, lease.provider, time.monotonic() - started)
        return lease

    def release(self, lease: NodeLease, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> None:
        self._call(NODE_RELEASE_FUNCTION, {"node_id": lease.node_id, "state": state,
                                           "hold_for": hold_for, "reason": reason,
                                           "build": build, "result": result}, 60.0)


def _payload(job: gear.Job) -> dict[str, Any]:
    raw = job.data[-1] if job.data else b""
    try:
        return decode(raw)
    except ValueError:
        return {"error": "unreadable answer from the pool"}
