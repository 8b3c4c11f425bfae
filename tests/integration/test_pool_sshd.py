"""The pool against real sshd nodes: the fake cloud's sshd mode (real ready
check, image builds running a real setup script) and the static provider's
reset sequence on an sshd host whose "reset" restarts it."""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import threading
import time
from pathlib import Path

import pytest

from gatekeeper.model.states import ImageState, NodeState
from gatekeeper.nodes.fakecloud import FakeCloud
from gatekeeper.nodes.planner import Timeouts
from gatekeeper.nodes.providers.static import ResetCommand, StaticHost, StaticProvider
from gatekeeper.nodes.runtime import LabelSpec, ProviderRuntime
from gatekeeper.nodes.service import PoolConfig, PoolService
from gatekeeper.nodes.sshrun import ReadyCheck, run
from gatekeeper.ssh import SshTarget
from tests.fixtures.pool import cloud_provider, pool_config, wait_for

pytestmark = pytest.mark.integration
ME = pwd.getpwuid(os.getuid()).pw_name


class Clock:
    """Real time plus an offset the test can move forward (a day passes)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_sshd_nodes_ready_check_and_image_rotation(tmp_path, client_key, pool_store,
                                                   pool_services, caplog):
    caplog.set_level(logging.DEBUG)
    pub = client_key.with_suffix(".pub").read_text()
    cloud = FakeCloud("c1", sshd_root=tmp_path / "cloud", authorized_keys=[pub], dead_rate=0.0)
    marker = tmp_path / "built"
    script = tmp_path / "setup.sh"
    # Each run appends a line; the third build fails (a broken mirror, say).
    script.write_text(f"set -e\necho ran >> {shlex.quote(str(marker))}\n"
                      f"test $(wc -l < {shlex.quote(str(marker))}) -ne 3\n")
    prov = cloud_provider(cloud, boot_timeout=20, setup_script=str(script), key=str(client_key),
                          username=ME)
    clock = Clock()
    cfg = pool_config([prov], min_ready=1, timeouts=Timeouts(delete_retry=0.2,
                                                             image_retry=3600.0))
    svc = PoolService(pool_store, cfg, ready_check=ReadyCheck(timeout=5), clock=clock)
    pool_services.append(svc.start())

    def ready_images():
        return sorted(i.version for i in pool_store.list_images([ImageState.READY]))

    wait_for(lambda: ready_images() == [1], what="first image")
    node = wait_for(lambda: pool_store.list_nodes([NodeState.READY]), what="a node")[0]
    # The node booted from the snapshot, passed a real SSH ready check and
    # recorded its host key, which verifies on a second connection.
    assert node.image_id == pool_store.list_images([ImageState.READY])[0].id
    booted = next(s for s in cloud.live_servers() if s.id == node.external_id)
    assert booted.image_id == pool_store.list_images([ImageState.READY])[0].external_id
    target = SshTarget(node.host, node.port, node.username, node.private_key, node.host_key)
    assert run(target, "echo hi")[:2] == (0, "hi\n")
    # No template server left behind.
    wait_for(lambda: all(s.metadata.get("gatekeeper_image_build") is None
                         for s in cloud.live_servers()), what="template deleted")

    clock.offset += 86400 + 1  # a day later: image v2
    wait_for(lambda: ready_images() == [1, 2], what="second image")
    clock.offset += 86400 + 1  # v3's setup fails: v2 stays current, v1 kept as previous
    wait_for(lambda: [i.state for i in pool_store.list_images()
                      if i.version == 3] in ([ImageState.FAILED], [ImageState.DELETED], ["deleting"]),
             what="third build failed")
    wait_for(lambda: svc.idle())
    assert ready_images() == [1, 2]
    # New nodes boot the newest ready image.
    lease = {}
    done = threading.Event()
    svc.claim("deb", "b1", 30, lambda lz, err: (lease.update(lz or {}), done.set()))
    assert done.wait(30) and lease
    svc.release(lease["node_id"], "used")
    v2 = next(i for i in pool_store.list_images([NodeState.READY]) if i.version == 2)
    wait_for(lambda: any(n.image_id == v2.id for n in pool_store.list_nodes([NodeState.READY])),
             what="a node from image v2")
    clock.offset += 3600 + 1  # retry after the failure: v4 works; v1 is rotated out
    wait_for(lambda: ready_images() == [2, 4], timeout=30, what="rotation to v2, v4")
    v1_ext = next(i.external_id for i in pool_store.list_images() if i.version == 1)
    wait_for(lambda: v1_ext not in cloud.images, what="v1 snapshot deleted")
    assert client_key.read_text().split("\n")[1] not in caplog.text  # no key material


def test_static_reset_sequence(tmp_path, client_key, pool_store, pool_services, sshd_node,
                               caplog):
    caplog.set_level(logging.INFO, logger="gatekeeper.nodes.providers.static")
    log_file = tmp_path / "reset.log"
    pidfile = sshd_node.root / "sshd.pid"
    q = shlex.quote
    cmds = tuple(ResetCommand(f"echo {q(word)} >> {q(str(log_file))}",
                              ignore_errors=(i == 0))
                 for i, word in enumerate(["lvremove", "lvrename", "lvcreate", "kexec-load"]))
    cmds += (ResetCommand(f'nohup bash -c "sleep 0.2; echo kexec-exec >> {q(str(log_file))}; '
                          f'kill \\$(cat {q(str(pidfile))})" </dev/null >/dev/null 2>&1 &'),)
    gate = threading.Event()
    stop = threading.Event()

    def reboot() -> None:
        # The host "reboots": once sshd is gone, it comes back when the test says so.
        while not stop.is_set():
            if not sshd_node.running and gate.wait(0.05):
                sshd_node.restart()
                return
            time.sleep(0.02)

    rebooter = threading.Thread(target=reboot, daemon=True)
    rebooter.start()
    host = StaticHost("m1", "127.0.0.1", "metal", sshd_node.port, sshd_node.username,
                      str(client_key), sshd_node.host_key_line())
    static = StaticProvider("rack", (host,), cmds, down_timeout=10, boot_timeout=20, poll=0.05)
    cfg = PoolConfig("test-pool", {"rack": ProviderRuntime("rack", "static", static=static,
                                                           max_servers=1)},
                     {"metal": LabelSpec("metal", "", 0)}, tick_interval=0.05, poll=0.01)
    svc = PoolService(pool_store, cfg)
    pool_services.append(svc.start())
    try:
        # Registered as used -> reset before first use; sshd goes down and
        # stays down until the gate opens: the node must not be ready.
        wait_for(lambda: not sshd_node.running, what="sshd down for the reboot")
        node = pool_store.list_nodes()[0]
        assert node.state == "building" and node.static_name == "m1"
        assert not pool_store.list_nodes([NodeState.READY])
        wait_for(lambda: "m1 went down for the reboot" in caplog.text, what="pool saw it down")
        assert pool_store.list_nodes()[0].state == "building"
        gate.set()
        wait_for(lambda: pool_store.list_nodes([NodeState.READY]), what="ready after the reboot")
        assert log_file.read_text().split() == ["lvremove", "lvrename", "lvcreate",
                                                "kexec-load", "kexec-exec"]
        node = pool_store.list_nodes([NodeState.READY])[0]
        assert node.host_key == sshd_node.host_key_line()
        # A failed reset marks the node failed and raises the alert.
        static.reset_commands = (ResetCommand("exit 3"),)
        pool_store.transition(node.id, [NodeState.READY], NodeState.USED, time.time())
        wait_for(lambda: pool_store.get_node(node.id).state == NodeState.FAILED, what="failed reset")
        assert svc.metrics.registry.value("resets_total",
                                          {"provider": "rack", "result": "failed"}) == 1
        svc.tick()  # failed static nodes stay failed (no reset loop)
        assert pool_store.get_node(node.id).state == NodeState.FAILED
    finally:
        stop.set()
        gate.set()
        rebooter.join(10)


def test_local_provider_nodes(tmp_path, client_key, pool_store, pool_services):
    from gatekeeper.nodes.providers import BootSpec
    from gatekeeper.nodes.providers.local import LocalProvider
    from gatekeeper.nodes.runtime import ImageSpec

    api = LocalProvider("local", tmp_path / "local")
    boot = BootSpec("debian", "", ME, str(client_key))
    prov = ProviderRuntime("local", api=api, max_servers=2, boot_timeout=20,
                           images={"debian": ImageSpec("debian", boot)})
    svc = PoolService(pool_store, pool_config([prov], min_ready=2), ready_check=ReadyCheck())
    pool_services.append(svc.start())
    try:
        nodes = wait_for(lambda: len(pool_store.list_nodes([NodeState.READY])) == 2
                         and pool_store.list_nodes([NodeState.READY]))
        lease = svc.lease(nodes[0])
        assert lease["extra"]["workdir"].endswith("/work")
        assert Path(lease["extra"]["workdir"]).is_dir()
        t = SshTarget(lease["host"], lease["port"], lease["username"], lease["private_key"],
                      lease["host_key"])
        assert run(t, "true")[0] == 0
    finally:
        svc.stop()
        api.close()


def test_ready_check_verifies_pinned_host_keys(sshd_node, client_key, tmp_path):
    from gatekeeper.nodes.localsshd import generate_keypair
    from gatekeeper.ssh import SshError

    check = ReadyCheck(timeout=5)
    me = sshd_node.username
    # Unknown key: recorded (trust on first use), then pinned and verified.
    seen = check(SshTarget("127.0.0.1", sshd_node.port, me, str(client_key)))
    assert seen == sshd_node.host_key_line()
    assert check(SshTarget("127.0.0.1", sshd_node.port, me, str(client_key), seen)) == seen
    other = generate_keypair(tmp_path / "other_host_key")
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    with pytest.raises(SshError):
        check(SshTarget("127.0.0.1", sshd_node.port, me, str(client_key), wrong))
    # A failing command is not ready.
    with pytest.raises(SshError, match="exited 1"):
        ReadyCheck(command="false")(SshTarget("127.0.0.1", sshd_node.port, me,
                                              str(client_key), seen))


def test_local_servers_deleted_by_another_provider_object_are_reaped(tmp_path, client_key):
    """The quickstart's teardown deletes pool nodes through a new provider object:
    an sshd that exited is this process's zombie until reaped (kill(pid, 0) still
    succeeds on it), so it must be reaped, not waited out as if still running."""
    from gatekeeper.nodes.providers import BootSpec
    from gatekeeper.nodes.providers.local import LocalProvider

    first = LocalProvider("local", tmp_path / "local")
    boot = BootSpec("debian", "", ME, str(client_key))
    servers = [first.create_server(f"n{i}", boot, None, {}) for i in range(2)]
    pids = [int((tmp_path / "local" / s.id / "sshd.pid").read_text()) for s in servers]
    other = LocalProvider("local", tmp_path / "local")
    assert [s.state for s in other.list_servers()] == ["running", "running"]
    other.close()
    assert other.list_servers() == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()  # reaped: no zombie left
