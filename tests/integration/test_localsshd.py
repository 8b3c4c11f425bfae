"""The sshd node the local provider and the tests use is a real, isolated sshd."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gatekeeper.nodes.localsshd import LocalSshd

pytestmark = pytest.mark.integration


def ssh_argv(node: LocalSshd, key: Path, known_hosts: Path) -> list[str]:
    return ["ssh", "-p", str(node.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=yes", f"{node.username}@{node.host}"]


def test_login_with_verified_host_key_and_restart(sshd_node: LocalSshd, client_key: Path,
                                                  tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd_node.known_hosts_line() + "\n")
    out = subprocess.run(ssh_argv(sshd_node, client_key, kh) + ["echo", "alive"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alive"
    port = sshd_node.port
    sshd_node.restart()
    assert sshd_node.port == port and sshd_node.running
    out = subprocess.run(ssh_argv(sshd_node, client_key, kh) + ["true"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_other_key_is_refused(sshd_node: LocalSshd, tmp_path: Path) -> None:
    from gatekeeper.nodes.localsshd import generate_keypair

    other = generate_keypair(tmp_path / "other")
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd_node.known_hosts_line() + "\n")
    out = subprocess.run(ssh_argv(sshd_node, other, kh) + ["true"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 255
    assert "Permission denied" in out.stderr


def test_stop_kills_sessions(sshd_node: LocalSshd, client_key: Path, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd_node.known_hosts_line() + "\n")
    # The session must be established before the stop: a refused connection proves nothing.
    proc = subprocess.Popen(ssh_argv(sshd_node, client_key, kh) + ["echo ready; exec sleep 300"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        sshd_node.stop()
        assert proc.wait(timeout=30) != 0
        assert not sshd_node.running
    finally:
        proc.kill()
        proc.wait()
