"""Calls the scheduler's RPC functions (see rpclistener) and waits for the answer."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import gear

from gatekeeper.gearman.jobclient import ForwardingClient, JobOwner
from gatekeeper.gearman.protocol import decode, encode


class RPCError(Exception):
    """The scheduler could not be asked, or did not answer in time."""


class RPCClient(JobOwner):
    def __init__(self, host: str, port: int, ssl_key: str | None = None,
                 ssl_cert: str | None = None, ssl_ca: str | None = None,
                 name: str = "gatekeeper-web"):
        self.host, self.port, self.name = host, port, name
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[Any]]] = {}

    def start(self) -> RPCClient:
        key, cert, ca = self._ssl
        self._client = ForwardingClient(self, self.name)
        self._client.addServer(self.host, self.port, ssl_key=key, ssl_cert=cert, ssl_ca=ca,
                               keepalive=True, tcp_keepidle=60, tcp_keepintvl=15, tcp_keepcnt=4)
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.shutdown()
            self._client = None

    def call(self, function: str, args: dict[str, Any] | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        client = self._client
        if client is None:
            raise RPCError("not started")
        unique = uuid.uuid4().hex
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            self._waiting[unique] = (done, box)
        try:
            job = gear.Job(function, encode(args or {}).encode("utf-8"), unique=unique)
            try:
                client.submitJob(job, timeout=min(timeout, 5.0))
            except (gear.GearmanError, OSError) as e:
                raise RPCError(f"gearman {self.host}:{self.port}: {e or type(e).__name__}"
                               ) from None
            if not done.wait(timeout):
                raise RPCError(f"the scheduler did not answer {function} within {timeout:g}s")
            if isinstance(box[0], Exception):
                raise box[0]
            return box[0]
        finally:
            with self._lock:
                self._waiting.pop(unique, None)

    def _settle(self, job: gear.Job, value: Any) -> None:
        with self._lock:
            entry = self._waiting.get(job.unique if isinstance(job.unique, str)
                                      else job.unique.decode())
        if entry is not None:
            entry[1].append(value)
            entry[0].set()

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        try:
            self._settle(job, decode(raw))
        except ValueError as e:
            self._settle(job, RPCError(f"bad answer from the scheduler: {e}"))

    def _on_lost(self, job: gear.Job, why: str) -> None:
        self._settle(job, RPCError(f"the scheduler did not answer: {why}"))
