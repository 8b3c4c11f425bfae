"""Every service of a small site in one process: ``gatekeeper all-in-one``.

Embedded Gearman (when ``gearman.embedded``), the merger with its git daemon,
the node pool (when the config has a ``pool`` section), the worker, the
scheduler and the web service (status, API, logs). They talk over Gearman
exactly as separate processes on separate hosts would, so a site grows by
moving a service elsewhere, not by changing it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from gatekeeper.config import Config

log = logging.getLogger("gatekeeper.services.allinone")


class AllInOne:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time,
                 on_fatal: Callable[[str], None] | None = None, worker_options: Any = None,
                 with_worker: bool = True):
        self.config = config
        self.clock = clock
        self.on_fatal = on_fatal
        self.worker_options = worker_options
        self.with_worker = with_worker
        self.gearman: Any = None
        self.merger: Any = None
        self.pool: Any = None
        self.worker: Any = None
        self.scheduler: Any = None
        self.web: Any = None
        self._stack: list[tuple[str, Callable[[], None]]] = []  # stop calls, run in reverse

    def start(self) -> AllInOne:
        from gatekeeper.services.merger import MergerProcess
        from gatekeeper.services.scheduler import (
            SchedulerProcess,
            load_service_layout,
            start_gearman,
        )
        from gatekeeper.services.web import WebProcess
        from gatekeeper.worker.wiring import worker_from_config

        cfg = self.config
        try:
            # Everything that can fail on user input is built before anything starts.
            layout = load_service_layout(cfg)
            self.scheduler = SchedulerProcess(cfg, self.clock, on_fatal=self.on_fatal)
            self.merger = MergerProcess(cfg, name=f"merger-{cfg.worker.hostname}")
            self.gearman = start_gearman(cfg)
            if self.gearman is not None:
                self._stack.append(("gearman", self.gearman.stop))
            if self.with_worker:  # after Gearman: a pool-backed worker connects at once
                self.worker = worker_from_config(cfg, self.worker_options, layout)
            self.merger.start()
            self._stack.append(("merger", self.merger.stop))
            if cfg.pool:
                from gatekeeper.services.pool import PoolProcess

                self.pool = PoolProcess(cfg).start()
                self._stack.append(("pool", self.pool.stop))
            if self.worker is not None:
                self.worker.start()
                # Stopping the site aborts running builds (their nodes are released).
                self._stack.append(("worker", lambda: self.worker.stop(abort=True, timeout=60)))
            os.makedirs(cfg.worker.log_root, exist_ok=True)  # served by the web
            self.scheduler.start()
            self._stack.append(("scheduler", self.scheduler.stop))
            self.web = WebProcess(cfg).start()
            self._stack.append(("web", self.web.stop))
        except BaseException:
            self.stop()
            raise
        log.info("all-in-one running: gearman %s:%d, web %s", cfg.gearman.server,
                 cfg.gearman.port, self.web.url)
        return self

    def reload(self) -> None:
        if self.scheduler is not None:
            self.scheduler.reload()
        if self.worker is not None:  # registers new jobs' build functions
            from gatekeeper.worker.wiring import reload_layout_in_background

            reload_layout_in_background(self.config, self.worker, self.worker_options)

    def stop(self) -> None:
        while self._stack:
            name, stop = self._stack.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping the %s failed", name)
