"""The OpenAPI 3.1 description of the JSON API (served at ``/api/openapi.json``).

Kept by hand next to the routes; a test checks that every API route of the
app is described here and every path described here is routed."""

from __future__ import annotations

from typing import Any

OBJ: dict[str, Any] = {"type": "object"}


def _q(name: str, text: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": {"type": kind}}


def _p(name: str, text: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": text,
            "schema": {"type": kind}}


def _ok(text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"200": {"description": text,
                    "content": {"application/json": {"schema": schema or OBJ}}},
            "503": {"description": "the scheduler (or database) cannot answer now"}}


def _admin(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "security": [{"bearer": []}],
        "responses": {"200": {"description": "done: {\"ok\": true}"},
                      "400": {"description": "bad request or refused: {\"error\": ...}"},
                      "401": {"description": "no or wrong bearer token"},
                      "403": {"description": "no admin token is configured (web.admin_token)"},
                      "503": {"description": "the scheduler did not answer"}}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    return op


FILTERS = [_q("project", "substring of the project name"),
           _q("change", "change number or NUMBER,PATCHSET"),
           _q("pipeline", "pipeline name")]
HISTORY_FILTERS = [_q("project", "project name"), _q("pipeline", "pipeline name"),
                   _q("job", "job name"), _q("branch", "branch name"),
                   _q("change", "change number", "integer"),
                   _q("result", "SUCCESS, FAILURE, ..."),
                   _q("limit", "rows per page (default 50, at most 500)", "integer"),
                   _q("skip", "rows to skip (paging)", "integer")]


def spec() -> dict[str, Any]:
    def props(**kw: str) -> dict[str, Any]:
        return {"type": "object", "properties": {k: {"type": v} for k, v in kw.items()}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "Gatekeeper", "version": "1",
                 "description": "Status, history, logs and administration of a Gatekeeper "
                                "gate. Admin endpoints need `Authorization: Bearer TOKEN` "
                                "(web.admin_token)."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/status": {"get": {
                "summary": "Every pipeline, queue and item with per-job progress and ETAs",
                "parameters": FILTERS, "responses": _ok("the status view")}},
            "/api/change/{change}": {"get": {
                "summary": "Every decision about a change, where it is now, its builds",
                "parameters": [_p("change", "change number")],
                "responses": _ok("explain text, current items, builds")}},
            "/api/builds": {"get": {
                "summary": "Build history, newest first", "parameters": HISTORY_FILTERS,
                "responses": _ok("{builds: [...], limit, skip, more}: `more` says whether "
                                 "an older page exists")}},
            "/api/build/{uuid}": {"get": {
                "summary": "One build: what it tested, where it ran, its result and logs",
                "parameters": [_p("uuid", "build uuid")], "responses": _ok("the build")}},
            "/api/buildsets": {"get": {
                "summary": "Buildset history, newest first",
                "parameters": [f for f in HISTORY_FILTERS if f["name"] != "job"],
                "responses": _ok("{buildsets: [...], limit, skip, more}")}},
            "/api/buildset/{uuid}": {"get": {
                "summary": "One buildset with the changes it tested and its builds",
                "parameters": [_p("uuid", "buildset uuid")], "responses": _ok("the buildset")}},
            "/api/console/{uuid}": {"get": {
                "summary": "A running build's console as it is written on the node "
                           "(chunked text/plain from byte `offset`; `follow=1`, the default, "
                           "streams until the build ends); 404 when not running",
                "parameters": [_p("uuid", "build uuid"), _q("offset", "byte offset", "integer"),
                               _q("follow", "0: what there is now", "integer")],
                "responses": {"200": {"description": "console text",
                                      "content": {"text/plain": {}}},
                              "404": {"description": "{error, log_url}: not running"}}}},
            "/api/nodes": {"get": {"summary": "Pool nodes (what `gatekeeper nodes list` shows)",
                                   "responses": _ok("{nodes: [...]}")}},
            "/api/autoholds": {"get": {"summary": "Autohold requests",
                                       "responses": _ok("{autoholds: [...]}")}},
            "/api/admin/enqueue": {"post": _admin("Enqueue a change (or ref) into a pipeline",
                                                  props(pipeline="string", project="string",
                                                        change="integer", patchset="integer",
                                                        ref="string"))},
            "/api/admin/dequeue": {"post": _admin("Remove a change (or ref) from a pipeline",
                                                  props(pipeline="string", project="string",
                                                        change="integer", ref="string"))},
            "/api/admin/promote": {"post": _admin(
                "Move changes to the head of their gate queue, in this order",
                {"type": "object", "properties": {"pipeline": {"type": "string"}, "changes": {
                    "type": "array", "items": {"type": "integer"}}}})},
            "/api/admin/reconfigure": {"post": _admin("Reload the layout files", None)},
            "/api/admin/autoholds": {"post": _admin(
                "Hold the nodes of the next COUNT failures of JOB on PROJECT; `ssh_key` (an "
                "OpenSSH public key line) is installed on each held node unless its provider "
                "says allow_developer_keys: false",
                props(project="string", job="string", count="integer",
                      hold_for="number", reason="string", ssh_key="string"))},
            "/api/admin/autoholds/{id}": {"delete": {
                **_admin("Delete an autohold request", None),
                "parameters": [_p("id", "request id", "integer")]}},
        },
    }
