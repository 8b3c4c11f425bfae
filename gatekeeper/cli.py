"""The single ``gatekeeper`` entry point.

Each subcommand lives in ``gatekeeper.commands.<name>`` and exposes
``configure(parser)`` and ``run(args) -> int``; its one-line help is in
``COMMANDS`` below. Modules are
imported only when their command runs, so ``gatekeeper validate`` does not
pay for paramiko or gear."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from gatekeeper.errors import UserError

# name -> (module, one-line help). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("gatekeeper.commands.validate", "check layout files (and the service config)"),
    "doctor": ("gatekeeper.commands.doctor", "check a site: config, Gerrit, Gearman, nodes, database, logs"),
    "quickstart": ("gatekeeper.commands.quickstart", "run the local gate demo (all services, emulated Gerrit)"),
    "all-in-one": ("gatekeeper.commands.allinone", "run every service in one process"),
    "scheduler": ("gatekeeper.commands.scheduler", "run the scheduler service"),
    "web": ("gatekeeper.commands.web", "run the web service (status, API, logs)"),
    "client": ("gatekeeper.commands.client", "talk to the web API (status, enqueue, promote, ...)"),
    "explain": ("gatekeeper.commands.explain", "show every decision about a change"),
    "gearman": ("gatekeeper.commands.gearman", "run the embedded Gearman server"),
    "merger": ("gatekeeper.commands.merger", "run the speculative merger service"),
    "worker": ("gatekeeper.commands.worker", "run builds on nodes (devstack-gate style worker)"),
    "gerrit-emulator": ("gatekeeper.commands.gerrit_emulator", "run the Gerrit emulator (SSH) in the foreground"),
    "events": ("gatekeeper.commands.events", "print Gerrit events and which pipelines they would trigger"),
    "pool": ("gatekeeper.commands.pool", "run the node pool service (node:claim / node:release)"),
    "nodes": ("gatekeeper.commands.nodes", "list, hold or delete pool nodes"),
    "autohold": ("gatekeeper.commands.autohold", "hold the nodes of the next N failures of a job"),
    "simulate": ("gatekeeper.commands.simulate", "compare gate strategies on a workload, the real core in virtual time"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatekeeper", description="Gatekeeper project gating")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Argument definitions are cheap; import lazily only to configure.
        importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        # Libraries that log every packet or SSH step at INFO drown the services' own lines.
        for noisy in ("gear", "paramiko"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except UserError as e:
        for msg in e.messages:
            print(msg, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
