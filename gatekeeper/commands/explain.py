"""``gatekeeper explain -c CONFIG CHANGE``: why a change is where it is.

Prints every decision the scheduler made about the change — enqueued (or
not, and why), tested on top of which changes, resets and their cause,
window changes, builds, retries, reports, submit, dequeue — as the running
scheduler's web server (``web.listen``) reports it at ``/explain/CHANGE``."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request

from gatekeeper.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")
    parser.add_argument("change", help="change number")
    parser.add_argument("--url", help="scheduler web URL (default: http://WEB_LISTEN/)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.config import load_config

    if not args.change.isdigit():
        raise UserError(f"explain: {args.change!r} is not a change number")
    config = load_config(args.config)
    base = args.url or f"http://{config.web.host}:{config.web.port}/"
    url = urllib.parse.urljoin(base, f"explain/{args.change}")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            sys.stdout.write(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as e:
        raise UserError(f"explain: cannot reach the scheduler at {base}: "
                        f"{getattr(e, 'reason', e)}") from None
    return 0
