"""Live console: a build on a real sshd node prints; the worker streams its
console over Gearman to the web, which fans it out to many HTTP readers and
to ``gatekeeper client console``; every stream ends when the build does."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gear
import pytest

from gatekeeper.gearman.nodelay import NoDelayClient
from gatekeeper.gearman.protocol import build_function, encode
from gatekeeper.services.web import AppServer
from gatekeeper.web.app import WebData, create_app
from gatekeeper.web.console import ConsoleHub
from gatekeeper.worker.executor import BuildExecutor
from gatekeeper.worker.service import GearServer, WorkerService, build_functions
from gatekeeper.worker.workspace import WorkspaceBuilder
from tests.fixtures import worker as fx
from tests.fixtures.worker import JOB, LABEL, WorkerEnv, build_args, wait_for

pytestmark = pytest.mark.integration

git_sources = fx.git_sources
worker_env = fx.worker_env
TICKS = 12
TICKER = f"""#!/bin/bash
# prints when it printed, so a reader can tell how late each line arrives
for i in $(seq 1 {TICKS}); do echo "TICK $i $(date +%s.%N)"; sleep 0.25; done
"""
READERS = 20


class RunningBuild:
    def __init__(self, uuid: str):
        self.uuid = uuid

    def status(self) -> dict[str, Any]:
        job = {"name": JOB, "uuid": self.uuid, "worker": "w1", "result": None,
               "start_time": time.time(), "url": None}
        return {"pipelines": [{"name": "gate", "queues": [{"items": [{"jobs": [job]}]}]}]}

    def explain(self, change: str) -> str:
        return ""


@pytest.fixture
def site(worker_env: WorkerEnv, gear_server: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    jobs_dir = tmp_path / "site-jobs"
    jobs_dir.mkdir()
    (jobs_dir / "ticker.sh").write_text(TICKER)
    (jobs_dir / "ticker.sh").chmod(0o755)
    executor = BuildExecutor(worker_env.settings, worker_env.claimer, WorkspaceBuilder(
        git_base_url=worker_env.sources.upstream_url, cache_dir=tmp_path / "cache",
        jobs_dir=jobs_dir))
    svc = WorkerService(executor, build_functions([(JOB, LABEL)], worker_env.claimer.labels),
                        [GearServer(gear_server.host, gear_server.port)], max_builds=1)
    svc.start(connect_timeout=10)
    hub = ConsoleHub(gear_server.host, gear_server.port).start()
    uuid = "cons0000001"
    web = AppServer(create_app(WebData(status=RunningBuild(uuid), console=hub)), "127.0.0.1",
                    0).start()
    client = NoDelayClient(client_id="test-launcher")
    client.addServer(gear_server.host, gear_server.port)
    client.waitForServer(10)
    try:
        yield {"env": worker_env, "svc": svc, "web": web, "client": client, "uuid": uuid}
    finally:
        client.shutdown()
        hub.stop()
        web.stop()
        svc.stop(abort=True, timeout=60)


def read_stream(url: str, out: list[tuple[float, str]]) -> None:
    with urllib.request.urlopen(url, timeout=60) as r:
        pending = b""
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            now = time.time()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out.extend((now, line.decode()) for line in lines)
    if pending:
        out.append((time.time(), pending.decode()))


def test_console_streams_to_many_readers_and_ends_with_the_build(site: dict[str, Any]) -> None:
    env, uuid, web = site["env"], site["uuid"], site["web"]
    ref, sha = env.sources.make_change({"README": "ticking\n"})
    args = build_args(env, uuid, ref, sha, run=".gatekeeper/jobs/ticker.sh", projects=[])
    build = gear.TextJob(build_function(JOB, LABEL), encode(args), uuid)
    site["client"].submitJob(build, timeout=10)
    wait_for(lambda: uuid in site["svc"].running_builds, 60, "the build to start")

    url = web.url + f"api/console/{uuid}?follow=1"
    got: list[list[tuple[float, str]]] = [[] for _ in range(READERS)]
    threads = [threading.Thread(target=read_stream, args=(url, g)) for g in got]
    for t in threads:
        t.start()
    cli = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", "client", "--url",
                            web.url, "console", uuid], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    for t in threads:
        t.join(120)
    out, err = cli.communicate(timeout=120)
    wait_for(lambda: build.complete, 60, "the build to complete")

    delays = []
    for lines in got:
        texts = [text for _, text in lines]
        ticks = [text for text in texts if text.startswith("TICK ")]
        # Each reader has the whole console, in order, ending with the build's last line.
        assert [t.split()[1] for t in ticks] == [str(i) for i in range(1, TICKS + 1)], texts
        assert texts[0].startswith("NODE_PROVIDER=") and texts[-1] == f"Build {uuid}: SUCCESS"
        delays += [when - float(text.split()[2]) for when, text in lines
                   if text.startswith("TICK ")]
    assert cli.returncode == 0, err
    assert out.count("TICK ") == TICKS and out.rstrip().endswith(f"Build {uuid}: SUCCESS")
    # Latency from the node's echo to a reader (measured, not asserted: no wall-clock tests)
    late = [d for d in delays if d >= 0]
    print(f"\nconsole latency over {READERS} readers: median {statistics.median(late):.3f}s, "
          f"max {max(late):.3f}s")

    # After the end: not running any more -> 404 with words, from the status
    code = urllib.request.urlopen(web.url + f"console/{uuid}", timeout=10).status
    assert code == 200  # the page itself (it shows the end or the logs link)
