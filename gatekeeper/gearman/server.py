"""The embedded Gearman server (gear.Server with TCP_NODELAY)."""

from __future__ import annotations

import logging
import socket
import time

from gatekeeper.gearman.nodelay import NoDelayServer

log = logging.getLogger("gatekeeper.gearman.server")


class EmbeddedGearmanServer:
    """gear.Server on ``host``:``port`` (0 = any free port; see ``port``).

    gear.Server is meant for tests and small sites; Debian's gearmand
    is the alternative for large ones. Both speak the same protocol."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 ssl_key: str | None = None, ssl_cert: str | None = None,
                 ssl_ca: str | None = None, keepalive: bool = True):
        self.host = host
        self._requested_port = port
        self._ssl = (ssl_key, ssl_cert, ssl_ca)
        self._keepalive = keepalive
        self._server: NoDelayServer | None = None

    @property
    def port(self) -> int:
        """The port actually bound (valid after start())."""
        if self._server is None:
            raise RuntimeError("gearman server not started")
        return int(self._server.port)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 10.0) -> EmbeddedGearmanServer:
        if self._server is not None:
            return self
        key, cert, ca = self._ssl
        try:
            self._server = NoDelayServer(
                port=self._requested_port, host=self.host, ssl_key=key, ssl_cert=cert,
                ssl_ca=ca, server_id="gatekeeper", keepalive=self._keepalive,
                # Notice a dead peer within ~2 minutes, not gear's 2 hours.
                tcp_keepidle=60, tcp_keepintvl=15, tcp_keepcnt=4)
        except OSError:
            raise
        except Exception as e:  # gear raises a bare Exception when bind() fails
            raise OSError(f"cannot listen on {self.host}:{self._requested_port} "
                          f"(address in use or not available): {e}") from e
        self._wait_accepting(timeout)
        log.info("gearman server listening on %s:%s%s", self.host, self.port,
                 " (TLS)" if all(self._ssl) else "")
        return self

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.shutdown()
        log.info("gearman server stopped")

    def __enter__(self) -> EmbeddedGearmanServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
