"""A small HTTP admin API for driving a foreground emulator from scripts.

``POST /api/<method>`` with a JSON object of keyword arguments calls the
GerritEmulator method of that name (only the ones listed below) and answers
``{"result": ...}``; errors answer 400 ``{"error": "..."}``. It binds to
loopback: it is a test tool with no authentication."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gatekeeper.sim.gerrit.api import GerritEmulator
from gatekeeper.sim.gerrit.state import ReviewError

log = logging.getLogger("gatekeeper.sim.gerrit.admin")

METHODS = frozenset({
    "add_user", "create_project", "create_change", "add_patchset", "review", "comment",
    "approve", "abandon", "restore", "submit", "push_branch_commit", "get_change",
    "messages", "votes", "branch_head", "git_log", "events", "drop_streams", "pause_events",
    "resume_events", "fail_reviews", "stream_client_count", "change_id", "status",
    "set_topic", "add_reviewer", "restrict_label", "inject_raw", "project_path",
    "current_patchset", "wait_for_stream_clients", "wait_for_stream_clients_below",
})
MAX_BODY = 10 * 1024 * 1024


class UnknownMethod(Exception):
    pass


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class AdminServer:
    def __init__(self, emu: GerritEmulator, host: str = "127.0.0.1", port: int = 0):
        self.emu = emu
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> AdminServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.25},
                                        name=f"gerrit-emu-admin-{self.port}", daemon=True)
        self._thread.start()
        log.info("Gerrit emulator admin API on http://127.0.0.1:%d/api/", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        if method not in METHODS:
            raise UnknownMethod(f"unknown method {method!r}; one of: {', '.join(sorted(METHODS))}")
        return _jsonable(getattr(self.emu, method)(**kwargs))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        admin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("admin: " + fmt, *args)

            def _reply(self, code: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if not self.path.startswith("/api/"):
                    self._reply(404, {"error": "POST /api/<method>"})
                    return
                method = self.path[len("/api/"):].strip("/")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > MAX_BODY:
                        raise ValueError("request body too large")
                    raw = self.rfile.read(length) if length else b"{}"
                    kwargs = json.loads(raw or b"{}")
                    if not isinstance(kwargs, dict):
                        raise ValueError("body must be a JSON object of keyword arguments")
                    result = admin.call(method, kwargs)
                except UnknownMethod as e:
                    self._reply(404, {"error": str(e)})
                except (ValueError, TypeError, ReviewError) as e:
                    self._reply(400, {"error": str(e)})
                except Exception as e:
                    log.exception("admin call %s failed", method)
                    self._reply(500, {"error": f"{type(e).__name__}: {e}"})
                else:
                    self._reply(200, {"result": result})

        return Handler
