"""The worker process built from the service config: the build executor
registered on Gearman for the layout's jobs, its layout reloaded on SIGHUP.
Used by ``gatekeeper worker``."""

from __future__ import annotations

from typing import Any

from gatekeeper.config import Config


class WorkerProcess:
    def __init__(self, cfg: Config, options: Any, abort: bool) -> None:
        from gatekeeper.worker.wiring import worker_from_config

        self.cfg, self.options, self.abort = cfg, options, abort
        self.service = worker_from_config(cfg, options)

    def start(self) -> WorkerProcess:
        self.service.start(connect_timeout=None)
        return self

    def reload(self) -> None:
        from gatekeeper.worker.wiring import reload_layout_in_background

        reload_layout_in_background(self.cfg, self.service, self.options)

    def stop(self) -> None:
        self.service.stop(abort=self.abort)
