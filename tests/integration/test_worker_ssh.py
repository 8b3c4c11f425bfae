"""SshNode against a real sshd: quoting, environment, host key pinning, process groups."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.interfaces import NodeLease
from gatekeeper.nodes.localsshd import LocalSshd, generate_keypair
from gatekeeper.ssh import SshError
from gatekeeper.worker.ssh import SshNode
from tests.fixtures.worker import wait_for

pytestmark = pytest.mark.integration


def lease_for(node: LocalSshd, key: Path, host_key: str | None) -> NodeLease:
    return NodeLease("n", "l", node.host, node.port, node.username, str(key),
                     host_key=host_key, extra={"workdir": str(node.workdir)})


@pytest.fixture
def ssh(sshd_node: LocalSshd, client_key: Path, tmp_path: Path) -> Iterator[SshNode]:
    n = SshNode(lease_for(sshd_node, client_key, sshd_node.host_key_line()), tmp_path / "st")
    yield n
    n.close()


def test_hostile_words_arrive_literally(ssh: SshNode, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    words = [f"$(touch {marker})", f"`touch {marker}`", f"'; touch {marker}; '", "a\nb", "*"]
    cp = ssh.run(["printf", "%s|", *words])
    assert cp.returncode == 0 and cp.stdout == "".join(w + "|" for w in words)
    lines: list[str] = []
    proc = ssh.start_job(["sh", "-c", 'printf "%s|%s\\n" "$V" "$WORKSPACE"'],
                         {"V": f"$(touch {marker}) `id`"}, lines.append)
    assert proc.wait(30) == 0
    assert lines == [f"$(touch {marker}) `id`|{ssh.workdir}"]
    assert not marker.exists()


def test_group_kill_escalates_to_kill(ssh: SshNode, sshd_node: LocalSshd) -> None:
    # The job and its children ignore TERM (an ignored signal survives exec).
    lines: list[str] = []
    proc = ssh.start_job(["sh", "-c", "trap '' TERM; sleep 600 & echo $! > sleeper.pid; "
                          "echo started; wait"], {}, lines.append)
    wait_for(lambda: "started" in lines, 30, "the job to start")
    sleeper = int((sshd_node.workdir / "sleeper.pid").read_text())
    pgid = int((sshd_node.workdir / ".gatekeeper/job.pid").read_text())
    assert ssh.kill_job(grace=0.3) == f"job {pgid} killed (KILL)"
    assert proc.wait(30) is not None
    state = Path(f"/proc/{sleeper}/stat")
    wait_for(lambda: not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z",
             10, "the sleeper to die")
    assert ssh.kill_job(grace=0.3) == f"job {pgid} already gone"


def test_wrong_host_key_is_refused(sshd_node: LocalSshd, client_key: Path,
                                   tmp_path: Path) -> None:
    other = generate_keypair(tmp_path / "otherhost")
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    node = SshNode(lease_for(sshd_node, client_key, wrong), tmp_path / "st")
    try:
        with pytest.raises(SshError, match="failed"):
            node.run(["true"])
        with pytest.raises(SshError):
            node.push(tmp_path)
    finally:
        node.close()


def test_many_commands_share_one_connection(ssh: SshNode, sshd_node: LocalSshd) -> None:
    before = sshd_node.log_path.read_text().count("Accepted publickey")
    results = []

    def run() -> None:
        results.append(ssh.run(["true"]).returncode)

    ssh.run(["true"])
    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [0] * 5
    assert sshd_node.log_path.read_text().count("Accepted publickey") - before == 1
