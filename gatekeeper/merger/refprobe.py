"""Ask the git server for its branch and tag tips without running git.

A merge starts with a fetch of the project's branches and tags, and most
of the time that fetch brings nothing: the patchset was fetched when it was
uploaded (patchset refs never move) and no branch moved since. Finding
that out with ``git fetch`` costs a git process, an ssh process, the
server's upload-pack and a connectivity check. This probe asks the same
question on one persistent SSH connection of the merger process: git's
protocol v2 ``ls-refs`` for ``refs/heads/`` and ``refs/tags/`` (what the
merger's fetch refspecs cover). When the answer equals what the merger's
last fetch got, the fetch is skipped: it would have changed nothing.

The connection is paramiko's (gatekeeper.gerrit.ssh.connect): only the
configured key, the host key checked against the known_hosts file (the
pinned one in trust-on-first-use mode, once git has pinned it), never an
unknown key accepted. Any doubt (a server without protocol v2, an error, a
timeout, no pinned key yet) answers None and the merger fetches as before;
git then reports whatever is wrong."""

from __future__ import annotations

import getpass
import logging
import os
import re
import threading
import time
from typing import Any

from gatekeeper.shell import command_line
from gatekeeper.ssh import SshTarget

log = logging.getLogger("gatekeeper.merger.refprobe")

_SSH_URL = re.compile(r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>[^/:]+|\[[^\]]+\])"
                      r"(?::(?P<port>[0-9]+))?(?P<path>/.*)?$")
PREFIXES = ("refs/heads/", "refs/tags/")


class NoAnswer(Exception):
    """The server did not give a usable ls-refs answer."""


def parse_ssh_base(base: str) -> tuple[str, int, str | None, str] | None:
    """(host, port, user, path prefix) of an ``ssh://`` base URL, else None."""
    m = _SSH_URL.match(base)
    if not m:
        return None
    host = m["host"].strip("[]")
    return host, int(m["port"] or 22), m["user"], (m["path"] or "/").rstrip("/") + "/"


def pkt(line: str) -> bytes:
    data = line.encode()
    return f"{len(data) + 4:04x}".encode() + data


def ls_refs_request(prefixes: tuple[str, ...] = PREFIXES) -> bytes:
    return (pkt("command=ls-refs\n") + pkt("agent=gatekeeper\n") + b"0001"
            + b"".join(pkt(f"ref-prefix {p}\n") for p in prefixes) + b"0000")


class _Reader:
    def __init__(self, chan: Any, deadline: float):
        self.chan = chan
        self.deadline = deadline
        self.buf = b""

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if time.monotonic() > self.deadline:
                raise NoAnswer("timed out")
            data = self.chan.recv(65536)
            if not data:
                raise NoAnswer("upload-pack ended early")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self) -> bytes | None:
        """One pkt-line's payload; None for a flush (or delim) packet."""
        head = self.exact(4)
        try:
            size = int(head, 16)
        except ValueError:
            raise NoAnswer(f"bad pkt-line length {head!r}") from None
        if size in (0, 1, 2):
            return None
        if size < 4:
            raise NoAnswer(f"bad pkt-line length {size}")
        return self.exact(size - 4)


def ls_refs(chan: Any, deadline: float) -> dict[str, str]:
    """Run ``ls-refs`` on a channel that exec'd git-upload-pack with
    GIT_PROTOCOL=version=2; {ref: object id}."""
    reader = _Reader(chan, deadline)
    first = reader.packet()
    if first is None or first.rstrip(b"\n") != b"version 2":
        raise NoAnswer("the server does not speak protocol v2")
    caps = []
    while (line := reader.packet()) is not None:
        caps.append(line.rstrip(b"\n"))
    if not any(c == b"ls-refs" or c.startswith(b"ls-refs=") for c in caps):
        raise NoAnswer("the server has no ls-refs")
    chan.sendall(ls_refs_request())
    refs: dict[str, str] = {}
    while (line := reader.packet()) is not None:
        oid, _, rest = line.rstrip(b"\n").decode("utf-8", "replace").partition(" ")
        name = rest.split(" ", 1)[0]
        if name.startswith(PREFIXES):
            refs[name] = oid
    return refs


class RefProbe:
    """One per merger; thread-safe (channels on one shared connection)."""

    def __init__(self, base: str, private_key: str | None, known_hosts: str | None,
                 timeout: float = 10.0):
        parsed = parse_ssh_base(base)
        self.usable = parsed is not None and bool(private_key) and bool(known_hosts)
        self.host, self.port, self.user, self.prefix = parsed or ("", 0, None, "/")
        self.private_key = private_key
        self.known_hosts = known_hosts
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ssh: Any = None  # gatekeeper.gerrit.ssh.GerritSSH, made on first use
        self.probes = 0  # answers given (tests count work)

    def _client(self) -> Any:
        with self._lock:
            if self._ssh is None:
                from gatekeeper.gerrit.ssh import GerritSSH

                # Trust on first use: git pins the key at its first connection.
                if not self.known_hosts or not os.path.exists(self.known_hosts):
                    return None
                self._ssh = GerritSSH(SshTarget(
                    self.host, self.port, self.user or getpass.getuser(),
                    private_key=self.private_key, known_hosts=self.known_hosts,
                    host_key_checking=True, connect_timeout=self.timeout),
                    command_timeout=self.timeout)
            return self._ssh

    def refs(self, project: str) -> dict[str, str] | None:
        """The server's branch and tag tips of ``project``; None: ask git."""
        if not self.usable:
            return None
        try:
            ssh = self._client()
            if ssh is None:
                return None
            chan = ssh.open_channel()
        except Exception as e:  # connect/auth/host key: git reports it properly
            log.debug("ref probe for %s: no connection: %s", project, e)
            return None
        try:
            chan.settimeout(self.timeout)
            chan.set_environment_variable("GIT_PROTOCOL", "version=2")
            chan.exec_command(command_line(["git-upload-pack", self.prefix + project]))
            refs = ls_refs(chan, time.monotonic() + self.timeout)
            self.probes += 1
            return refs
        except Exception as e:  # NoAnswer, the connection dropped, ...: fetch
            log.debug("ref probe for %s: %s", project, e)
            return None
        finally:
            try:
                chan.close()
            except Exception:
                pass

    def close(self) -> None:
        with self._lock:
            ssh, self._ssh = self._ssh, None
        if ssh is not None:
            ssh.close()
