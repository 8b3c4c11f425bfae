"""SSH to Gerrit with paramiko: connect safely, run one command, read the result.

gerritlib's ``GerritConnection`` accepts unknown host keys (``WarningPolicy``),
tries every key in ~/.ssh and the agent, and retries forever on a bad key, so
the connection is made here: ``RejectPolicy`` against the configured
known_hosts unless checking is off, only the configured key, and errors split
into the ones worth retrying (:class:`GerritTransportError`) and the ones that
are not (:class:`GerritAuthError`, :class:`GerritHostKeyError`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from gatekeeper.interfaces import SourceUnavailable
from gatekeeper.shell import command_line  # Gerrit's sshd splits like a shell
from gatekeeper.ssh import SshTarget

log = logging.getLogger("gatekeeper.gerrit.ssh")

MAX_OUTPUT = 64 * 1024 * 1024  # a query answer bigger than this is a runaway


class GerritError(Exception):
    """Base of the errors talking to Gerrit. Messages never contain secrets."""


class GerritTransportError(GerritError, SourceUnavailable):
    """The connection failed or dropped; trying again may help."""


class GerritFatalError(GerritError):
    """Retrying will not help until an operator fixes something."""


class GerritAuthError(GerritFatalError):
    pass


class GerritHostKeyError(GerritFatalError):
    pass


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise GerritHostKeyError(
            f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in known_hosts; "
            "add it (ssh-keyscan) or set host_key_checking: false")


class _AcceptSilently(paramiko.MissingHostKeyPolicy):
    """host_key_checking: false -- the operator said so; note it once at debug level."""

    def missing_host_key(self, client, hostname, key):
        log.debug("Not checking host key of %s (%s)", hostname, key.get_name())


def load_key(private_key: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(private_key)
    except FileNotFoundError as e:
        raise GerritAuthError(f"SSH key file {private_key} does not exist") from e
    except PermissionError as e:
        raise GerritAuthError(f"SSH key file {private_key} is not readable") from e
    except paramiko.PasswordRequiredException as e:
        raise GerritAuthError(f"SSH key file {private_key} is encrypted; "
                              "use a key without a passphrase") from e
    except (paramiko.SSHException, ValueError, OSError) as e:
        raise GerritAuthError(f"SSH key file {private_key} could not be loaded "
                              f"({type(e).__name__})") from e


def connect(target: SshTarget) -> paramiko.SSHClient:
    """A connected, authenticated client; raises a :class:`GerritError`."""
    client = paramiko.SSHClient()
    try:
        if target.host_key_checking:
            if target.known_hosts:
                if not os.path.exists(target.known_hosts):
                    raise GerritHostKeyError(
                        f"known_hosts file {target.known_hosts} does not exist")
                client.load_host_keys(target.known_hosts)
            else:
                client.load_system_host_keys()
            client.set_missing_host_key_policy(_RejectUnknown())
        else:
            client.set_missing_host_key_policy(_AcceptSilently())
        pkey = load_key(target.private_key) if target.private_key else None
        client.connect(
            target.host, port=target.port, username=target.username, pkey=pkey,
            look_for_keys=False, allow_agent=False, timeout=target.connect_timeout,
            banner_timeout=target.connect_timeout, auth_timeout=target.connect_timeout)
        transport = client.get_transport()
        if transport is not None:
            # Without it every command waits ~40 ms (Nagle + delayed ACK):
            # ~24 commands/s instead of ~800/s measured against the emulator.
            if isinstance(transport.sock, socket.socket):  # not through a proxy channel
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.keepalive:
                transport.set_keepalive(target.keepalive)
        return client
    except GerritError:
        close_client(client)
        raise
    except paramiko.BadHostKeyException as e:
        close_client(client)
        raise GerritHostKeyError(
            f"host key of {target.host}:{target.port} does not match known_hosts "
            f"(got {e.key.get_name()} {e.key.fingerprint}); refusing to connect") from e
    except paramiko.AuthenticationException as e:
        close_client(client)
        raise GerritAuthError(
            f"Gerrit {target.describe()} rejected the SSH key"
            f"{' ' + target.private_key if target.private_key else ''} ({type(e).__name__}); "
            "check the username and that the public key is registered") from e
    except (OSError, EOFError, paramiko.SSHException) as e:
        close_client(client)
        raise GerritTransportError(
            f"cannot connect to Gerrit {target.describe()}: {type(e).__name__}: {e}") from e


def close_client(client: paramiko.SSHClient | None, join_timeout: float = 5.0) -> None:
    """Close ``client`` and wait for its transport thread, so nothing leaks."""
    if client is None:
        return
    transport = client.get_transport()
    try:
        client.close()
    except Exception:  # closing a broken client must not stop a reconnect
        log.debug("Error closing SSH client", exc_info=True)
    if transport is not None and transport is not threading.current_thread():
        transport.join(join_timeout)


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def error_text(self, limit: int = 2000) -> str:
        text = (self.stderr.strip() or self.stdout.strip() or f"exit status {self.exit_status}")
        return text[:limit]


def run_on_client(client: paramiko.SSHClient, argv: Sequence[str], stdin: bytes | None = None,
                  timeout: float = 60.0) -> CommandResult:
    """Run one command on an open client; raises GerritTransportError if the
    channel breaks or the command does not finish within ``timeout``."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise GerritTransportError("SSH connection is not active")
    deadline = time.monotonic() + timeout
    try:
        chan = transport.open_session(timeout=timeout)
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise GerritTransportError(f"cannot open SSH channel: {type(e).__name__}: {e}") from e
    out = bytearray()
    err = bytearray()
    try:
        chan.settimeout(0.2)
        chan.exec_command(command_line(argv))
        if stdin:
            chan.sendall(stdin)
        chan.shutdown_write()
        while True:
            if time.monotonic() > deadline:
                raise GerritTransportError(f"Gerrit command {argv[:2]} timed out after {timeout}s")
            got = False
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                got = True
            try:
                data = chan.recv(65536)
            except TimeoutError:
                data = None
            if data:
                out += data
                got = True
                if len(out) > MAX_OUTPUT:
                    raise GerritTransportError("Gerrit command output too large")
            elif data == b"":
                break  # EOF on stdout
            if not got and not transport.is_active():
                raise GerritTransportError("SSH connection closed during command")
        # Drain stderr and wait for the exit status (bounded).
        while not chan.exit_status_ready():
            if time.monotonic() > deadline or not transport.is_active():
                raise GerritTransportError("no exit status from Gerrit command")
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            time.sleep(0.01)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        status = chan.recv_exit_status()
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise GerritTransportError(f"SSH command failed: {type(e).__name__}: {e}") from e
    finally:
        chan.close()
    if status == -1:  # the server closed the channel without an exit status
        raise GerritTransportError("Gerrit command ended without an exit status")
    return CommandResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


