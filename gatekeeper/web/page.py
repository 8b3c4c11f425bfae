"""Server-rendered HTML: the page frame and the status page.

Every value that comes from the status (subjects, project names, reasons:
text from Gerrit) goes through ``e()``; attributes are quoted. The status
page is usable without JavaScript; ``status.js`` refreshes the pipelines
in place and applies the filters as they are typed."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import quote

from gatekeeper.web.statusview import Filters

FAILED = {"FAILURE", "TIMED_OUT", "NODE_FAILURE", "ERROR", "LOST", "NOT_REGISTERED",
          "MERGE_FAILURE", "ABORTED", "CANCELED"}


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def when(t: float | None) -> str:
    return "" if not t else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def frame(title: str, body: str, script: str = "") -> str:
    js = f'<script src="/static/{e(script)}" defer></script>' if script else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{e(title)} · Gatekeeper</title>"
            f'<link rel="stylesheet" href="/static/style.css">{js}</head><body>'
            '<nav><a href="/" class="brand">Gatekeeper</a> <a href="/">status</a> '
            '<a href="/builds">builds</a> <a href="/buildsets">buildsets</a> '
            '<a href="/nodes">nodes</a> <a href="/autoholds">autoholds</a> '
            '<a href="/api/openapi.json">API</a></nav>'
            f"<main>{body}</main></body></html>")


def change_link(item: dict[str, Any]) -> str:
    number = item.get("number")
    label = e(item.get("change"))
    if number is None:
        return f"<span class=\"ref\">{label}</span>"
    return f'<a href="/change/{quote(str(number))}">{label}</a>'


def _bar(progress: float, state: str) -> str:
    pct = int(round(100 * max(0.0, min(1.0, progress))))
    return (f'<span class="bar {e(state)}" title="{pct}%">'
            f'<span style="width:{pct}%"></span></span>')


def _job(job: dict[str, Any]) -> str:
    state = str(job.get("state", ""))
    name = e(job.get("name"))
    if job.get("url"):
        name = f'<a href="{e(job["url"])}">{name}</a>'
    extra = "" if job.get("voting", True) else ' <span class="muted">(non-voting)</span>'
    if state == "running":
        if job.get("eta"):
            info = f'{duration(job.get("elapsed"))} of ~{duration(job["eta"])}'
        else:
            info = f'{duration(job.get("elapsed"))}, no history'
        if job.get("uuid"):
            info += f' · <a href="/console/{e(job["uuid"])}">console</a>'
    elif job.get("result"):
        info = duration(job.get("elapsed")) if job.get("elapsed") is not None else ""
    else:
        info = f'~{duration(job["eta"])}' if job.get("eta") else "no history"
    cls = "bad" if state in FAILED else state.lower()
    return (f'<li class="job {e(cls)}">{_bar(job.get("progress") or 0.0, cls)}'
            f'<span class="jname">{name}{extra}</span> '
            f'<span class="state {e(cls)}">{e(state)}</span> '
            f'<span class="muted">{info}</span></li>')


def tested_phrase(ahead: list[str], show: int = 3) -> str:
    """What an item is tested on, readable at any depth: the nearest few and a count."""
    if not ahead:
        return "the branch tip"
    if len(ahead) <= show + 1:
        return ", ".join(ahead)
    return f"{', '.join(ahead[-show:])} and the {len(ahead) - show} changes ahead of them"


def item_html(item: dict[str, Any], dependent: bool) -> str:
    classes = ["item"]
    if item.get("failing"):
        classes.append("failing")
    if not item.get("active", True):
        classes.append("inactive")
    if not item.get("live", True):
        classes.append("nonlive")
    done, total = item.get("jobs_done", 0), item.get("jobs_total", 0)
    left = item.get("time_to_merge") if dependent else item.get("remaining")
    if total == 0:
        summary = "no jobs"
    elif done == total:
        summary = f"{total} jobs done"
    else:
        summary = f"{done}/{total} jobs · " + (
            f"{'merges' if dependent else 'done'} in ~{duration(left)}"
            if left is not None else "ETA unknown (no history)")
    tested = tested_phrase([str(t) for t in item.get("tested_on") or []])
    parts = [f'<div class="{" ".join(classes)}" id="item-{e(item.get("id"))}" '
             f'data-project="{e(item.get("project"))}" data-change="{e(item.get("change"))}">'
             f'<div class="ihead">{change_link(item)} '
             f'<span class="project">{e(item.get("project"))}</span> '
             f'<span class="branch muted">{e(item.get("branch"))}</span> '
             f'{_bar(done / total if total else 0.0, "item")} '
             f'<span class="summary">{e(summary)}</span></div>'
             f'<div class="tested muted">tested on {e(tested)}'
             + ("" if item.get("live", True) else " · dependency, not reported") +
             ("" if item.get("active", True) else " · waiting outside the window")
             + (" · submitting: waiting for Gerrit" if item.get("submit_state") == "submitting"
                else "") + "</div>"]
    if item.get("failing"):
        reasons = "; ".join(str(r) for r in item.get("failing_reasons") or []) or "a job failed"
        parts.append(f'<div class="why">failing: {e(reasons)}')
        if item.get("reset_behind"):
            parts.append(" · re-tested without it: " + e(", ".join(
                str(x) for x in item["reset_behind"])))
        parts.append("</div>")
    if item.get("merge_error"):
        parts.append(f'<div class="why">merge: {e(item["merge_error"])}</div>')
    jobs = item.get("jobs") or []
    if jobs:
        parts.append('<ul class="jobs">' + "".join(_job(j) for j in jobs) + "</ul>")
    if item.get("last_decision"):
        parts.append(f'<div class="decision muted">{e(item["last_decision"])}</div>')
    parts.append("</div>")
    return "".join(parts)


def status_fragment(view: dict[str, Any]) -> str:
    """The pipelines part of the status page (what ``status.js`` swaps in)."""
    parts = [f'<p class="counts" data-total="{int(view.get("items_total", 0))}" '
             f'data-shown="{int(view.get("items_shown", 0))}">'
             f'{int(view.get("items_shown", 0))} of {int(view.get("items_total", 0))} items'
             f' · snapshot {e(when(view.get("now")))} UTC</p>']
    if view.get("error"):
        parts.append(f'<p class="why">{e(view["error"])}</p>')
    for err in view.get("errors") or []:
        parts.append(f'<p class="why muted">scheduler: {e(err)}</p>')
    for p in view.get("pipelines", []):
        items = [i for q in p.get("queues", []) for i in q.get("items", [])]
        dependent = p.get("manager") == "dependent"
        parts.append(f'<section class="pipeline" data-pipeline="{e(p.get("name"))}">'
                     f'<h2>{e(p.get("name"))} <small class="muted">{e(p.get("manager"))}, '
                     f'{len(items)} items</small></h2>')
        if p.get("description"):
            parts.append(f'<div class="muted">{e(p["description"])}</div>')
        for q in p.get("queues", []):
            if not q.get("items"):
                continue
            parts.append(f'<div class="queue"><h3>queue {e(q.get("name"))} '
                         f'<small class="muted">window {e(q.get("window"))}</small></h3>')
            parts.extend(item_html(i, dependent) for i in q["items"])
            parts.append("</div>")
        parts.append("</section>")
    return "".join(parts)


def status_page(view: dict[str, Any], filters: Filters, pipelines: list[str]) -> str:
    options = "".join(f'<option value="{e(n)}"{" selected" if n == filters.pipeline else ""}>'
                      f"{e(n)}</option>" for n in pipelines)
    form = ('<form id="filters" method="get" action="/">'
            f'<input name="project" placeholder="project" value="{e(filters.project)}">'
            f'<input name="change" placeholder="change" size="8" value="{e(filters.change)}">'
            f'<select name="pipeline"><option value="">all pipelines</option>{options}</select>'
            '<button type="submit">filter</button> '
            '<span id="updated" class="muted"></span></form>')
    body = (f"<h1>Status</h1>{form}<div id=\"pipelines\">{status_fragment(view)}</div>"
            '<p class="muted"><a href="/api/status">JSON</a></p>')
    return frame("Status", body, script="status.js")


def message_page(title: str, text: str) -> str:
    return frame(title, f"<h1>{e(title)}</h1><p>{e(text)}</p>")
