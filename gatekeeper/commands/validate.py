"""``gatekeeper validate [--config FILE] [--merge] [LAYOUT...]``.

Each LAYOUT is checked as a complete layout of its own (so
``gatekeeper validate layouts/*.yaml`` checks every sample); ``--merge``
checks them together as one layout, the way the scheduler loads the list in
``scheduler.layout``. With ``--config`` the service config is validated too
(including its ``pool`` section), job labels must be labels the config knows
(static nodes, pool labels), the site checks of gatekeeper/layout/checks.py
apply (a labelled job has a run script the worker can find), and
without LAYOUT arguments the config's own layout list is checked (merged).

Valid: one summary line per layout on stdout, exit 0. Otherwise the CLI
prints every error (``FILE:LINE: key: message``) on stderr and exits 2."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.commands.validate")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="also validate this service config and check job labels against its labels",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="validate the layout files together as one layout (as the scheduler does)",
    )
    parser.add_argument("layouts", nargs="*", metavar="LAYOUT", help="layout YAML files")


def site_facts(config: Any) -> Any:
    """What the config's worker provides, for the site checks of layout/checks.py."""
    from gatekeeper.layout.checks import SiteFacts
    from gatekeeper.worker.workspace import available_job_scripts

    return SiteFacts(job_scripts=available_job_scripts(config.worker.jobs_dir),
                     mail=config.smtp is not None)


def run(args: argparse.Namespace) -> int:
    from gatekeeper.layout.loader import load_layout

    if not args.layouts and not args.config:
        raise UserError("nothing to validate: give LAYOUT files and/or --config FILE")
    messages: list[str] = []
    known_labels: set[str] | None = None
    site = None
    groups: list[list[str]] = []
    if args.config:
        from gatekeeper.config import load_config

        try:
            config = load_config(args.config)
        except UserError as e:
            messages.extend(e.messages)
        else:
            known_labels = config.known_labels()
            site = site_facts(config)
            if config.pool:
                from gatekeeper.nodes.config import validate_pool

                messages.extend(validate_pool(config.pool, config.path))
            if not args.layouts:
                groups.append(list(config.scheduler.layout))
    if args.layouts:
        groups.extend([list(args.layouts)] if args.merge else [[p] for p in args.layouts])
    summaries = []
    for paths in groups:
        try:
            layout = load_layout(paths, known_labels=known_labels, site=site)
        except UserError as e:
            messages.extend(e.messages)
            continue
        summaries.append(
            f"OK: {', '.join(paths)}: {len(layout.pipelines)} pipelines, "
            f"{len(layout.jobs)} jobs, {len(layout.projects)} projects"
        )
    if messages:
        raise UserError(messages)
    if args.config:
        summaries.append(f"OK: {args.config}: config valid, {len(known_labels or ())} known labels")
    for line in summaries:
        print(line, file=sys.stdout)
    return 0
