"""The pool: section: schema, cross-checks with lines, building, secrets."""

from __future__ import annotations

import json
import logging
import socket
import textwrap
from pathlib import Path

import pytest

from gatekeeper.cli import main
from gatekeeper.config import load_config
from gatekeeper.errors import UserError
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.config import build_pool, read_secret, validate_pool
from gatekeeper.nodes.db import PoolStore
from gatekeeper.nodes.fakecloud import FakeCloud, add_cloud, remove_cloud
from gatekeeper.nodes.planner import STATIC
from gatekeeper.store.db import create_engine

BASE = """\
gerrit:
  server: review.example.org
  user: gatekeeper
  sshkey: keys/id_ed25519
scheduler:
  layout: layout.yaml
database:
  url: sqlite:///{db}
"""

POOL = """\
pool:
  id: gk1
  labels:
    - name: deb
      image: debian
      min_ready: 2
    - name: metal
  providers:
    - name: fake
      driver: gatekeeper-fake
      key: acct1
      secret: {env: GK_TEST_SECRET}
      max_servers: 3
      rate: 5
      images:
        - name: debian
          base_image: base-debian
          username: gk
          private_key: keys/pool
          setup_script: setup.sh
    - name: rack
      driver: static
      hosts:
        - {name: m1, host: 127.0.0.1, port: 2201, label: metal, private_key: keys/root}
      reset:
        commands: ["echo one", {command: "echo two", ignore_errors: true}]
"""


def write(tmp_path: Path, pool: str = POOL) -> str:
    p = tmp_path / "gatekeeper.yaml"
    p.write_text(BASE.format(db=tmp_path / "gk.db") + textwrap.dedent(pool))
    return str(p)


def problems(tmp_path: Path, pool: str) -> list[str]:
    path = write(tmp_path, pool)
    cfg = load_config(path)
    return [m.replace(path, "F") for m in validate_pool(cfg.pool, cfg.path)]


def test_valid_config_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("GK_TEST_SECRET", "hunter2-secret")
    add_cloud(FakeCloud("acct1", secret="hunter2-secret"))
    try:
        cfg = load_config(write(tmp_path))
        assert validate_pool(cfg.pool, cfg.path) == []
        setup = build_pool(cfg.pool, cfg.base_dir, cfg.scheduler.state_dir)
    finally:
        remove_cloud("acct1")
    pc = setup.config
    assert pc.pool_id == "gk1" and set(pc.providers) == {"fake", "rack"}
    fake = pc.providers["fake"]
    assert fake.max_servers == 3 and fake.images["debian"].setup_script == str(tmp_path / "setup.sh")
    assert fake.images["debian"].boot.private_key == str(tmp_path / "keys/pool")
    rack = pc.providers["rack"]
    assert rack.kind == STATIC and rack.static.hosts[0].port == 2201
    assert [c.command for c in rack.static.reset_commands] == ["echo one", "echo two"]
    assert rack.static.reset_commands[1].ignore_errors
    assert pc.labels["deb"].min_ready == 2


def test_errors_name_file_line_and_key(tmp_path):
    bad = POOL.replace("min_ready: 2", "min_ready: lots").replace("max_servers: 3",
                                                                  "max_servrs: 3")
    errs = problems(tmp_path, bad)
    assert any(e.startswith("F:14: pool.labels[0].min_ready:") for e in errs), errs
    assert any("F:21: pool.providers[0].max_servrs: unknown key" in e for e in errs), errs


def test_cross_checks(tmp_path):
    bad = POOL.replace("image: debian", "image: centos").replace(
        "label: metal", "label: nope").replace("driver: gatekeeper-fake", "driver: no-such")
    errs = problems(tmp_path, bad)
    text = "\n".join(errs)
    assert "pool.labels[0]: no provider offers image 'centos'" in text
    assert "pool.providers[1].hosts[0].label: unknown label 'nope'" in text
    assert "pool.providers[0].driver: unknown libcloud driver 'no-such'" in text
    assert all(e.startswith("F:") and e.split(":")[1].isdigit() for e in errs)


def test_secret_never_literal(tmp_path):
    errs = problems(tmp_path, POOL.replace("secret: {env: GK_TEST_SECRET}", "secret: hunter2"))
    assert any("pool.providers[0].secret" in e and "never the secret itself" in e
               for e in errs), errs


def test_missing_secret_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GK_TEST_SECRET", raising=False)
    cfg = load_config(write(tmp_path))
    with pytest.raises(UserError, match="GK_TEST_SECRET is not set"):
        build_pool(cfg.pool, cfg.base_dir, cfg.scheduler.state_dir)


