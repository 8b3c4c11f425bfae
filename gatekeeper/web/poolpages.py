"""The nodes and autoholds pages (the pool's records as tables)."""

from __future__ import annotations

from typing import Any

from gatekeeper.web.page import duration, e, frame, when

COLUMNS = {
    "nodes": [("id", "ID"), ("label", "label"), ("provider", "provider"), ("state", "state"),
              ("age", "age"), ("address", "address"), ("build", "build"),
              ("comment", "comment")],
    "autoholds": [("id", "ID"), ("project", "project"), ("job", "job"), ("count", "left"),
                  ("hold", "hold"), ("reason", "reason"), ("developer_key", "developer key"),
                  ("created", "created")],
}


def _cells(what: str, row: dict[str, Any], now: float) -> dict[str, str]:
    if what == "nodes":
        held = row.get("state") == "hold"
        comment = row.get("hold_reason") or ""
        if held and row.get("hold_until"):
            comment += f" (until {when(row['hold_until'])} UTC)"
        return {**row, "age": duration(row.get("age")),
                "address": f"{row['host']}:{row['port']}" if row.get("host") else "-",
                "build": str(row.get("build") or "")[:12], "comment": comment}
    hold = "until deleted" if row.get("hold_for") is None else duration(row["hold_for"])
    return {**row, "hold": hold, "created": when(row.get("created"))}


def render(what: str, rows: list[dict[str, Any]], now: float) -> str:
    cols = COLUMNS[what]
    head = "".join(f"<th>{e(title)}</th>" for _, title in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(c.get(k))}</td>" for k, _ in cols) + "</tr>"
                   for c in (_cells(what, r, now) for r in rows))
    empty = "" if rows else f'<p class="muted">no {e(what)}</p>'
    return frame(what.capitalize(), f"<h1>{e(what.capitalize())}</h1>"
                 f"<table><tr>{head}</tr>{body}</table>{empty}"
                 f'<p class="muted"><a href="/api/{e(what)}">JSON</a></p>')
