"""Commands and file transfer to a claimed node, with the system OpenSSH client.

Why the ``ssh`` binary and not paramiko: rsync needs ``ssh`` anyway, so both
share one set of options (host key pinned in a per-build known_hosts file,
``IdentitiesOnly``, batch mode) and one behaviour to debug; OpenSSH's
keepalives, timeouts and exit statuses (255 = ssh itself failed) are well
known to operators; and a local child process per remote command is easy to
stream from and to kill.

Remote commands are only ever built from argv lists by ``gatekeeper.shell``
(the job wrapper and kill scripts live there too)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gatekeeper.interfaces import NodeLease
from gatekeeper.model.names import SAFE_HOST, SAFE_USER
from gatekeeper.shell import RCFILE, command_line, job_argv, kill_argv
from gatekeeper.ssh import SshError

log = logging.getLogger("gatekeeper.worker.ssh")

SSH_FAILED = 255  # OpenSSH's exit status when ssh itself (not the command) failed

def known_hosts_line(host: str, port: int, host_key: str) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    parts = host_key.split()
    if len(parts) < 2:
        raise ValueError("host key must be 'TYPE BASE64'")
    return f"{name} {parts[0]} {parts[1]}\n"


class RemoteProcess:
    """A running ``ssh`` whose merged stdout/stderr is handed to ``on_line``."""

    def __init__(self, proc: subprocess.Popen[bytes], on_line: Callable[[str], None]):
        self._proc = proc
        self._on_line = on_line
        self._eof = threading.Event()
        self._reader = threading.Thread(target=self._read, name="ssh-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            for raw in iter(self._proc.stdout.readline, b""):
                try:
                    self._on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
                except Exception:  # a broken sink must not stop the draining
                    log.exception("console sink failed")
        finally:
            self._eof.set()

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after ``timeout`` seconds."""
        if not self._eof.wait(timeout):
            return None
        try:
            return self._proc.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, grace: float = 5.0) -> None:
        """Stop the local ssh process (the remote group is killed separately)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=grace)


class SshNode:
    """One claimed node, reached with ``ssh``/``rsync`` using a per-build known_hosts.

    ``state_dir`` is a private local directory of the build (the known_hosts
    file lives there)."""

    def __init__(self, lease: NodeLease, state_dir: Path, connect_timeout: float = 15.0,
                 ssh: str = "ssh", rsync: str = "rsync", multiplex: bool = True) -> None:
        if not SAFE_HOST.match(lease.host) or not SAFE_USER.match(lease.username):
            raise ValueError("node host or username has unexpected characters")
        self.lease = lease
        self.workdir = lease.extra.get("workdir") or "workspace"
        self._ssh = ssh
        self._rsync_bin = rsync
        self._connect_timeout = connect_timeout
        state_dir.mkdir(parents=True, exist_ok=True)
        # One SSH connection per build, shared by every command and rsync
        # (ControlMaster): a handshake costs 0.1-0.4 s and a build makes ~6 of them.
        # The socket lives in a short private dir: unix socket paths max out at 108 bytes.
        self._control_dir = Path(tempfile.mkdtemp(prefix="gk-ssh-")) if multiplex else None
        self.known_hosts = state_dir / "known_hosts"
        if lease.host_key:
            self.known_hosts.write_text(known_hosts_line(lease.host, lease.port, lease.host_key))
            self._strict = "yes"
        else:
            log.warning("node %s has no known host key: its identity is NOT verified",
                        lease.node_id)
            self.known_hosts.write_text("")
            self._strict = "no"

    def ssh_options(self) -> list[str]:
        opts = ["-F", "/dev/null",  # the worker user's ssh config must not change behaviour
                "-p", str(self.lease.port),
                "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"StrictHostKeyChecking={self._strict}",
                "-o", f"ConnectTimeout={int(self._connect_timeout)}",
                "-o", "ServerAliveInterval=15",
                "-o", "ServerAliveCountMax=4",
                "-o", "LogLevel=ERROR"]
        if self.lease.private_key:
            opts += ["-i", self.lease.private_key]
        if self._control_dir is not None:
            opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C",
                     "-o", "ControlPersist=60"]  # the master outlives a crashed worker by 60 s
        return opts

    def close(self) -> None:
        """End the shared connection (idempotent)."""
        control, self._control_dir = self._control_dir, None
        if control is None:
            return
        try:
            cp = subprocess.run([self._ssh, "-F", "/dev/null", "-o", f"ControlPath={control}/%C",
                                 "-p", str(self.lease.port), "-O", "exit", "-l",
                                 self.lease.username, self.lease.host],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
            if cp.returncode == 0:
                # The master removes its socket as it exits, after answering "exit".
                deadline = time.monotonic() + 5
                while any(control.iterdir()) and time.monotonic() < deadline:
                    time.sleep(0.02)
        except subprocess.TimeoutExpired:
            log.warning("ssh master for %s did not exit", self.lease.node_id)
        shutil.rmtree(control, ignore_errors=True)

    def ssh_argv(self, remote_argv: Sequence[str]) -> list[str]:
        return [self._ssh, *self.ssh_options(), "-T", "-l", self.lease.username,
                self.lease.host, command_line(remote_argv)]

    # -- commands ------------------------------------------------------------
    def run(self, remote_argv: Sequence[str], timeout: float = 60.0
            ) -> subprocess.CompletedProcess[str]:
        """Run a short command; SshError when ssh itself fails or times out."""
        try:
            cp = subprocess.run(self.ssh_argv(remote_argv), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SshError(f"ssh to {self.lease.node_id} timed out after {timeout:g}s") from e
        if cp.returncode == SSH_FAILED:
            raise SshError(f"ssh to {self.lease.node_id} failed: {cp.stderr.strip()[-500:]}")
        return cp

    def start_job(self, argv: Sequence[str], env: Mapping[str, str],
                  on_line: Callable[[str], None]) -> RemoteProcess:
        """Start ``argv`` under the workdir in its own process group, streaming output."""
        proc = subprocess.Popen(self.ssh_argv(job_argv(self.workdir, env, argv)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        return RemoteProcess(proc, on_line)

    def kill_job(self, grace: float = 10.0) -> str:
        """Kill the job's whole remote process group (TERM, then KILL after ``grace``)."""
        cp = self.run(kill_argv(self.workdir, grace), timeout=grace + self._connect_timeout + 10)
        return cp.stdout.strip()

    def job_status(self) -> int | None:
        """The exit status the job recorded on the node; None if it has not exited
        (or never started)."""
        cp = self.run(["cat", "--", f"{self.workdir}/{RCFILE}"])
        try:
            return int(cp.stdout.strip()) if cp.returncode == 0 else None
        except ValueError:
            return None

    # -- files ---------------------------------------------------------------
    def rsync_rsh(self) -> str:
        """rsync's ``-e`` value: rsync splits it on spaces and honours quotes."""
        return command_line([self._ssh, *self.ssh_options()])

    def _remote(self, path: str) -> str:
        return f"{self.lease.username}@{self.lease.host}:{path}"

    def rsync_argv(self, src: str, dst: str, delete: bool = False) -> list[str]:
        # -s (--secluded-args): remote paths reach rsync on the node unsplit
        # and unexpanded by the remote shell.
        argv = [self._rsync_bin, "-az", "-s", "-e", self.rsync_rsh()]
        if delete:
            argv.append("--delete")
        return [*argv, "--", src, dst]

    def _rsync(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SshError(f"rsync with {self.lease.node_id} timed out after {timeout:g}s") from e

    def push(self, local_dir: Path, timeout: float = 1800.0) -> None:
        """Make the node's workdir an exact copy of ``local_dir``."""
        cp = self.run(["mkdir", "-p", "--", self.workdir])
        if cp.returncode != 0:
            raise SshError(f"cannot create {self.workdir} on {self.lease.node_id}: "
                           f"{cp.stderr.strip()[-500:]}")
        cp = self._rsync(self.rsync_argv(f"{local_dir}/", self._remote(f"{self.workdir}/"),
                                         delete=True), timeout)
        if cp.returncode != 0:
            raise SshError(f"rsync to {self.lease.node_id} failed ({cp.returncode}): "
                           f"{cp.stderr.strip()[-500:]}")

    def pull(self, remote_path: str, local_dest: Path, timeout: float = 1800.0,
             into_dir: bool = False) -> bool:
        """Copy ``remote_path`` (relative to the workdir, or absolute; rsync expands
        wildcards) to ``local_dest``, or into that directory with ``into_dir``.

        False when the path does not exist on the node (rsync exit 23);
        SshError when the node cannot be reached."""
        if not remote_path.startswith("/"):
            remote_path = f"{self.workdir}/{remote_path}"
        (local_dest if into_dir else local_dest.parent).mkdir(parents=True, exist_ok=True)
        dst = f"{local_dest}/" if into_dir else str(local_dest)
        cp = self._rsync(self.rsync_argv(self._remote(remote_path), dst), timeout)
        if cp.returncode == 0:
            return True
        if cp.returncode in (23, 24):  # partial transfer / vanished files
            log.info("pull %s from %s: %s", remote_path, self.lease.node_id,
                     cp.stderr.strip()[-300:])
            return local_dest.exists()
        raise SshError(f"rsync from {self.lease.node_id} failed ({cp.returncode}): "
                       f"{cp.stderr.strip()[-500:]}")


def host_key_from_known_hosts(text: str, host: str, port: int = 22) -> str | None:
    """The first plain (unhashed) key for ``host``:``port`` in known_hosts text.

    Lets an operator pin static nodes' host keys with a known_hosts file
    (``ssh-keyscan -p PORT HOST >> FILE``) instead of copying keys into the config."""
    want = host if port == 22 else f"[{host}]:{port}"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0].startswith(("#", "|", "@")):
            continue
        if want in parts[0].split(","):
            return f"{parts[1]} {parts[2]}"
    return None
