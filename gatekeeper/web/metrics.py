"""The web's own metrics and ``/metrics`` (the web's and the scheduler's).

Requests are counted per route template (``/change/{change}``, not per
change: the label set stays small) and status code, with their duration;
live console streams are a gauge. ``/metrics`` adds the scheduler's text
(asked over Gearman), so one scrape target covers both processes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gatekeeper.metrics.registry import CONTENT_TYPE, Registry
from gatekeeper.web.sources import Unavailable

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))


class WebMetrics:
    def __init__(self) -> None:
        self.registry = Registry("gatekeeper_web_")

    def middleware(self, app: Any) -> Any:
        registry = self.registry

        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.monotonic()
            code = [500]

            async def send_wrapper(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    code[0] = int(message["status"])
                    # time to the first byte: a console stream may last an hour
                    route = getattr(scope.get("route"), "path", "unmatched")
                    registry.observe("request_seconds", time.monotonic() - started,
                                     {"route": route}, "time to the response's headers",
                                     REQUEST_BUCKETS)
                    registry.inc("requests_total", {"route": route, "code": str(code[0])},
                                 help_text="HTTP requests by route and status")
                await send(message)

            await app(scope, receive, send_wrapper)

        return wrapped


def metrics_endpoint(data: Any, metrics: WebMetrics) -> Any:
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        if data.console is not None:
            metrics.registry.set("console_streams", float(data.console.streaming()),
                                 help_text="live console streams from workers")
        text = metrics.registry.render()
        if data.scheduler_metrics is not None:
            try:
                text += await run_in_threadpool(data.scheduler_metrics)
            except Unavailable as e:
                text += f"# the scheduler's metrics are unavailable: {e}\n"
        return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-cache"})

    return endpoint
