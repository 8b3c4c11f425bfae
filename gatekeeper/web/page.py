"""The status page: the scheduler's status rendered as plain HTML.

Server-side and script-free on purpose (it refreshes itself every few
seconds); every value from the status is escaped. The richer web UI is later
work; this page is what the ``status_url`` in every report links to."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """body{font-family:sans-serif;margin:1em}h2{margin-bottom:.2em}
table{border-collapse:collapse;margin:.3em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px}
.SUCCESS{color:#070}.FAILURE,.TIMED_OUT,.NODE_FAILURE,.ERROR,.NOT_REGISTERED{color:#b00}
.running{color:#05a}.queued{color:#777}.muted{color:#777}"""


def _job_cell(job: dict[str, Any]) -> str:
    state = job.get("result") or ("running" if job.get("start_time") else "queued")
    name = escape(str(job.get("name", "")))
    if job.get("url"):
        name = f'<a href="{escape(str(job["url"]), quote=True)}">{name}</a>'
    nv = "" if job.get("voting", True) else ' <span class="muted">(non-voting)</span>'
    return f'{name}{nv}: <span class="{escape(state)}">{escape(state)}</span>'


def render(status: dict[str, Any], refresh: int = 5) -> str:
    parts = [f'<!doctype html><html><head><meta charset="utf-8">'
             f'<meta http-equiv="refresh" content="{int(refresh)}">'
             f"<title>Gatekeeper status</title><style>{STYLE}</style></head><body>"
             "<h1>Gatekeeper status</h1>"]
    for p in status.get("pipelines", []):
        items = [i for q in p.get("queues", []) for i in q.get("items", [])]
        parts.append(f"<h2>{escape(str(p.get('name')))} <small class=\"muted\">"
                     f"{escape(str(p.get('manager', '')))}, {len(items)} items</small></h2>")
        if p.get("description"):
            parts.append(f"<div class=\"muted\">{escape(str(p['description']))}</div>")
        for q in p.get("queues", []):
            if not q.get("items"):
                continue
            parts.append(f"<h3>queue {escape(str(q.get('name')))} "
                         f"<small class=\"muted\">window {escape(str(q.get('window')))}"
                         "</small></h3><table><tr><th>change</th><th>project</th>"
                         "<th>tested on</th><th>jobs</th><th>last decision</th></tr>")
            for i in q["items"]:
                change = escape(str(i.get("change")))
                if i.get("url"):
                    change = f'<a href="{escape(str(i["url"]), quote=True)}">{change}</a>'
                tested = escape(", ".join(i.get("tested_on") or []) or "branch tip")
                jobs = "<br>".join(_job_cell(j) for j in i.get("jobs", []))
                parts.append(f"<tr><td>{change}</td><td>{escape(str(i.get('project')))}</td>"
                             f"<td>{tested}</td><td>{jobs}</td>"
                             f"<td>{escape(str(i.get('last_decision', '')))}</td></tr>")
            parts.append("</table>")
    parts.append('<p class="muted"><a href="status.json">status.json</a></p></body></html>')
    return "".join(parts)
