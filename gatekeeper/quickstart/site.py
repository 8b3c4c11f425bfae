"""A complete, local Gatekeeper site on loopback.

The Gerrit emulator (real SSH, real git), N sshd nodes, a Gearman server
(embedded gear.Server or Debian's gearmand), and every Gatekeeper service
through :class:`gatekeeper.services.allinone.AllInOne`, configured by a real
``gatekeeper.yaml`` written into the site's directory. Used by
``gatekeeper quickstart`` and by the end-to-end tests."""

from __future__ import annotations

import logging
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gatekeeper.nodes.localsshd import LocalSshd, free_port, generate_keypair

log = logging.getLogger("gatekeeper.quickstart.site")

DEMO_PROJECTS = ("demo/nova", "demo/glance")
DEVSTACK_PROJECT = "openstack-dev/devstack"
NODE_LABEL = "devstack-local"


def default_layout() -> str:
    return resources.files("gatekeeper.quickstart").joinpath("layout.yaml").read_text()


class LocalSite:
    """Start with :meth:`start`, always :meth:`stop` (idempotent)."""

    def __init__(self, root: str | Path, *, nodes: int = 2, gearman: str = "embedded",
                 layout: str | None = None, event_delay: float = 0.1,
                 projects: tuple[str, ...] = DEMO_PROJECTS, use_pool: bool = False,
                 worker: bool = True, services: bool = True):
        if gearman not in ("embedded", "gearmand"):
            raise ValueError("gearman must be 'embedded' or 'gearmand'")
        self.root = Path(root).resolve()
        self.node_count = nodes
        self.gearman_kind = gearman
        self.layout_text = layout or default_layout()
        self.event_delay = event_delay
        self.projects = projects
        self.use_pool = use_pool
        self.with_worker = worker  # False: workers run elsewhere (tests start their own)
        self.with_services = services  # False: only Gerrit, nodes and the config
        self.emulator: Any = None
        self.nodes: list[LocalSshd] = []
        self.gearmand: Any = None
        self.services: Any = None
        self.config_path = self.root / "etc" / "gatekeeper.yaml"

    # -- set-up ------------------------------------------------------------------
    def start(self) -> LocalSite:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from gatekeeper.config import load_config
        from gatekeeper.services.allinone import AllInOne
        from gatekeeper.sim.gerrit import GerritEmulator

        for d in ("etc", "keys", "layouts", "state"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        key = generate_keypair(self.root / "keys" / "gatekeeper_ed25519", "gatekeeper")
        pub = key.with_suffix(".pub").read_text()

        self.emulator = GerritEmulator(self.root / "gerrit", baseurl="http://127.0.0.1/gerrit")
        emu = self.emulator
        emu.add_user("gatekeeper", pub, email="gatekeeper@localhost",
                     full_name="Gatekeeper CI", capabilities=("stream-events",))
        emu.add_user("alice", None, email="alice@example.org", full_name="Alice Developer")
        emu.add_user("core", None, email="core@example.org", full_name="Core Reviewer")
        emu.restrict_label("Verified", ["gatekeeper"])
        emu.start()
        (self.root / "keys" / "gerrit_known_hosts").write_text(emu.host_key_line + "\n")
        for p in self.projects:
            emu.create_project(p, files={"README": f"{p}: a demo project\n",
                                         f"{p.split('/')[-1]}/__init__.py": ""})
        self._import_devstack()

        for i in range(0 if self.use_pool else self.node_count):
            # Static nodes; with the pool, its local provider boots sshd nodes itself.
            node = LocalSshd(self.root / "nodes" / f"node{i + 1}", [pub], name=f"node{i + 1}")
            self.nodes.append(node.start())
        (self.root / "keys" / "node_known_hosts").write_text(
            "".join(n.known_hosts_line() + "\n" for n in self.nodes))

        gearman_port = free_port()
        if self.gearman_kind == "gearmand":
            from gatekeeper.gearman.gearmand import GearmandProcess

            self.gearmand = GearmandProcess(self.root / "state" / "gearmand.log").start()
            gearman_port = self.gearmand.port
        (self.root / "layouts" / "site.yaml").write_text(self.layout_text)
        self.config_path.write_text(yaml.safe_dump(self._config(gearman_port), sort_keys=False))
        config = load_config(str(self.config_path))
        if not self.with_services:
            return

        from gatekeeper.worker.wiring import WorkerOptions

        options = WorkerOptions(name="worker-local", known_hosts=str(
            self.root / "keys" / "node_known_hosts"), claim_timeout=600.0, default_timeout=600.0)
        self.services = AllInOne(config, worker_options=options if self.with_worker else None,
                                 with_worker=self.with_worker).start()
        # Events of changes uploaded before the scheduler listens would be
        # missed (catch-up covers reconnects, not the first connection).
        if not self.emulator.wait_for_stream_clients(1, 30):
            raise RuntimeError("the scheduler did not connect to Gerrit's stream-events: "
                               f"{self.services.scheduler.gerrit.error or 'no error reported'}")

    def _import_devstack(self) -> None:
        """Gerrit hosts a stand-in devstack (real devstack cannot run here)."""
        from gatekeeper.worker.standin import make_standin_devstack

        self.emulator.create_project(DEVSTACK_PROJECT)
        work = make_standin_devstack(self.root / "state" / "devstack-src")
        subprocess.run(["git", "-C", str(work), "push", "-q", "--force",
                        str(self.emulator.project_path(DEVSTACK_PROJECT)), "HEAD:master"],
                       check=True, stdin=subprocess.DEVNULL)

    def _config(self, gearman_port: int) -> dict[str, Any]:
        r = self.root
        key = str(r / "keys" / "gatekeeper_ed25519")
        pool = {
            "id": "quickstart",
            "state_dir": str(r / "state" / "pool"),
            "hold_time": 0,
            "labels": [{"name": NODE_LABEL, "image": "local-image",
                        "min_ready": self.node_count}],
            "providers": [{"name": "local", "driver": "local",
                           "max_servers": self.node_count + 1,
                           "images": [{"name": "local-image", "private_key": key}]}],
        }
        return {
            "gerrit": {"server": "127.0.0.1", "port": self.emulator.port, "user": "gatekeeper",
                       "private_key": str(r / "keys" / "gatekeeper_ed25519"),
                       "known_hosts": str(r / "keys" / "gerrit_known_hosts"),
                       "baseurl": "http://127.0.0.1/gerrit", "event_delay": self.event_delay},
            "gearman": {"server": "127.0.0.1", "port": gearman_port,
                        "embedded": self.gearman_kind == "embedded"},
            "scheduler": {"layout": [str(r / "layouts" / "site.yaml")],
                          "state_dir": str(r / "state")},
            "merger": {"git_daemon": f"127.0.0.1:{free_port()}"},
            **({"pool": pool} if self.use_pool else {}),
            "worker": {
                "hostname": "worker-local",
                "executors": self.node_count,
                "hold_hours": 0,  # a demo holds no nodes for debugging
                # The worker clones devstack from Gerrit's repositories on disk;
                # a real site points this at its git mirror.
                "git_base_url": str(self.emulator.project_path(DEVSTACK_PROJECT).parent.parent),
                "nodes": [
                    {"name": n.name, "host": n.host, "port": n.port, "username": n.username,
                     "private_key": key, "host_key": n.host_key_line(),
                     # the nodes share this machine: each needs its own workspace
                     "workdir": str(n.workdir),
                     "labels": [NODE_LABEL], "provider": "local"}
                    for n in self.nodes],
            },
            "web": {"listen": f"127.0.0.1:{free_port()}"},
        }

    # -- tear-down ---------------------------------------------------------------
    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()
            self.services = None
        if self.gearmand is not None:
            self.gearmand.stop()
            self.gearmand = None
        for n in self.nodes:
            n.stop()
        self.nodes = []
        if self.use_pool:
            # Pool nodes outlive the pool service (as cloud servers do): delete them.
            from gatekeeper.nodes.providers.local import LocalProvider

            LocalProvider("local", self.root / "state" / "pool" / "local" / "local").close()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for stories and tests ------------------------------------------
    @property
    def scheduler(self) -> Any:
        return self.services.scheduler.scheduler

    def status(self) -> dict[str, Any]:
        return self.scheduler.status()

    def queue_items(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        out = []
        for p in self.status()["pipelines"]:
            if pipeline is None or p["name"] == pipeline:
                for q in p["queues"]:
                    out.extend(q["items"])
        return out

    def idle(self) -> bool:
        """Nothing queued anywhere and no event waiting."""
        s = self.status()
        return not self.queue_items() and not (s["trigger_event_queue"] or
                                               s["result_event_queue"])
