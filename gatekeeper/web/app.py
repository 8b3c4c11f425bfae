"""The web application (Starlette): pages, the JSON API and the log browser.

Every page has a JSON twin under ``/api/`` (described at
``/api/openapi.json``). Endpoints are plain functions: Starlette runs them
in its thread pool, so a slow scheduler answer never stalls the others."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gatekeeper.web import logs, page
from gatekeeper.web.admin import admin_routes
from gatekeeper.web.consolepage import routes_for as console_routes
from gatekeeper.web.historypages import routes_for as history_routes
from gatekeeper.web.openapi import spec
from gatekeeper.web.sources import (
    EtaSource,
    Manager,
    NoHistory,
    PoolRecords,
    StatusSource,
    Unavailable,
)
from gatekeeper.web.statusview import Filters, view

NO_CACHE = {"Cache-Control": "no-cache"}
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass
class WebData:
    status: StatusSource
    manager: Manager | None = None
    pool: PoolRecords | None = None
    console: Any = None  # a ConsoleHub: live consoles from the workers
    history: Any = None  # a HistoryDatabase: builds and buildsets
    scheduler_metrics: Callable[[], str] | None = None  # the scheduler's Prometheus text
    etas: EtaSource = field(default_factory=NoHistory)
    log_root: Path | None = None
    admin_token: str | None = field(default=None, repr=False)
    clock: Callable[[], float] = time.time


def api_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status, headers={**NO_CACHE, **(headers or {})})


def _error(request: Request, status: int, text: str) -> Response:
    if request.url.path.startswith("/api/"):
        return api_json({"error": text}, status)
    return HTMLResponse(page.message_page("Unavailable" if status == 503 else "Error", text),
                        status, headers=NO_CACHE)


class Pages:
    def __init__(self, data: WebData):
        self.data = data

    def _view(self, request: Request) -> tuple[dict[str, Any], Filters, list[str]]:
        filters = Filters.from_query(request.query_params)
        status = self.data.status.status()
        names = [str(p.get("name")) for p in status.get("pipelines", [])]
        return view(status, filters, self.data.etas, self.data.clock()), filters, names

    # -- status ------------------------------------------------------------
    def status_page(self, request: Request) -> Response:
        try:
            v, filters, names = self._view(request)
        except Unavailable as err:
            v, filters, names = ({"pipelines": [], "error": f"no status: {err}"},
                                 Filters.from_query(request.query_params), [])
        return HTMLResponse(page.status_page(v, filters, names), headers=NO_CACHE)

    def status_fragment(self, request: Request) -> Response:
        try:
            v, _, _ = self._view(request)
        except Unavailable as err:
            return _error(request, 503, f"no status: {err}")
        body = page.status_fragment(v).encode()
        etag = '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest() + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, **NO_CACHE})
        return HTMLResponse(body, headers={"ETag": etag, **NO_CACHE})

    def api_status(self, request: Request) -> Response:
        try:
            v, _, _ = self._view(request)
        except Unavailable as err:
            return _error(request, 503, f"no status: {err}")
        return api_json(v)

    def status_json(self, request: Request) -> Response:
        """The scheduler's snapshot as it is (the pre-API URL, kept for scripts)."""
        try:
            return api_json(self.data.status.status())
        except Unavailable as err:
            return _error(request, 503, f"no status: {err}")

    # -- changes -----------------------------------------------------------
    def _change(self, key: str) -> dict[str, Any]:
        status = self.data.status.status()
        v = view(status, Filters(change=key), self.data.etas, self.data.clock())
        items = [{**i, "pipeline": p["name"]} for p in v["pipelines"]
                 for q in p["queues"] for i in q["items"]]
        builds = []
        if self.data.history is not None and key.isdigit():
            try:
                builds = self.data.history.builds_of_change(int(key))
            except Unavailable:
                builds = []  # the decisions still show
        return {"change": key, "explain": self.data.status.explain(key), "items": items,
                "builds": builds}

    def explain_text(self, request: Request) -> Response:
        key = request.path_params["change"]
        try:
            text = self.data.status.explain(key)
        except Unavailable as err:
            return PlainTextResponse(f"no answer from the scheduler: {err}\n", 503)
        return PlainTextResponse(text + "\n", headers=NO_CACHE)

    def api_change(self, request: Request) -> Response:
        try:
            return api_json(self._change(request.path_params["change"]))
        except Unavailable as err:
            return _error(request, 503, str(err))

    def change_page(self, request: Request) -> Response:
        from gatekeeper.web.changepage import render

        try:
            data = self._change(request.path_params["change"])
        except Unavailable as err:
            return _error(request, 503, str(err))
        return HTMLResponse(render(data), headers=NO_CACHE)

    # -- nodes and autoholds -----------------------------------------------
    def _pool(self, request: Request, what: str) -> Response:
        from gatekeeper.web import poolpages

        if self.data.pool is None:
            return _error(request, 404, "this site has no node pool")
        try:
            rows = getattr(self.data.pool, what)()
        except Unavailable as err:
            return _error(request, 503, str(err))
        if request.url.path.startswith("/api/"):
            return api_json({what: rows})
        return HTMLResponse(poolpages.render(what, rows, self.data.clock()), headers=NO_CACHE)

    def nodes(self, request: Request) -> Response:
        return self._pool(request, "nodes")

    def autoholds(self, request: Request) -> Response:
        return self._pool(request, "autoholds")

    # -- files -------------------------------------------------------------
    def log_file(self, request: Request) -> Response:
        if self.data.log_root is None:
            return PlainTextResponse("no logs on this host\n", 404)
        return logs.serve(self.data.log_root, request.path_params["path"], request)

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        ctype = STATIC_TYPES.get(Path(name).suffix)
        res = resources.files("gatekeeper.web").joinpath("static", name)
        if ctype is None or "/" in name or not res.is_file():
            return PlainTextResponse("not found\n", 404)
        return Response(res.read_bytes(), media_type=ctype,
                        headers={"Cache-Control": "public, max-age=300"})

    def openapi(self, request: Request) -> Response:
        return JSONResponse(spec(), headers={"Cache-Control": "public, max-age=300"})


def routes(data: WebData) -> list[BaseRoute]:
    p = Pages(data)
    out: list[BaseRoute] = [
        Route("/", p.status_page),
        Route("/status/fragment", p.status_fragment),
        Route("/status.json", p.status_json),
        Route("/api/status", p.api_status),
        Route("/explain/{change}", p.explain_text),
        Route("/change/{change}", p.change_page),
        Route("/api/change/{change}", p.api_change),
        Route("/logs/{path:path}", p.log_file),
        Route("/static/{name}", p.static),
        Route("/api/openapi.json", p.openapi),
        Route("/nodes", p.nodes),
        Route("/api/nodes", p.nodes),
        Route("/autoholds", p.autoholds),
        Route("/api/autoholds", p.autoholds),
        *admin_routes(data),
        *console_routes(data),
        *history_routes(data),
    ]
    return out


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(request, 404, "not found")


def create_app(data: WebData) -> Any:
    from starlette.routing import Route

    from gatekeeper.web.metrics import WebMetrics, metrics_endpoint

    metrics = WebMetrics()
    app = Starlette(routes=[*routes(data), Route("/metrics", metrics_endpoint(data, metrics))],
                    exception_handlers={404: _not_found})
    return metrics.middleware(app)
