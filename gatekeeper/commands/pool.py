"""``gatekeeper pool -c CONFIG``: the node pool service.

Reads the service config (``pool:`` section, see gatekeeper/nodes/config.py
and doc/nodepool.md), keeps ``min_ready`` nodes per label, serves
``node:claim:LABEL`` / ``node:release`` on the config's Gearman server,
reaps, builds images, and serves Prometheus metrics on the configured
loopback port. Runs until SIGTERM/SIGINT; ``--once`` runs one planning
pass and one reap, waits for the actions it started, and exits."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from gatekeeper.errors import UserError

HELP = "run the node pool service (node:claim / node:release)"
log = logging.getLogger("gatekeeper.commands.pool")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE",
                        help="service config (etc/gatekeeper.yaml) with a pool: section")
    parser.add_argument("--once", action="store_true",
                        help="one planning pass and reap, wait for its actions, exit")


def load(path: str) -> tuple[Any, Any]:
    """(service Config, PoolSetup) — every config problem as one UserError."""
    from gatekeeper.config import load_config
    from gatekeeper.nodes.config import build_pool, validate_pool

    cfg = load_config(path)
    if not cfg.pool:
        raise UserError(f"{cfg.path}:1: pool: the config has no pool section")
    problems = validate_pool(cfg.pool, cfg.path)
    if problems:
        raise UserError(problems)
    return cfg, build_pool(cfg.pool, cfg.base_dir, cfg.scheduler.state_dir)


def database_url(cfg: Any) -> str:
    return (cfg.pool or {}).get("database") or cfg.database.url


def open_store(path: str) -> Any:
    """The pool's record store, for the operator commands (no credentials read)."""
    from gatekeeper.config import load_config
    from gatekeeper.nodes.db import PoolStore
    from gatekeeper.store.db import create_engine

    cfg = load_config(path)
    return PoolStore(create_engine(database_url(cfg)))


def run(args: argparse.Namespace) -> int:
    from gatekeeper.nodes.db import PoolStore
    from gatekeeper.nodes.gearsvc import PoolGearmanWorker
    from gatekeeper.nodes.metrics import MetricsHTTPServer, PoolMetrics, Statsd
    from gatekeeper.nodes.service import PoolService
    from gatekeeper.store.db import create_engine, redact_url

    cfg, setup = load(args.config)
    url = setup.database or cfg.database.url
    store = PoolStore(create_engine(url))
    statsd = Statsd(*setup.statsd, prefix=setup.statsd_prefix) if setup.statsd else None
    metrics = PoolMetrics(statsd=statsd)
    service = PoolService(store, setup.config, ready_check=setup.ready_check, metrics=metrics)
    log.info("pool %s: database %s", setup.config.pool_id, redact_url(url))
    if args.once:
        service.register_static()
        service.reap()
        service.tick()  # not started: actions run inline
        return 0
    # Handlers first: a SIGTERM during start-up still stops cleanly.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    http = None
    gw = None
    service.start()
    try:
        if setup.metrics_listen:
            http = MetricsHTTPServer(metrics.registry, *setup.metrics_listen).start()
            log.info("metrics on http://%s:%d/metrics", http.host, http.port)
        try:
            gw = PoolGearmanWorker(service, cfg.gearman.server, cfg.gearman.port).start()
        except Exception as e:  # gear raises its own types on connect timeouts
            raise UserError(f"pool: cannot reach gearman at {cfg.gearman.server}:"
                            f"{cfg.gearman.port}: {e}") from None
        while not stop.wait(3600):
            pass
        log.info("pool %s stopping", setup.config.pool_id)
        return 0
    finally:
        if gw:
            gw.stop()
        service.stop()
        if http:
            http.stop()
        if statsd:
            statsd.close()
