"""The log/status web server: real HTTP on loopback."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.web.server import WebServer

pytestmark = pytest.mark.integration

STATUS = {"pipelines": [{"name": "gate", "manager": "dependent", "description": "",
                         "queues": [{"name": "integrated", "window": 20, "items": [{
                             "change": "1,1", "project": "<script>alert(1)</script>",
                             "url": "http://x/1", "tested_on": [],
                             "last_decision": "enqueued",
                             "jobs": [{"name": "tox", "voting": False, "result": None,
                                       "start_time": 1.0, "url": "http://logs/1"}]}]}]}]}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    logs = tmp_path / "logs"
    (logs / "1/1/1/check/job/abc").mkdir(parents=True)
    (logs / "1/1/1/check/job/abc/console.txt").write_text("NODE_PROVIDER=local\n")
    (logs / "1/1/1/check/job/abc/big.txt.gz").write_bytes(gzip.compress(b"compressed text"))
    (tmp_path / "secret.txt").write_text("outside the log root")
    server = WebServer("127.0.0.1", 0, str(logs), status=lambda: STATUS,
                       explain=lambda key: f"decisions about {key}").start()
    yield server
    server.stop()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_status_json_and_page_escape_everything(web: WebServer) -> None:
    code, _, body = get(web.url + "status.json")
    assert code == 200 and json.loads(body) == STATUS
    code, headers, body = get(web.url)
    page = body.decode()
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert '<a href="http://logs/1">tox</a> <span class="muted">(non-voting)</span>' in page


def test_logs_served_gzip_as_text_and_no_escape_from_root(web: WebServer) -> None:
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/console.txt")
    assert code == 200 and body == b"NODE_PROVIDER=local\n"
    code, headers, body = get(web.url + "logs/1/1/1/check/job/abc/big.txt.gz")
    assert code == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("text/plain")
    assert gzip.decompress(body) == b"compressed text"
    code, _, body = get(web.url + "logs/1/1/1/check/job/abc/")
    assert code == 200 and b"console.txt" in body
    assert get(web.url + "logs/../secret.txt")[0] in (403, 404)
    assert get(web.url + "logs/%2e%2e/secret.txt")[0] == 403
    assert get(web.url + "logs/nope.txt")[0] == 404


def test_explain_is_plain_text(web: WebServer) -> None:
    code, headers, body = get(web.url + "explain/42")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    assert body == b"decisions about 42\n"
