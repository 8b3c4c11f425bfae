"""Builds and buildsets: history pages and their JSON, with filters and paging."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gatekeeper.web.history import MAX_LIMIT
from gatekeeper.web.page import FAILED, duration, e, frame, when
from gatekeeper.web.sources import Unavailable

BUILD_FILTERS = ("project", "pipeline", "job", "branch", "change", "result")
BUILDSET_FILTERS = ("project", "pipeline", "branch", "change", "result")
NO_CACHE = {"Cache-Control": "no-cache"}


class BadQuery(ValueError):
    pass


def parse(q: Any, names: tuple[str, ...]) -> tuple[dict[str, Any], int, int]:
    filters: dict[str, Any] = {}
    for n in names:
        v = (q.get(n) or "").strip()
        if not v:
            continue
        if n == "change":
            if not v.isdigit():
                raise BadQuery("change must be a change number")
            filters[n] = int(v)
        else:
            filters[n] = v[:255]
    try:
        limit = int(q.get("limit") or 50)
        skip = int(q.get("skip") or 0)
    except ValueError:
        raise BadQuery("limit and skip must be numbers") from None
    if not 1 <= limit <= MAX_LIMIT or skip < 0:
        raise BadQuery(f"limit must be 1..{MAX_LIMIT} and skip at least 0")
    return filters, limit, skip


def _result(r: object) -> str:
    text = "running" if r is None else str(r)
    cls = "success" if text == "SUCCESS" else "bad" if text in FAILED or text.endswith(
        "FAILURE") else "running" if r is None else ""
    return f'<span class="state {cls}">{e(text)}</span>'


def _form(kind: str, names: tuple[str, ...], filters: dict[str, Any]) -> str:
    inputs = "".join(f'<input name="{n}" placeholder="{n}" size="12" '
                     f'value="{e(filters.get(n, ""))}">' for n in names)
    return f'<form method="get" action="/{kind}">{inputs}<button>filter</button></form>'


def _pager(kind: str, filters: dict[str, Any], limit: int, skip: int, more: bool) -> str:
    def link(s: int, text: str) -> str:
        return f'<a href="/{kind}?{e(urlencode({**filters, "limit": limit, "skip": s}))}">' \
               f"{text}</a>"
    parts = []
    if skip > 0:
        parts.append(link(max(0, skip - limit), "« newer"))
    parts.append(f'<span class="muted">{skip + 1}–{skip + limit}</span>')
    if more:
        parts.append(link(skip + limit, "older »"))
    return '<p class="pager">' + " ".join(parts) + "</p>"


def builds_table(rows: list[dict[str, Any]], pipeline: bool = True) -> str:
    head = ("<tr><th>job</th><th>project</th>" + ("<th>pipeline</th>" if pipeline else "")
            + "<th>change</th><th>result</th><th>duration</th><th>node</th><th>started</th>"
            "<th>logs</th></tr>")
    out = []
    for b in rows:
        change = (f'<a href="/change/{e(b["change"])}">{e(b["change"])},{e(b["patchset"])}</a>'
                  if b.get("change") is not None else e(b.get("ref")))
        logs = f'<a href="{e(b["log_url"])}">logs</a>' if b.get("log_url") else ""
        node = " / ".join(str(x) for x in (b.get("node"), b.get("provider")) if x)
        out.append(f'<tr><td><a href="/build/{e(b["uuid"])}">{e(b["job"])}</a></td>'
                   f'<td>{e(b["project"])}</td>'
                   + (f'<td>{e(b["pipeline"])}</td>' if pipeline else "") +
                   f"<td>{change}</td><td>{_result(b.get('result'))}</td>"
                   f"<td>{duration(b.get('duration')) if b.get('duration') is not None else ''}"
                   f"</td><td>{e(node)}</td><td>{e(when(b.get('start_time')))}</td>"
                   f"<td>{logs}</td></tr>")
    return f"<table>{head}{''.join(out)}</table>"


def _buildsets_table(rows: list[dict[str, Any]]) -> str:
    out = []
    for s in rows:
        change = (f'<a href="/change/{e(s["change"])}">{e(s["change"])},{e(s["patchset"])}</a>'
                  if s.get("change") is not None else e(s.get("ref")))
        tested = ", ".join(f'{c.get("change")},{c.get("patchset")}' if c.get("change")
                           else str(c.get("ref")) for c in s.get("changes") or [])
        out.append(f'<tr><td><a href="/buildset/{e(s["uuid"])}">{e(s["uuid"][:10])}</a></td>'
                   f'<td>{e(s["project"])}</td><td>{e(s["pipeline"])}</td><td>{change}</td>'
                   f"<td>{_result(s.get('result'))}</td><td>{e(tested)}</td>"
                   f"<td>{e(when(s.get('created')))}</td></tr>")
    return ("<table><tr><th>buildset</th><th>project</th><th>pipeline</th><th>change</th>"
            "<th>result</th><th>tested</th><th>created</th></tr>" + "".join(out) + "</table>")


def build_page(b: dict[str, Any], running: bool, held: list[dict[str, Any]] | None = None
               ) -> str:
    # What the job got (its ZUUL_* parameters as recorded); the history keeps
    # no secrets, so none can be shown.
    params = {"ZUUL_UUID": b["uuid"], "ZUUL_PIPELINE": b["pipeline"],
              "ZUUL_PROJECT": b["project"], "ZUUL_BRANCH": b["branch"],
              "ZUUL_REF": b["ref"], "ZUUL_CHANGE": b.get("change"),
              "ZUUL_PATCHSET": b.get("patchset")}
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in params.items()
                   if v not in (None, ""))
    facts = {"result": None, "attempt": b.get("attempt"), "voting": b.get("voting"),
             "launched": when(b.get("launch_time")), "started": when(b.get("start_time")),
             "ended": when(b.get("end_time")),
             "duration": duration(b["duration"]) if b.get("duration") is not None else "",
             "node": b.get("node"), "provider": b.get("provider"), "worker": b.get("worker"),
             "message": b.get("message"), "buildset": b.get("buildset")}
    frows = "".join(
        f"<tr><th>{e(k)}</th><td>"
        + (_result(b.get("result")) if k == "result" else
           f'<a href="/buildset/{e(v)}">{e(v)}</a>' if k == "buildset" and v else e(v))
        + "</td></tr>" for k, v in facts.items() if k == "result" or v not in (None, ""))
    links = []
    if running:
        links.append(f'<a href="/console/{e(b["uuid"])}">live console</a>')
    if b.get("log_url"):
        base = str(b["log_url"])
        links.append(f'<a href="{e(base)}">logs and artifacts</a>')
        links.append(f'<a href="{e(base.rstrip("/"))}/console.txt?view">console</a>')
    holds = "".join(f'<p class="why">node {e(n.get("id"))} ({e(n.get("provider"))}) is held '
                    f'for debugging: {e(n.get("hold_reason"))}</p>' for n in held or [])
    body = (f'<h1>Build {e(b["job"])} <small class="muted">{e(b["uuid"])}</small></h1>'
            f"<p>{' · '.join(links)}</p>{holds}<table>{frows}</table>"
            f"<h2>Parameters</h2><table>{rows}</table>"
            f'<p class="muted"><a href="/api/build/{e(b["uuid"])}">JSON</a></p>')
    return frame(f"build {b['job']}", body)


def routes_for(data: Any) -> list[BaseRoute]:
    from gatekeeper.web.app import _error, api_json

    async def call(fn: Any, *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    def listing(kind: str, names: tuple[str, ...]) -> Any:
        async def endpoint(request: Request) -> Response:
            api = request.url.path.startswith("/api/")
            if data.history is None:
                return _error(request, 404, "this site keeps no build history")
            try:
                filters, limit, skip = parse(request.query_params, names)
                rows = await call(getattr(data.history, kind), filters, limit + 1, skip)
            except BadQuery as err:
                return _error(request, 400, str(err))
            except Unavailable as err:
                return _error(request, 503, str(err))
            more, rows = len(rows) > limit, rows[:limit]
            if api:
                return api_json({kind: rows, "limit": limit, "skip": skip, "more": more})
            table = builds_table(rows) if kind == "builds" else _buildsets_table(rows)
            body = (f"<h1>{kind.capitalize()}</h1>{_form(kind, names, filters)}{table}"
                    + ("" if rows else f'<p class="muted">no {kind}</p>')
                    + _pager(kind, filters, limit, skip, more)
                    + f'<p class="muted"><a href="/api/{kind}?'
                      f'{e(urlencode({**filters, "limit": limit, "skip": skip}))}">JSON</a></p>')
            return HTMLResponse(frame(kind.capitalize(), body), headers=NO_CACHE)
        return endpoint

    async def held_nodes(uuid: str) -> list[dict[str, Any]]:
        """The build's nodes kept for debugging (how to log in is in the reason)."""
        if data.pool is None:
            return []
        try:
            nodes = await call(data.pool.nodes)
        except Unavailable:
            return []
        return [n for n in nodes if n.get("build") == uuid and n.get("state") == "hold"]

    def one(kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            api = request.url.path.startswith("/api/")
            if data.history is None:
                return _error(request, 404, "this site keeps no build history")
            uuid = request.path_params["uuid"]
            try:
                row = await call(getattr(data.history, kind), uuid)
            except Unavailable as err:
                return _error(request, 503, str(err))
            if row is None:
                return _error(request, 404, f"no {kind} {uuid}")
            if kind == "build":
                row = {**row, "held_nodes": await held_nodes(uuid)}
            if api:
                return api_json(row)
            if kind == "build":
                return HTMLResponse(build_page(row, row.get("result") is None,
                                               row["held_nodes"]), headers=NO_CACHE)
            body = (f'<h1>Buildset <small class="muted">{e(uuid)}</small></h1>'
                    f'<p>{e(row["pipeline"])} · {e(row["project"])} · '
                    f'{_result(row.get("result"))} {e(row.get("message") or "")}</p>'
                    f'{builds_table(row.get("builds") or [], pipeline=False)}'
                    f'<p class="muted"><a href="/api/buildset/{e(uuid)}">JSON</a></p>')
            return HTMLResponse(frame("buildset", body), headers=NO_CACHE)
        return endpoint

    return [Route("/builds", listing("builds", BUILD_FILTERS)),
            Route("/api/builds", listing("builds", BUILD_FILTERS)),
            Route("/buildsets", listing("buildsets", BUILDSET_FILTERS)),
            Route("/api/buildsets", listing("buildsets", BUILDSET_FILTERS)),
            Route("/build/{uuid}", one("build")), Route("/api/build/{uuid}", one("build")),
            Route("/buildset/{uuid}", one("buildset")),
            Route("/api/buildset/{uuid}", one("buildset"))]
