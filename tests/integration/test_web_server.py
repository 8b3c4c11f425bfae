"""The web app on real uvicorn over loopback HTTP: pages, API, logs, caching."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.services.web import AppServer
from gatekeeper.web.app import WebData, create_app
from gatekeeper.web.sources import Unavailable

pytestmark = pytest.mark.integration

HOSTILE = "<script>alert(1)</script>"


def job(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "voting": True, "uuid": None, "result": None, "url": None,
            "launch_time": None, "start_time": None, "end_time": None, **kw}


def item(n: int, project: str, jobs: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"id": f"u{n}", "change": f"{n},1", "number": n, "patchset": 1, "project": project,
            "branch": "master", "url": f"http://gerrit/{n}", "live": True, "active": True,
            "tested_on_base": None, "tested_on_extra": [], "failing_reasons": [], "jobs": jobs, "items_behind": [],
            "last_decision": "enqueued", **kw}


STATUS: dict[str, Any] = {"pipelines": [
    {"name": "gate", "manager": "dependent", "description": "",
     "queues": [{"name": "integrated", "window": 20, "items": [
         item(1, HOSTILE, [job("tox", voting=False, start_time=1000.0, uuid="b1",
                               url="http://logs/1")]),
         item(2, "demo/nova", [job("tox", result="FAILURE", start_time=1000.0,
                                   end_time=1100.0)], failing_reasons=["job tox failed"],
              tested_on_base="u1"),
         item(3, "demo/glance", [job("tox", start_time=1010.0)], tested_on_extra=["1,1"]),
     ]}]},
    {"name": "check", "manager": "independent", "description": "checks",
     "queues": [{"name": "", "window": 0, "items": [item(4, "demo/glance", [job("pep8")])]}]},
]}


class FixedStatus:
    def __init__(self, status: dict[str, Any]):
        self.data = status
        self.down = False

    def status(self) -> dict[str, Any]:
        if self.down:
            raise Unavailable("the scheduler did not answer gatekeeper:status within 10s")
        return self.data

    def explain(self, change: str) -> str:
        return f"decisions about {change}\n2026-01-01 00:00:00  enqueued     {HOSTILE}"


class Etas:
    def job_eta(self, project: str, job: str) -> float | None:
        return 200.0 if job == "tox" else None


@pytest.fixture
def source() -> FixedStatus:
    return FixedStatus(STATUS)


@pytest.fixture
def web(tmp_path: Path, source: FixedStatus) -> Iterator[AppServer]:
    logs = tmp_path / "logs"
    (logs / "1/1/1/check/job/abc").mkdir(parents=True)
    (logs / "1/1/1/check/job/abc/console.txt").write_text("NODE_PROVIDER=local\n<b>two</b>\n")
    (logs / "1/1/1/check/job/abc/big.txt.gz").write_bytes(gzip.compress(b"compressed text"))
    (tmp_path / "secret.txt").write_text("outside the log root")
    data = WebData(status=source, etas=Etas(), log_root=logs, clock=lambda: 1100.0)
    server = AppServer(create_app(data), "127.0.0.1", 0).start()
    yield server
    server.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_status_page_escapes_everything_and_shows_progress(web: AppServer) -> None:
    code, headers, body = get(web.url)
    page = body.decode()
    assert code == 200 and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache"
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert '<a href="http://logs/1">tox</a> <span class="muted">(non-voting)</span>' in page
    assert "1m40s of ~3m20s" in page  # elapsed of the job's usual duration
    assert "no history" in page  # pep8 has none
    assert "failing: job tox failed" in page
    assert "re-tested without it: 3,1" in page  # 3,1 is tested on 1,1 only
    assert '<a href="/change/2">2,1</a>' in page
    assert "4 of 4 items" in page


def test_filters_and_fragment_etag(web: AppServer) -> None:
    code, _, body = get(web.url + "?project=glance")
    page = body.decode()
    assert code == 200 and "2 of 4 items" in page and "demo/nova" not in page
    code, _, body = get(web.url + "api/status?pipeline=gate&change=2")
    v = json.loads(body)
    items = [i for p in v["pipelines"] for q in p["queues"] for i in q["items"]]
    assert [i["change"] for i in items] == ["2,1"] and [p["name"] for p in v["pipelines"]] == [
        "gate"]
    assert items[0]["failing"] is True and v["items_total"] == 4
    code, headers, body = get(web.url + "status/fragment?project=nova")
    assert code == 200 and b"<html" not in body and b"1 of 4 items" in body
    assert get(web.url + "status/fragment?project=nova",
               {"If-None-Match": headers["etag"]})[0] == 304


def test_estimated_time_to_merge_follows_the_queue(web: AppServer) -> None:
    v = json.loads(get(web.url + "api/status?pipeline=gate")[2])
    items = v["pipelines"][0]["queues"][0]["items"]
    # tox usually takes 200 s: 1,1 started at 1000 (100 s left); 3,1 at 1010 (110 s left)
    assert [i["remaining"] for i in items] == [100.0, 0.0, 110.0]
    assert [i["time_to_merge"] for i in items] == [100.0, 100.0, 110.0]
    assert [j["progress"] for j in items[0]["jobs"]] == [0.5]


def test_scheduler_down_is_a_message_not_a_traceback(web: AppServer,
                                                     source: FixedStatus) -> None:
    source.down = True
    code, _, body = get(web.url)
    assert code == 200 and b"no status: the scheduler did not answer" in body
    code, _, body = get(web.url + "api/status")
    assert code == 503 and json.loads(body)["error"].startswith("no status:")


def test_change_page_timeline_escaped(web: AppServer) -> None:
    code, _, body = get(web.url + "change/2")
    page = body.decode()
    assert code == 200 and HOSTILE not in page and "failing: job tox failed" in page
    assert '<span class="kind">enqueued</span> &lt;script&gt;' in page
    data = json.loads(get(web.url + "api/change/2")[2])
    assert data["change"] == "2" and [i["pipeline"] for i in data["items"]] == ["gate"]


def test_logs_served_gzip_as_text_and_no_escape_from_root(web: AppServer) -> None:
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/console.txt")
    assert code == 200 and body == b"NODE_PROVIDER=local\n<b>two</b>\n"
    code, headers, body = get(web.url + "logs/1/1/1/check/job/abc/big.txt.gz")
    assert code == 200 and headers["content-encoding"] == "gzip"
    assert headers["content-type"].startswith("text/plain")
    assert gzip.decompress(body) == b"compressed text"
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/")
    assert code == 200 and b"console.txt" in body
    assert get(web.url + "logs/../secret.txt")[0] in (403, 404)
    assert get(web.url + "logs/%2e%2e/secret.txt")[0] == 403
    assert get(web.url + "logs/1/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt")[0] == 403
    assert get(web.url + "logs/nope.txt")[0] == 404


def test_console_text_with_line_anchors(web: AppServer) -> None:
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/console.txt?view")
    page = body.decode()
    assert code == 200 and '<span id="L2"><a class="ln" href="#L2">2</a>&lt;b&gt;' in page
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/big.txt.gz?view")
    assert code == 200 and b'<a class="ln" href="#L1">1</a>compressed text' in body


def test_explain_is_plain_text(web: AppServer) -> None:
    code, headers, body = get(web.url + "explain/42")
    assert code == 200 and headers["content-type"].startswith("text/plain")
    assert body.startswith(b"decisions about 42\n")


def test_static_files_and_unknown_paths(web: AppServer) -> None:
    code, headers, body = get(web.url + "static/status.js")
    assert code == 200 and headers["content-type"].startswith("text/javascript")
    assert "max-age" in headers["cache-control"]
    assert get(web.url + "static/../app.py")[0] == 404
    code, headers, body = get(web.url + "api/nope")
    assert code == 404 and json.loads(body) == {"error": "not found"}


def test_openapi_describes_every_api_route(web: AppServer) -> None:
    from gatekeeper.web.app import routes

    spec = json.loads(get(web.url + "api/openapi.json")[2])
    assert spec["openapi"].startswith("3.")
    described = set(spec["paths"])
    paths = [getattr(r, "path", "") for r in routes(WebData(status=FixedStatus(STATUS)))]
    routed = {p.replace(":int", "") for p in paths
              if p.startswith("/api/") and p != "/api/openapi.json"}
    assert described == routed
