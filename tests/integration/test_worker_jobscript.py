"""The shipped devstack gate job script, run with bash on a workspace holding the
stand-in devstack: localrc from DEVSTACK_GATE_* variables, steps, logs, exit status."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gatekeeper.worker.standin import make_standin_devstack
from gatekeeper.worker.workspace import JOBS_DIR, WorkspaceBuilder

pytestmark = pytest.mark.integration


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    make_standin_devstack(ws / "openstack-dev" / "devstack")
    (ws / "org" / "project").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(ws / "org" / "project")], check=True)
    WorkspaceBuilder().install_job_scripts(ws)
    return ws


def gate(ws: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": str(ws.parent), "WORKSPACE": str(ws),
            "DEVSTACK_GATE_SYSLOG": "", **env}
    return subprocess.run([str(ws / JOBS_DIR / "devstack-vm-gate.sh")], cwd=ws, env=full,
                          capture_output=True, text=True, timeout=60)


def localrc(ws: Path) -> dict[str, str]:
    out = {}
    for line in (ws / "openstack-dev/devstack/localrc").read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def test_defaults_run_stack_and_exercise_and_copy_logs(workspace: Path) -> None:
    cp = gate(workspace)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    rc = localrc(workspace)
    services = rc["ENABLED_SERVICES"].split(",")
    assert {"mysql", "n-net", "c-api", "key"} <= set(services)
    assert "postgresql" not in services and "tempest" not in services
    assert rc["VIRT_DRIVER"] == "libvirt" and rc["DEST"] == f"{workspace}/stack"
    assert rc["ERROR_ON_CLONE"] == "True" and len(rc["ADMIN_PASSWORD"]) == 24
    assert "running stack.sh" in cp.stdout and "running exercise.sh" in cp.stdout
    assert "SUCCESS key" in cp.stdout
    # Projects are linked into DEST under their short names, as devstack expects.
    assert (workspace / "stack" / "project").resolve() == workspace / "org" / "project"
    logs = workspace / "logs"
    assert (logs / "screen-key.log").exists() and (logs / "devstacklog.txt").exists()
    assert (logs / "syslog.txt").read_text().count("started") == len(services)
    assert rc["ADMIN_PASSWORD"] not in (logs / "localrc.txt").read_text()


def test_options_shape_localrc(workspace: Path) -> None:
    cp = gate(workspace, DEVSTACK_GATE_POSTGRES="1", DEVSTACK_GATE_NEUTRON="1",
              DEVSTACK_GATE_CINDER="0", DEVSTACK_GATE_VIRT_DRIVER="fake",
              DEVSTACK_GATE_EXERCISES="0", DEVSTACK_GATE_EXTRA_LOCALRC="API_RATE_LIMIT=False",
              DEVSTACK_GATE_SKIP_EXERCISES="volumes")
    assert cp.returncode == 0, cp.stderr
    rc = localrc(workspace)
    services = rc["ENABLED_SERVICES"].split(",")
    assert {"postgresql", "q-svc", "n-vol"} <= set(services)
    assert not {"mysql", "n-net", "c-api"} & set(services)
    assert rc["VIRT_DRIVER"] == "fake" and rc["SKIP_EXERCISES"] == "volumes"
    assert rc["API_RATE_LIMIT"] == "False"
    assert "running exercise.sh" not in cp.stdout


def test_tempest(workspace: Path) -> None:
    cp = gate(workspace, DEVSTACK_GATE_TEMPEST="1", DEVSTACK_GATE_SERVICES="key")
    assert cp.returncode == 2 and "no tempest project" in cp.stderr
    tempest = workspace / "openstack" / "tempest"
    tempest.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tempest)], check=True)
    (tempest / "run_tempest.sh").write_text("#!/bin/sh\necho tempest ran > \"$WORKSPACE/t\"\n")
    (tempest / "run_tempest.sh").chmod(0o755)
    cp = gate(workspace, DEVSTACK_GATE_TEMPEST="1")
    assert cp.returncode == 0, cp.stderr
    assert "tempest" in localrc(workspace)["ENABLED_SERVICES"].split(",")
    assert (workspace / "t").read_text() == "tempest ran\n"


def test_stack_failure_is_the_exit_status_and_logs_are_copied(workspace: Path) -> None:
    cp = gate(workspace, STANDIN_FAIL="stack")
    assert cp.returncode == 1
    assert "stack.sh exited with status 1" in cp.stdout
    assert "running exercise.sh" not in cp.stdout
    assert "failure requested" in (workspace / "logs" / "syslog.txt").read_text()


def test_exercise_failure_from_the_change(workspace: Path) -> None:
    (workspace / "org/project/FAIL_GATE").write_text("x")
    cp = gate(workspace)
    assert cp.returncode == 1
    assert "FAILED gate (org/project/FAIL_GATE)" in cp.stdout


def test_values_are_quoted_in_localrc(workspace: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    cp = gate(workspace, DEVSTACK_GATE_VIRT_DRIVER=f"$(touch {marker})",
              DEVSTACK_GATE_SERVICES=f"key;touch {marker}")
    assert not marker.exists()
    assert f"VIRT_DRIVER=$(touch {marker})" in cp.stdout


def test_no_devstack_is_a_clear_error(tmp_path: Path) -> None:
    ws = tmp_path / "empty"
    ws.mkdir()
    WorkspaceBuilder().install_job_scripts(ws)
    cp = gate(ws)
    assert cp.returncode == 2 and "no devstack project" in cp.stderr
