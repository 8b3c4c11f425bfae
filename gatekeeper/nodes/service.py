"""The pool service: one loop that plans, worker threads that act.

The loop thread owns decisions: it snapshots the database, asks the pure
planner what to do, and hands launches, deletes, resets and image work to a
thread pool (at most one action per node/image at a time: the ``busy``
sets). Claims are served from the database with an atomic conditional
update, so a node is never given to two builds even with several pool
processes; a claim that finds no ready node waits in a FIFO per label, and
the waiting claims are the *demand* the planner launches for.

Restart safety: nothing lives only in memory. On start the service
re-registers static hosts, reconciles the database against every
provider's server list (leaks deleted, vanished servers forgotten), and the
planner then deletes nodes left building or deleting by the previous run."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.model.states import BuildResult, NodeState
from gatekeeper.nodes.actions import Actions
from gatekeeper.nodes.db import LIVE_STATES, Image, Node, PoolStore
from gatekeeper.nodes.holdcap import DEFAULT_MAX_HELD, hold_refusal
from gatekeeper.nodes.metrics import PoolMetrics
from gatekeeper.nodes.planner import STATIC, Plan, Snapshot, Timeouts, plan
from gatekeeper.nodes.providers import META_IMAGE, META_NODE, META_POOL, ProviderError
from gatekeeper.nodes.runtime import LabelSpec, ProviderRuntime
from gatekeeper.nodes.sshrun import ReadyCheck
from gatekeeper.ssh import SshTarget

log = logging.getLogger("gatekeeper.nodes.service")

Reply = Callable[[dict[str, Any] | None, str], None]


class ServiceStopping(Exception):
    """Raised inside actions when the service shuts down mid-wait."""


@dataclass
class _Waiter:
    label: str
    build: str
    deadline: float
    reply: Reply
    started: float
    project: str = ""
    job: str = ""


@dataclass
class PoolConfig:
    pool_id: str
    providers: dict[str, ProviderRuntime]
    labels: dict[str, LabelSpec]
    timeouts: Timeouts = field(default_factory=Timeouts)
    hold_time: float = 86400.0  # default hold for failed builds
    max_held: float = DEFAULT_MAX_HELD  # builds' holds per label: see nodes/holdcap.py
    no_developer_keys: frozenset[str] = frozenset()  # providers with allow_developer_keys: false
    tick_interval: float = 1.0
    reap_interval: float = 60.0
    poll: float = 0.5  # how often actions poll a provider or a booting node
    max_workers: int = 16


# Nodes of a label that are, or will be, in rotation (in-use counts: it returns).
IN_SERVICE = (NodeState.BUILDING, NodeState.READY, NodeState.IN_USE, NodeState.USED, NodeState.HOLD)


class PoolService:
    def __init__(self, store: PoolStore, config: PoolConfig, *,
                 ready_check: Callable[[SshTarget], str] | None = None,
                 metrics: PoolMetrics | None = None, clock: Callable[[], float] = time.time):
        self.store = store
        self.config = config
        self.metrics = metrics or PoolMetrics()
        self.clock = clock
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # guards busy sets and waiters
        self._busy_nodes: set[int] = set()
        self._busy_images: set[int] = set()
        self._waiters: dict[str, deque[_Waiter]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._last_reap = 0.0
        self._reaping = False
        self.actions = Actions(store, config.providers, config.pool_id,
                               ready_check or ReadyCheck(), self.metrics, clock=clock,
                               sleep=self._sleep, poll=config.poll)

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> PoolService:
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self.config.max_workers,
                                            thread_name_prefix="pool-action")
        self.register_static()
        self.reap()
        self._thread = threading.Thread(target=self._run, name="pool-loop", daemon=True)
        self._thread.start()
        log.info("pool %s started: %d providers, %d labels", self.config.pool_id,
                 len(self.config.providers), len(self.config.labels))
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(30)
            self._thread = None
        if self._executor:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        with self._lock:
            waiters = [w for q in self._waiters.values() for w in q]
            self._waiters.clear()
        for w in waiters:
            w.reply(None, "the pool is shutting down")
        log.info("pool %s stopped", self.config.pool_id)

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise ServiceStopping()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        last_tick = 0.0
        while not self._stopping.is_set():
            try:
                self.serve_waiters()
                now = time.monotonic()
                if self._wake.is_set() or now - last_tick >= self.config.tick_interval:
                    self._wake.clear()
                    last_tick = now
                    self.tick()
                if now - self._last_reap >= self.config.reap_interval:
                    self._reap_async()
            except Exception:  # the loop must survive anything one pass does
                log.exception("pool loop pass failed")
            self._wake.wait(min(self.config.tick_interval, 0.5))

    # -- planning -------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        now = self.clock()
        with self._lock:
            demand = {label: len(q) for label, q in self._waiters.items()}
            busy_n, busy_i = frozenset(self._busy_nodes), frozenset(self._busy_images)
        return Snapshot(
            now=now, nodes=tuple(self.store.list_nodes(LIVE_STATES)),
            images=tuple(self.store.list_images()),
            providers=tuple(p.view(now) for p in self.config.providers.values()),
            labels=tuple(lb.view() for lb in self.config.labels.values()),
            demand=demand, busy_nodes=busy_n, busy_images=busy_i,
            timeouts=self.config.timeouts)

    def tick(self) -> Plan:
        snap = self.snapshot()
        decided = plan(snap)
        self._gauges(snap)
        for launch in decided.launches:
            spec = self.config.providers[launch.provider].images[launch.image]
            node = self.store.create_node(launch.label, launch.provider, self.clock(),
                                          image=launch.image, image_id=launch.image_id,
                                          username=spec.boot.username,
                                          private_key=spec.boot.private_key)
            self._submit_node(node.id, self.actions.launch, launch, node)
        for node_id in decided.deletes:
            with self._lock:
                busy = node_id in self._busy_nodes
            if busy:
                # A launch hung past building_timeout: take the node off
                # building; the launcher deletes its server when it returns,
                # else the delete retry does.
                if self.store.transition(node_id, [NodeState.BUILDING], NodeState.DELETING, self.clock()):
                    log.warning("node %d stuck building; deleting it", node_id)
                continue
            log.info("deleting node %d: %s", node_id, decided.reasons.get(node_id, ""))
            self._submit_node(node_id, self.actions.delete_node, node_id)
        for node_id in decided.resets:
            log.info("resetting static node %d: %s", node_id, decided.reasons.get(node_id, ""))
            self._submit_node(node_id, self.actions.reset_node, node_id)
        for provider, image in decided.image_builds:
            rec = self.store.create_image(provider, image, self.clock())
            log.info("building image %s v%d on %s", image, rec.version, provider)
            self._submit_image(rec.id, self.actions.build_image, rec)
        for image_id in decided.image_deletes:
            self._submit_image(image_id, self.actions.delete_image, image_id)
        return decided

    def _submit_node(self, node_id: int, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if node_id in self._busy_nodes:
                return
            self._busy_nodes.add(node_id)
        self._submit(fn, args, lambda: self._busy_nodes.discard(node_id))

    def _submit_image(self, image_id: int, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if image_id in self._busy_images:
                return
            self._busy_images.add(image_id)
        self._submit(fn, args, lambda: self._busy_images.discard(image_id))

    def _submit(self, fn: Callable[..., None], args: tuple[Any, ...],
                done: Callable[[], None]) -> None:
        def job() -> None:
            try:
                fn(*args)
            except ServiceStopping:
                pass
            except Exception:
                log.exception("pool action %s failed", getattr(fn, "__name__", fn))
            finally:
                with self._lock:
                    done()
                self._wake.set()

        if self._executor is None:  # not started: run inline (tests, one-shot CLI)
            job()
        else:
            self._executor.submit(job)

    def _gauges(self, snap: Snapshot) -> None:
        counts = Counter((n.state.value, n.label, n.provider) for n in snap.nodes)
        self.metrics.node_states(counts)
        reg = self.metrics.registry
        reg.set_gauges("claims_waiting", {(("label", lb),): float(n)
                                          for lb, n in snap.demand.items()},
                       help_text="claims waiting for a ready node")
        reg.set_gauges("provider_healthy", {(("provider", p.name),): float(p.healthy)
                                            for p in snap.providers},
                       help_text="0 while a provider backs off after errors or quota")

    def idle(self) -> bool:
        """No action running (tests wait for this)."""
        with self._lock:
            return not self._busy_nodes and not self._busy_images

    # -- static hosts ----------------------------------------------------------
    def register_static(self) -> None:
        live = self.store.list_nodes(LIVE_STATES)
        for prov in self.config.providers.values():
            if prov.kind != STATIC or prov.static is None:
                continue
            names = {h.name for h in prov.static.hosts}
            for n in live:
                # A host removed from the config leaves service (in-use ones
                # when their build releases them: their reset finds no host).
                if n.provider == prov.name and n.static_name not in names and \
                        self.store.transition(n.id, [NodeState.READY, NodeState.USED, NodeState.HOLD, NodeState.FAILED, NodeState.BUILDING],
                                              NodeState.DELETED, self.clock()):
                    log.info("static node %s is no longer configured", n.static_name)
            for h in prov.static.hosts:
                mine = [n for n in live if n.provider == prov.name and n.static_name == h.name]
                if mine:
                    if mine[0].label != h.label:
                        self.store.update_node(mine[0].id, label=h.label)
                    continue
                # A new host is reset before its first use, like after a build.
                node = self.store.create_node(
                    h.label, prov.name, self.clock(), state=NodeState.USED, static_name=h.name,
                    host=h.host, port=h.port, username=h.username, private_key=h.private_key,
                    host_key=h.host_key)
                log.info("static node %s registered as node %d", h.name, node.id)

    # -- the reaper: leaks and vanished servers ----------------------------
    def _reap_async(self) -> None:
        """Reap on a worker thread: provider listings can be slow, and the
        loop must keep serving waiting claims meanwhile."""
        self._last_reap = time.monotonic()
        with self._lock:
            if self._reaping:
                return
            self._reaping = True

        def done() -> None:
            self._reaping = False

        self._submit(self.reap, (), done)

    def reap(self) -> None:
        self._last_reap = time.monotonic()
        for prov in self.config.providers.values():
            if prov.api is None:
                continue
            try:
                self._reap_provider(prov)
            except ProviderError as e:
                log.warning("reaper: %s: %s", prov.name, e)
                prov.health.failure(self.clock(), e.kind, str(e))
            except Exception:  # one provider's surprise must not stop the others
                log.exception("reaper: %s failed", prov.name)

    def _reap_provider(self, prov: ProviderRuntime) -> None:
        assert prov.api is not None
        servers = prov.api.list_servers()
        with self._lock:
            busy_n, busy_i = set(self._busy_nodes), set(self._busy_images)
        listed = {s.id for s in servers}
        for s in servers:
            if s.metadata.get(META_POOL) != self.config.pool_id or s.state == "terminated":
                continue
            leak = ""
            if META_NODE in s.metadata:
                node = _get_node(self.store, s.metadata[META_NODE])
                if node is not None and node.id in busy_n:
                    continue
                if node is None or node.state == NodeState.DELETED or node.provider != prov.name:
                    leak = "unknown node"
                elif node.external_id != s.id:
                    leak = f"not node {node.id}'s server"
            elif META_IMAGE in s.metadata:
                img = _get_image(self.store, s.metadata[META_IMAGE])
                if img is not None and img.id in busy_i:
                    continue
                if img is None or img.template_id != s.id:
                    leak = "unknown image build"
            if leak:
                log.warning("reaper: deleting leaked server %s on %s (%s)", s.id, prov.name,
                            leak)
                self.metrics.event("leaks_total", {"provider": prov.name})
                try:
                    prov.api.delete_server(s.id)
                except ProviderError as e:
                    log.warning("reaper: %s: %s", prov.name, e)
        # Servers the cloud no longer has: their records are done.
        for n in self.store.list_nodes([NodeState.READY, NodeState.USED, NodeState.HOLD, NodeState.FAILED, NodeState.DELETING],
                                       provider=prov.name):
            if n.external_id and n.external_id not in listed and n.id not in busy_n:
                if self.store.transition(n.id, [n.state], NodeState.DELETED, self.clock()):
                    log.warning("node %d (%s): server %s vanished from %s", n.id, n.state,
                                n.external_id, prov.name)
        self.wake()

    # -- claims -------------------------------------------------------------
    def claim(self, label: str, build: str, timeout: float, reply: Reply, project: str = "",
              job: str = "") -> None:
        """Hand a ready node of ``label`` to ``build`` through ``reply`` —
        at once if one is ready, else when one is (or an error at timeout)."""
        started = time.monotonic()
        if label not in self.config.labels:
            reply(None, f"unknown label {label!r}")
            return
        with self._lock:
            queued = bool(self._waiters.get(label))
        if not queued:
            node = self.store.claim_ready(label, build, self.clock(), project, job)
            if node is not None:
                self._handed(label, node, started, reply)
                self.wake()  # min-ready needs restoring
                return
        with self._lock:
            self._waiters.setdefault(label, deque()).append(
                _Waiter(label, build, started + max(0.0, timeout), reply, started, project, job))
        self.wake()

    def serve_waiters(self) -> None:
        now = time.monotonic()
        with self._lock:
            labels = [lb for lb, q in self._waiters.items() if q]
        for label in labels:
            while True:
                with self._lock:
                    q = self._waiters.get(label)
                    if not q:
                        break
                    w = q[0]
                    if w.deadline <= now:
                        q.popleft()
                        expired: _Waiter | None = w
                    else:
                        expired = None
                if expired is not None:
                    expired.reply(None, f"no {label} node became ready in time")
                    continue
                node = self.store.claim_ready(label, w.build, self.clock(), w.project, w.job)
                if node is None:
                    break
                with self._lock:
                    q.popleft()
                self._handed(label, node, w.started, w.reply)

    def _handed(self, label: str, node: Node, started: float, reply: Reply) -> None:
        self.metrics.claim(label, time.monotonic() - started)
        log.info("node %d (%s, %s) claimed by build %s", node.id, label, node.provider,
                 node.build)
        try:
            reply(self.lease(node), "")
        except Exception:
            # The build never got it: return the node to the pool as used.
            log.exception("could not hand node %d to build %s", node.id, node.build)
            self.store.transition(node.id, [NodeState.IN_USE], NodeState.USED, self.clock())

    def lease(self, node: Node) -> dict[str, Any]:
        extra = {"workdir": node.workdir} if node.workdir else {}
        return {"node_id": str(node.id), "label": node.label, "host": node.host,
                "port": node.port, "username": node.username, "private_key": node.private_key,
                "provider": node.provider, "host_key": node.host_key, "extra": extra}

    def release(self, node_id: str, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> str:
        """Return a claimed node; "" on success, else why not."""
        node = _get_node(self.store, node_id)
        if node is None:
            return f"unknown node {node_id!r}"
        if node.state != NodeState.IN_USE:
            return f"node {node_id} is {node.state}, not in use"
        if build and node.build and build != node.build:
            return f"node {node_id} is claimed by another build"
        now = self.clock()
        if state not in (NodeState.USED, NodeState.HOLD):
            return f"bad release state {state!r}"
        failed = state == NodeState.HOLD or (result not in ("", BuildResult.SUCCESS))
        autoheld = False
        ah = None
        if failed and node.project and node.job:
            ah = self.store.consume_autohold(node.project, node.job)
            if ah is not None:
                state, hold_for = NodeState.HOLD, ah.hold_for if ah.hold_for is not None else -1.0
                reason = f"autohold {ah.id}: {ah.reason}".strip()
                autoheld = True  # an operator asked for it: not capped
        if state == NodeState.HOLD and not autoheld:
            refused = self._hold_refusal(node)
            if refused is not None:
                log.info("node %d not held: %s", node.id, refused)
                state = NodeState.USED
        if state == NodeState.HOLD:
            until = None if hold_for is not None and hold_for < 0 else \
                now + (hold_for if hold_for is not None else self.config.hold_time)
            ok = self.store.transition(node.id, [NodeState.IN_USE], NodeState.HOLD, now, hold_until=until,
                                       hold_reason=reason[:1000])
            log.info("node %d held (%s) until %s", node.id, reason or "no reason",
                     "forever" if until is None else f"{until:.0f}")
            if ok and autoheld and ah is not None:  # a developer's key, if the request has one
                self._submit_node(node.id, self._developer_access, node, ah.id, until, reason)
        else:
            ok = self.store.transition(node.id, [NodeState.IN_USE], NodeState.USED, now)
        self.wake()
        return "" if ok else f"node {node_id} changed state meanwhile"

    def _developer_access(self, node: Node, autohold: int, until: float | None,
                          reason: str) -> None:
        from gatekeeper.nodes.devkeys import DevKeyStore, give_access

        give_access(DevKeyStore(self.store.engine), self.store, node, autohold, until, reason,
                    self.config.no_developer_keys, self.clock())

    def _hold_refusal(self, node: Node) -> str | None:
        same = self.store.list_nodes(IN_SERVICE, label=node.label)
        held = sum(1 for n in same if n.state == NodeState.HOLD)
        return hold_refusal(node.label, len(same), held, self.config.max_held)

    # -- operator actions (also used by the CLI through the database) ---------
    def waiting(self) -> dict[str, int]:
        with self._lock:
            return {label: len(q) for label, q in self._waiters.items() if q}


def _get_node(store: PoolStore, node_id: str) -> Node | None:
    try:
        return store.get_node(int(node_id))
    except (TypeError, ValueError):
        return None


def _get_image(store: PoolStore, image_id: str) -> Image | None:
    try:
        return store.get_image(int(image_id))
    except (TypeError, ValueError):
        return None

