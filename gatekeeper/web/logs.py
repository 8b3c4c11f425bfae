"""The log browser: build logs under the worker's ``log_root``.

``*.gz`` files go out with ``Content-Encoding: gzip`` and the type of what
they hold, so a browser shows the text (as the OpenStack log server did);
``?view`` renders a text log as HTML with a link per line (``#L12``). A
path never leaves the log root: ``..`` and symlinks out of it are refused."""

from __future__ import annotations

import gzip
import mimetypes
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gatekeeper.web.page import e, frame

TEXT_TYPES = {".txt": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8",
              ".html": "text/html; charset=utf-8", ".json": "application/json",
              ".yaml": "text/plain; charset=utf-8", ".conf": "text/plain; charset=utf-8"}
VIEW_LIMIT = 20 * 1024 * 1024  # bytes of text rendered with line anchors; raw beyond that
# Finished builds' logs do not change; a running build's console does.
FILE_CACHE = "public, max-age=60"


def safe_join(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it stays inside ``root`` (no ``..`` or symlink escape)."""
    target = (root / rel.lstrip("/")).resolve()
    root = root.resolve()
    if target == root or root in target.parents:
        return target
    return None


def content_type(name: str) -> tuple[str, str | None]:
    """(Content-Type, Content-Encoding) for a log file name."""
    encoding = None
    if name.endswith(".gz"):
        name, encoding = name[:-3], "gzip"
    ctype = TEXT_TYPES.get(os.path.splitext(name)[1]) or (
        mimetypes.guess_type(name)[0] or "application/octet-stream")
    if encoding and ctype == "application/octet-stream" and "." not in name:
        ctype = "text/plain; charset=utf-8"  # e.g. syslog.gz
    return ctype, encoding


def is_text(name: str) -> bool:
    ctype, _ = content_type(name)
    return ctype.startswith("text/plain")


def serve(root: Path, rel: str, request: Request) -> Response:
    target = safe_join(root, rel)
    if target is None:
        return Response("forbidden\n", 403, media_type="text/plain")
    if target.is_dir():
        if not request.url.path.endswith("/"):
            return RedirectResponse(request.url.path + "/", 301)
        return _listing(target, rel)
    if not target.is_file():
        return Response("not found\n", 404, media_type="text/plain")
    if "view" in request.query_params and is_text(target.name):
        return _lines(target, rel)
    ctype, encoding = content_type(target.name)
    headers = {"Cache-Control": FILE_CACHE, "X-Content-Type-Options": "nosniff"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return FileResponse(target, media_type=ctype, headers=headers)


def _listing(target: Path, rel: str) -> Response:
    rows = []
    for p in sorted(target.iterdir(), key=lambda p: p.name):
        name = p.name + ("/" if p.is_dir() else "")
        size = "" if p.is_dir() else f"{p.stat().st_size:,}"
        view = f' <a href="{e(p.name)}?view">lines</a>' if p.is_file() and is_text(p.name) \
            else ""
        rows.append(f'<tr><td><a href="{e(name)}">{e(name)}</a>{view}</td>'
                    f'<td class="muted">{size}</td></tr>')
    body = (f"<h1>logs/{e(rel)}</h1><p><a href=\"../\">..</a></p>"
            f"<table><tr><th>name</th><th>bytes</th></tr>{''.join(rows)}</table>")
    return HTMLResponse(frame(f"logs/{rel}", body), headers={"Cache-Control": "no-cache"})


def _lines(target: Path, rel: str) -> Response:
    opener = gzip.open if target.name.endswith(".gz") else open
    with opener(target, "rb") as f:
        data = f.read(VIEW_LIMIT + 1)
    truncated = len(data) > VIEW_LIMIT
    text = data[:VIEW_LIMIT].decode("utf-8", "replace")
    lines = "".join(f'<span id="L{n}"><a class="ln" href="#L{n}">{n}</a>{e(line)}\n</span>'
                    for n, line in enumerate(text.splitlines(), 1))
    more = (f'<p class="why">only the first {VIEW_LIMIT:,} bytes are shown; '
            f'<a href="{e(target.name)}">raw file</a></p>') if truncated else ""
    body = (f'<h1>{e(rel)}</h1><p><a href="{e(target.name)}">raw</a> · '
            f'<a href="./">directory</a></p>{more}<pre class="console">{lines}</pre>')
    return HTMLResponse(frame(rel, body), headers={"Cache-Control": FILE_CACHE})
