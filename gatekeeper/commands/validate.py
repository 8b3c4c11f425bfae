"""``gatekeeper validate [--config FILE] LAYOUT...``: check layouts (and config).

Prints a one-line summary and exits 0 when everything is valid; otherwise
the CLI prints every error (``FILE:LINE: key: message``) and exits 2."""

from __future__ import annotations

import argparse
import logging
import sys

from gatekeeper.errors import UserError

HELP = "check layout files (and the service config)"
log = logging.getLogger("gatekeeper.commands.validate")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="also validate this service config and check job labels against its labels",
    )
    parser.add_argument("layouts", nargs="+", metavar="LAYOUT", help="layout YAML files (merged)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.layout.loader import load_layout

    messages: list[str] = []
    known_labels: set[str] | None = None
    if args.config:
        from gatekeeper.config import load_config

        try:
            known_labels = load_config(args.config).known_labels()
        except UserError as e:
            messages.extend(e.messages)
    try:
        layout = load_layout(args.layouts, known_labels=known_labels)
    except UserError as e:
        messages.extend(e.messages)
    if messages:
        raise UserError(messages)
    what = f"{len(args.layouts)} layout file{'s' if len(args.layouts) != 1 else ''}"
    if args.config:
        what += f" and {args.config}"
    print(
        f"OK: {what}: {len(layout.pipelines)} pipelines, {len(layout.jobs)} jobs, "
        f"{len(layout.projects)} projects",
        file=sys.stdout,
    )
    return 0
