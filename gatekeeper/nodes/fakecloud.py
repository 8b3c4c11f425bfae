"""A libcloud driver for a cloud that lives in this process (the test double).

libcloud cannot reach a real cloud here, and its Dummy driver is too kind
(ids reused, no snapshots, no failures). :class:`FakeCloudDriver` is a real
``NodeDriver`` subclass registered in libcloud's provider registry under
``gatekeeper-fake`` (:func:`register`), so the pool reaches it exactly like
OpenStack: ``get_driver(name)(key, secret, region=...)``.

The cloud behind it (:class:`FakeCloud`, one per ``key``) behaves like a
cloud: servers take ``boot_delay`` to become RUNNING, a fraction are
RUNNING-but-dead (the network never came up), creates and deletes fail at
seeded random, ``max_instances`` is enforced with an OpenStack-style quota
error, deletes take ``delete_delay`` (and may silently not happen), metadata
is kept, snapshots (create/list/delete image) work, and overlapping calls on
one driver instance raise (libcloud drivers are not thread-safe). Time is the
cloud's ``clock`` — virtual in unit tests, real in integration tests.

With ``sshd_root`` set, every server that boots alive is a real
:class:`LocalSshd` on a loopback port (``extra["ssh_port"]``), so the ready
check, rsync and job runs are real; a snapshot copies the template's
``work`` directory into servers booted from it."""

from __future__ import annotations

import itertools
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import Node, NodeDriver, NodeImage, NodeLocation, NodeSize
from libcloud.compute.providers import get_driver, set_driver
from libcloud.compute.types import NodeState

from gatekeeper.nodes.localsshd import LocalSshd

log = logging.getLogger("gatekeeper.nodes.fakecloud")

PROVIDER_NAME = "gatekeeper-fake"
_fake_ports = itertools.count()  # unique across clouds: a port names one server


@dataclass
class _Server:
    id: str
    name: str
    image_id: str
    size_id: str
    metadata: dict[str, str]
    created: float
    boot_at: float
    dead: bool = False  # RUNNING but never reachable
    error: bool = False  # ends in ERROR instead of RUNNING
    deleted_at: float | None = None  # deletion requested; gone after delete_delay
    sshd: LocalSshd | None = None
    authorized_keys: list[str] = field(default_factory=list)
    fake_port: int = 22  # without sshd: a unique port naming the server (alive())


@dataclass
class _Image:
    id: str
    name: str
    ready_at: float
    workdir: Path | None = None
    fail: bool = False


class FakeCloud:
    """The state of one fake cloud account (shared by its driver instances)."""

    def __init__(self, name: str, *, secret: str | None = None, boot_delay: float = 0.0,
                 delete_delay: float = 0.0, image_delay: float = 0.0,
                 max_instances: int = 1000, seed: int = 0,
                 create_fail_rate: float = 0.0, delete_fail_rate: float = 0.0,
                 silent_delete_fail_rate: float = 0.0, dead_rate: float = 0.0,
                 error_rate: float = 0.0, image_fail_rate: float = 0.0,
                 api_latency: float = 0.0, duplicate_listing: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 sshd_root: Path | None = None, authorized_keys: list[str] | None = None,
                 base_images: tuple[str, ...] = ("base-debian",)):
        self.name = name
        self.secret = secret
        self.boot_delay = boot_delay
        self.delete_delay = delete_delay
        self.image_delay = image_delay
        self.max_instances = max_instances
        self.rng = random.Random(seed)
        self.create_fail_rate = create_fail_rate
        self.delete_fail_rate = delete_fail_rate
        self.silent_delete_fail_rate = silent_delete_fail_rate
        self.dead_rate = dead_rate
        self.error_rate = error_rate
        self.image_fail_rate = image_fail_rate
        self.api_latency = api_latency
        self.duplicate_listing = duplicate_listing
        self.clock = clock
        self.sshd_root = Path(sshd_root) if sshd_root else None
        self.authorized_keys = list(authorized_keys or [])
        self.down = False  # the whole API refuses (an outage)
        self.lock = threading.RLock()
        self.servers: dict[str, _Server] = {}
        self.images: dict[str, _Image] = {
            f"img-{b}": _Image(f"img-{b}", b, ready_at=0.0) for b in base_images}
        self._ids = itertools.count(1)
        self.calls: list[str] = []  # API calls, for tests
        self.created_total = 0

    # -- what tests look at ------------------------------------------------
    def live_servers(self) -> list[_Server]:
        with self.lock:
            self._advance()
            return [s for s in self.servers.values()]

    def alive(self, host: str, port: int) -> bool:
        """Without sshd: would SSH to host:port reach a booted server?"""
        with self.lock:
            self._advance()
            now = self.clock()
            for s in self.servers.values():
                if s.fake_port == port and host == "127.0.0.1":
                    return (s.deleted_at is None and now >= s.boot_at and not s.dead
                            and not s.error)
            return False

    def kill(self, server_id: str) -> None:
        """Make a RUNNING server unreachable (its host crashed)."""
        with self.lock:
            s = self.servers[server_id]
            s.dead = True
            if s.sshd:
                s.sshd.stop()

    def close(self) -> None:
        """Stop every sshd this cloud started (test teardown)."""
        with self.lock:
            for s in self.servers.values():
                if s.sshd:
                    s.sshd.stop()
            self.servers.clear()

    # -- the API, called by the driver under self.lock -----------------------
    def _advance(self) -> None:
        now = self.clock()
        for sid, s in list(self.servers.items()):
            if s.deleted_at is not None and now >= s.deleted_at + self.delete_delay:
                if s.sshd:
                    s.sshd.stop()
                    shutil.rmtree(s.sshd.root, ignore_errors=True)
                del self.servers[sid]
            elif (s.deleted_at is None and now >= s.boot_at and not s.dead and not s.error
                  and self.sshd_root and s.sshd is None):
                self._boot_sshd(s)

    def _boot_sshd(self, s: _Server) -> None:
        assert self.sshd_root is not None
        node = LocalSshd(self.sshd_root / s.id, self.authorized_keys + s.authorized_keys,
                         name=s.id)
        img = self.images.get(s.image_id)
        if img and img.workdir and img.workdir.exists():
            shutil.copytree(img.workdir, node.workdir, dirs_exist_ok=True)
        s.sshd = node.start()

    def state_of(self, s: _Server) -> NodeState:
        now = self.clock()
        if s.deleted_at is not None:
            return NodeState.STOPPING
        if now < s.boot_at:
            return NodeState.PENDING
        return NodeState.ERROR if s.error else NodeState.RUNNING


