"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

``browser`` is a fresh Chromium per test with its own profile directory;
when the test fails, a screenshot and the page source land in the test's
tmp dir (the path is printed in the failure report)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


def make_browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.stash.setdefault(FAILED, report.failed)
        if report.failed:
            item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium/chromium-driver are not installed (.ci/bootstrap installs them)")
    driver = make_browser(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        if request.node.stash.get(FAILED, False):
            shot = tmp_path / "failure.png"
            try:
                driver.save_screenshot(str(shot))
                (tmp_path / "failure.html").write_text(driver.page_source)
                print(f"\nscreenshot of the failure: {shot}")
            except Exception as e:  # the browser may be what failed
                print(f"\nno screenshot: {e}")
        driver.quit()
