"""``gatekeeper gerrit-emulator --root DIR [--port P] [--user NAME:PUBKEYFILE ...]``.

Runs the Gerrit emulator in the foreground until interrupted: SSH on
``--host``/``--port`` (loopback, 29418 by default), optional projects and
users, and with ``--admin-port`` a loopback HTTP API to create changes,
approvals, comments (``POST /api/<method>`` with JSON keyword arguments, see
doc/gerrit-emulator.md). ``--ready-file`` receives the ports and host key
line as JSON once the server listens (handy with ``--port 0``)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.commands.gerrit_emulator")

USER_CAPABILITIES = ("stream-events", "push")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="directory for the host key and the bare repositories")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=29418, help="SSH port (0 = any free port)")
    parser.add_argument("--baseurl", default="http://127.0.0.1:8080",
                        help="web URL used in change urls")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PUBKEYFILE",
                        help="account with this OpenSSH public key (repeatable); it may "
                             "stream events and push")
    parser.add_argument("--project", action="append", default=[], metavar="NAME",
                        help="create this project with a master branch (repeatable)")
    parser.add_argument("--admin-port", type=int, default=None, metavar="PORT",
                        help="serve the HTTP admin API on 127.0.0.1:PORT (0 = any free port)")
    parser.add_argument("--ready-file", metavar="FILE",
                        help="write {port, admin_port, host_key_line} as JSON when listening")
    parser.add_argument("--number-as-string", action="store_true",
                        help="render change/patch set numbers as strings (Gerrit 2.x)")


def _parse_users(specs: list[str]) -> list[tuple[str, str]]:
    users = []
    for spec in specs:
        name, sep, keyfile = spec.partition(":")
        if not sep or not name or not keyfile:
            raise UserError(f"--user {spec}: expected NAME:PUBKEYFILE")
        path = Path(keyfile).expanduser()
        try:
            key = path.read_text().strip()
        except OSError as e:
            raise UserError(f"--user {spec}: cannot read {path}: {e.strerror}") from None
        parts = key.split()
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
            raise UserError(f"--user {spec}: {path} is not an OpenSSH public key")
        users.append((name, key))
    return users


def run(args: argparse.Namespace) -> int:
    from gatekeeper.sim.gerrit import GerritEmulator
    from gatekeeper.sim.gerrit.admin import AdminServer

    users = _parse_users(args.user)
    emu = GerritEmulator(args.root, host=args.host, port=args.port, baseurl=args.baseurl,
                         number_as_string=args.number_as_string)
    for name, key in users:
        emu.add_user(name, key, capabilities=USER_CAPABILITIES)
    for project in args.project:
        try:
            emu.create_project(project)
        except ValueError as e:
            raise UserError(f"--project {project}: {e}") from None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Like every Gatekeeper service: SIGHUP must not kill it (nothing to reload).
    previous_hup = signal.signal(signal.SIGHUP, lambda *_: log.info("SIGHUP ignored"))
    try:
        emu.start()
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    admin = None
    try:
        if args.admin_port is not None:
            admin = AdminServer(emu, "127.0.0.1", args.admin_port).start()
        log.info("Gerrit emulator ready: ssh -p %d USER@%s gerrit stream-events", emu.port,
                 args.host)
        if args.ready_file:
            Path(args.ready_file).write_text(json.dumps({
                "port": emu.port, "admin_port": admin.port if admin else None,
                "host_key_line": emu.host_key_line}) + "\n")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, previous_hup)
        if admin is not None:
            admin.stop()
        emu.stop()
