"""CloudAPI over any libcloud compute driver.

libcloud traps handled here (each has a test):
* drivers are not thread-safe: one driver per provider and every call under
  one lock, spaced by the provider's API ``rate`` (nodepool's task manager);
* ``NodeState`` members hash by identity: only ``.value`` strings leave here;
* OpenStack defaults to API 1.1: ``api_version="2.0"`` is passed for it;
* ``wait_until_running`` polls the whole ``list_nodes()`` and raises on
  duplicate ids: we poll our own server only (``ex_get_node_details`` when
  the driver has it, else ``list_nodes`` filtered, duplicates tolerated);
* servers are tagged with ``ex_metadata`` so leaks can be found;
* ``deploy_node`` and libcloud's ``ParamikoSSHClient`` are not used (the
  latter breaks with paramiko >= 4 and accepts any host key): the ready
  check and setup scripts use our own paramiko code (sshrun.py), and a
  server that fails them is ours to delete — the launcher does.
Credentials come from the caller (env/file lookups happen in config) and
are never logged or put into exception text."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.compute.base import NodeAuthSSHKey, NodeImage
from libcloud.compute.providers import get_driver

from gatekeeper.nodes.providers import BootSpec, ProviderError, Server

log = logging.getLogger("gatekeeper.nodes.providers.cloud")

T = TypeVar("T")

_QUOTA_WORDS = ("quota", "limit exceeded", "instancelimitexceeded", "too many")


def classify(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, InvalidCredsError):
        return "auth"
    if any(w in text for w in _QUOTA_WORDS):
        return "quota"
    if isinstance(exc, BaseHTTPError) and exc.code == 404:
        return "not-found"
    return "error"


def state_value(state: Any) -> str:
    """A NodeState (or a plain string from an odd driver) as a str."""
    return str(getattr(state, "value", state))


class LibcloudProvider:
    """One cloud account/region. ``driver_name`` is a libcloud provider name
    (``openstack``, ``ec2``, ``gatekeeper-fake``...)."""

    def __init__(self, name: str, driver_name: str, key: str, secret: str | None = None,
                 region: str | None = None, driver_args: dict[str, Any] | None = None,
                 rate: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, list_cache: float = 0.0):
        self.name = name
        self._secrets = [v for v in (secret,) if v]
        args = dict(driver_args or {})
        if driver_name == "openstack":
            args.setdefault("api_version", "2.0")  # libcloud's default is 1.1
        if region:
            args["region"] = region
        cls = get_driver(driver_name)
        try:
            self._driver = cls(key, secret, **args)
        except InvalidCredsError:
            raise ProviderError(f"{name}: invalid credentials", "auth") from None
        except (LibcloudError, BaseHTTPError, OSError, TypeError, ValueError) as e:
            raise ProviderError(f"{name}: cannot create the {driver_name} driver: "
                                f"{type(e).__name__}", "error") from None
        self._lock = threading.Lock()
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._last = 0.0
        self._clock, self._sleep = clock, sleep
        self._images: dict[str, NodeImage] = {}
        # With list_cache > 0, every poll of a server's state (boots, delete
        # verification) is answered from one shared list_nodes() at most that
        # old: N booting servers cost one API call per interval, not N.
        self._list_cache = list_cache
        self._cache_lock = threading.Lock()
        self._cache: dict[str, Any] | None = None
        self._cache_time = 0.0

    # -- serialized, rate-limited calls -------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._interval:
                wait = self._last + self._interval - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                return fn()
            except (BaseHTTPError, LibcloudError, OSError, InvalidCredsError) as e:
                kind = classify(e)
                # The message of a libcloud error is the cloud's reply; it
                # carries no credentials. Keep it one line.
                msg = " ".join(str(e).split())[:300]
                for secret in self._secrets:  # belt and braces: never echo a secret
                    msg = msg.replace(secret, "<hidden>")
                raise ProviderError(f"{self.name}: {what}: {msg}", kind) from None
            finally:
                self._last = self._clock()

    def _server(self, node: Any) -> Server:
        ips = list(node.public_ips or []) + list(node.private_ips or [])
        extra = node.extra or {}
        meta = extra.get("metadata") or {}
        return Server(id=str(node.id), state=state_value(node.state),
                      host=ips[0] if ips else None, port=int(extra.get("ssh_port", 22)),
                      metadata={str(k): str(v) for k, v in meta.items()},
                      workdir=extra.get("workdir"))

    def _find_image(self, ref: str) -> NodeImage:
        if ref in self._images:
            return self._images[ref]
        images = self._call("list_images", self._driver.list_images)
        for img in images:
            if ref in (img.id, img.name):
                self._images[ref] = img
                return img
        raise ProviderError(f"{self.name}: image {ref!r} not found", "not-found")

    def _find_size(self, spec: BootSpec) -> Any:
        sizes = self._call("list_sizes", self._driver.list_sizes)
        if spec.flavor:
            for s in sizes:
                if spec.flavor in (s.id, s.name):
                    return s
            raise ProviderError(f"{self.name}: flavor {spec.flavor!r} not found", "not-found")
        fitting = sorted((s for s in sizes if (s.ram or 0) >= spec.min_ram),
                         key=lambda s: s.ram or 0)
        if not fitting:
            raise ProviderError(f"{self.name}: no flavor with {spec.min_ram} MB RAM",
                                "not-found")
        return fitting[0]

    # -- CloudAPI -----------------------------------------------------------
    def create_server(self, name: str, spec: BootSpec, image_ref: str | None,
                      metadata: dict[str, str]) -> Server:
        image = self._find_image(image_ref or spec.base_image)
        size = self._find_size(spec)
        kwargs: dict[str, Any] = {"ex_metadata": dict(metadata)}
        if spec.key_name:
            kwargs["ex_keyname"] = spec.key_name
        if spec.public_key:
            kwargs["auth"] = NodeAuthSSHKey(spec.public_key)
        try:
            node = self._call("create_node", lambda: self._driver.create_node(
                name=name, size=size, image=image, **kwargs))
        finally:
            self._invalidate()
        return self._server(node)

    def _cached_nodes(self) -> dict[str, Any]:
        with self._cache_lock:
            if self._cache is None or self._clock() - self._cache_time >= self._list_cache:
                nodes = self._call("list_nodes", self._driver.list_nodes)
                self._cache = {}
                for node in nodes:
                    self._cache.setdefault(str(node.id), node)
                self._cache_time = self._clock()
            return self._cache

    def _invalidate(self) -> None:
        with self._cache_lock:
            self._cache = None

    def get_server(self, server_id: str) -> Server | None:
        if self._list_cache > 0:
            node = self._cached_nodes().get(server_id)
            return self._server(node) if node is not None else None
        getter = getattr(self._driver, "ex_get_node_details", None)
        if getter is not None:
            try:
                node = self._call("get_node", lambda: getter(server_id))
            except ProviderError as e:
                if e.kind == "not-found":
                    return None
                raise
            return self._server(node) if node is not None else None
        # Our server only, from the list; a cloud listing it twice is fine.
        for node in self._call("list_nodes", self._driver.list_nodes):
            if str(node.id) == server_id:
                return self._server(node)
        return None

    def list_servers(self) -> list[Server]:
        seen: dict[str, Server] = {}
        for node in self._call("list_nodes", self._driver.list_nodes):
            seen.setdefault(str(node.id), self._server(node))
        return list(seen.values())

    def delete_server(self, server_id: str) -> None:
        node = self._node_obj(server_id)
        if node is None:
            return
        try:
            self._call("destroy_node", lambda: self._driver.destroy_node(node))
        except ProviderError as e:
            if e.kind != "not-found":
                raise
        finally:
            self._invalidate()

    def _node_obj(self, server_id: str) -> Any:
        if self._list_cache > 0:
            return self._cached_nodes().get(server_id)
        getter = getattr(self._driver, "ex_get_node_details", None)
        if getter is not None:
            try:
                return self._call("get_node", lambda: getter(server_id))
            except ProviderError as e:
                if e.kind == "not-found":
                    return None
                raise
        for node in self._call("list_nodes", self._driver.list_nodes):
            if str(node.id) == server_id:
                return node
        return None

    def create_image(self, server_id: str, name: str) -> str:
        node = self._node_obj(server_id)
        if node is None:
            raise ProviderError(f"{self.name}: server {server_id} is gone", "not-found")
        img = self._call("create_image", lambda: self._driver.create_image(node, name))
        # libcloud's type comment says List[NodeImage]; drivers return one NodeImage.
        return str(img.id)  # type: ignore[attr-defined]

    def image_status(self, image_id: str) -> str:
        try:
            img = self._call("get_image", lambda: self._driver.get_image(image_id))
        except ProviderError as e:
            if e.kind == "not-found":
                return "missing"
            raise
        status = str((img.extra or {}).get("status", "active")).lower()
        if status in ("active", "available", "ready"):
            return "ready"
        if status in ("error", "failed", "killed", "deleted"):
            return "failed"
        return "building"

    def delete_image(self, image_id: str) -> None:
        img = NodeImage(id=image_id, name=image_id, driver=self._driver)
        try:
            self._call("delete_image", lambda: self._driver.delete_image(img))
        except ProviderError as e:
            if e.kind != "not-found":
                raise
        self._images = {k: v for k, v in self._images.items() if v.id != image_id}
