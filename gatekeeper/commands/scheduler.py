"""``gatekeeper scheduler -c CONFIG``: the scheduler service.

Connects to Gerrit (stream-events), loads the layout, submits builds and
merges over Gearman (starting the embedded Gearman server when
``gearman.embedded`` is true) and reports back. SIGHUP reloads the layout
(a bad one is rejected and the old one kept); SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("gatekeeper.commands.scheduler")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import serve
    from gatekeeper.config import load_config
    from gatekeeper.services.scheduler import SchedulerProcess, check_config_files

    config = load_config(args.config)
    check_config_files(config)
    return serve(lambda on_fatal: SchedulerProcess(config, on_fatal=on_fatal,
                                                   with_gearman=True, standby=True))
