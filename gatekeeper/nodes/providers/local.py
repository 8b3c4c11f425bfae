"""CloudAPI whose servers are sshd processes on loopback (quickstart, tests).

Each server is a :class:`LocalSshd` in ``root/<id>`` with a ``meta.json``
holding its metadata and port. sshd runs in its own session, so servers
outlive a restarted pool service exactly like cloud servers do, and the
reconciler finds them again by scanning ``root``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

from gatekeeper.nodes.localsshd import LocalSshd
from gatekeeper.nodes.providers import BootSpec, ProviderError, Server

log = logging.getLogger("gatekeeper.nodes.providers.local")


class LocalProvider:
    def __init__(self, name: str, root: Path, host: str = "127.0.0.1"):
        self.name = name
        self.root = Path(root)
        self.host = host
        self._procs: dict[str, LocalSshd] = {}
        self._lock = threading.Lock()

    def _dir(self, server_id: str) -> Path:
        if "/" in server_id or server_id.startswith("."):
            raise ProviderError(f"{self.name}: bad server id", "not-found")
        return self.root / server_id

    def create_server(self, name: str, spec: BootSpec, image_ref: str | None,
                      metadata: dict[str, str]) -> Server:
        pub = Path(spec.private_key + ".pub")
        keys = [pub.read_text()] if pub.exists() else []
        if spec.public_key:
            keys.append(spec.public_key)
        if not keys:
            raise ProviderError(f"{self.name}: no public key next to the image's private key")
        sid = f"local-{uuid.uuid4().hex[:12]}"
        d = self._dir(sid)
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({"name": name, "metadata": metadata}))
        node = LocalSshd(d, keys, host=self.host, name=sid)
        try:
            node.start()
        except (OSError, RuntimeError) as e:
            shutil.rmtree(d, ignore_errors=True)
            raise ProviderError(f"{self.name}: sshd did not start: {e}") from None
        with self._lock:
            self._procs[sid] = node
        (d / "meta.json").write_text(json.dumps(
            {"name": name, "metadata": metadata, "port": node.port}))
        return self._server(sid)

    def _pid(self, d: Path) -> int | None:
        try:
            return int((d / "sshd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _alive(self, sid: str, d: Path) -> bool:
        with self._lock:
            proc = self._procs.get(sid)
        if proc is not None:
            return proc.running
        pid = self._pid(d)
        return pid is not None and not _gone(pid)

    def _server(self, sid: str) -> Server:
        d = self._dir(sid)
        meta = json.loads((d / "meta.json").read_text())
        state = "running" if self._alive(sid, d) else "stopped"
        return Server(sid, state, self.host, int(meta.get("port", 0)), dict(meta["metadata"]),
                      str(d / "work"))

    def get_server(self, server_id: str) -> Server | None:
        d = self._dir(server_id)
        if not (d / "meta.json").exists():
            return None
        return self._server(server_id)

    def list_servers(self) -> list[Server]:
        if not self.root.exists():
            return []
        return [self._server(d.name) for d in sorted(self.root.iterdir())
                if (d / "meta.json").exists()]

    def delete_server(self, server_id: str) -> None:
        d = self._dir(server_id)
        with self._lock:
            proc = self._procs.pop(server_id, None)
        if proc is not None:
            proc.stop()
        else:
            pid = self._pid(d)
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGTERM)  # sshd leads its own session
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not _gone(pid):
                    time.sleep(0.05)
        shutil.rmtree(d, ignore_errors=True)

    def close(self) -> None:
        """Stop every server (quickstart/test teardown)."""
        for s in self.list_servers():
            self.delete_server(s.id)

    def create_image(self, server_id: str, name: str) -> str:
        raise ProviderError(f"{self.name}: the local provider cannot snapshot", "error")

    def image_status(self, image_id: str) -> str:
        return "missing"

    def delete_image(self, image_id: str) -> None:
        return None


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited. A child of this process that exited is a
    zombie until reaped, and ``kill(pid, 0)`` still succeeds on it: reap it
    (an sshd started by an earlier provider object of this process) or see
    its state."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # not our child
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
