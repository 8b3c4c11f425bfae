"""Builds and buildsets in the web, from the scheduler's history tables
(real SQLite, migrated by the store): filters, paging, build and buildset
pages, the change page's builds and job ETAs on the status page."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gatekeeper.services.web import AppServer
from gatekeeper.store import schema
from gatekeeper.store.migrate import open_store
from gatekeeper.web.app import WebData, create_app
from gatekeeper.web.history import HistoryDatabase

pytestmark = pytest.mark.integration

HOSTILE = "<script>x()</script>"


def build_row(n: int, **kw: Any) -> dict[str, Any]:
    return {"uuid": f"b{n:03d}", "buildset": "bs1" if n < 3 else f"bs{n}",
            "pipeline": "gate" if n % 2 else "check", "project": "demo/nova", "branch": "master",
            "change": 10 + n % 3, "patchset": 1, "ref": "", "job": "tox", "result": "SUCCESS",
            "attempt": 1, "voting": True, "launch_time": 1000.0 + n, "start_time": 1000.0 + n,
            "end_time": 1000.0 + n + 100 * n, "node": "node1", "provider": "local",
            "worker": "w1", "log_url": f"http://logs/{n}/", "message": None, **kw}


@pytest.fixture
def url(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path}/gatekeeper.sqlite"
    engine = open_store(db)
    with engine.begin() as conn:
        for n in range(1, 8):
            conn.execute(sa.insert(schema.builds).values(**build_row(n)))
        conn.execute(sa.insert(schema.builds).values(**build_row(
            8, job="pep8", result="FAILURE", message=HOSTILE, project=HOSTILE)))
        conn.execute(sa.insert(schema.builds).values(**build_row(
            9, job="pep8", result=None, end_time=None)))
        conn.execute(sa.insert(schema.buildsets).values(
            uuid="bs1", item="i1", pipeline="gate", project="demo/nova", change=11, patchset=1,
            result="SUCCESS", message="", created=999.0, completed=1300.0,
            changes=json.dumps([{"project": "demo/nova", "branch": "master", "ref": "r",
                                 "change": 11, "patchset": 1, "revision": "abc"}])))
    engine.dispose()
    return db


class Status:
    def status(self) -> dict[str, Any]:
        job = {"name": "tox", "voting": True, "uuid": "r1", "result": None, "url": None,
               "start_time": 2000.0, "end_time": None, "launch_time": 2000.0}
        item = {"id": "i", "change": "11,1", "number": 11, "patchset": 1,
                "project": "demo/nova", "jobs": [job], "tested_on_base": None,
                "tested_on_extra": []}
        return {"pipelines": [{"name": "gate", "manager": "dependent",
                               "queues": [{"name": "q", "window": 20, "items": [item]}]}]}

    def explain(self, change: str) -> str:
        return f"{change},1 in gate (live): queue q"


@pytest.fixture
def web(url: str) -> Iterator[AppServer]:
    history = HistoryDatabase(url)
    app = create_app(WebData(status=Status(), history=history, etas=history,
                             clock=lambda: 2100.0))
    server = AppServer(app, "127.0.0.1", 0).start()
    yield server
    server.stop()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
            ctype = r.headers["content-type"]
            return r.status, json.loads(body) if ctype.startswith("application/json") \
                else body.decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_builds_filters_and_paging(web: AppServer) -> None:
    code, page1 = get(web.url + "api/builds?limit=3")
    assert code == 200 and [b["uuid"] for b in page1["builds"]] == ["b009", "b008", "b007"]
    assert page1["more"] is True and page1["skip"] == 0
    _, page3 = get(web.url + "api/builds?limit=3&skip=6")
    assert [b["uuid"] for b in page3["builds"]] == ["b003", "b002", "b001"]
    assert page3["more"] is False
    _, gate = get(web.url + "api/builds?pipeline=gate&job=tox&result=SUCCESS&change=11")
    assert [b["uuid"] for b in gate["builds"]] == ["b007", "b001"]
    assert gate["builds"][0]["duration"] == 700.0
    assert get(web.url + "api/builds?limit=0")[0] == 400
    assert get(web.url + "api/builds?change=x")[0] == 400
    code, html = get(web.url + "builds?project=demo/nova&limit=2")
    assert code == 200 and "older »" in html
    code, html = get(web.url + "builds?job=pep8")
    assert HOSTILE not in html and "&lt;script&gt;" in html and "running" in html


def test_build_and_buildset_pages(web: AppServer) -> None:
    code, b = get(web.url + "api/build/b008")
    assert code == 200 and b["result"] == "FAILURE" and b["message"] == HOSTILE
    code, html = get(web.url + "build/b008")
    assert HOSTILE not in html and "ZUUL_PIPELINE" in html and "http://logs/8/console.txt" in html
    _, html = get(web.url + "build/b009")
    assert '<a href="/console/b009">live console</a>' in html  # still running
    code, err = get(web.url + "api/build/nope")
    assert code == 404 and err == {"error": "no build nope"}
    code, bs = get(web.url + "api/buildset/bs1")
    assert code == 200 and [b["uuid"] for b in bs["builds"]] == ["b001", "b002"]
    assert bs["changes"][0]["revision"] == "abc"
    code, sets = get(web.url + "api/buildsets?pipeline=gate")
    assert code == 200 and [s["uuid"] for s in sets["buildsets"]] == ["bs1"]


def test_change_page_builds_and_eta_from_history(web: AppServer) -> None:
    code, change = get(web.url + "api/change/11")
    assert code == 200 and sorted(b["uuid"] for b in change["builds"]) == ["b001", "b004",
                                                                          "b007"]
    # tox's last successful runs took 100..700 s (b001..b007): the median is 400 s
    _, status = get(web.url + "api/status")
    job = status["pipelines"][0]["queues"][0]["items"][0]["jobs"][0]
    assert job["eta"] == 400.0 and job["remaining"] == 300.0 and job["progress"] == 0.25
    _, html = get(web.url)
    assert "1m40s of ~6m40s" in html


def test_no_history_tables_yet_means_no_history(tmp_path: Path) -> None:
    history = HistoryDatabase(f"sqlite:///{tmp_path}/empty.sqlite")
    assert history.builds({}, 10, 0) == [] and history.job_eta("p", "j") is None
    assert history.build("x") is None
