"""``gatekeeper doctor`` against a running local site (emulated Gerrit, real
sshd node, Gearman, database, web): all OK, then one planted mistake of each
kind, each named on its own line, and a non-zero exit."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatekeeper.cli import main
from gatekeeper.quickstart.site import LocalSite, default_layout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSite]:
    s = LocalSite(tmp_path_factory.mktemp("doctor") / "site", nodes=1)
    s.start()
    # An open change, so doctor can read the projects' labels.
    s.emulator.create_change("demo/nova", subject="Something to look at")
    yield s
    s.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def doctor(capsys: Any, site: LocalSite, tmp_path: Path, change: Any = None,
           layout: str | None = None) -> tuple[int, dict[str, str]]:
    cfg = yaml.safe_load(site.config_path.read_text())
    if layout is not None:
        path = tmp_path / "layout.yaml"
        path.write_text(layout)
        cfg["scheduler"]["layout"] = [str(path)]
    if change is not None:
        change(cfg)
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    rc = main(["doctor", "-c", str(path), "--timeout", "5"])
    out = capsys.readouterr().out
    assert "Traceback" not in out
    lines = {}
    for line in out.splitlines()[:-1]:
        verdict, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        lines[name] = f"{verdict} {detail}"
    return rc, lines


def test_a_working_site_passes(site: LocalSite, tmp_path: Path, capsys: Any) -> None:
    rc, lines = doctor(capsys, site, tmp_path)
    assert rc == 0, lines
    assert {k: v.split()[0] for k, v in lines.items()} == {
        "config": "OK", "layouts": "OK", "files": "OK", "gerrit": "OK", "gerrit host key": "OK",
        "gerrit login": "OK", "gerrit stream-events": "OK", "gerrit projects": "OK",
        "gerrit labels": "OK", "gearman": "OK", "gearman merger": "OK",
        "gearman workers": "OK", "node node1": "OK", "database": "OK", "log root": "OK",
        "log url": "OK"}
    assert "schema at " in lines["database"]


def test_each_planted_mistake_is_named(site: LocalSite, tmp_path: Path, capsys: Any) -> None:
    bad_db = tmp_path / "not-a-database"
    bad_db.write_text("hello\n" * 100)
    other_hosts = tmp_path / "other_known_hosts"
    other_hosts.write_text(f"[127.0.0.1]:{site.emulator.port} ssh-ed25519 "
                           "AAAAC3NzaC1lZDI1NTE5AAAAIDoOg0kxq1WOGHKkSNFJvxd5S2sO6RlHyZ0aRqM7s8eA\n")

    def plant(cfg: dict[str, Any]) -> None:
        cfg["gerrit"]["known_hosts"] = str(other_hosts)  # Gerrit's host key is not known
        cfg["gearman"]["port"] = closed_port()  # nothing listens there
        cfg["worker"]["nodes"][0]["port"] = closed_port()  # the node is down
        cfg["database"] = {"url": f"sqlite:///{bad_db}"}  # not a database
        cfg["worker"]["log_url"] = f"http://127.0.0.1:{closed_port()}/logs/"  # not served

    rc, lines = doctor(capsys, site, tmp_path, plant)
    assert rc == 1
    assert lines["gerrit host key"].startswith("FAIL host key of 127.0.0.1:"), lines
    assert lines["gearman"].startswith("FAIL 127.0.0.1:"), lines
    assert lines["node node1"].startswith("FAIL "), lines
    assert lines["database"].startswith("FAIL sqlite:///"), lines
    assert "file is not a database" in lines["database"]
    assert lines["log url"].startswith("FAIL http://127.0.0.1:"), lines
    assert lines["log root"].startswith("OK"), lines


def test_gerrit_side_mistakes_are_named(site: LocalSite, tmp_path: Path, capsys: Any) -> None:
    # An account without Stream Events; a layout voting on a label Gerrit
    # lacks, a project Gerrit does not have, a job no worker serves.
    key = Path(yaml.safe_load(site.config_path.read_text())["gerrit"]["private_key"])
    site.emulator.add_user("quiet", key.with_suffix(".pub").read_text(), capabilities=())
    layout = (default_layout().replace("labels: {Verified: 2}", "labels: {Verifed: 2}")
              + "  - name: demo/absent\n    check: [gate-devstack-standin]\n"
              + "  - name: demo/glance2\n    check: [extra-job]\n")
    layout = layout.replace("\nprojects:\n", "\n  - name: extra-job\n    label: devstack-local\n"
                            "    run: .gatekeeper/jobs/devstack-vm-gate.sh\nprojects:\n", 1)

    def plant(cfg: dict[str, Any]) -> None:
        cfg["gerrit"]["user"] = "quiet"

    rc, lines = doctor(capsys, site, tmp_path, plant, layout=layout)
    assert rc == 1
    assert lines["gerrit login"].startswith("OK quiet logged in"), lines
    assert lines["gerrit stream-events"].startswith("FAIL quiet may not stream events"), lines
    assert "demo/absent" in lines["gerrit projects"] and "demo/glance2" in lines["gerrit projects"]
    assert lines["gerrit labels"].startswith("FAIL Verifed (voted on by the pipelines)"), lines
    assert lines["gearman workers"] == "FAIL 1 of 2 jobs have no worker registered: extra-job"


def test_config_and_layout_mistakes_and_no_secret(site: LocalSite, tmp_path: Path,
                                                  capsys: Any) -> None:
    rc, lines = doctor(capsys, site, tmp_path, layout=default_layout().replace(
        "run: .gatekeeper/jobs/devstack-vm-gate.sh", "run: /srv/jobs/job.sh"))
    assert rc == 1
    assert lines["layouts"].startswith("FAIL 1 problem(s); first: "), lines
    assert "must be relative to the workspace" in lines["layouts"]

    def secret(cfg: dict[str, Any]) -> None:
        cfg["database"] = {"url": f"postgresql://gk:s3cr3t-pw@127.0.0.1:{closed_port()}/gk"}
        cfg["web"]["listen"] = "nowhere"

    rc, lines = doctor(capsys, site, tmp_path, secret)
    assert rc == 1 and list(lines) == ["config"]
    assert "web.listen" in lines["config"]
    cfg_only_db = lambda cfg: cfg.__setitem__(  # noqa: E731
        "database", {"url": f"postgresql://gk:s3cr3t-pw@127.0.0.1:{closed_port()}/gk"})
    rc, lines = doctor(capsys, site, tmp_path, cfg_only_db)
    assert lines["database"].startswith("FAIL "), lines
    assert "s3cr3t" not in "".join(lines.values()) and "***" in lines["database"]
