"""Time to first render of the status page in headless Chromium.

    .venv/bin/python bench/web_status_render.py [--items 1000] [--runs 3]

Serves a synthetic status (``gatekeeper.sim.status_sample``: N items in a
gate queue, every 10th also in check, 5 jobs each) from the real web app on
uvicorn and loads ``/`` in a fresh headless Chromium each run; the baseline
is the same page with 10 items, measured in the same run. Prints the median
first contentful paint and DOMContentLoaded and their ratio to the baseline."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatekeeper.services.web import AppServer
from gatekeeper.sim.status_sample import sample_status
from gatekeeper.web.app import WebData, create_app
from tests.browser.conftest import make_browser


class Fixed:
    def __init__(self, data):
        self.data = data

    def status(self):
        return self.data

    def explain(self, change):
        return ""


class Etas:
    def job_eta(self, project, job):
        return 1200.0


def measure(items: int, runs: int) -> tuple[float, float, int]:
    server = AppServer(create_app(WebData(status=Fixed(sample_status(items, time.time())),
                                          etas=Etas())), "127.0.0.1", 0).start()
    fcp, dcl, size = [], [], 0
    try:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as profile:
                d = make_browser(Path(profile))
                try:
                    d.get(server.url)
                    # the paint entry is recorded a frame after load: wait for it (bounded)
                    t = d.execute_async_script(
                        "var done=arguments[0];"
                        "new PerformanceObserver(function(l){"
                        " var p=l.getEntriesByName('first-contentful-paint')[0];"
                        " if (!p) { return; }"
                        " var n=performance.getEntriesByType('navigation')[0];"
                        " done([p.startTime, n.domContentLoadedEventEnd, n.transferSize]);"
                        "}).observe({type:'paint', buffered:true});")
                finally:
                    d.quit()
            fcp.append(t[0])
            dcl.append(t[1])
            size = t[2]
    finally:
        server.stop()
    return statistics.median(fcp), statistics.median(dcl), size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    base = measure(10, a.runs)
    big = measure(a.items, a.runs)
    print(f"{'items':>6} {'FCP ms':>8} {'DCL ms':>8} {'bytes':>10}")
    for n, (f, d, s) in ((10, base), (a.items, big)):
        shown = n + n // 10
        print(f"{shown:>6} {f:>8.0f} {d:>8.0f} {s:>10,}")
    print(f"ratio {a.items} items / 10 items: FCP x{big[0] / base[0]:.2f}, "
          f"DCL x{big[1] / base[1]:.2f}")


if __name__ == "__main__":
    main()
