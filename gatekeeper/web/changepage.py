"""The change page: every decision about a change as a timeline, and where it is now."""

from __future__ import annotations

import re
from typing import Any

from gatekeeper.web.page import e, frame, item_html

# ``render_history`` lines: "YYYY-MM-DD HH:MM:SS  KIND  TEXT"
_ENTRY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (\S+)\s+(.*)$")


def timeline(text: str) -> list[dict[str, str]]:
    """The explain text as entries: time/kind/text, or a heading."""
    out = []
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m:
            out.append({"time": m.group(1), "kind": m.group(2), "text": m.group(3)})
        elif line.strip():
            out.append({"heading": line.strip()})
    return out


def render(data: dict[str, Any]) -> str:
    key = str(data.get("change"))
    parts = [f"<h1>Change {e(key)}</h1>"]
    items = data.get("items") or []
    if items:
        parts.append("<h2>Now</h2>")
        for i in items:
            parts.append(f'<div class="muted">{e(i.get("pipeline"))}</div>'
                         + item_html(i, False))
    else:
        parts.append('<p class="muted">not in any pipeline now</p>')
    parts.append('<h2>Decisions</h2><div class="decisions">')
    opened = False
    for entry in timeline(str(data.get("explain", ""))):
        if "heading" in entry:
            parts.append(("</ul>" if opened else "") +
                         f'<h3>{e(entry["heading"])}</h3><ul class="timeline">')
            opened = True
            continue
        if not opened:
            parts.append('<ul class="timeline">')
            opened = True
        parts.append(f'<li><span class="muted">{e(entry["time"])}</span> '
                     f'<span class="kind">{e(entry["kind"])}</span> {e(entry["text"])}</li>')
    parts.append(("</ul>" if opened else "") + "</div>")
    builds = data.get("builds")
    if builds:
        from gatekeeper.web.historypages import builds_table

        parts.append("<h2>Builds</h2>" + builds_table(builds))
    parts.append(f'<p class="muted"><a href="/api/change/{e(key)}">JSON</a></p>')
    return frame(f"Change {key}", "".join(parts))
