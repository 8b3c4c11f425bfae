"""Shared fixtures. Area-specific fixtures live in tests/fixtures/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.nodes.localsshd import LocalSshd, generate_keypair
from tests.fixtures.gearman import gear_server, gearman_server, gearmand_server  # noqa: F401
from tests.fixtures.gerrit_emulator import gerrit_emulator, gerrit_key  # noqa: F401
from tests.fixtures.pool import pool_services, pool_store  # noqa: F401
from tests.fixtures.postgres import postgres_cluster, postgres_db_url, postgres_url  # noqa: F401


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private key (ed25519) that every sshd_node fixture accepts."""
    return generate_keypair(tmp_path_factory.mktemp("keys") / "id_ed25519", "gatekeeper-test")


@pytest.fixture
def sshd_node(tmp_path: Path, client_key: Path) -> Iterator[LocalSshd]:
    """A real sshd on a loopback port accepting ``client_key``."""
    node = LocalSshd(tmp_path / "node", [client_key.with_suffix(".pub").read_text()], name="node")
    node.start()
    yield node
    node.stop()


@pytest.fixture
def sshd_nodes(tmp_path: Path, client_key: Path) -> Iterator[list[LocalSshd]]:
    """Two independent sshd nodes."""
    pub = client_key.with_suffix(".pub").read_text()
    nodes = [LocalSshd(tmp_path / f"node{i}", [pub], name=f"node{i}").start() for i in range(2)]
    yield nodes
    for n in nodes:
        n.stop()
