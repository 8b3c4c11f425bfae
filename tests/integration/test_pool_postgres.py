"""The operator's path to PostgreSQL: a config file with a plain
``postgresql://`` URL, the CLI as a process, a live PostgreSQL 15 (the
store itself is covered on both backends in tests/unit/test_pool_db.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatekeeper.netutil import free_port
from gatekeeper.nodes.db import PoolStore
from gatekeeper.store.db import create_engine

pytestmark = pytest.mark.integration


def gatekeeper(cfg: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatekeeper.cli", *argv, "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2], check=False)


def config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(f"""
gerrit: {{server: 127.0.0.1, user: gk, sshkey: {tmp_path}/nokey}}
scheduler: {{layout: [layout.yaml], state_dir: state}}
database: {{url: "{url}"}}
""")
    return cfg


def test_autohold_cli_on_postgresql(tmp_path, postgres_db_url):
    # The form an operator writes: no driver named (psycopg 3 is chosen).
    url = postgres_db_url.replace("postgresql+psycopg://", "postgresql://")
    cfg = config(tmp_path, url)
    reason = "flaky on the new kernel; " * 60  # longer than any VARCHAR bound
    cp = gatekeeper(cfg, "autohold", "org/project", "unit", "--count", "2",
                    "--reason", reason)
    assert cp.returncode == 0, cp.stderr
    cp = gatekeeper(cfg, "autohold", "--list")
    assert cp.returncode == 0, cp.stderr
    assert "org/project" in cp.stdout and "forever" in cp.stdout
    engine = create_engine(url)
    try:
        [ah] = PoolStore(engine).list_autoholds()
        assert (ah.job, ah.count, ah.reason) == ("unit", 2, reason)
    finally:
        engine.dispose()


@pytest.mark.parametrize("where", ["closed-port", "no-such-database"])
def test_unreachable_database_is_one_clear_line(tmp_path, postgres_cluster, where):
    port = free_port() if where == "closed-port" else postgres_cluster.port
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/nosuchdb"
    cp = gatekeeper(config(tmp_path, url), "autohold", "--list")
    assert cp.returncode != 0
    assert "Traceback" not in cp.stderr and "s3cret" not in cp.stderr + cp.stdout
    assert f"127.0.0.1:{port}/nosuchdb" in cp.stderr
    assert ("refused" if where == "closed-port" else 'database "nosuchdb" does not exist') \
        in cp.stderr