def test_wrong_credentials_not_echoed(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GK_TEST_SECRET", "wrong-secret-value")
    add_cloud(FakeCloud("acct1", secret="right-secret-value"))
    try:
        cfg = load_config(write(tmp_path))
        with pytest.raises(UserError) as e:
            build_pool(cfg.pool, cfg.base_dir, cfg.scheduler.state_dir)
    finally:
        remove_cloud("acct1")
    assert "invalid credentials" in str(e.value)
    assert "wrong-secret-value" not in str(e.value) and "wrong-secret-value" not in caplog.text


def test_read_secret_from_file(tmp_path):
    f = tmp_path / "s"
    f.write_text("abc\n")
    assert read_secret({"file": str(f)}, "x", {}) == "abc"
    with pytest.raises(UserError, match="cannot read"):
        read_secret({"file": str(tmp_path / "missing")}, "x", {})


def test_operator_commands(tmp_path, capsys):
    path = write(tmp_path)
    store = PoolStore(create_engine(f"sqlite:///{tmp_path / 'gk.db'}"))
    a = store.create_node("deb", "fake", 1.0, state=NodeState.READY, host="127.0.0.1", port=2222)
    b = store.create_node("deb", "fake", 1.0, state=NodeState.IN_USE, build="b1")
    assert main(["nodes", "-c", path, "list"]) == 0
    out = capsys.readouterr().out
    assert f"{a.id:>6} deb" in out and "in-use" in out
    assert main(["nodes", "-c", path, "hold", str(a.id), "--reason", "look"]) == 0
    n = store.get_node(a.id)
    assert n.state == NodeState.HOLD and n.hold_until is None and n.hold_reason == "look"
    assert main(["nodes", "-c", path, "delete", str(b.id)]) == 2  # in use
    assert "--force" in capsys.readouterr().err
    assert main(["nodes", "-c", path, "delete", str(b.id), "--force"]) == 0
    assert store.get_node(b.id).state == NodeState.USED
    assert main(["nodes", "-c", path, "delete", "999"]) == 2
    assert main(["autohold", "-c", path, "org/p", "unit", "--count", "2", "--for", "60"]) == 0
    assert [(x.project, x.count, x.hold_for) for x in store.list_autoholds()] == [
        ("org/p", 2, 60.0)]
    assert main(["autohold", "-c", path, "--list"]) == 0
    assert "org/p" in capsys.readouterr().out
    assert main(["autohold", "-c", path, "--remove", "1"]) == 0
    assert store.list_autoholds() == []
    assert main(["autohold", "-c", path]) == 2


def test_operator_commands_on_a_workers_static_nodes(tmp_path, capsys):
    from gatekeeper.worker.noderecords import WorkerNodeRecords
    from gatekeeper.worker.nodes import StaticNode, StaticNodeClaimer

    path = write(tmp_path)
    store = PoolStore(create_engine(f"sqlite:///{tmp_path / 'gk.db'}"))
    metal = [StaticNode(name=f"m{i}", host="10.0.0.9", port=22 + i, labels=("metal",))
             for i in range(3)]
    worker = StaticNodeClaimer(metal, records=WorkerNodeRecords(store.engine, "w1"))
    worker.release(worker.claim("metal", "b1", 1), "hold", hold_for=None, reason="b1 failed")
    assert main(["nodes", "-c", path, "list"]) == 0
    out = capsys.readouterr().out
    assert "w1/m0 metal          worker:w1    hold" in out and "b1 failed" in out
    assert main(["nodes", "-c", path, "list", "--json", "--state", "hold"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == "w1/m0"
    assert main(["nodes", "-c", path, "hold", "w1/m1", "--reason", "look"]) == 0
    assert main(["nodes", "-c", path, "delete", "w1/m0"]) == 0  # released
    assert main(["nodes", "-c", path, "delete", "w1/m2"]) == 2  # not held
    assert "only released from a hold" in capsys.readouterr().err
    assert main(["nodes", "-c", path, "hold", "w9/m0"]) == 2
    held = {s["name"]: s["hold_reason"] for s in worker.state() if s["held_until"] is not None}
    assert held == {"m1": "look"}  # the worker took both at its next look


def test_pool_command_rejects_bad_config(tmp_path, capsys):
    path = write(tmp_path, POOL.replace("min_ready: 2", "min_ready: -1"))
    assert main(["pool", "-c", path]) == 2
    err = capsys.readouterr().err
    assert "pool.labels[0].min_ready" in err and "Traceback" not in err


def test_labels_only_section_is_valid_but_not_runnable(tmp_path, capsys):
    path = write(tmp_path, "pool: {labels: [elsewhere, {name: other}]}\n")
    cfg = load_config(path)
    assert validate_pool(cfg.pool, cfg.path) == []
    assert main(["pool", "-c", path]) == 2
    assert "no providers configured" in capsys.readouterr().err


def test_documented_example_is_valid():
    import gatekeeper.nodes.config as pool_config_module
    from gatekeeper.yamlutil import load_text

    doc = pool_config_module.__doc__
    example = textwrap.dedent(doc[doc.index("Example::") + len("Example::"):])
    data = load_text(example, "example.yaml")
    assert validate_pool(data["pool"], "example.yaml") == []


def test_pool_process_sends_statsd_under_the_configured_prefix(tmp_path):
    """metrics.statsd + statsd_prefix reach the pool's statsd client as written."""
    from gatekeeper.services.pool import PoolProcess

    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    recv.settimeout(5)
    port = recv.getsockname()[1]
    path = write(tmp_path, f"""\
        pool:
          labels: [metal]
          providers:
            - name: rack
              driver: static
              hosts: [{{name: m1, host: 127.0.0.1, port: 2201, label: metal}}]
          metrics: {{statsd: "127.0.0.1:{port}", statsd_prefix: gk.site}}
        """)
    pool = PoolProcess(load_config(path))
    try:
        assert pool.statsd is not None and pool.statsd.addr == ("127.0.0.1", port)
        pool.metrics.claim("metal", 0.004)
        assert recv.recv(200).decode() == "gk.site.claim.label.metal:4.000000|ms"
    finally:
        pool.stop()
        recv.close()
