"""The web during a real gate run (quickstart-style site: Gerrit emulator,
sshd nodes, every service), watched in headless Chromium: items and their
progress, a failing item and why, the live console of a running build, and
afterwards the change pages' timelines."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.quickstart.site import LocalSite

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SLEEP = 15  # seconds A's exercise.sh sleeps (also in every build tested on top of A)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path / "site", nodes=3)
    s.start()
    yield s
    s.stop()


def wait(driver: Any, cond: Any, timeout: float, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: cond(d),
                                                                    message=what)


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def running_job(site: LocalSite, pipeline: str, change: int) -> dict[str, Any] | None:
    for item in site.queue_items(pipeline):
        if item["number"] == change:
            for j in item["jobs"]:
                if j["start_time"] and not j["result"] and j["worker"]:
                    return j
    return None


def test_status_console_and_change_pages_during_a_gate_run(browser: Any, site: LocalSite,
                                                           tmp_path: Path) -> None:
    emu, url = site.emulator, site.services.web.url
    a = emu.create_change("demo/nova", subject="Add a quota API <b>now</b>", owner="alice",
                          files={"nova/quota.py": "LIMIT = 10\n", "SLEEP_GATE": f"{SLEEP}\n"})
    b = emu.create_change("demo/glance", subject="Break the stack", owner="alice",
                          files={"FAIL_STACK": "stack.sh fails on this\n"})
    c = emu.create_change("demo/nova", subject="Document it", owner="alice",
                          files={"doc/quota.rst": "Quotas\n"})
    for n in (a, b, c):
        emu.approve(n, user="core")

    browser.get(url + "?pipeline=gate")
    # Items and their progress: A's gate job runs, with a progress bar.
    wait(browser, lambda d: js(d, f"var i=document.querySelector('[data-change=\"{a},1\"] "
                                  "li.job.running .bar'); return !!i;"), 90,
         "A's gate job running on the page")
    # A failing item shows why, while A (ahead of it) still runs.
    wait(browser, lambda d: js(d, f"var i=document.querySelector('.pipeline[data-pipeline=gate] "
                                  f"[data-change=\"{b},1\"].failing .why');"
                                  "return i ? i.textContent : '';").startswith("failing: "),
         60, "B failing, with its reason")
    why = js(browser, f"return document.querySelector('[data-change=\"{b},1\"] .why')"
                      ".textContent")
    assert "re-tested without it" in why, why
    shot = tmp_path / "status-during-gate.png"
    browser.save_screenshot(str(shot))
    print(f"\nstatus page screenshot: {shot}")
    assert js(browser, "return document.body.innerHTML.indexOf('<b>now</b>')") == -1

    # The live console of A's running gate build, as it is written.
    job = running_job(site, "gate", a)
    assert job is not None, "A's gate build is no longer running"
    browser.get(url + f"console/{job['uuid']}")
    wait(browser, lambda d: "exercise.sh: sleeping" in d.find_element("id", "console").text,
         60, "the console's lines while the build runs")
    assert js(browser, "return document.body.getAttribute('data-console')") == "streaming"
    wait(browser, lambda d: js(d, "return document.body.getAttribute('data-console')") ==
         "ended", SLEEP + 60, "the console to end with the build")
    text = browser.find_element("id", "console").text
    assert text.startswith("NODE_PROVIDER=") and f"Build {job['uuid']}: SUCCESS" in text
    browser.save_screenshot(str(tmp_path / "console.png"))

    # Afterwards: every decision about each change, as a timeline.
    wait(browser, lambda d: emu.status(c) == "MERGED" and site.idle(), 180, "the gate to drain")

    def change_page_settled(d: Any) -> bool:
        # The web shows the snapshot of the scheduler's last turn (at most ~1 s behind).
        d.get(url + f"change/{c}")
        return "not in any pipeline now" in d.find_element("tag name", "main").text

    wait(browser, change_page_settled, 30, "the change page to show the drained gate")
    timeline = browser.find_element("css selector", ".decisions").text
    assert f"{c},1 in gate (live): dequeued" in timeline, timeline
    assert "enqueued by comment-added" in timeline and "submitted" in timeline, timeline
    assert "not in any pipeline now" in browser.find_element("tag name", "main").text
    browser.get(url + f"change/{b}")
    main = browser.find_element("tag name", "main").text
    assert "voting job failed: gate-devstack-standin (FAILURE)" in main, main
    assert "Builds" in main and "FAILURE" in main  # its builds, from the history

    # The build history, filtered: B's failed gate build, with its page.
    browser.get(url + f"builds?pipeline=gate&change={b}")
    rows = browser.find_elements("css selector", "table tr")
    assert len(rows) == 2 and "FAILURE" in rows[1].text, [r.text for r in rows]
    rows[1].find_element("css selector", "a").click()
    assert "ZUUL_PIPELINE" in browser.find_element("tag name", "main").text

    # Metrics after the run: the web's and the scheduler's, on one scrape.
    with urllib.request.urlopen(url + "metrics", timeout=30) as r:
        metrics = r.read().decode()
    for name in ('gatekeeper_web_requests_total{code="200",route="/"}',
                 'gatekeeper_scheduler_events_total{type="comment-added"}',
                 'gatekeeper_scheduler_builds_total{job="gate-devstack-standin",pipeline="gate",'
                 'result="FAILURE"}',
                 'gatekeeper_scheduler_build_duration_seconds_count{job="gate-devstack-standin"}',
                 'gatekeeper_scheduler_buildsets_total{pipeline="gate",result="SUCCESS"}',
                 "gatekeeper_scheduler_gerrit_connected 1.0",
                 'gatekeeper_scheduler_pipeline_items{pipeline="gate"} 0.0',
                 "gatekeeper_scheduler_outbox_backlog 0.0"):
        assert name in metrics, name