class GerritSSH:
    """A shared, lazily (re)connected client for short commands (query,
    review, ls-remote). Channels are multiplexed on one connection; a broken
    connection is closed and replaced on the next call."""

    def __init__(self, target: SshTarget, command_timeout: float = 60.0):
        self.target = target
        self.command_timeout = command_timeout
        self._lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None

    def _get_client(self) -> paramiko.SSHClient:
        with self._lock:
            c = self._client
            if c is not None:
                t = c.get_transport()
                if t is not None and t.is_active():
                    return c
                self._client = None
                close_client(c)
            self._client = connect(self.target)
            return self._client

    def _discard(self, client: paramiko.SSHClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        close_client(client)

    def run(self, argv: Sequence[str], stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        client = self._get_client()
        try:
            return run_on_client(client, argv, stdin, timeout or self.command_timeout)
        except GerritTransportError:
            self._discard(client)
            raise

    def open_channel(self) -> paramiko.Channel:
        """A fresh session channel on the shared connection (for protocols like upload-pack)."""
        client = self._get_client()
        t = client.get_transport()
        try:
            assert t is not None
            return t.open_session(timeout=self.command_timeout)
        except (OSError, EOFError, AssertionError, paramiko.SSHException) as e:
            self._discard(client)
            raise GerritTransportError(f"cannot open SSH channel: {e}") from e

    def close(self) -> None:
        with self._lock:
            c, self._client = self._client, None
        close_client(c)
