"""Gearman admin protocol over short-lived connections.

Admin commands (``status``, ``cancel job``) are line based. gear.Server
does not answer some of them (``version``, ``show jobs``), and an
unanswered request blocks every later admin reply on the same
connection, so each query here opens its own socket with a timeout and
closes it: a silent server costs one timeout, never a stuck connection.
Nothing here runs on the scheduler thread."""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass

from gatekeeper.gearman.nodelay import set_nodelay

log = logging.getLogger("gatekeeper.gearman.admin")


class AdminError(Exception):
    pass


@dataclass(frozen=True)
class FunctionStatus:
    name: str
    queued: int  # total jobs (waiting + running), as the server counts them
    running: int
    workers: int


@dataclass(frozen=True)
class AdminTarget:
    host: str
    port: int
    ssl_key: str | None = None
    ssl_cert: str | None = None
    ssl_ca: str | None = None

    @property
    def use_ssl(self) -> bool:
        return bool(self.ssl_key and self.ssl_cert and self.ssl_ca)


def _connect(target: AdminTarget, timeout: float) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=timeout)
    set_nodelay(sock)
    if target.use_ssl:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=target.ssl_ca)
        ctx.check_hostname = False  # as gear does: the CA pins the server
        ctx.load_cert_chain(target.ssl_cert or "", target.ssl_key)
        sock = ctx.wrap_socket(sock, server_hostname=target.host)
    return sock


def command(target: AdminTarget, line: str, multiline: bool = True,
            timeout: float = 5.0) -> list[str]:
    """Send one admin command; return the reply lines (without the final ``.``).

    Raises AdminError when the server does not answer within ``timeout``
    or the connection fails."""
    if "\n" in line or "\r" in line:
        raise ValueError("admin command must be one line")
    try:
        with _connect(target, timeout) as sock:
            sock.sendall(line.encode("utf-8") + b"\n")
            buf = b""
            while True:
                if multiline:
                    if buf.startswith(b".\n") or b"\n.\n" in buf:
                        break
                elif b"\n" in buf:
                    break
                chunk = sock.recv(65536)
                if not chunk:
                    raise AdminError(f"gearman {target.host}:{target.port} closed the "
                                     f"connection during {line.split()[0]!r}")
                buf += chunk
    except (OSError, ssl.SSLError) as e:
        raise AdminError(f"gearman {target.host}:{target.port}: {line.split()[0]!r}: {e}") from e
    text = buf.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = text.split("\n")
    if multiline:
        end = lines.index(".")
        return lines[:end]
    return [lines[0]]


def status(target: AdminTarget, timeout: float = 5.0) -> dict[str, FunctionStatus]:
    """Every function the server knows: queued, running and worker counts."""
    result: dict[str, FunctionStatus] = {}
    for row in command(target, "status", timeout=timeout):
        parts = row.split("\t")
        if len(parts) < 4:
            continue
        try:
            result[parts[0]] = FunctionStatus(parts[0], int(parts[1]), int(parts[2]),
                                              int(parts[3]))
        except ValueError:
            log.debug("ignoring status row %r", row)
    return result


def registered(target: AdminTarget, function: str, timeout: float = 5.0) -> bool:
    """Whether at least one worker can run ``function`` right now."""
    st = status(target, timeout).get(function)
    return bool(st and st.workers > 0)
