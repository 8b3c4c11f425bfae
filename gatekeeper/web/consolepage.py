"""The live console page and its streaming API endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from gatekeeper.web.console import find_running
from gatekeeper.web.page import e, frame
from gatekeeper.web.sources import Unavailable

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                  "X-Content-Type-Options": "nosniff"}


def page(build: str) -> str:
    body = (f'<h1>Console of build <code>{e(build)}</code></h1>'
            '<p id="console-state" class="muted">connecting…</p>'
            f'<pre class="console" id="console" data-build="{e(build)}"></pre>')
    return frame(f"console {build}", body, script="console.js")


def routes_for(data: Any) -> list[Any]:
    from starlette.routing import Route

    from gatekeeper.web.app import _error, api_json

    async def lookup(request: Request) -> tuple[dict[str, Any] | None, bool, Response | None]:
        try:
            status = await run_in_threadpool(data.status.status)
        except Unavailable as err:
            return None, False, _error(request, 503, f"no status: {err}")
        job, running = find_running(status, request.path_params["uuid"])
        return job, running, None

    async def console_page(request: Request) -> Response:
        return HTMLResponse(page(request.path_params["uuid"]), headers={"Cache-Control":
                                                                        "no-cache"})

    async def console_api(request: Request) -> Response:
        build = request.path_params["uuid"]
        try:
            offset = max(0, int(request.query_params.get("offset") or 0))
        except ValueError:
            return api_json({"error": "offset must be a number"}, 400)
        follow = request.query_params.get("follow", "1") not in ("0", "false", "")
        if data.console is None:
            return api_json({"error": "live consoles are off here"}, 503)
        feed = data.console.existing(build)
        if feed is None:
            job, running, problem = await lookup(request)
            if problem is not None:
                return problem
            if not running or job is None:
                url = (job or {}).get("url")
                return api_json({"error": f"build {build} is not running"
                                          + ("; its logs are at the log URL" if url else ""),
                                 "log_url": url}, 404)
            feed = data.console.feed(build, str(job["worker"]))

        async def stream() -> AsyncIterator[bytes]:
            # follow=0: what there is, ending after a second without news
            async for chunk in feed.follow(offset, 15.0 if follow else 1.0):
                if chunk:
                    yield chunk
                elif not follow:
                    return
            if feed.error:
                yield f"\n[console: {feed.error}]\n".encode()

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8",
                                 headers=STREAM_HEADERS)

    return [Route("/console/{uuid}", console_page), Route("/api/console/{uuid}", console_api)]
