"""Where and how to reach an SSH server, Gerrit's or a node's, and the error
for not getting there. Keys are file paths, never key material."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    username: str
    private_key: str | None = None  # the only key offered (no agent, no ~/.ssh/id_*)
    # A node's pinned host key ("ssh-ed25519 AAAA..."); None: known_hosts, or
    # for a freshly booted node the first key seen (trust on first use).
    host_key: str | None = None
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    host_key_checking: bool = True
    connect_timeout: float = 10.0
    keepalive: int = 15  # seconds between SSH keepalives (0 = off)

    def describe(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


class SshError(Exception):
    """SSH (or rsync over it) could not reach or log in to the host; not a
    failure of the command run there."""
