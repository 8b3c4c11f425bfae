"""Run Debian's ``gearmand`` as a child process (tests, bench, small sites)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from gatekeeper.netutil import free_port, wait_accepting

log = logging.getLogger("gatekeeper.gearman.gearmand")

GEARMAND = "/usr/sbin/gearmand"


class GearmandProcess:
    """``gearmand --listen=HOST --port=PORT --log-file=LOG`` until stop()."""

    def __init__(self, log_file: Path, host: str = "127.0.0.1", port: int = 0,
                 binary: str = GEARMAND):
        self.host = host
        self.port = port
        self.log_file = Path(log_file)
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> GearmandProcess:
        # A port picked by free_port() can be taken before gearmand binds
        # it: try a few ports rather than fail the caller.
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            argv = [self.binary, f"--listen={self.host}", f"--port={port}",
                    f"--log-file={self.log_file}", "--verbose=WARNING"]
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_accepting(self._proc, self.host, port, timeout):
                self.port = port
                log.info("gearmand listening on %s:%s (pid %s)", self.host, port, self._proc.pid)
                return self
            self._kill()
        raise RuntimeError(f"gearmand did not start; see {self.log_file}")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def stop(self) -> None:
        self._kill()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None
