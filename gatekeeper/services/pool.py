"""The node pool process built from the service config.

Pool service (planner loop, reaper, image builds), its Gearman worker for
``node:claim:LABEL`` / ``node:release``, and the optional metrics endpoint.
Used by ``gatekeeper pool`` and ``gatekeeper all-in-one``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gatekeeper.config import Config
from gatekeeper.errors import UserError

if TYPE_CHECKING:
    from gatekeeper.nodes.config import PoolSetup

log = logging.getLogger("gatekeeper.services.pool")


def pool_setup(cfg: Config) -> PoolSetup:
    """The validated pool section as runtime objects; UserError if bad."""
    from gatekeeper.nodes.config import build_pool, validate_pool

    if not cfg.pool:
        raise UserError(f"{cfg.path}:1: pool: the config has no pool section")
    problems = validate_pool(cfg.pool, cfg.path)
    if problems:
        raise UserError(problems)
    return build_pool(cfg.pool, cfg.base_dir, cfg.scheduler.state_dir)


class PoolProcess:
    def __init__(self, cfg: Config):
        from gatekeeper.nodes.db import PoolStore
        from gatekeeper.nodes.metrics import PoolMetrics, Statsd
        from gatekeeper.nodes.service import PoolService
        from gatekeeper.store.db import create_engine, redact_url

        self.cfg = cfg
        self.setup = pool_setup(cfg)
        url = self.setup.database or cfg.database.url
        self.store = PoolStore(create_engine(url))
        self.statsd: Statsd | None = None
        if self.setup.statsd:
            host, port = self.setup.statsd
            self.statsd = Statsd(host, port, prefix=self.setup.statsd_prefix)
        self.metrics = PoolMetrics(statsd=self.statsd)
        self.service = PoolService(self.store, self.setup.config,
                                   ready_check=self.setup.ready_check, metrics=self.metrics)
        self.http: Any = None
        self.gearman_worker: Any = None
        log.info("pool %s: database %s", self.setup.config.pool_id, redact_url(url))

    def run_once(self) -> None:
        """One planning pass and reap (actions inline), for ``gatekeeper pool --once``."""
        self.service.register_static()
        self.service.reap()
        self.service.tick()

    def start(self) -> PoolProcess:
        from gatekeeper.nodes.gearsvc import PoolGearmanWorker
        from gatekeeper.nodes.metrics import MetricsHTTPServer

        self.service.start()
        if self.setup.metrics_listen:
            self.http = MetricsHTTPServer(self.metrics.registry, *self.setup.metrics_listen).start()
            log.info("metrics on http://%s:%d/metrics", self.http.host, self.http.port)
        g = self.cfg.gearman
        try:
            self.gearman_worker = PoolGearmanWorker(self.service, g.server, g.port,
                                                    ssl_key=g.ssl_key, ssl_cert=g.ssl_cert,
                                                    ssl_ca=g.ssl_ca).start()
        except Exception as e:  # gear raises its own types on connect timeouts
            raise UserError(f"pool: cannot reach gearman at {g.server}:{g.port}: {e}") from None
        return self

    def reload(self) -> None:
        log.info("pool: configuration reload needs a restart; ignoring SIGHUP")

    def stop(self) -> None:
        if self.gearman_worker is not None:
            self.gearman_worker.stop()
            self.gearman_worker = None
        self.service.stop()
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.statsd is not None:
            self.statsd.close()
            self.statsd = None
