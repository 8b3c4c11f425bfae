"""A node that is a real OpenSSH ``sshd`` on a loopback port.

Used by the local provider (quickstart) and by tests: each node has its own
directory holding its host key, config, log and a ``work`` directory the
worker uses as the node's workspace root. Nothing is shared between nodes but
the machine's filesystem, which is why jobs must stay inside ``workdir``."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gatekeeper.netutil import free_port

log = logging.getLogger("gatekeeper.nodes.localsshd")

__all__ = ["LocalSshd", "free_port", "generate_keypair", "wait_for_ssh_banner"]

SSHD = os.environ.get("GATEKEEPER_SSHD", "/usr/sbin/sshd")


def generate_keypair(path: Path, comment: str = "gatekeeper") -> Path:
    """Create an ed25519 key pair at ``path`` (and ``path``.pub) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        path.chmod(0o600)
    return path


def wait_for_ssh_banner(host: str, port: int, timeout: float) -> bool:
    """True once something on host:port speaks SSH (sends its banner)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0) as s:
                s.settimeout(1.0)
                if s.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@dataclass
class LocalSshd:
    """One sshd node. ``start()`` / ``stop()`` / ``restart()``; idempotent stop."""

    root: Path
    authorized_keys: list[str]  # public key lines allowed to log in
    host: str = "127.0.0.1"
    port: int = 0
    name: str = "node"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------
    @property
    def host_key_path(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def log_path(self) -> Path:
        return self.root / "sshd.log"

    @property
    def username(self) -> str:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name

    def host_key_line(self) -> str:
        """The node's public host key ("ssh-ed25519 AAAA...")."""
        parts = (self.host_key_path.with_suffix(".pub")).read_text().split()
        return f"{parts[0]} {parts[1]}"

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key_line()}"

    # -- lifecycle -----------------------------------------------------------
    def _write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(exist_ok=True)
        generate_keypair(self.host_key_path, comment=f"{self.name}-host")
        ak = self.root / "authorized_keys"
        ak.write_text("".join(k.strip() + "\n" for k in self.authorized_keys))
        ak.chmod(0o600)
        cfg = self.root / "sshd_config"
        cfg.write_text(
            "\n".join([
                f"ListenAddress {self.host}",
                f"Port {self.port}",
                f"HostKey {self.host_key_path}",
                f"PidFile {self.root / 'sshd.pid'}",
                # + the workdir's, where the pool installs autoholds' developer keys
                f"AuthorizedKeysFile {ak} {self.workdir}/.ssh/authorized_keys",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",  # keys live under /tmp in tests
                "UseDNS no",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "LogLevel INFO",
                "Subsystem sftp internal-sftp",
                "",
            ])
        )
        return cfg

    def start(self, timeout: float = 15.0) -> LocalSshd:
        if self._proc and self._proc.poll() is None:
            return self
        if not self.port:
            self.port = free_port(self.host)
        cfg = self._write_config()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(cfg)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
            )
        if not wait_for_ssh_banner(self.host, self.port, timeout):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"sshd node {self.name} did not start on port {self.port}: {tail}")
        log.debug("node %s: sshd on %s:%d", self.name, self.host, self.port)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                # Every connection's sshd calls setsid(), so killing the listener's group
                # leaves established sessions running. Freeze the listener (no new
                # connections), kill everything below it, then the listener itself.
                os.killpg(proc.pid, signal.SIGSTOP)
                for pid in _descendants(proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                os.killpg(proc.pid, signal.SIGTERM)
                os.killpg(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def restart(self, timeout: float = 15.0) -> LocalSshd:
        """Stop and start again on the same port (a 'reboot' of the node)."""
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (children first seen by their parent id in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
