"""The web process: status page, JSON API, log browser, admin API.

``gatekeeper web`` runs it alone; all-in-one and the quickstart start it
next to the other services. It asks the scheduler over Gearman (status,
explain, management) and serves the worker's ``log_root`` when that is on
this host. uvicorn serves the Starlette app from a thread of its own."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

from gatekeeper.config import Config
from gatekeeper.errors import UserError
from gatekeeper.gearman.rpcclient import RPCClient
from gatekeeper.web.app import WebData, create_app
from gatekeeper.web.console import ConsoleHub
from gatekeeper.web.history import HistoryDatabase
from gatekeeper.web.sources import PoolDatabase, SchedulerRPC

log = logging.getLogger("gatekeeper.services.web")


class AppServer:
    """uvicorn serving one ASGI app from its own thread, on ``host``:``port`` (0: any)."""

    def __init__(self, app: Any, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> AppServer:
        sock = socket.create_server((self.host, self.port))  # OSError: the caller says why
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve([sock])),
                                        name="gatekeeper-web", daemon=True)
        self._thread.start()
        ready = threading.Event()
        for _ in range(400):  # bounded: uvicorn sets .started once it accepts
            if server.started or not self._thread.is_alive():
                break
            ready.wait(0.025)
        if not server.started:
            sock.close()
            raise OSError("the web server did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._server = None


class WebProcess:
    def __init__(self, config: Config, data: WebData | None = None):
        self.config = config
        self.rpc: RPCClient | None = None
        self.console: ConsoleHub | None = None
        if data is None:
            g = config.gearman
            self.rpc = RPCClient(g.server, g.port, g.ssl_key, g.ssl_cert, g.ssl_ca)
            source = SchedulerRPC(self.rpc)
            log_root = config.worker.log_root
            pool = None
            if config.pool:  # autoholds and nodes live in the pool's database
                from gatekeeper.commands.pool import database_url

                pool = PoolDatabase(database_url(config))
            self.console = ConsoleHub(g.server, g.port, g.ssl_key, g.ssl_cert, g.ssl_ca)
            history = HistoryDatabase(config.database.url)
            data = WebData(status=source, manager=source, pool=pool, console=self.console,
                           history=history, etas=history, scheduler_metrics=source.metrics,
                           log_root=Path(log_root) if os.path.isdir(log_root) else None,
                           admin_token=config.web.admin_token)
        self.data = data
        self.server = AppServer(create_app(data), config.web.host, config.web.port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> WebProcess:
        try:
            self.server.start()
        except OSError as e:
            raise UserError(f"{self.config.path}: web.listen: cannot listen on "
                            f"{self.server.host}:{self.server.port}: {e.strerror or e}") from e
        if self.rpc is not None:
            self.rpc.start()
        if self.console is not None:
            self.console.start()
        log.info("web on %s", self.url)
        return self

    def reload(self) -> None:
        log.info("SIGHUP: the web has nothing to reload")

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()  # ends the streams, so the server can stop
        self.server.stop()
        if self.rpc is not None:
            self.rpc.stop()
