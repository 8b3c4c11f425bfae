"""Helpers for end-to-end tests on a LocalSite (real everything on loopback)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from gatekeeper.quickstart.site import LocalSite


def wait_for(cond: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def gatekeeper_messages(site: LocalSite, number: int) -> list[str]:
    return [text for who, text in site.emulator.messages(number) if who == "gatekeeper"]


def verified(site: LocalSite, number: int) -> int | None:
    return site.emulator.votes(number).get("Verified", {}).get("gatekeeper")


def consoles(site: LocalSite, number: int, pipeline: str) -> list[Path]:
    """Published console logs of the change's builds in ``pipeline``, oldest first."""
    root = site.root / "state" / "logs" / f"{number % 100:d}" / str(number)
    found = list(root.glob(f"*/{pipeline}/*/*/console.txt"))
    return sorted(found, key=lambda p: p.stat().st_mtime)


def heads(console: Path) -> dict[str, str]:
    """project -> the ref or branch the build checked out (from the console)."""
    out = {}
    for m in re.finditer(r"^  (\S+): [0-9a-f]+ .* \((\S+)\)$", console.read_text(), re.M):
        out[m.group(1)] = m.group(2)
    return out


def published_files(site: LocalSite, project: str, ref: str) -> set[str]:
    repo = site.root / "state" / "publish" / project
    if not repo.exists():
        repo = repo.with_name(repo.name + ".git")
    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", ref],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def log_url_of(message: str, job: str) -> str:
    m = re.search(rf"- {re.escape(job)} (\S+) :", message)
    assert m, f"no URL for {job} in {message!r}"
    return m.group(1)


def process_gone(pid: str | int) -> bool:
    """No such process, or only a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
