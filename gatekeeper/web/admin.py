"""Admin endpoints: enqueue, dequeue, promote, reload, autohold add/delete.

Each needs ``Authorization: Bearer TOKEN`` equal to ``web.admin_token``
(compared in constant time; the token is never logged: uvicorn's access
log is off and no handler logs headers). Without a configured token the
admin API is off (403). Scheduler actions become management events over
Gearman and answer once the scheduler's loop handled them; autoholds are
records in the pool's database, which the pool applies."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger("gatekeeper.web.admin")

ACTIONS = ("enqueue", "dequeue", "promote", "reconfigure")
MAX_BODY = 64 * 1024


def _json(data: Any, status: int = 200) -> Response:
    from gatekeeper.web.app import api_json

    return api_json(data, status)


def refused(request: Request, token: str | None) -> Response | None:
    """The error response when ``request`` may not use the admin API, else None."""
    if not token:
        return _json({"error": "the admin API is off: set web.admin_token"}, 403)
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
        return Response('{"error":"a valid bearer token is required"}', 401,
                        media_type="application/json",
                        headers={"WWW-Authenticate": 'Bearer realm="gatekeeper"'})
    return None


async def body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _json({"error": "request body too large"}, 413)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return _json({"error": "the body is not JSON"}, 400)
    if not isinstance(data, dict):
        return _json({"error": "the body must be a JSON object"}, 400)
    return data


def admin_routes(data: Any) -> list[BaseRoute]:
    from gatekeeper.web.sources import Unavailable

    async def manage(request: Request, action: str) -> Response:
        denied = refused(request, data.admin_token)
        if denied is not None:
            return denied
        args = await body(request)
        if isinstance(args, Response):
            return args
        if data.manager is None:
            return _json({"error": "no scheduler to manage"}, 503)
        log.info("admin %s from %s", action, request.client.host if request.client else "?")
        try:
            err = await run_in_threadpool(data.manager.manage, action, args)
        except Unavailable as e:
            return _json({"error": str(e)}, 503)
        return _json({"error": err}, 400) if err else _json({"ok": True})

    async def add_autohold(request: Request) -> Response:
        denied = refused(request, data.admin_token)
        if denied is not None:
            return denied
        args = await body(request)
        if isinstance(args, Response):
            return args
        problem, values = _autohold_args(args)
        if problem:
            return _json({"error": problem}, 400)
        if data.pool is None:
            return _json({"error": "this site has no node pool"}, 503)
        try:
            ah = await run_in_threadpool(data.pool.add_autohold, *values)
        except Unavailable as e:
            return _json({"error": str(e)}, 503)
        log.info("admin autohold %s added for %s %s", ah["id"], ah["project"], ah["job"])
        return _json({"ok": True, "autohold": ah})

    async def delete_autohold(request: Request) -> Response:
        denied = refused(request, data.admin_token)
        if denied is not None:
            return denied
        if data.pool is None:
            return _json({"error": "this site has no node pool"}, 503)
        ah_id = request.path_params["id"]
        try:
            gone = await run_in_threadpool(data.pool.delete_autohold, ah_id)
        except Unavailable as e:
            return _json({"error": str(e)}, 503)
        if not gone:
            return _json({"error": f"no autohold request {ah_id}"}, 404)
        return _json({"ok": True})

    def action_route(action: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return await manage(request, action)

        return Route(f"/api/admin/{action}", endpoint, methods=["POST"])

    return [Route("/api/admin/autoholds", add_autohold, methods=["POST"]),
            Route("/api/admin/autoholds/{id:int}", delete_autohold, methods=["DELETE"]),
            *(action_route(a) for a in ACTIONS)]


def _autohold_args(a: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    project, job = a.get("project"), a.get("job")
    if not isinstance(project, str) or not project or not isinstance(job, str) or not job:
        return "project and job are required", ()
    count = a.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return "count must be a number of at least 1", ()
    hold_for = a.get("hold_for")
    if hold_for is not None and (not isinstance(hold_for, int | float) or hold_for <= 0):
        return "hold_for must be a positive number of seconds", ()
    reason = a.get("reason", "")
    if not isinstance(reason, str):
        return "reason must be a string", ()
    key = a.get("ssh_key") or ""
    if key:
        from gatekeeper.nodes.devkeys import BadKey, check_public_key

        try:
            key = check_public_key(key if isinstance(key, str) else "")
        except BadKey as e:
            return f"ssh_key: {e}", ()
    return "", (project, job, count, None if hold_for is None else float(hold_for), reason,
                key)
