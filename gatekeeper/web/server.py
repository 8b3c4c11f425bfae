"""A small HTTP server: published build logs and the scheduler's status JSON.

Serves ``/`` (the status page), ``/status.json``, ``/explain/<change>``
(every decision about a change, as text) and
``/logs/<LOG_PATH>/...`` from the worker's ``log_root`` (``*.gz``
files go out with ``Content-Encoding: gzip`` so a browser shows the text,
as the OpenStack log server did) and ``/status.json`` from a callable.
The full web UI is a later piece of work; this is the part the gate needs
for its log URLs to resolve. Binds to loopback by default."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("gatekeeper.web.server")

TEXT_TYPES = {".txt": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8",
              ".html": "text/html; charset=utf-8", ".json": "application/json"}


def safe_join(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it stays inside ``root`` (no ``..`` or symlink escape)."""
    target = (root / rel.lstrip("/")).resolve()
    root = root.resolve()
    if target == root or root in target.parents:
        return target
    return None


class WebServer:
    def __init__(self, host: str, port: int, log_root: str | None = None,
                 status: Callable[[], dict[str, Any]] | None = None,
                 explain: Callable[[str], str] | None = None):
        self.host = host
        self.port = port
        self.log_root = Path(log_root) if log_root else None
        self.status = status
        self.explain = explain
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> WebServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "gatekeeper"

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("%s " + fmt, self.client_address[0], *args)

            def do_GET(self) -> None:
                server._get(self)

            def do_HEAD(self) -> None:
                server._get(self, head=True)

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gatekeeper-web",
                                        daemon=True)
        self._thread.start()
        log.info("web server on %s", self.url)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    # -- handlers ----------------------------------------------------------
    def _get(self, req: BaseHTTPRequestHandler, head: bool = False) -> None:
        path = unquote(urlsplit(req.path).path)
        if path in ("/", "/index.html") and self.status is not None:
            from gatekeeper.web.page import render

            body = render(self.status()).encode()
            return self._send(req, HTTPStatus.OK, body, "text/html; charset=utf-8", head=head)
        if path in ("/status.json", "/status") and self.status is not None:
            body = json.dumps(self.status(), sort_keys=True).encode()
            return self._send(req, HTTPStatus.OK, body, "application/json", head=head)
        if path.startswith("/explain/") and self.explain is not None:
            key = path[len("/explain/"):].strip("/")
            body = (self.explain(key) + "\n").encode()
            return self._send(req, HTTPStatus.OK, body, "text/plain; charset=utf-8", head=head)
        if path.startswith("/logs/") and self.log_root is not None:
            return self._log_file(req, path[len("/logs/"):], head)
        self._send(req, HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head=head)

    def _log_file(self, req: BaseHTTPRequestHandler, rel: str, head: bool) -> None:
        assert self.log_root is not None
        target = safe_join(self.log_root, rel)
        if target is None:
            return self._send(req, HTTPStatus.FORBIDDEN, b"forbidden\n", "text/plain", head=head)
        if target.is_dir():
            if not req.path.endswith("/"):
                req.send_response(HTTPStatus.MOVED_PERMANENTLY)
                req.send_header("Location", req.path + "/")
                req.end_headers()
                return None
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
            items = "".join(f'<li><a href="{n}">{n}</a></li>' for n in names)
            body = f"<html><body><ul>{items}</ul></body></html>".encode()
            return self._send(req, HTTPStatus.OK, body, "text/html; charset=utf-8", head=head)
        if not target.is_file():
            return self._send(req, HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head=head)
        name, encoding = target.name, None
        if name.endswith(".gz"):
            name, encoding = name[:-3], "gzip"
        ctype = TEXT_TYPES.get(os.path.splitext(name)[1]) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream")
        self._send(req, HTTPStatus.OK, target.read_bytes(), ctype, encoding, head)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str,
              encoding: str | None = None, head: bool = False) -> None:
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        if encoding:
            req.send_header("Content-Encoding", encoding)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if not head:
            req.wfile.write(body)
