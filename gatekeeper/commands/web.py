"""``gatekeeper web -c CONFIG``: the web service (status page, JSON API, logs, admin API).

Listens on ``web.listen``; asks the scheduler over Gearman; serves the
worker's ``log_root`` when it is on this host. SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import serve
    from gatekeeper.config import load_config
    from gatekeeper.services.web import WebProcess

    config = load_config(args.config)
    return serve(lambda on_fatal: WebProcess(config))
