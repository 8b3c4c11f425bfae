"""``gatekeeper scheduler -c CONFIG``: the scheduler service.

Connects to Gerrit (stream-events), loads the layout, submits builds and
merges over Gearman (starting the embedded Gearman server when
``gearman.embedded`` is true) and reports back. SIGHUP reloads the layout
(a bad one is rejected and the old one kept); SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

HELP = "run the scheduler (Gerrit events -> pipelines -> Gearman builds -> reports)"
log = logging.getLogger("gatekeeper.commands.scheduler")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.config import load_config
    from gatekeeper.services.scheduler import SchedulerService, check_config_files, start_gearman

    config = load_config(args.config)
    check_config_files(config)
    stop = threading.Event()
    fatal: list[str] = []

    def on_fatal(msg: str) -> None:
        fatal.append(msg)
        stop.set()

    gearman = start_gearman(config)
    service = SchedulerService(config, on_fatal=on_fatal)
    signal.signal(signal.SIGHUP, lambda *_: service.reload())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service.start()
        while not stop.wait(3600):
            pass
    finally:
        service.stop()
        if gearman is not None:
            gearman.stop()
    if fatal:
        log.error("stopping: %s", fatal[0])
        return 1
    return 0
