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
from typing import Any

log = logging.getLogger("gatekeeper.commands.pool")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE",
                        help="service config (etc/gatekeeper.yaml) with a pool: section")
    parser.add_argument("--once", action="store_true",
                        help="one planning pass and reap, wait for its actions, exit")


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
    from gatekeeper.commands._service import serve
    from gatekeeper.config import load_config
    from gatekeeper.services.pool import PoolProcess

    pool = PoolProcess(load_config(args.config))
    if args.once:
        pool.run_once()  # not started: actions run inline
        return 0
    return serve(lambda on_fatal: pool)
