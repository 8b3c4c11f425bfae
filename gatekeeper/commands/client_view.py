"""How ``gatekeeper client`` shows the API's answers: rich tables.

Every value is printed as text (``rich.text.Text``), never as console
markup: a commit subject like ``[bold]`` or ``[link=...]`` stays literal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gatekeeper.web.page import duration, tested_phrase


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _t(value: object, style: str = "") -> Text:
    return Text("" if value is None else str(value), style=style)


STYLE = {"SUCCESS": "green", "running": "cyan", "waiting": "dim", "launched": "dim"}


def status(data: dict[str, Any]) -> None:
    con = _console()
    con.print(_t(f"{data.get('items_shown', 0)} of {data.get('items_total', 0)} items"))
    for err in data.get("errors") or []:
        con.print(_t(f"scheduler: {err}", "red"))
    for p in data.get("pipelines", []):
        dependent = p.get("manager") == "dependent"
        for q in p.get("queues", []):
            if not q.get("items"):
                continue
            title = f"{p.get('name')}" + (f" / {q['name']}" if q.get("name") else "")
            table = Table(title=_t(title), title_justify="left")
            for col in ("change", "project", "tested on", "jobs", "left", "status"):
                table.add_column(col)
            for i in q["items"]:
                jobs = Text()
                for n, j in enumerate(i.get("jobs", [])):
                    if n:
                        jobs.append("\n")
                    state = str(j.get("state", ""))
                    jobs.append(str(j.get("name", "")) + " ")
                    jobs.append(state, style=STYLE.get(state, "red" if j.get("result")
                                                       else ""))
                left = i.get("time_to_merge") if dependent else i.get("remaining")
                why = "; ".join(str(r) for r in i.get("failing_reasons") or [])
                table.add_row(_t(i.get("change")), _t(i.get("project")),
                              _t(tested_phrase([str(t) for t in i.get("tested_on") or []])), jobs,
                              _t("?" if left is None else duration(left)),
                              _t(f"failing: {why}" if i.get("failing") else
                                 i.get("last_decision"), "red" if i.get("failing") else ""))
            con.print(table)


def done(action: str) -> Callable[[dict[str, Any]], None]:
    def show(data: dict[str, Any]) -> None:
        _console().print(_t(f"{action}: done"))
    return show


def autohold(data: dict[str, Any]) -> None:
    a = data.get("autohold") or {}
    _console().print(_t(f"autohold request {a.get('id')}: next {a.get('count')} failure(s) "
                        f"of {a.get('job')} on {a.get('project')}"))


def _table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    table = Table()
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(_t(r.get(c)) for c in cols))
    _console().print(table)


def autoholds(data: dict[str, Any]) -> None:
    _table(data.get("autoholds", []), ["id", "project", "job", "count", "hold_for", "reason",
                                       "developer_key"])


def nodes(data: dict[str, Any]) -> None:
    rows = [{**n, "address": f"{n['host']}:{n['port']}" if n.get("host") else "-",
             "age": duration(n.get("age"))} for n in data.get("nodes", [])]
    _table(rows, ["id", "label", "provider", "state", "age", "address", "build",
                  "hold_reason"])
