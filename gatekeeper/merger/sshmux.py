"""One SSH connection to the git server, shared by every fetch of a merger.

A ``git fetch`` over ssh:// costs an SSH handshake each time (~50-80 ms
against Gerrit, more than the fetch itself). With OpenSSH's ControlMaster
the first fetch leaves a master connection behind and later fetches open a
channel on it. The master is started by ssh itself (``ControlMaster=auto``):
the host key is verified and our key is used when it connects, exactly as
for a plain fetch; a fetch through it cannot change either.

Lifetime: :meth:`close` (the merger stopping) tells every master to exit and
waits for its socket to go. A merger killed with -9 cannot: its master then
exits after ``PERSIST`` idle seconds by itself, and the next merger on the
same ``git_dir`` (the socket directory is derived from it) ends it at start.
The directory is private (0700, ours), as anyone who can open a socket there
could use our Gerrit connection."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger("gatekeeper.merger.sshmux")

PERSIST = 60  # seconds an idle master stays; also how long one outlives a killed merger
# A unix socket path has at most 107 bytes; ssh adds "/" + %C (40) + a
# temporary suffix (~17) while it sets the socket up.
_MAX_DIR = 107 - 1 - 40 - 17


def control_dir_for(git_dir: Path) -> Path:
    """Where the sockets of the merger on ``git_dir`` live: ``git_dir/.ssh-mux``
    (project names cannot start with a dot) or, when that path is too long
    for a socket, a directory in the temp dir named after ``git_dir``."""
    inside = Path(git_dir).resolve() / ".ssh-mux"
    if len(os.fsencode(str(inside))) <= _MAX_DIR:
        return inside
    digest = hashlib.sha1(os.fsencode(str(Path(git_dir).resolve()))).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"gk-merger-ssh-{digest}"


class SshMux:
    def __init__(self, git_dir: Path, ssh: str = "ssh"):
        self.ssh = ssh
        self.dir: Path | None = self._private_dir(control_dir_for(git_dir))
        if self.dir is not None:
            self._end_masters("left by an earlier merger")

    @staticmethod
    def _private_dir(path: Path) -> Path | None:
        """``path`` created 0700 and checked to be ours and private; None (no
        shared connection) if it cannot be, e.g. someone else made it first."""
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = path.lstat()
        except OSError as e:
            log.warning("merger: no shared ssh connection (%s: %s)", path, e.strerror or e)
            return None
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() \
                or stat.S_IMODE(st.st_mode) & 0o077:
            log.warning("merger: no shared ssh connection: %s is not a private directory "
                        "of ours", path)
            return None
        return path

    def ensure(self) -> None:
        """Recreate the directory if it went (a temp cleaner): ssh fails
        rather than fetch without the socket it was told to make."""
        if self.dir is not None and not self.dir.is_dir():
            log.warning("merger: %s went away; making it again", self.dir)
            self._private_dir(self.dir)

    def options(self) -> list[str]:
        """ssh options making fetches share one connection (none if disabled)."""
        if self.dir is None:
            return []
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.dir}/%C",
                "-o", f"ControlPersist={PERSIST}",
                # A dead link is noticed by the master (its fetches fail and the
                # next one connects anew) instead of hanging on it.
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]

    def sockets(self) -> list[Path]:
        if self.dir is None:
            return []
        try:
            return sorted(p for p in self.dir.iterdir() if p.is_socket())
        except OSError:
            return []

    def master_pid(self, socket: Path) -> int | None:
        """The pid of the master behind ``socket`` if it answers (tests, doctor)."""
        proc = self._control(socket, "check")
        if proc is None or proc.returncode != 0:
            return None
        text = proc.stderr.strip()
        start = text.find("pid=")
        digits = text[start + 4:].rstrip(")") if start >= 0 else ""
        return int(digits) if digits.isdigit() else None

    def _control(self, socket: Path, command: str) -> subprocess.CompletedProcess[str] | None:
        try:
            # The destination is not used with -O, but ssh wants one.
            return subprocess.run([self.ssh, "-F", "/dev/null", "-o", f"ControlPath={socket}",
                                   "-O", command, "gatekeeper-merger"],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=15)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("merger: ssh -O %s on %s: %s", command, socket, e)
            return None

    def _end_masters(self, why: str) -> int:
        ended = 0
        for sock in self.sockets():
            proc = self._control(sock, "exit")
            if proc is not None and proc.returncode == 0:
                ended += 1
                log.info("merger: ended the ssh master on %s (%s)", sock.name, why)
            else:
                # No master answers (it died): a stale socket file.
                sock.unlink(missing_ok=True)
        # The master removes its socket once it has answered "exit".
        deadline = time.monotonic() + 5
        while self.sockets() and time.monotonic() < deadline:
            time.sleep(0.02)
        return ended

    def close(self) -> None:
        """End every master (idempotent); later fetches would start a new one."""
        if self.dir is None:
            return
        self._end_masters("merger stopping")
