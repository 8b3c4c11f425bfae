"""``gatekeeper all-in-one -c CONFIG``: every service of a small site in one process.

Embedded Gearman (``gearman.embedded``), merger + git daemon, node pool (if
the config has a ``pool`` section), worker, scheduler and the log/status web
server. SIGHUP reloads the layout; SIGTERM/SIGINT stop everything."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("gatekeeper.commands.allinone")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")
    parser.add_argument("--known-hosts", help="known_hosts file with the static nodes' host keys")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import serve
    from gatekeeper.config import load_config
    from gatekeeper.services.allinone import AllInOne
    from gatekeeper.services.scheduler import check_config_files
    from gatekeeper.worker.wiring import WorkerOptions

    config = load_config(args.config)
    check_config_files(config)
    return serve(lambda on_fatal: AllInOne(
        config, on_fatal=on_fatal, worker_options=WorkerOptions(known_hosts=args.known_hosts)))
