"""Bring a build's logs back from the node and publish them under the log root.

Published layout (``LOG_ROOT/LOG_PATH/``)::

    console.txt          the whole console, never compressed (people read it raw);
                         written there live while the build runs
    logs/                the node's $WORKSPACE/logs (syslog.txt, screen-*.txt ...)
    logs/<name>          each declared artifact, by its base name (the matches of a
                         wildcard pattern, by their own names)

``*.log`` becomes ``*.txt`` (served as text/plain); text files larger than
the threshold are gzipped (``name.txt.gz``), as OpenStack's log server did.
Symlinks and special files are never published: a job must not be able to
make the log server expose the worker's files."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from gatekeeper.ssh import SshError
from gatekeeper.worker.ssh import SshNode

log = logging.getLogger("gatekeeper.worker.logs")

NODE_LOGS_DIR = "logs"  # relative to the node's workspace; the job script fills it
CONSOLE = "console.txt"
DEFAULT_GZIP_THRESHOLD = 1024 * 1024  # bytes
_TEXT_SUFFIXES = {".txt", ".log", ".html", ".json", ".yaml", ".conf", ".ini", ".out", ".xml",
                  ".csv", ""}


def published_name(name: str) -> str:
    return name[:-4] + ".txt" if name.endswith(".log") else name


def is_text(path: Path, sample: int = 8192) -> bool:
    if path.suffix.lower() not in _TEXT_SUFFIXES and not path.name.endswith(".log"):
        return False
    with open(path, "rb") as f:
        return b"\x00" not in f.read(sample)


def collect(node: SshNode, dest: Path, artifacts: Sequence[str],
            say: Callable[[str], None]) -> bool:
    """Pull the node's logs dir and the artifacts into ``dest``.

    Returns False if the node could not be reached at all (logs lost)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if not node.pull(f"{NODE_LOGS_DIR}/", dest / "logs"):
            say(f"no {NODE_LOGS_DIR}/ directory on the node")
        for path in artifacts:
            if any(c in path for c in "*?["):  # a pattern: the matches land in logs/
                found = node.pull(path, dest / "logs", into_dir=True)
            else:
                name = PurePosixPath(path.rstrip("/")).name or "artifact"
                found = node.pull(path, dest / "logs" / name)
            if not found:
                say(f"artifact {path} not found on the node")
    except SshError as e:
        say(f"log collection failed: {e}")
        return False
    return True


def _publish_file(src: Path, dst: Path, gzip_threshold: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.name != CONSOLE and src.stat().st_size > gzip_threshold and is_text(src):
        dst = dst.with_name(dst.name + ".gz")
        with open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=6) as fout:
            shutil.copyfileobj(fin, fout, 1024 * 1024)
    else:
        shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def start_log_dir(dest: Path) -> Path:
    """A fresh ``dest`` for a build's logs (a rerun of the same uuid replaces them)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    return dest


def publish(console: Path, collected: Path, dest: Path,
            gzip_threshold: int = DEFAULT_GZIP_THRESHOLD) -> list[Path]:
    """Copy the console (unless it was written in place) and everything collected
    into ``dest``. Returns the published files."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    if console.exists():
        if console.resolve() == (dest / CONSOLE).resolve():
            os.chmod(console, 0o644)
            out.append(console)
        else:
            out.append(_publish_file(console, dest / CONSOLE, gzip_threshold))
    if collected.is_dir():
        for root, dirs, files in os.walk(collected):  # os.walk does not follow symlinks
            rel = Path(root).relative_to(collected)
            dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
            for name in sorted(files):
                src = Path(root) / name
                if src.is_symlink() or not src.is_file():
                    log.info("not publishing %s: not a regular file", rel / name)
                    continue
                out.append(_publish_file(src, dest / rel / published_name(name), gzip_threshold))
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        os.chmod(d, 0o755)
    return out