class FakeCloudDriver(NodeDriver):
    """libcloud ``NodeDriver`` for :class:`FakeCloud` accounts (``key`` = account)."""

    name = "Gatekeeper fake cloud"
    website = "https://example.invalid/"
    type = PROVIDER_NAME
    features = {"create_node": ["ssh_key"]}
    clouds: dict[str, FakeCloud] = {}
    _clouds_lock = threading.Lock()

    def __init__(self, key: str, secret: str | None = None, secure: bool = True,
                 host: str | None = None, port: int | None = None,
                 api_version: str | None = None, region: str | None = None, **kwargs: Any):
        # No HTTP connection to set up: skip BaseDriver.__init__ on purpose.
        self.key, self.secret, self.secure = key, secret, secure
        self.api_version, self.region = api_version, region
        with self._clouds_lock:
            self.cloud = self.clouds.setdefault(key, FakeCloud(key))
        if self.cloud.secret is not None and secret != self.cloud.secret:
            raise InvalidCredsError("invalid credentials")
        self._in_call = 0
        self._guard = threading.Lock()

    # -- plumbing ----------------------------------------------------------
    def _api(self, what: str, fn: Callable[[], Any]) -> Any:
        with self._guard:
            self._in_call += 1
            overlapping = self._in_call > 1
        try:
            if overlapping:
                raise RuntimeError("FakeCloudDriver used by two threads at once "
                                   "(libcloud drivers are not thread-safe)")
            if self.cloud.api_latency:
                time.sleep(self.cloud.api_latency)
            with self.cloud.lock:
                self.cloud.calls.append(what)
                if self.cloud.down:
                    raise BaseHTTPError(503, "Service Unavailable")
                self.cloud._advance()
                return fn()
        finally:
            with self._guard:
                self._in_call -= 1

    def _node(self, s: _Server) -> Node:
        state = self.cloud.state_of(s)
        port = s.sshd.port if s.sshd else s.fake_port
        ips = ["127.0.0.1"] if state == NodeState.RUNNING else []
        return Node(id=s.id, name=s.name, state=state, public_ips=ips, private_ips=[],
                    driver=self, image=None, size=None, created_at=None,
                    extra={"metadata": dict(s.metadata), "ssh_port": port,
                           "image_id": s.image_id, "status": state.value,
                           "workdir": str(s.sshd.workdir) if s.sshd else None})

    def _image(self, i: _Image) -> NodeImage:
        ready = self.cloud.clock() >= i.ready_at
        status = "error" if (i.fail and ready) else ("active" if ready else "saving")
        return NodeImage(id=i.id, name=i.name, driver=self, extra={"status": status})

    # -- NodeDriver API ----------------------------------------------------
    def list_locations(self) -> list[NodeLocation]:
        return [NodeLocation("here", "here", "ZZ", self)]

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return [NodeSize("small", "small", 2048, 20, None, 0.0, self),
                NodeSize("large", "large", 8192, 80, None, 0.0, self)]

    def list_nodes(self, *args: Any, **kwargs: Any) -> list[Node]:
        def do() -> list[Node]:
            nodes = [self._node(s) for s in self.cloud.servers.values()]
            if self.cloud.duplicate_listing and nodes:
                nodes.append(nodes[0])  # some clouds list a server twice
            return nodes
        return self._api("list_nodes", do)

    def ex_get_node(self, node_id: str) -> Node | None:
        """One server by id (what OpenStack's ``ex_get_node_details`` does)."""
        def do() -> Node | None:
            s = self.cloud.servers.get(node_id)
            return self._node(s) if s else None
        return self._api("ex_get_node", do)

    ex_get_node_details = ex_get_node

    def create_node(self, name: str, size: NodeSize, image: NodeImage,
                    location: NodeLocation | None = None, auth: Any = None,
                    ex_metadata: dict[str, str] | None = None, **kwargs: Any) -> Node:
        def do() -> Node:
            c = self.cloud
            if image.id not in c.images or c.clock() < c.images[image.id].ready_at \
                    or c.images[image.id].fail:
                raise BaseHTTPError(400, f"Image {image.id} could not be found or is not active")
            live = sum(1 for s in c.servers.values() if s.deleted_at is None)
            if live >= c.max_instances:
                raise BaseHTTPError(403, "Quota exceeded for instances: Requested 1, "
                                         f"but already used {live} of {c.max_instances}")
            if c.rng.random() < c.create_fail_rate:
                raise BaseHTTPError(500, "Internal Server Error (injected)")
            sid = f"{c.name}-{next(c._ids):05d}"  # never reused
            now = c.clock()
            keys = [auth.pubkey] if auth is not None and getattr(auth, "pubkey", None) else []
            s = _Server(sid, name, image.id, getattr(size, "id", "small"),
                        dict(ex_metadata or {}), now, now + c.boot_delay,
                        dead=c.rng.random() < c.dead_rate,
                        error=c.rng.random() < c.error_rate, authorized_keys=keys,
                        fake_port=40000 + next(_fake_ports) % 20000)
            c.servers[sid] = s
            c.created_total += 1
            c._advance()
            return self._node(s)
        return self._api("create_node", do)

    def destroy_node(self, node: Node) -> bool:
        def do() -> bool:
            c = self.cloud
            s = c.servers.get(node.id) if node.id else None
            if s is None:
                raise BaseHTTPError(404, f"Instance {node.id} could not be found")
            if c.rng.random() < c.delete_fail_rate:
                raise BaseHTTPError(500, "Internal Server Error (injected)")
            if c.rng.random() < c.silent_delete_fail_rate:
                return True  # accepted, and then nothing happens
            if s.deleted_at is None:
                s.deleted_at = c.clock()
            c._advance()
            return True
        return self._api("destroy_node", do)

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        return self._api("list_images",
                         lambda: [self._image(i) for i in self.cloud.images.values()])

    def get_image(self, image_id: str) -> NodeImage:
        def do() -> NodeImage:
            i = self.cloud.images.get(image_id)
            if i is None:
                raise BaseHTTPError(404, f"Image {image_id} could not be found")
            return self._image(i)
        return self._api("get_image", do)

    # libcloud's type comment says List[NodeImage]; its docs and every driver return one image.
    def create_image(  # type: ignore[override]
            self, node: Node, name: str, description: str | None = None) -> NodeImage:
        def do() -> NodeImage:
            c = self.cloud
            s = c.servers.get(node.id) if node.id else None
            if s is None or s.deleted_at is not None:
                raise BaseHTTPError(404, f"Instance {node.id} could not be found")
            iid = f"img-{c.name}-{next(c._ids):05d}"
            workdir = None
            if s.sshd is not None and c.sshd_root is not None:
                workdir = c.sshd_root / "images" / iid
                shutil.copytree(s.sshd.workdir, workdir, dirs_exist_ok=True)
            img = _Image(iid, name, c.clock() + c.image_delay, workdir,
                         fail=c.rng.random() < c.image_fail_rate)
            c.images[iid] = img
            return self._image(img)
        return self._api("create_image", do)

    def delete_image(self, node_image: NodeImage) -> bool:
        def do() -> bool:
            img = self.cloud.images.pop(node_image.id, None)
            if img is None:
                raise BaseHTTPError(404, f"Image {node_image.id} could not be found")
            if img.workdir:
                shutil.rmtree(img.workdir, ignore_errors=True)
            return True
        return self._api("delete_image", do)


def register() -> None:
    """Make ``get_driver("gatekeeper-fake")`` return :class:`FakeCloudDriver`."""
    try:
        if get_driver(PROVIDER_NAME) is FakeCloudDriver:
            return
    except AttributeError:
        pass
    # libcloud types module/klass as objects, but its own DRIVERS table holds dotted names.
    set_driver(PROVIDER_NAME, __name__, "FakeCloudDriver")  # type: ignore[arg-type]


def add_cloud(cloud: FakeCloud) -> FakeCloud:
    """Install ``cloud`` as the account ``cloud.name`` (replacing any other)."""
    with FakeCloudDriver._clouds_lock:
        FakeCloudDriver.clouds[cloud.name] = cloud
    register()
    return cloud


def remove_cloud(name: str) -> None:
    with FakeCloudDriver._clouds_lock:
        cloud = FakeCloudDriver.clouds.pop(name, None)
    if cloud is not None:
        cloud.close()
