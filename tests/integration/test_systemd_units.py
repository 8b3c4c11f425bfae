"""The units in etc/systemd/ pass ``systemd-analyze verify`` (syntax, known
keys, an executable ExecStart) and its offline security review (exposure at
most 3.0 of 10), and each runs
its service with the config, as the gatekeeper user, restarting on failure."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "etc/systemd").glob("gatekeeper-*.service"))
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                   "(Debian package systemd, in .ci/bootstrap's APT_PKGS)")
INSTALLED = "/opt/gatekeeper/bin/gatekeeper"


def test_one_unit_per_service() -> None:
    assert [u.name for u in UNITS] == [f"gatekeeper-{s}.service" for s in
                                       ("merger", "pool", "scheduler", "web", "worker")]
    for unit in UNITS:
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.read(unit)
        s = cp["Service"]
        service = unit.stem.removeprefix("gatekeeper-")
        assert s["ExecStart"] == f"{INSTALLED} {service} -c /etc/gatekeeper/gatekeeper.yaml"
        assert (s["User"], s["Restart"]) == ("gatekeeper", "on-failure")
        assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
        assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict"


def _installed_copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's gatekeeper (verify
    wants an executable there)."""
    exe = Path(sys.executable).with_name("gatekeeper")
    out = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED, str(exe)))
        out.append(copy)
    return out


@needs_systemd
def test_units_verify_cleanly(tmp_path: Path) -> None:
    assert ANALYZE is not None
    units = _installed_copies(tmp_path)
    cp = subprocess.run([ANALYZE, "verify", "--man=no", *map(str, units)],
                        capture_output=True, text=True, timeout=60)
    assert (cp.returncode, cp.stderr) == (0, ""), cp.stderr  # a warning is a failure too
    # The check can fail: an unknown key is reported.
    broken = tmp_path / "gatekeeper-broken.service"
    broken.write_text(units[0].read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    cp = subprocess.run([ANALYZE, "verify", "--man=no", str(broken)], capture_output=True,
                        text=True, timeout=60)
    assert "Unknown key 'NoNewPrivilege'" in cp.stderr


@needs_systemd
def test_units_are_hardened(tmp_path: Path) -> None:
    assert ANALYZE is not None
    for unit in _installed_copies(tmp_path):
        cp = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=30",
                             "--no-pager", str(unit)], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr
