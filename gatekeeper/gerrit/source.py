"""``GerritSource``: what the scheduler asks Gerrit about changes and branches.

Answers come from ``gerrit query`` (and the ``git-upload-pack`` ref
advertisement for branches) over our own SSH command runner, never gerritlib's
``query()`` (it appends a stray quote to the command). Results are cached
until :meth:`invalidate` or :meth:`on_event` says the change moved. Changes
are frozen: the cached object itself is handed out, never a copy.

Gerrit being unreachable is not "unknown change": those calls raise
:class:`gatekeeper.gerrit.ssh.GerritError` after one reconnect attempt."""

from __future__ import annotations

import logging
import re
import threading
import time

from gatekeeper.gerrit.events import full_ref
from gatekeeper.gerrit.query import QueryError, change_from_row, parse_query_output, query_argv
from gatekeeper.gerrit.ssh import GerritError, GerritSSH, GerritTransportError
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import TriggerEvent
from gatekeeper.shell import command_line

log = logging.getLogger("gatekeeper.gerrit.source")

CHANGE_ID_RE = re.compile(r"^I[0-9a-fA-F]{40}$")
CHANGE_OPTIONS = ("--current-patch-set", "--dependencies", "--commit-message", "--files")
PATCHSET_OPTIONS = (*CHANGE_OPTIONS, "--patch-sets", "--all-approvals")


class GerritSource:
    """Implements :class:`gatekeeper.interfaces.Source`."""

    def __init__(self, ssh: GerritSSH, git_url: str | None = None, pack_timeout: float = 30.0):
        self.ssh = ssh
        t = ssh.target
        # Where mergers/workers fetch from; the same SSH endpoint by default.
        self.git_url = (git_url or f"ssh://{t.username}@{t.host}:{t.port}").rstrip("/")
        self.pack_timeout = pack_timeout
        self._lock = threading.Lock()
        self._changes: dict[tuple[int, int | None], Change] = {}
        self._by_change_id: dict[str, list[Change]] = {}
        self._branches: dict[str, list[str]] = {}
        self.queries = 0  # how many round trips (for tests and metrics)

    # --- queries -----------------------------------------------------------

    def _query(self, terms: list[str], options: tuple[str, ...]) -> list[dict]:
        argv = query_argv(terms, options)
        for attempt in (1, 2):
            try:
                self.queries += 1
                res = self.ssh.run(argv)
                break
            except GerritTransportError:
                if attempt == 2:
                    raise
                log.info("Gerrit query failed, reconnecting once")
        if not res.ok:
            raise GerritError(f"gerrit query failed: {res.error_text(300)}")
        try:
            return parse_query_output(res.stdout).rows
        except QueryError as e:
            raise GerritError(f"gerrit query {' '.join(terms)!r} failed: {e}") from e

    def get_change(self, number: int, patchset: int | None = None,
                   refresh: bool = False) -> Change | None:
        key = (number if type(number) is int else int(number), patchset)
        if not refresh:
            # Lock-free: one dict.get is atomic, and a reader racing with an
            # invalidation sees the entry before or after it, as under the lock
            # (the lock orders the writers: fills and invalidations).
            cached = self._changes.get(key)
            if cached is not None:
                return cached
        options = CHANGE_OPTIONS if patchset is None else PATCHSET_OPTIONS
        rows = self._query([f"change:{int(number)}"], options)
        row = next((r for r in rows if str(r.get("number")) == str(int(number))), None)
        change = change_from_row(row, patchset) if row else None
        if change is None:
            return None
        with self._lock:
            self._changes[key] = change
            if change.is_current_patchset:
                self._changes[(change.number, None)] = change
                self._changes[(change.number, change.patchset)] = change
        return change

    def get_changes_by_change_id(self, change_id: str) -> list[Change]:
        if not CHANGE_ID_RE.match(change_id or ""):
            return []  # never send something that is not a Change-Id to Gerrit
        cached = self._by_change_id.get(change_id)  # lock-free, as in get_change
        if cached is not None:
            return list(cached)
        rows = self._query([f"change:{change_id}"], CHANGE_OPTIONS)
        changes = [c for c in (change_from_row(r) for r in rows) if c is not None
                   and c.change_id.lower() == change_id.lower()]
        with self._lock:
            self._by_change_id[change_id] = changes
        return list(changes)

    def get_ref(self, project: str, ref: str, oldrev: str = "", newrev: str = "") -> Ref:
        return Ref(project=project, ref=full_ref(ref) or ref, oldrev=oldrev or "",
                   newrev=newrev or "", url=self.project_url(project))

    def project_url(self, project: str) -> str:
        return f"{self.git_url}/{project}"

    def get_project_branches(self, project: str) -> list[str]:
        cached = self._branches.get(project)  # lock-free, as in get_change
        if cached is not None:
            return list(cached)
        refs = self.ls_remote(project)
        branches = sorted(r[len("refs/heads/"):] for r in refs if r.startswith("refs/heads/"))
        with self._lock:
            self._branches[project] = branches
        return list(branches)

    def ls_remote(self, project: str) -> dict[str, str]:
        """ref -> sha, from the ``git-upload-pack`` advertisement on our SSH
        connection (what ``git ls-remote`` reads), so host keys are checked
        the same way as everything else."""
        for attempt in (1, 2):
            try:
                return self._ls_remote_once(project)
            except GerritTransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _ls_remote_once(self, project: str) -> dict[str, str]:
        chan = self.ssh.open_channel()
        try:
            chan.settimeout(self.pack_timeout)
            chan.exec_command(command_line(["git-upload-pack", f"/{project}"]))
            refs = read_advertisement(chan, time.monotonic() + self.pack_timeout)
            try:
                chan.sendall(b"0000")  # we want nothing: end the conversation
            except OSError:
                pass
            return refs
        except (OSError, EOFError) as e:
            raise GerritTransportError(f"git-upload-pack {project}: {e}") from e
        finally:
            chan.close()

    # --- cache ---------------------------------------------------------------

    def invalidate(self, change_number: int | None = None) -> None:
        with self._lock:
            if change_number is None:
                self._changes.clear()
                self._by_change_id.clear()
                self._branches.clear()
                return
            for key in [k for k in self._changes if k[0] == change_number]:
                del self._changes[key]
            for cid in [cid for cid, lst in self._by_change_id.items()
                        if any(c.number == change_number for c in lst)]:
                del self._by_change_id[cid]

    def on_event(self, event: TriggerEvent) -> None:
        """Forget what this event may have changed."""
        if event.change_number is not None:
            self.invalidate(event.change_number)
        if event.change_id:
            with self._lock:
                for cid in [c for c in self._by_change_id if c.lower() == event.change_id.lower()]:
                    del self._by_change_id[cid]
        if event.project and event.type in ("ref-updated", "change-merged", "project-created"):
            with self._lock:
                self._branches.pop(event.project, None)


def _read_exact(chan, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        if time.monotonic() > deadline:
            raise GerritTransportError("timed out reading the ref advertisement")
        data = chan.recv(n - len(buf))
        if not data:
            err = b""
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(4096)
            text = err.decode("utf-8", "replace").strip()[:300]
            raise GerritError(f"git-upload-pack ended early{': ' + text if text else ''}")
        buf += data
    return buf


def read_advertisement(chan, deadline: float) -> dict[str, str]:
    """Parse pkt-lines ``<sha> <ref>[\\0caps]`` until the flush packet."""
    refs: dict[str, str] = {}
    while True:
        size_hex = _read_exact(chan, 4, deadline)
        try:
            size = int(size_hex, 16)
        except ValueError:
            raise GerritError(f"bad pkt-line length {size_hex!r}") from None
        if size == 0:
            return refs
        if size < 4:
            raise GerritError(f"bad pkt-line length {size}")
        payload = _read_exact(chan, size - 4, deadline)
        line = payload.split(b"\0", 1)[0].rstrip(b"\n").decode("utf-8", "replace")
        sha, _, ref = line.partition(" ")
        if ref and not ref.endswith("^{}") and ref != "capabilities^{}":
            refs[ref] = sha
