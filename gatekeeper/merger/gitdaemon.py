"""Serve the merger's publish repositories read-only with ``git daemon``.

Workers fetch ``ZUUL_REF`` from ``$ZUUL_URL/$ZUUL_PROJECT`` (the Zuul
convention: no trailing slash on ZUUL_URL; git daemon refuses ``//``), e.g.
``git fetch git://127.0.0.1:9418/org/demo refs/gatekeeper/master/Zabc``.
git daemon is unauthenticated and read-only; by default it listens on
loopback only (all-in-one). A site with worker hosts elsewhere listens on
an address those hosts reach, or serves ``publish_root`` over SSH/HTTP
and passes that base as the merger's ``zuul_url``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from gatekeeper.netutil import free_port, wait_accepting

log = logging.getLogger("gatekeeper.merger.gitdaemon")


class GitDaemon:
    def __init__(self, base_path: str | Path, host: str = "127.0.0.1", port: int = 0,
                 log_file: str | Path | None = None):
        self.base_path = Path(base_path)
        self.host = host
        self.port = port
        self.log_file = Path(log_file) if log_file else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ZUUL_URL base: ``git://HOST:PORT`` ("/" + project follows)."""
        return f"git://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> GitDaemon:
        if self._proc is not None:
            return self
        self.base_path.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            argv = ["git", "daemon", "--reuseaddr", f"--base-path={self.base_path}",
                    "--export-all", f"--listen={self.host}", f"--port={port}",
                    "--informative-errors", str(self.base_path)]
            out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
            try:
                # Its own session: git daemon forks a child per connection,
                # and stop() ends the whole group.
                self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                              stderr=out, start_new_session=True)
            finally:
                if out is not subprocess.DEVNULL:
                    out.close()  # type: ignore[union-attr]
            if wait_accepting(self._proc, self.host, port, timeout):
                self.port = port
                log.info("git daemon serving %s at %s", self.base_path, self.url)
                return self
            self.stop()
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The group too: children serving a fetch outlive the parent.
        self._killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Connection children may still hold the listening socket: wait
        # until the whole group is gone, so the port is really closed.
        start = time.monotonic()
        killed = False
        while self._killpg(proc.pid, 0):
            waited = time.monotonic() - start
            if waited > 5 and not killed:
                self._killpg(proc.pid, signal.SIGKILL)
                killed = True
            elif waited > 10:  # only unreaped zombies can be left now
                log.warning("git daemon group %s still listed after SIGKILL", proc.pid)
                break
            time.sleep(0.01)
        log.info("git daemon stopped")

    @staticmethod
    def _killpg(pgid: int, sig: int) -> bool:
        """Signal the group; False when no process of it is left."""
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False
