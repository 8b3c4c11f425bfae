"""``gatekeeper autohold -c CONFIG PROJECT JOB --count N``: hold the nodes
of the next N failed builds of JOB on PROJECT (until deleted, or ``--for``
seconds). ``--list`` shows the requests, ``--remove ID`` drops one. Stored
in the pool's database; the pool applies a request when a node of a
matching build is released after a failure."""

from __future__ import annotations

import argparse
import time

from gatekeeper.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE")
    parser.add_argument("project", nargs="?")
    parser.add_argument("job", nargs="?")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--for", dest="hold_for", type=float, default=None,
                        help="hold each node this many seconds (default: until deleted)")
    parser.add_argument("--reason", default="")
    parser.add_argument("--list", action="store_true", help="list autohold requests")
    parser.add_argument("--remove", type=int, metavar="ID", help="remove a request")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands.pool import open_store

    store = open_store(args.config)
    if args.list:
        print(f"{'ID':>4} {'PROJECT':<30} {'JOB':<30} {'LEFT':>4} {'HOLD':>8} REASON")
        for a in store.list_autoholds():
            hold = "forever" if a.hold_for is None else f"{a.hold_for:g}s"
            print(f"{a.id:>4} {a.project:<30} {a.job:<30} {a.count:>4} {hold:>8} {a.reason}")
        return 0
    if args.remove is not None:
        if not store.delete_autohold(args.remove):
            raise UserError(f"autohold: no request {args.remove}")
        print(f"autohold request {args.remove} removed")
        return 0
    if not args.project or not args.job:
        raise UserError("autohold: PROJECT and JOB are required (or --list / --remove ID)")
    if args.count < 1:
        raise UserError("autohold: --count must be at least 1")
    ah = store.add_autohold(args.project, args.job, args.count, args.hold_for, args.reason,
                            time.time())
    print(f"autohold request {ah.id}: next {ah.count} failure(s) of {ah.job} on {ah.project}")
    return 0
