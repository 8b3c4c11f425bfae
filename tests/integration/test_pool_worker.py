"""A worker gets its node from the pool over Gearman and runs a real build on
it (local provider: sshd on loopback; real git, rsync and ssh)."""

from __future__ import annotations

import os
import pwd
import threading

import pytest

from gatekeeper.gearman.protocol import build_function
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.claimer import GearmanNodeClaimer
from gatekeeper.nodes.gearsvc import PoolGearmanWorker
from gatekeeper.nodes.providers import BootSpec
from gatekeeper.nodes.providers.local import LocalProvider
from gatekeeper.nodes.runtime import ImageSpec, LabelSpec, ProviderRuntime
from gatekeeper.nodes.service import PoolService
from gatekeeper.nodes.sshrun import ReadyCheck
from gatekeeper.worker.buildargs import parse_build_args
from tests.fixtures import worker as fx
from tests.fixtures.pool import pool_config, wait_for
from tests.fixtures.worker import JOB, LABEL, build_args

git_sources = fx.git_sources
worker_env = fx.worker_env

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def data(self, payload: dict[str, object]) -> None:
        self.events.append(("data", payload))

    def status(self, n: int, d: int) -> None:
        self.events.append(("status", (n, d)))


def test_worker_builds_on_a_pool_node(worker_env, gear_server, pool_store, pool_services,
                                      client_key, tmp_path):
    env = worker_env
    api = LocalProvider("local", tmp_path / "pool-nodes")
    boot = BootSpec("debian", "", pwd.getpwuid(os.getuid()).pw_name, str(client_key))
    prov = ProviderRuntime("local", api=api, max_servers=3, boot_timeout=20,
                           images={"debian": ImageSpec("debian", boot)})
    cfg = pool_config([prov], labels={LABEL: LabelSpec(LABEL, "debian", 1)})
    svc = PoolService(pool_store, cfg, ready_check=ReadyCheck())
    pool_services.append(svc.start())
    gw = PoolGearmanWorker(svc, gear_server.host, gear_server.port).start()
    claimer = GearmanNodeClaimer(gear_server.host, gear_server.port)
    try:
        env.executor.claimer = claimer
        ref, sha = env.sources.make_change({"feature.txt": "from the pool\n"}, subject="Pool")
        spec = parse_build_args(build_function(JOB, LABEL), build_args(env, "feedc0de01", ref, sha))
        rec = Recorder()
        out = env.executor.run(spec, rec, threading.Event())
        assert out.result == "SUCCESS", out
        assert out.provider == "local"
        node = pool_store.get_node(int(out.node))
        assert node.build == "feedc0de01"
        console = (env.settings.log_root / out.log_path / "console.txt").read_text()
        assert console.splitlines()[0] == "NODE_PROVIDER=local"
        # Used: deleted (its sshd stopped), and min-ready restored.
        wait_for(lambda: pool_store.get_node(node.id).state == NodeState.DELETED, what="node deleted")
        assert node.external_id not in {s.id for s in api.list_servers()}
        wait_for(lambda: pool_store.list_nodes([NodeState.READY], label=LABEL), what="min-ready again")
        # A failing build holds its node.
        ref, sha = env.sources.make_change({"FAIL_GATE": "broken\n"})
        fail = build_args(env, "feedc0de02", ref, sha)
        out2 = env.executor.run(parse_build_args(build_function(JOB, LABEL), fail), Recorder(),
                                threading.Event())
        assert out2.result == "FAILURE"
        held = pool_store.get_node(int(out2.node))
        assert held.state == NodeState.HOLD and "feedc0de02" in held.hold_reason
        assert held.external_id in {s.id for s in api.list_servers()}
    finally:
        claimer.close()
        gw.stop()
        svc.stop()
        api.close()


def test_worker_builds_on_a_fake_cloud_node(worker_env, gear_server, pool_store, pool_services,
                                            client_key, tmp_path):
    """The fake cloud's sshd mode: a libcloud-launched node, reached over
    real SSH/rsync by the worker, with the pool code seeing only libcloud."""
    from gatekeeper.nodes.fakecloud import FakeCloud
    from tests.fixtures.pool import cloud_provider

    env = worker_env
    me = pwd.getpwuid(os.getuid()).pw_name
    cloud = FakeCloud("cloud-x", sshd_root=tmp_path / "cloud", boot_delay=0.1,
                      authorized_keys=[client_key.with_suffix(".pub").read_text()])
    prov = cloud_provider(cloud, boot_timeout=20, key=str(client_key), username=me)
    cfg = pool_config([prov], labels={LABEL: LabelSpec(LABEL, "debian", 1)})
    svc = PoolService(pool_store, cfg, ready_check=ReadyCheck())
    pool_services.append(svc.start())
    gw = PoolGearmanWorker(svc, gear_server.host, gear_server.port).start()
    claimer = GearmanNodeClaimer(gear_server.host, gear_server.port)
    try:
        env.executor.claimer = claimer
        ref, sha = env.sources.make_change({"feature.txt": "cloud\n"}, subject="Cloud")
        spec = parse_build_args(build_function(JOB, LABEL), build_args(env, "c10ud0001", ref, sha))
        out = env.executor.run(spec, Recorder(), threading.Event())
        assert out.result == "SUCCESS", out
        assert out.provider == "cloud-x"
        node = pool_store.get_node(int(out.node))
        assert node.workdir and node.workdir.startswith(str(tmp_path / "cloud"))
        wait_for(lambda: pool_store.get_node(node.id).state == NodeState.DELETED, what="node deleted")
        assert node.external_id not in {s.id for s in cloud.live_servers()}
    finally:
        claimer.close()
        gw.stop()
