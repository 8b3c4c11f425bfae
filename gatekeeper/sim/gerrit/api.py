"""GerritEmulator: the Python facade tests and the quickstart drive.

Every action goes through the same GerritState the SSH commands use, so an
approval made here produces exactly the stream event and query row that a
`gerrit review` over SSH would."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatekeeper.sim.gerrit.commands import Faults, GerritCommands
from gatekeeper.sim.gerrit.events import EventBus
from gatekeeper.sim.gerrit.model import DEFAULT_LABELS, Change, Label
from gatekeeper.sim.gerrit.query import QueryOptions, change_row
from gatekeeper.sim.gerrit.server import SshServer, load_or_create_host_key
from gatekeeper.sim.gerrit.state import GerritState, ReviewError

log = logging.getLogger("gatekeeper.sim.gerrit.api")

ALL_ROW_OPTIONS = QueryOptions(current_patch_set=True, patch_sets=True, all_approvals=True,
                               comments=True, commit_message=True, dependencies=True,
                               files=True, all_reviewers=True, submit_records=True)


class GerritEmulator:
    def __init__(self, root_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                 baseurl: str = "http://127.0.0.1:8080", *, number_as_string: bool = False,
                 version: str = "3.9.1", labels: tuple[Label, ...] = DEFAULT_LABELS,
                 submit_requires: tuple[str, ...] = ("Code-Review",),
                 clock: Callable[[], float] = time.time):
        self.root = Path(root_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self._port = port
        self.baseurl = baseurl
        self.bus = EventBus()
        self.state = GerritState(self.root, self.bus, baseurl,
                                 number_as_string=number_as_string, labels=labels,
                                 submit_requires=submit_requires, clock=clock)
        self.faults = Faults()
        self.commands = GerritCommands(self.state, self.faults, version)
        self.host_key_path = self.root / "ssh_host_ed25519_key"
        self.host_key = load_or_create_host_key(self.host_key_path)
        self._server: SshServer | None = None
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> GerritEmulator:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("emulator already started")
            server = SshServer(self.state, self.bus, self.commands, self.host_key,
                               self.host, self._port)
            server.start()
            self._server = server
            # Keep the port across stop()/start() so clients can reconnect.
            self._port = server.port
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> GerritEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host_key_line(self) -> str:
        """A known_hosts line for this server."""
        host = self.host if self._port == 22 else f"[{self.host}]:{self._port}"
        return f"{host} {self.host_key.get_name()} {self.host_key.get_base64()}"

    # --- setup ------------------------------------------------------------------
    def add_user(self, username: str, public_key_openssh: str | None, email: str | None = None,
                 full_name: str | None = None,
                 capabilities: tuple[str, ...] = ("stream-events",)) -> None:
        self.state.add_user(username, public_key_openssh, email, full_name, capabilities)

    def create_project(self, name: str, branches: tuple[str, ...] | list[str] = ("master",),
                       files: dict[str, str] | None = None) -> Path:
        return self.state.create_project(name, branches, files)

    def project_path(self, name: str) -> Path:
        return self.state.repo(name).path

    # --- changes ------------------------------------------------------------------
    def create_change(self, project: str, branch: str = "master", subject: str = "A change",
                      files: dict[str, str | None] | None = None, message_body: str = "",
                      depends_on: list[str] | tuple[str, ...] = (),
                      parent_change: int | None = None, owner: str = "alice",
                      topic: str | None = None) -> int:
        return self.state.create_change(project, branch, subject, files, message_body,
                                        depends_on, parent_change, owner, topic)

    def add_patchset(self, number: int, files: dict[str, str | None] | None = None,
                     subject: str | None = None, uploader: str = "alice",
                     message_body: str | None = None, rebase: bool = False) -> int:
        return self.state.add_patchset(number, files, subject, uploader, message_body, rebase)

    def review(self, number: int, patchset: int | None = None, user: str = "bob",
               labels: dict[str, int] | None = None, message: str = "", *,
               submit: bool = False) -> None:
        """Votes/message like `gerrit review`; raises ReviewError when Gerrit would refuse."""
        self.state.review(number, patchset, user, labels, message, submit=submit)

    def comment(self, number: int, text: str, user: str = "bob",
                patchset: int | None = None) -> None:
        self.state.review(number, patchset, user, None, text)

    def approve(self, number: int, user: str = "core", message: str = "") -> None:
        """OpenStack-style approval: Code-Review +2 and Workflow +1."""
        self.state.review(number, None, user, {"Code-Review": 2, "Workflow": 1}, message)

    def abandon(self, number: int, user: str = "alice", reason: str = "") -> None:
        self.state.abandon(number, user, reason)

    def restore(self, number: int, user: str = "alice", reason: str = "") -> None:
        self.state.restore(number, user, reason)

    def submit(self, number: int, user: str = "core") -> tuple[bool, str | None]:
        return self.state.submit(number, user)

    def set_topic(self, number: int, topic: str | None, user: str = "alice") -> None:
        """Emits topic-changed (with oldTopic)."""
        self.state.set_topic(number, topic, user)

    def add_reviewer(self, number: int, reviewer: str, adder: str = "alice") -> None:
        """Emits reviewer-added."""
        self.state.add_reviewer(number, reviewer, adder)

    def restrict_label(self, label: str, users: list[str] | tuple[str, ...] | None) -> None:
        """Only ``users`` may vote ``label`` (None lifts the restriction); others
        get Gerrit's 'is restricted' error, as without the label permission."""
        self.state.restrict_label(label, users)

    def push_branch_commit(self, project: str, branch: str, files: dict[str, str | None],
                           message: str = "Direct push", user: str = "admin") -> str:
        return self.state.push_branch_commit(project, branch, files, message, user)

    # --- inspection -----------------------------------------------------------------
    def get_change(self, number: int) -> dict[str, Any]:
        """The change as a `gerrit query` row with every option turned on."""
        with self.state.lock:
            return change_row(self.state, self.state.change(number), ALL_ROW_OPTIONS)

    @property
    def changes(self) -> dict[int, Change]:
        return dict(self.state.changes)

    def change_id(self, number: int) -> str:
        return self.state.change(number).change_id

    def current_patchset(self, number: int) -> int:
        return self.state.change(number).current.number

    def status(self, number: int) -> str:
        return self.state.change(number).status

    def messages(self, number: int) -> list[tuple[str, str]]:
        with self.state.lock:
            return [(m.author, m.text) for m in self.state.change(number).messages]

    def votes(self, number: int, patchset: int | None = None) -> dict[str, dict[str, int]]:
        with self.state.lock:
            change = self.state.change(number)
            ps = change.patchset(patchset) if patchset else change.current
            if ps is None:
                raise ReviewError(f"no patch set {patchset} on change {number}")
            return {label: {u: v.value for u, v in by.items()}
                    for label, by in ps.votes.items() if by}

    def branch_head(self, project: str, branch: str = "master") -> str:
        return self.state.branch_head(project, branch)

    def git_log(self, project: str, branch: str = "master") -> list[str]:
        return self.state.repo(project).subjects(f"refs/heads/{branch}")

    def events(self) -> list[dict[str, Any]]:
        """Every event published so far (held ones included), oldest first."""
        with self.state.lock:
            return list(self.bus.history)

    # --- fault switches ---------------------------------------------------------------
    def drop_streams(self, mode: str = "connection") -> int:
        """End every stream-events client: ``connection`` closes its SSH connection
        abruptly (network loss, Gerrit restart), ``channel`` closes only the
        channel without an exit status, ``exit`` ends the command with status 0."""
        n = self.bus.drop_all(mode)
        log.info("dropped %d stream-events client(s) (%s)", n, mode)
        return n

    def inject_raw(self, line: str) -> int:
        """Write ``line`` as-is to every stream-events client (e.g. malformed JSON)."""
        return self.bus.inject_raw(line)

    def pause_events(self) -> None:
        self.bus.pause()

    def resume_events(self) -> None:
        self.bus.resume()

    def fail_reviews(self, count: int, message: str = "fatal: internal server error") -> None:
        with self.faults.lock:
            self.faults.fail_reviews = count
            self.faults.fail_message = message

    def hold_submits(self) -> None:
        """Submits wait (a slow Gerrit) until ``release_submits``."""
        self.faults.submits_open.clear()

    def release_submits(self) -> None:
        self.faults.submits_open.set()

    def submits_waiting(self) -> int:
        """Submit commands being held now."""
        with self.faults.lock:
            return self.faults.submits_waiting

    def stream_client_count(self) -> int:
        return self.bus.count()

    def wait_for_stream_clients(self, n: int, timeout: float = 10.0) -> bool:
        return self.bus.wait_for_count(n, timeout)

    def wait_for_stream_clients_below(self, n: int, timeout: float = 10.0) -> bool:
        return self.bus.wait_for_count_below(n, timeout)
