"""The status page in real headless Chromium: 1,000 items, filters, updates
in place, hostile text inert. (The page during a real gate run is in
test_gate_run.py.)"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gatekeeper.services.web import AppServer
from gatekeeper.sim.status_sample import sample_status
from gatekeeper.web.app import WebData, create_app

pytestmark = pytest.mark.browser

NOW = time.time()
HOSTILE = '<img src=x onerror="window.__pwned=1">'


class Source:
    def __init__(self, data: dict[str, Any]):
        self.data = data

    def status(self) -> dict[str, Any]:
        return self.data

    def explain(self, change: str) -> str:
        return ""


class Etas:
    def job_eta(self, project: str, job: str) -> float | None:
        return None if job.startswith("docs") else 1200.0


@pytest.fixture
def source() -> Source:
    return Source(sample_status(1000, NOW, subject=HOSTILE))


@pytest.fixture
def web(source: Source) -> Iterator[AppServer]:
    server = AppServer(create_app(WebData(status=source, etas=Etas())), "127.0.0.1", 0).start()
    yield server
    server.stop()


def wait(driver: Any, cond: Any, timeout: float = 20.0, what: str = "") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: cond(d), message=what)


def counts(driver: Any) -> str:
    return driver.execute_script("var c=document.querySelector('.counts');"
                                 "return c ? c.textContent : '';")


def test_thousand_items_render_filter_and_update_in_place(browser: Any, web: AppServer,
                                                          source: Source) -> None:
    browser.get(web.url)
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    assert counts(browser).startswith("1100 of 1100 items")
    assert browser.execute_script("return document.querySelectorAll('div.item').length") == 1100
    timing = browser.execute_script(
        "var n=performance.getEntriesByType('navigation')[0];"
        "var p=performance.getEntriesByName('first-contentful-paint')[0];"
        "return {fcp: p ? p.startTime : null, dcl: n.domContentLoadedEventEnd,"
        " bytes: n.transferSize};")
    print(f"\n1,100 items: first contentful paint {timing['fcp']:.0f} ms, "
          f"DOMContentLoaded {timing['dcl']:.0f} ms, {timing['bytes'] / 1e6:.1f} MB")
    assert browser.execute_script("return window.__pwned") is None
    failing = browser.find_elements("css selector", "div.item.failing .why")
    assert failing and failing[0].text.startswith("failing: job merge failed")
    assert "re-tested without it" in failing[0].text
    assert "no history" in browser.find_element("css selector", "#item-item1").text

    browser.execute_script("window.__same_page = 1")
    box = browser.find_element("css selector", "#filters input[name=project]")
    box.send_keys("project3")
    wait(browser, lambda d: counts(d).startswith("50 of 1100 items"), what="the filter")
    assert "project=project3" in browser.current_url
    assert browser.execute_script("return window.__same_page") == 1  # no reload

    data = copy.deepcopy(source.data)
    gate = data["pipelines"][1]["queues"][0]["items"]
    gate[3]["project"] = "org/project3"  # a new item matching the filter
    source.data = data
    wait(browser, lambda d: counts(d).startswith("51 of 1100 items"), what="the update")
    assert browser.execute_script("return window.__same_page") == 1
    assert browser.execute_script("return window.__pwned") is None
