"""`gatekeeper gerrit-emulator` in the foreground, driven by its HTTP admin API."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import paramiko
import pytest

pytestmark = pytest.mark.integration


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(f"emulator exited: {proc.communicate()[1]}")
        time.sleep(0.05)
    raise AssertionError("emulator did not become ready")


def post(port: int, method: str, **kwargs: object) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/{method}",
                                 data=json.dumps(kwargs).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_foreground_emulator_with_admin_api(tmp_path: Path, gerrit_key: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatekeeper.cli", "gerrit-emulator", "--root",
         str(tmp_path / "root"), "--port", "0", "--admin-port", "0",
         "--user", f"alice:{gerrit_key}.pub", "--project", "org/project",
         "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = wait_for_file(ready, proc)
        admin = info["admin_port"]
        assert post(admin, "add_user", username="core", public_key_openssh=None) == (
            200, {"result": None})
        status, doc = post(admin, "create_change", project="org/project", subject="Via HTTP",
                           owner="alice")
        assert status == 200
        number = doc["result"]
        assert post(admin, "approve", number=number, user="core")[0] == 200
        assert post(admin, "frobnicate")[0] == 404
        status, doc = post(admin, "create_change", project="nope", owner="alice")
        assert status == 400 and "nope" in doc["error"]
        assert post(admin, "review", number=number, bogus=1)[0] == 400

        client = paramiko.SSHClient()
        host, keytype, key = info["host_key_line"].split()
        client.get_host_keys().add(host, keytype,
                                   paramiko.Ed25519Key(data=base64.b64decode(key)))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=info["port"], username="alice",
                       key_filename=str(gerrit_key), look_for_keys=False, allow_agent=False,
                       timeout=10)
        try:
            _, out, _ = client.exec_command(f"gerrit query --format=JSON --current-patch-set "
                                            f"change:{number}", timeout=30)
            row = json.loads(out.readline())
            assert row["subject"] == "Via HTTP"
            assert {a["type"] for a in row["currentPatchSet"]["approvals"]} == {
                "Code-Review", "Workflow"}
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err


def test_bad_user_argument_is_one_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gatekeeper.cli", "gerrit-emulator", "--root", str(tmp_path),
         "--port", "0", "--user", f"alice:{tmp_path / 'missing.pub'}"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("--user alice:")
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr
