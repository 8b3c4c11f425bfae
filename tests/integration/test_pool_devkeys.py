"""Debug a failure on its node: an autohold request with a developer's SSH
key; when it holds a node (real sshd nodes of the fake cloud), the pool
installs the key and says how to log in — unless the provider refuses."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path

import pytest

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.devkeys import BadKey, DevKeyStore, check_public_key
from gatekeeper.nodes.fakecloud import FakeCloud
from gatekeeper.nodes.localsshd import generate_keypair
from gatekeeper.nodes.service import PoolService
from gatekeeper.nodes.sshrun import ReadyCheck, SshError, SshTarget, run
from tests.fixtures.pool import cloud_provider, pool_config, wait_for

pytestmark = pytest.mark.integration
ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "refused-by-provider"])
def test_autohold_installs_the_developer_key(tmp_path: Path, client_key: Path, pool_store,
                                             pool_services, allowed: bool) -> None:
    pub = client_key.with_suffix(".pub").read_text()
    cloud = FakeCloud("c1", sshd_root=tmp_path / "cloud", authorized_keys=[pub], dead_rate=0.0)
    prov = cloud_provider(cloud, boot_timeout=20, key=str(client_key), username=ME)
    cfg = pool_config([prov], min_ready=1)
    if not allowed:
        cfg.no_developer_keys = frozenset({"c1"})
    svc = PoolService(pool_store, cfg, ready_check=ReadyCheck(timeout=5))
    pool_services.append(svc.start())
    dev = generate_keypair(tmp_path / "dev" / "id_ed25519", "alice@laptop")
    ah = pool_store.add_autohold("org/p", "unit", 1, 3600.0, "flaky", time.time())
    DevKeyStore(pool_store.engine).set(ah.id, check_public_key(dev.with_suffix(".pub")
                                                               .read_text()))

    leases: list[dict] = []
    svc.claim("deb", "build-1", 60, lambda lease, err: leases.append(lease), "org/p", "unit")
    lease = wait_for(lambda: leases and leases[0], 60, "a node")
    assert svc.release(lease["node_id"], "used", build="build-1", result="FAILURE") == ""
    node = pool_store.get_node(int(lease["node_id"]))
    assert node.state == NodeState.HOLD
    def outcome():
        n = pool_store.get_node(node.id)
        return n if "developer key" in n.hold_reason or "log in:" in n.hold_reason else None

    held = wait_for(outcome, 60, "the key's outcome")
    as_dev = SshTarget(node.host, node.port, node.username, str(dev), node.host_key)
    if allowed:
        assert f"log in: ssh -p {node.port} {ME}@{node.host} (until " in held.hold_reason
        assert held.hold_reason.startswith("autohold")
        assert run(as_dev, "echo in")[:2] == (0, "in\n")
    else:
        assert "provider c1 does not allow developer keys" in held.hold_reason
        with pytest.raises(SshError):
            run(as_dev, "echo in")


def test_only_plain_public_keys_are_accepted(client_key: Path) -> None:
    good = client_key.with_suffix(".pub").read_text()
    assert check_public_key(good + "\n") == good.strip()
    kind, body, *_ = good.split()
    for bad, why in ((f'command="rm -rf /" {good}', "expected an OpenSSH public key"),
                     (f"{good}\nssh-ed25519 {body} other", "one line"),
                     (f"ssh-dss {body}", "unsupported key type"),
                     (f"ssh-rsa {body}", "is a 'ssh-ed25519' key, not 'ssh-rsa'"),
                     (f"{kind} bm90IGEga2V5", "key body is a"), (f"{kind} AAAA", "not an SSH key")):
        with pytest.raises(BadKey, match=why):
            check_public_key(bad)
