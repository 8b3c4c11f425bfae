"""SSH to a node: the ready check and running commands (setup, reset).

Host keys: a node whose host key we know is verified (RejectPolicy); a
freshly booted cloud node's key is unknown, so the first key seen is
recorded (trust on first use, like nodepool's keyscan) and handed to the
worker, which verifies it from then on. Keys are passed as file paths and
never logged."""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
from dataclasses import dataclass

import paramiko

from gatekeeper.ssh import SshError, SshTarget

log = logging.getLogger("gatekeeper.nodes.sshrun")


class _Record(paramiko.MissingHostKeyPolicy):
    def __init__(self) -> None:
        self.seen: str | None = None

    def missing_host_key(self, client, hostname, key):
        self.seen = f"{key.get_name()} {key.get_base64()}"


def _known_name(t: SshTarget) -> str:
    return t.host if t.port == 22 else f"[{t.host}]:{t.port}"


def connect(t: SshTarget, timeout: float = 10.0) -> tuple[paramiko.SSHClient, str]:
    """An authenticated client and the server's host key line."""
    client = paramiko.SSHClient()
    record = _Record()
    if t.host_key:
        kind, _, b64 = t.host_key.strip().partition(" ")
        try:
            key = paramiko.PKey.from_type_string(kind, base64.b64decode(b64.split()[0]))
        except Exception as e:
            raise SshError(f"bad host key for {t.host}:{t.port}: {e}") from None
        client.get_host_keys().add(_known_name(t), kind, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(record)
    try:
        client.connect(t.host, port=t.port, username=t.username, key_filename=t.private_key,
                       look_for_keys=False, allow_agent=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as e:
        client.close()
        # str(e) from paramiko never includes key material; keep it short.
        raise SshError(f"ssh {t.username}@{t.host}:{t.port}: {type(e).__name__}: {e}") from None
    transport = client.get_transport()
    assert transport is not None
    remote = transport.get_remote_server_key()
    return client, f"{remote.get_name()} {remote.get_base64()}"


def run(t: SshTarget, command: str, timeout: float = 60.0, stdin: bytes | None = None,
        connect_timeout: float = 10.0) -> tuple[int, str, str]:
    """Run ``command`` (a shell command line we wrote or the operator
    configured) and return (exit status, stdout, stderr)."""
    client, _ = connect(t, connect_timeout)
    try:
        chan_in, out, err = client.exec_command(command, timeout=timeout)
        if stdin is not None:
            chan_in.write(stdin)
            chan_in.channel.shutdown_write()
        o = out.read().decode("utf-8", "replace")
        e = err.read().decode("utf-8", "replace")
        return out.channel.recv_exit_status(), o, e
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise SshError(f"ssh {t.host}:{t.port}: {command.split()[0] if command else ''}: "
                       f"{type(e).__name__}") from None
    finally:
        client.close()


@dataclass(frozen=True)
class ReadyCheck:
    """Prove a node is alive: SSH in with its key, verify (or record) its
    host key, run ``command``. ``ping`` first if enabled (off by default:
    many clouds drop ICMP)."""

    command: str = "true"
    timeout: float = 10.0
    ping: bool = False

    def __call__(self, t: SshTarget) -> str:
        """The host key line on success; raises SshError otherwise."""
        if self.ping:
            res = subprocess.run(["ping", "-c", "1", "-W", "2", t.host],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, check=False)
            if res.returncode != 0:
                raise SshError(f"{t.host} does not answer ping")
        client, host_key = connect(t, self.timeout)
        try:
            _, out, _ = client.exec_command(self.command, timeout=self.timeout)
            out.read()
            status = out.channel.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SshError(f"ready check on {t.host}:{t.port}: {type(e).__name__}") from None
        finally:
            client.close()
        if status != 0:
            raise SshError(f"ready check on {t.host}:{t.port}: {self.command!r} exited {status}")
        return host_key


def ssh_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something on host:port sends an SSH banner right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False
