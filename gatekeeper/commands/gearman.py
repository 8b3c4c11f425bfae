"""``gatekeeper gearman [--host H] [--port P]``: the embedded Gearman server.

gear.Server with TCP_NODELAY; for large sites Debian's gearmand speaks
the same protocol (``gearmand --listen=H --port=P``)."""

from __future__ import annotations

import argparse
import logging

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.commands.gearman")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=4730, help="port (4730; 0 = any free port)")
    parser.add_argument("--ssl-key", help="TLS: server key (with --ssl-cert and --ssl-ca)")
    parser.add_argument("--ssl-cert", help="TLS: server certificate")
    parser.add_argument("--ssl-ca", help="TLS: CA that signed client certificates")


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "debug", False):
        logging.getLogger("gear").setLevel(logging.WARNING)  # gear logs every packet at INFO
    from gatekeeper.commands._service import wait_for_signal
    from gatekeeper.gearman.server import EmbeddedGearmanServer

    tls = [args.ssl_key, args.ssl_cert, args.ssl_ca]
    if any(tls) and not all(tls):
        raise UserError("gearman: TLS needs all of --ssl-key, --ssl-cert and --ssl-ca")
    if not 0 <= args.port <= 65535:
        raise UserError(f"gearman: --port {args.port} is not a TCP port")
    server = EmbeddedGearmanServer(args.host, args.port, *tls)
    try:
        server.start()
    except OSError as e:
        raise UserError(f"gearman: cannot listen on {args.host}:{args.port}: {e}") from e
    log.info("gearman server ready on %s:%s", args.host, server.port)
    try:
        return wait_for_signal()
    finally:
        server.stop()
