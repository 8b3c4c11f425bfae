"""What the pool does to servers: launch, delete, reset, build/delete images.

Each action runs on a worker thread, talks to one provider through its
(serialized) adapter, and records every step in the database with
conditional transitions — so a node that an operator or the reaper moved
meanwhile is noticed and not resurrected."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.model.states import ImageState, NodeState
from gatekeeper.nodes.db import Image, Node, PoolStore
from gatekeeper.nodes.metrics import PoolMetrics
from gatekeeper.nodes.planner import Launch
from gatekeeper.nodes.providers import META_IMAGE, META_NODE, META_POOL, ProviderError, Server
from gatekeeper.nodes.providers.static import ResetError
from gatekeeper.nodes.runtime import ImageSpec, ProviderRuntime
from gatekeeper.nodes.sshrun import run
from gatekeeper.ssh import SshError, SshTarget

log = logging.getLogger("gatekeeper.nodes.actions")

GONE_STATES = ("terminated", "deleted")


class LaunchFailed(Exception):
    def __init__(self, message: str, result: str):
        super().__init__(message)
        self.result = result  # metrics name: error.boot-timeout, error.quota, ...


@dataclass
class Actions:
    store: PoolStore
    providers: dict[str, ProviderRuntime]
    pool_id: str
    ready_check: Callable[[SshTarget], str]
    metrics: PoolMetrics
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    poll: float = 0.5
    redelete: float = 10.0  # re-issue a delete the cloud accepted but did not act on

    # -- launch ---------------------------------------------------------------
    def launch(self, req: Launch, node: Node) -> None:
        prov = self.providers[req.provider]
        assert prov.api is not None
        spec = prov.images[req.image]
        image_ref = None
        if req.image_id is not None:
            img = self.store.get_image(req.image_id)
            image_ref = img.external_id if img else None
        started = self.clock()
        attempts = max(1, prov.launch_retries)
        for attempt in range(1, attempts + 1):
            try:
                server, host_key = self._boot(prov, spec, image_ref, node,
                                              {META_NODE: str(node.id)})
            except LaunchFailed as e:
                log.warning("node %d on %s: attempt %d/%d failed: %s", node.id, prov.name,
                            attempt, attempts, e)
                self.metrics.launch(prov.name, req.label, e.result)
                kind = "quota" if e.result == "error.quota" else "error"
                prov.health.failure(self.clock(), kind, str(e))
                if kind == "quota" or self._gone(node.id):
                    break
                continue
            if self.store.transition(
                    node.id, [NodeState.BUILDING], NodeState.READY, self.clock(), host=server.host,
                    port=server.port, username=spec.boot.username,
                    private_key=spec.boot.private_key, host_key=host_key,
                    external_id=server.id, workdir=server.workdir):
                prov.health.success()
                self.metrics.launch(prov.name, req.label, "ready", self.clock() - started)
                log.info("node %d (%s) ready on %s: %s:%d", node.id, req.label, prov.name,
                         server.host, server.port)
            else:
                log.info("node %d was taken off building while launching; deleting", node.id)
                self.delete_node(node.id)
            return
        # Out of attempts: the record goes; the planner relaunches elsewhere.
        if self.store.transition(node.id, [NodeState.BUILDING], NodeState.FAILED, self.clock()):
            log.error("node %d (%s) failed to launch on %s", node.id, req.label, prov.name)

    def _gone(self, node_id: int) -> bool:
        n = self.store.get_node(node_id)
        return n is None or n.state != NodeState.BUILDING

    def _boot(self, prov: ProviderRuntime, spec: ImageSpec, image_ref: str | None,
              node: Node, meta: dict[str, str]) -> tuple[Server, str]:
        """Create one server and wait until it passes the ready check; on
        any failure the server is deleted (verified) before raising."""
        assert prov.api is not None
        name = f"gk-{self.pool_id}-{spec.name}-{'-'.join(meta.values())}"
        try:
            server = prov.api.create_server(name, spec.boot, image_ref,
                                            {META_POOL: self.pool_id, **meta})
        except ProviderError as e:
            raise LaunchFailed(str(e), "error.quota" if e.kind == "quota"
                               else "error.create") from None
        if node.id:
            self.store.update_node(node.id, external_id=server.id)
        try:
            return self._wait_ready(prov, spec, server)
        except LaunchFailed:
            try:
                self._delete_server(prov, server.id)
            except ProviderError as e:  # the reaper finds it by its metadata
                log.warning("%s: could not delete failed server %s: %s", prov.name,
                            server.id, e)
            raise

    def _wait_ready(self, prov: ProviderRuntime, spec: ImageSpec,
                    server: Server) -> tuple[Server, str]:
        """The server as it is once RUNNING (its address may only be known
        then) and its host key, once it passed the ready check."""
        assert prov.api is not None
        deadline = self.clock() + prov.boot_timeout
        # 1. Until the cloud says RUNNING (our server only, never list-wide waits).
        cur: Server | None = server
        while cur is None or cur.state != "running" or not cur.host:
            if cur is not None and cur.state == "error":
                raise LaunchFailed(f"server {server.id} went to ERROR", "error.boot")
            if cur is None and server.id:
                raise LaunchFailed(f"server {server.id} vanished while booting",
                                   "error.boot")
            if self.clock() >= deadline:
                raise LaunchFailed(f"server {server.id} not running after "
                                   f"{prov.boot_timeout:g}s", "error.boot-timeout")
            self.sleep(self.poll)
            try:
                cur = prov.api.get_server(server.id)
            except ProviderError as e:
                log.warning("%s: polling %s: %s", prov.name, server.id, e)
        # 2. RUNNING is not booted: SSH in and run a command.
        target = SshTarget(cur.host, cur.port, spec.boot.username, spec.boot.private_key)
        last = ""
        while True:
            try:
                return cur, self.ready_check(target)
            except SshError as e:
                last = str(e)
            if self.clock() >= deadline:
                raise LaunchFailed(f"server {server.id} running but not reachable after "
                                   f"{prov.boot_timeout:g}s: {last}", "error.boot-timeout")
            self.sleep(self.poll)

    # -- delete ---------------------------------------------------------------
    def delete_node(self, node_id: int) -> None:
        node = self.store.get_node(node_id)
        if node is None or node.state == NodeState.DELETED:
            return
        self.store.transition(node_id, [node.state], NodeState.DELETING, self.clock())
        prov = self.providers.get(node.provider)
        if node.external_id and prov is not None and prov.api is not None:
            try:
                self._delete_server(prov, node.external_id)
            except ProviderError as e:
                log.warning("node %d: delete of %s on %s failed (will retry): %s", node_id,
                            node.external_id, node.provider, e)
                self.metrics.event("deletes_total", {"provider": node.provider,
                                                     "result": "error"})
                self.store.update_node(node_id, state_time=self.clock())
                return
        elif node.external_id and prov is None:
            log.warning("node %d: provider %s is gone from the config; forgetting server %s",
                        node_id, node.provider, node.external_id)
        if self.store.transition(node_id, [NodeState.DELETING], NodeState.DELETED, self.clock()):
            self.metrics.event("deletes_total", {"provider": node.provider, "result": "ok"})
            log.info("node %d deleted", node_id)

    def _delete_server(self, prov: ProviderRuntime, server_id: str) -> None:
        """Delete and wait until the server is really gone (raises
        ProviderError when it is still there after the delete timeout)."""
        assert prov.api is not None
        deadline = self.clock() + prov.delete_timeout
        next_request = 0.0
        while True:
            cur = prov.api.get_server(server_id)
            if cur is None or cur.state in GONE_STATES:
                return
            if self.clock() >= next_request:
                # Re-issued now and then: some clouds accept a delete and
                # never act on it.
                prov.api.delete_server(server_id)
                next_request = self.clock() + self.redelete
            if self.clock() >= deadline:
                raise ProviderError(f"{prov.name}: server {server_id} still exists after "
                                    f"{prov.delete_timeout:g}s")
            self.sleep(self.poll)

    # -- static reset ---------------------------------------------------------
    def reset_node(self, node_id: int) -> None:
        node = self.store.get_node(node_id)
        if node is None:
            return
        prov = self.providers.get(node.provider)
        host = prov.static.host(node.static_name or "") if prov and prov.static else None
        if host is None or prov is None or prov.static is None:
            self.delete_node(node_id)
            return
        if not self.store.transition(node_id, [NodeState.USED, NodeState.HOLD, NodeState.BUILDING, NodeState.READY, NodeState.FAILED, NodeState.IN_USE],
                                     NodeState.BUILDING,
                                     self.clock(), build="", project="", job="",
                                     hold_until=None, hold_reason=""):
            return
        started = self.clock()
        try:
            host_key = prov.static.reset(host, node.host_key)
        except (ResetError, SshError) as e:
            self.store.transition(node_id, [NodeState.BUILDING], NodeState.FAILED, self.clock())
            self.metrics.event("resets_total", {"provider": prov.name, "result": "failed"})
            # The alert: a failed bare-metal reset needs a human.
            log.error("ALERT static node %s (%s) failed its reset and is out of service: %s",
                      host.name, prov.name, e)
            return
        if self.store.transition(node_id, [NodeState.BUILDING], NodeState.READY, self.clock(), host=host.host,
                                 port=host.port, username=host.username,
                                 private_key=host.private_key, host_key=host_key,
                                 workdir=host.workdir or None):
            self.metrics.event("resets_total", {"provider": prov.name, "result": "ok"})
            self.metrics.launch(prov.name, node.label, "ready", self.clock() - started)
            log.info("static node %s reset and ready", host.name)

    # -- images ---------------------------------------------------------------
    def build_image(self, image: Image) -> None:
        prov = self.providers[image.provider]
        spec = prov.images[image.image]
        assert prov.api is not None and spec.setup_script
        fake = Node(id=0, label="", provider=prov.name, state=NodeState.BUILDING, state_time=0.0,
                    created=0.0)
        server: Server | None = None
        try:
            server, host_key = self._boot(prov, spec, None, fake,
                                          {META_IMAGE: str(image.id)})
            self.store.update_image(image.id, template_id=server.id)
            script = Path(spec.setup_script).read_bytes()
            target = SshTarget(server.host or "", server.port, spec.boot.username,
                               spec.boot.private_key, host_key)
            rc, _out, err = run(target, "bash -s", timeout=spec.setup_timeout, stdin=script)
            if rc != 0:
                raise LaunchFailed(f"setup script exited {rc}: {' '.join(err.split())[-300:]}",
                                   "failed.setup")
            snap_name = f"gk-{self.pool_id}-{spec.name}-{image.version}"
            ext = prov.api.create_image(server.id, snap_name)
            self.store.update_image(image.id, external_id=ext)
            self._wait_image(prov, ext)
            self._delete_server(prov, server.id)
            server = None
            if self.store.transition_image(image.id, [ImageState.BUILDING], ImageState.READY, self.clock(),
                                           template_id=None):
                self.metrics.image_build(prov.name, spec.name, "ready")
                log.info("image %s v%d ready on %s (%s)", spec.name, image.version, prov.name,
                         ext)
        except (LaunchFailed, ProviderError, SshError, OSError) as e:
            log.error("image %s v%d on %s failed; the previous image stays in service: %s",
                      spec.name, image.version, prov.name, e)
            self.metrics.image_build(prov.name, spec.name, "failed")
            if isinstance(e, ProviderError) or (isinstance(e, LaunchFailed)
                                                and e.result == "error.quota"):
                prov.health.failure(self.clock(), getattr(e, "kind", "error"), str(e))
            self.store.transition_image(image.id, [ImageState.BUILDING], ImageState.FAILED, self.clock())
            if server is not None:
                try:
                    self._delete_server(prov, server.id)
                    self.store.update_image(image.id, template_id=None)
                except ProviderError as de:
                    log.warning("template %s not deleted yet: %s", server.id, de)

    def _wait_image(self, prov: ProviderRuntime, ext: str) -> None:
        assert prov.api is not None
        deadline = self.clock() + prov.boot_timeout * 4
        while True:
            status = prov.api.image_status(ext)
            if status == "ready":
                return
            if status in ("failed", "missing"):
                raise LaunchFailed(f"snapshot {ext} {status}", "failed.snapshot")
            if self.clock() >= deadline:
                raise LaunchFailed(f"snapshot {ext} not ready in time", "failed.snapshot")
            self.sleep(self.poll)

    def delete_image(self, image_id: int) -> None:
        image = self.store.get_image(image_id)
        if image is None or image.state == ImageState.DELETED:
            return
        self.store.transition_image(image_id, [image.state], ImageState.DELETING, self.clock())
        prov = self.providers.get(image.provider)
        if prov is not None and prov.api is not None:
            try:
                if image.template_id:
                    self._delete_server(prov, image.template_id)
                if image.external_id:
                    prov.api.delete_image(image.external_id)
            except ProviderError as e:
                log.warning("image %d: delete failed (will retry): %s", image_id, e)
                self.store.update_image(image_id, state_time=self.clock())
                return
        if self.store.transition_image(image_id, [ImageState.DELETING], ImageState.DELETED, self.clock()):
            log.info("image %s v%d on %s deleted", image.image, image.version, image.provider)

