"""Provider adapters: what the pool service calls to get and remove servers.

``CloudAPI`` is the small surface the launcher, reaper and image builder
need; :mod:`.cloud` implements it over any libcloud driver and :mod:`.local`
over sshd processes on loopback. Static hosts (:mod:`.static`) are not
launched at all: they are reset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

META_POOL = "gatekeeper_pool"
META_NODE = "gatekeeper_node"
META_IMAGE = "gatekeeper_image_build"


@dataclass(frozen=True)
class Server:
    id: str
    state: str  # libcloud NodeState value: "running", "pending", "error", ...
    host: str | None = None
    port: int = 22
    metadata: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # a directory builds must stay in (local/fake nodes)


@dataclass(frozen=True)
class BootSpec:
    """How to boot one server of an image on a provider."""

    image: str  # the image's name in our config
    base_image: str  # provider image name or id to boot when no snapshot is used
    username: str
    private_key: str  # path
    flavor: str | None = None
    min_ram: int = 0
    key_name: str | None = None  # provider key pair (OpenStack ex_keyname)
    public_key: str | None = None  # injected with NodeAuthSSHKey when set


class ProviderError(Exception):
    """A provider API call failed. ``kind``: "quota" (over quota: try other
    providers), "auth", "not-found" or "error"."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


class CloudAPI(Protocol):
    name: str

    def create_server(self, name: str, spec: BootSpec, image_ref: str | None,
                      metadata: dict[str, str]) -> Server: ...

    def get_server(self, server_id: str) -> Server | None: ...

    def list_servers(self) -> list[Server]: ...

    def delete_server(self, server_id: str) -> None: ...

    def create_image(self, server_id: str, name: str) -> str: ...

    def image_status(self, image_id: str) -> str:
        """"ready", "building", "failed" or "missing"."""
        ...

    def delete_image(self, image_id: str) -> None: ...
