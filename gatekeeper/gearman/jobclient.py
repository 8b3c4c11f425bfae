"""A gear client that hands every job packet to its owner.

gear reports a job's progress by calling ``handle*`` methods on the client;
the launcher and the merge client both want the same thing from them: the
result payload from the WORK_COMPLETE packet itself, and one "lost" call for
WORK_FAIL, WORK_EXCEPTION and a dropped connection."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import gear

from gatekeeper.gearman.nodelay import NoDelayClient

log = logging.getLogger("gatekeeper.gearman.jobclient")


class JobOwner:
    """What a :class:`ForwardingClient` calls; progress is optional."""

    _client: ForwardingClient | None = None
    _thread: threading.Thread | None = None

    def _start_client(self, client_name: str, host: str, port: int,
                      ssl: tuple[str | None, str | None, str | None],
                      run: Callable[[], None], thread_name: str) -> None:
        """Connect a forwarding client (TCP keepalive on) and start the owner's
        submitter thread ``run``."""
        key, cert, ca = ssl
        self._client = ForwardingClient(self, client_name)
        self._client.addServer(host, port, ssl_key=key, ssl_cert=cert, ssl_ca=ca,
                               keepalive=True, tcp_keepidle=60, tcp_keepintvl=15, tcp_keepcnt=4)
        self._thread = threading.Thread(target=run, name=thread_name, daemon=True)
        self._thread.start()

    def _stop_client(self, work: queue.Queue[Any], join_timeout: float) -> None:
        """Tell the submitter thread to finish (``None`` on ``work``), then
        shut the client down."""
        if self._client is None:
            return
        work.put(None)
        if self._thread is not None:
            self._thread.join(timeout=join_timeout)
        client, self._client = self._client, None
        client.shutdown()

    def wait_for_server(self, timeout: float) -> bool:
        """True once the client is connected to a Gearman server."""
        assert self._client is not None, "start() first"
        try:
            self._client.waitForServer(timeout)
            return True
        except gear.TimeoutError:
            return False

    def _on_complete(self, job: gear.Job, raw: bytes) -> None:
        raise NotImplementedError

    def _on_lost(self, job: gear.Job, why: str) -> None:
        raise NotImplementedError

    def _on_data(self, job: gear.Job, raw: bytes) -> None:
        """WORK_DATA (ignored unless overridden)."""

    def _on_status(self, job: gear.Job) -> None:
        """WORK_STATUS (ignored unless overridden)."""


class ForwardingClient(NoDelayClient):
    def __init__(self, owner: JobOwner, client_id: str):
        self.owner = owner
        super().__init__(client_id=client_id)

    def handlePacket(self, packet: gear.Packet) -> None:
        try:
            super().handlePacket(packet)
        except gear.UnknownJobError:
            # e.g. gearmand's WORK_FAIL after an admin cancel we already settled
            log.debug("packet for a job we no longer track: %s", packet)

    def handleWorkComplete(self, packet: gear.Packet) -> gear.Job:
        job = super().handleWorkComplete(packet)
        # Read the result from this packet: job.data[-1] would be the last
        # WORK_DATA when WORK_COMPLETE carries no data.
        self.owner._on_complete(job, packet.getArgument(1, True))
        return job

    def handleWorkFail(self, packet: gear.Packet) -> gear.Job:
        job = super().handleWorkFail(packet)
        self.owner._on_lost(job, "worker reported WORK_FAIL")
        return job

    def handleWorkException(self, packet: gear.Packet) -> gear.Job:
        job = super().handleWorkException(packet)
        self.owner._on_lost(job, f"worker exception: {job.exception}")
        return job

    def handleWorkData(self, packet: gear.Packet) -> gear.Job:
        job = super().handleWorkData(packet)
        self.owner._on_data(job, packet.getArgument(1, True))
        return job

    def handleWorkStatus(self, packet: gear.Packet) -> gear.Job:
        job = super().handleWorkStatus(packet)
        self.owner._on_status(job)
        return job

    def handleDisconnect(self, job: gear.Job) -> gear.Job:
        job = super().handleDisconnect(job)
        self.owner._on_lost(job, "lost the connection to the gearman server")
        return job
