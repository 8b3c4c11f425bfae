"""``gatekeeper client ACTION``: the web service's API from the command line.

``status`` (tables), ``enqueue``, ``dequeue``, ``promote``, ``reconfigure``,
``autohold`` (add / ``--list`` / ``--delete ID``), ``nodes``, ``builds``,
``console BUILD`` (follows a running build). ``--json`` prints the API's
answer as it is. The URL comes from ``--url``, ``$GATEKEEPER_URL`` or the
config's ``web.listen``; the admin token from ``--token-file``,
``$GATEKEEPER_TOKEN`` or the config's ``web.admin_token``. An unreachable
service or a refused token is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gatekeeper.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", help="service config (for web.listen, web.admin_token)")
    parser.add_argument("--url", help="web service URL (default: $GATEKEEPER_URL or web.listen)")
    parser.add_argument("--token-file", help="file holding the admin token "
                                             "(default: $GATEKEEPER_TOKEN or web.admin_token)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    st = sub.add_parser("status", help="pipelines, queues and items")
    for f in ("project", "change", "pipeline"):
        st.add_argument(f"--{f}", help=f"only items of this {f}")
    for name in ("enqueue", "dequeue"):
        p = sub.add_parser(name, help=f"{name} a change (or ref)")
        p.add_argument("--pipeline", required=True)
        p.add_argument("--project", required=name == "enqueue")
        p.add_argument("--change", help="NUMBER or NUMBER,PATCHSET")
        p.add_argument("--ref")
    pr = sub.add_parser("promote", help="move changes to the head of their gate queue")
    pr.add_argument("--pipeline", required=True)
    pr.add_argument("changes", nargs="+", type=int)
    sub.add_parser("reconfigure", help="reload the layout")
    ah = sub.add_parser("autohold", help="hold the nodes of the next N failures of a job")
    ah.add_argument("--project")
    ah.add_argument("--job")
    ah.add_argument("--count", type=int, default=1)
    ah.add_argument("--for", dest="hold_for", type=float)
    ah.add_argument("--reason", default="")
    ah.add_argument("--ssh-key", metavar="FILE",
                    help="your SSH public key (e.g. ~/.ssh/id_ed25519.pub): installed on the "
                         "held node so you can log in")
    ah.add_argument("--list", action="store_true")
    ah.add_argument("--delete", type=int, metavar="ID")
    sub.add_parser("nodes", help="pool nodes")
    co = sub.add_parser("console", help="a running build's console, as it is written")
    co.add_argument("build", help="build uuid (the status shows it)")
    co.add_argument("--no-follow", action="store_true", help="print what there is and exit")


class Api:
    def __init__(self, url: str, token: str | None):
        self.url = url if url.endswith("/") else url + "/"
        self.token = token

    def stream(self, path: str) -> int:
        """Copy a streaming text answer to stdout as it arrives."""
        req = urllib.request.Request(urllib.parse.urljoin(self.url, path))
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                out = sys.stdout.buffer
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        return 0
                    out.write(chunk)
                    out.flush()
        except urllib.error.HTTPError as e:
            try:
                why = json.loads(e.read()).get("error") or e.reason
            except ValueError:
                why = e.reason
            raise UserError(f"client: {why}") from None
        except (urllib.error.URLError, OSError) as e:
            raise UserError(f"client: cannot reach the web service at {self.url}: "
                            f"{getattr(e, 'reason', e)}") from None

    def call(self, path: str, body: dict[str, Any] | None = None, method: str | None = None,
             admin: bool = False) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if admin:
            if not self.token:
                raise UserError("client: an admin token is needed: --token-file, "
                                "$GATEKEEPER_TOKEN or web.admin_token in -c CONFIG")
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(urllib.parse.urljoin(self.url, path), data=data,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                why = json.loads(e.read()).get("error") or e.reason
            except ValueError:
                why = e.reason
            if e.code == 401:
                raise UserError(f"client: the web service refused the token: {why}") from None
            raise UserError(f"client: {path}: {why} (HTTP {e.code})") from None
        except (urllib.error.URLError, OSError) as e:
            raise UserError(f"client: cannot reach the web service at {self.url}: "
                            f"{getattr(e, 'reason', e)}") from None
        except ValueError:
            raise UserError(f"client: {self.url} did not answer JSON (is it Gatekeeper?)"
                            ) from None


def _endpoint(args: argparse.Namespace) -> Api:
    config = None
    if args.config:
        from gatekeeper.config import load_config

        config = load_config(args.config)
    url = args.url or os.environ.get("GATEKEEPER_URL") or (
        f"http://{config.web.host}:{config.web.port}/" if config else None)
    if not url:
        raise UserError("client: no web service URL: --url, $GATEKEEPER_URL or -c CONFIG")
    token = None
    if args.token_file:
        try:
            with open(args.token_file) as f:
                token = f.read().strip()
        except OSError as e:
            raise UserError(f"client: --token-file {args.token_file}: {e.strerror}") from None
    token = token or os.environ.get("GATEKEEPER_TOKEN") or (
        config.web.admin_token if config else None)
    return Api(url, token)


def _change(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    number, _, ps = value.partition(",")
    if not number.isdigit() or (ps and not ps.isdigit()):
        raise UserError(f"client: --change {value!r}: expected NUMBER or NUMBER,PATCHSET")
    return {"change": int(number), **({"patchset": int(ps)} if ps else {})}


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands import client_view as show

    api = _endpoint(args)
    a = args.action
    if a == "status":
        q = {k: getattr(args, k) for k in ("project", "change", "pipeline") if getattr(args, k)}
        data = api.call("api/status" + ("?" + urllib.parse.urlencode(q) if q else ""))
        return _out(args, data, show.status)
    if a in ("enqueue", "dequeue"):
        if not args.change and not args.ref:
            raise UserError(f"client: {a}: --change or --ref is required")
        body = {"pipeline": args.pipeline, "project": args.project or "",
                **_change(args.change), **({"ref": args.ref} if args.ref else {})}
        return _out(args, api.call(f"api/admin/{a}", body, admin=True), show.done(a))
    if a == "promote":
        body = {"pipeline": args.pipeline, "changes": args.changes}
        return _out(args, api.call("api/admin/promote", body, admin=True), show.done(a))
    if a == "reconfigure":
        return _out(args, api.call("api/admin/reconfigure", {}, admin=True), show.done(a))
    if a == "console":
        return api.stream(f"api/console/{urllib.parse.quote(args.build)}"
                          f"?follow={0 if args.no_follow else 1}")
    if a == "nodes":
        return _out(args, api.call("api/nodes"), show.nodes)
    if a == "autohold":
        if args.list:
            return _out(args, api.call("api/autoholds"), show.autoholds)
        if args.delete is not None:
            return _out(args, api.call(f"api/admin/autoholds/{args.delete}", method="DELETE",
                                       admin=True), show.done("autohold delete"))
        if not args.project or not args.job:
            raise UserError("client: autohold: --project and --job are required "
                            "(or --list / --delete ID)")
        body = {"project": args.project, "job": args.job, "count": args.count,
                "reason": args.reason, **({"hold_for": args.hold_for} if args.hold_for else {})}
        if args.ssh_key:
            try:
                with open(args.ssh_key) as f:
                    body["ssh_key"] = f.read().strip()
            except OSError as e:
                raise UserError(f"client: --ssh-key {args.ssh_key}: {e.strerror}") from None
        return _out(args, api.call("api/admin/autoholds", body, admin=True), show.autohold)
    raise UserError(f"client: unknown action {a}")


def _out(args: argparse.Namespace, data: dict[str, Any], render: Any) -> int:
    if args.json:
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        render(data)
    return 0
