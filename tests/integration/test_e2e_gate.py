"""End to end: Gerrit emulator -> scheduler -> Gearman -> merger -> worker ->
sshd node -> logs -> votes and merges in Gerrit's git. Everything real, on
loopback, against both Gearman servers."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.quickstart.site import LocalSite
from gatekeeper.quickstart.story import run_story
from tests.integration.e2e_support import (
    consoles,
    gatekeeper_messages,
    heads,
    log_url_of,
    published_files,
    verified,
)

pytestmark = pytest.mark.integration

JOB = "gate-devstack-standin"


@pytest.fixture(params=[("embedded", "static"), ("gearmand", "pool")],
                ids=["gear.Server-static-nodes", "gearmand-pool-nodes"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalSite]:
    gearman, nodes = request.param
    s = LocalSite(tmp_path / "site", nodes=3, gearman=gearman, use_pool=nodes == "pool")
    s.start()
    yield s
    s.stop()


def test_three_approved_changes_middle_fails(site: LocalSite) -> None:
    outcome = run_story(site, say=lambda _: None, timeout=240)
    assert outcome.ok, outcome.problems
    a, b, c = (outcome.changes[k] for k in "ABC")
    emu = site.emulator

    # Votes and messages as the layout says.
    assert verified(site, a) == 2 and verified(site, c) == 2 and verified(site, b) == -2
    failure = [m for m in gatekeeper_messages(site, b) if "gate pipeline" in m][-1]
    assert "Build failed (gate pipeline)" in failure and f"- {JOB} " in failure
    assert ": FAILURE in " in failure

    # Merged in Gerrit's git, in order: A, then C; B never.
    nova = emu.git_log("demo/nova")
    assert "Add a quota API" in nova and "Document the quota API" in nova
    assert "Rework the image cache" not in emu.git_log("demo/glance")

    # What each gate build of C tested: first A+B+C, then (after B failed) A+C.
    c_builds = consoles(site, c, "gate")
    assert c_builds, "C's gate builds published no logs"
    final = heads(c_builds[-1])
    assert "demo/glance" not in final  # B left the queue: glance is not in the change set
    nova_files = published_files(site, "demo/nova", final["demo/nova"])
    assert {"nova/quota.py", "doc/quota.rst"} <= nova_files
    # B's build was tested on top of A: the glance ref holds B, nova's holds A.
    b_build = heads(consoles(site, b, "gate")[-1])
    assert "FAIL_GATE" in published_files(site, "demo/glance", b_build["demo/glance"])
    assert "nova/quota.py" in published_files(site, "demo/nova", b_build["demo/nova"])
    if len(c_builds) > 1:  # C's first build ran before the reset, on top of A and B
        first = heads(c_builds[0])
        assert "FAIL_GATE" in published_files(site, "demo/glance", first["demo/glance"])

    # Logs are served at the URL in the report, console first line NODE_PROVIDER.
    success = [m for m in gatekeeper_messages(site, c) if "gate pipeline" in m][-1]
    url = log_url_of(success, JOB)
    with urllib.request.urlopen(url + "console.txt", timeout=10) as resp:
        console = resp.read().decode()
    assert console.startswith("NODE_PROVIDER=local")
    assert "Git heads:" in console
