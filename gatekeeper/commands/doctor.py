"""``gatekeeper doctor -c CONFIG``: check a site, one line per check.

Config and layouts valid; files the services read present; Gerrit reachable,
its host key known, the account logged in, allowed to stream events, the
layout's projects visible and the labels the pipelines vote on present;
Gearman reachable with a merger, a worker for every job (and the pool for
every label when there are no static nodes); every static node reachable
over SSH with its host key; the database reachable and at the current
schema; the log root writable and served at worker.log_url.
Exit 0 when nothing FAILs (WARNs are shown), 1 otherwise. Never prints a
secret (keys by path, database passwords as ***)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE")
    parser.add_argument("--known-hosts", metavar="FILE",
                        help="known_hosts pinning static nodes' host keys (as for the worker)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds per network probe (default 10)")


def run(args: argparse.Namespace) -> int:
    import logging

    from gatekeeper.doctor.checks import run_checks, verdict_of
    from gatekeeper.doctor.result import Verdict

    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per check, no chatter
    checks = []
    for check in run_checks(args.config, args.known_hosts, args.timeout):
        checks.append(check)
        print(check.line(), flush=True)
    verdict = verdict_of(checks)
    failed = sum(1 for c in checks if c.verdict is Verdict.FAIL)
    print(f"{verdict.value}: {len(checks)} checks, {failed} failed", file=sys.stdout)
    return 1 if verdict is Verdict.FAIL else 0
