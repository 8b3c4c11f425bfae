"""``gatekeeper merger -c CONFIG``: the speculative merger service.

Built from the service config only (``gearman``, ``gerrit``, ``merger``;
see doc/configuration.md): registers ``merger:merge`` and ``merger:update``
on Gearman, keeps clones of the projects under ``merger.git_dir`` (fetched
from ``merger.git_url_base``, by default Gerrit over SSH), publishes results
as ``refs/gatekeeper/...`` in bare repositories under ``merger.publish_dir``
and serves them with ``git daemon`` (``merger.git_daemon``). The merge
result carries ZUUL_URL; the scheduler puts it and ZUUL_REF in the build
parameters and workers fetch ZUUL_REF from ``$ZUUL_URL/$ZUUL_PROJECT``."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("gatekeeper.commands.merger")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True,
                        help="service config (gatekeeper.yaml): gearman, gerrit and merger")
    parser.add_argument("--name", help="worker name on Gearman (merger-HOSTNAME)")


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "debug", False):
        logging.getLogger("gear").setLevel(logging.WARNING)  # gear logs every packet at INFO
    from gatekeeper.commands._service import wait_for_signal
    from gatekeeper.config import load_config
    from gatekeeper.services.merger import MergerProcess

    proc = MergerProcess(load_config(args.config), name=args.name)
    try:
        proc.start()
        return wait_for_signal()
    finally:
        proc.stop()
