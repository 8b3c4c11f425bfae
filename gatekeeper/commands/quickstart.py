"""``gatekeeper quickstart``: the whole gate on this machine, in one command.

Starts the Gerrit emulator, sshd nodes on loopback ports and every
Gatekeeper service (all-in-one), uploads three changes, approves them and
narrates what the gate does: speculative testing, one change failing and
being reset out of the queue, the others merging in order, with votes,
messages and log URLs. Exits 0 when the gate did what it should. Leaves
nothing running unless --keep (then until Ctrl-C)."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatekeeper.quickstart.site import LocalSite



def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="site directory (default: a new temporary directory, "
                                      "removed afterwards unless --keep)")
    parser.add_argument("--nodes", type=int, default=2,
                        help="sshd nodes the pool keeps ready (2)")
    parser.add_argument("--static-nodes", action="store_true",
                        help="start the sshd nodes as a static list instead of running the pool")
    parser.add_argument("--gearman", choices=("embedded", "gearmand"), default="embedded",
                        help="embedded gear.Server or Debian's gearmand (embedded)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the site running after the story, until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds the story may take (600)")


def run_doctor(site: LocalSite, say: Callable[[str], None]) -> bool:
    """The operator's first command on a new site, run once on this one."""
    from gatekeeper.doctor.checks import run_checks
    from gatekeeper.doctor.result import Verdict

    failed = False
    for check in run_checks(str(site.config_path)):
        say("  " + check.line())
        failed |= check.verdict is Verdict.FAIL
    return not failed


def run(args: argparse.Namespace) -> int:
    from gatekeeper.quickstart.site import LocalSite
    from gatekeeper.quickstart.story import run_story

    if not args.debug:
        # The story is the output; service chatter goes to the site's log file.
        for h in logging.getLogger().handlers:
            h.setLevel(logging.WARNING)
    temp = args.dir is None
    root = Path(args.dir or tempfile.mkdtemp(prefix="gatekeeper-quickstart-"))
    if not temp and root.exists() and any(root.iterdir()):
        shutil.rmtree(root)  # a previous run's site: start afresh (idempotent)
    root.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(root / "gatekeeper.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if args.debug else logging.INFO)
    logging.getLogger().addHandler(handler)
    logging.getLogger("gatekeeper").setLevel(logging.INFO)

    def say(text: str) -> None:
        print(text, flush=True)

    say(f"Gatekeeper quickstart in {root}")
    site = LocalSite(root, nodes=args.nodes, gearman=args.gearman,
                     use_pool=not args.static_nodes)
    try:
        site.start()
        cfg = site.services.config
        say(f"  Gerrit emulator: ssh -p {site.emulator.port} gatekeeper@127.0.0.1 "
            f"(key {root / 'keys' / 'gatekeeper_ed25519'})")
        nodes = (f"the pool keeps {args.nodes} sshd nodes ready (local provider)"
                 if site.use_pool else f"{len(site.nodes)} static sshd nodes on ports "
                 + ", ".join(str(n.port) for n in site.nodes))
        say(f"  Gearman ({args.gearman}): 127.0.0.1:{cfg.gearman.port}; {nodes}")
        say(f"  status page: {site.services.web.url}  logs: {cfg.worker.log_url}")
        say(f"  config: {site.config_path}  service log: {root / 'gatekeeper.log'}")
        say("")
        say(f"gatekeeper doctor -c {site.config_path}:")
        if not run_doctor(site, say):
            say("doctor found a problem with the site: not running the story")
            return 1
        say("")
        outcome = run_story(site, say, timeout=args.timeout)
        say("")
        if outcome.ok:
            say("The gate worked: A and C merged in order, B was rejected and the queue "
                "reset around it.")
        else:
            say("The gate did NOT do what it should:")
            for p in outcome.problems:
                say(f"  - {p}")
            say(f"  (see {root / 'gatekeeper.log'})")
        if args.keep:
            say("Site kept running; Ctrl-C stops it.")
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                while not stop.wait(3600):
                    pass
            except KeyboardInterrupt:
                pass
        return 0 if outcome.ok else 1
    finally:
        site.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
        if temp and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"Site files kept in {root}", file=sys.stderr)
