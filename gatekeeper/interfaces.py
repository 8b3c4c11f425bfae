"""The small interfaces between the scheduler and its adapters.

The pure core never imports an adapter; the scheduler loop is handed objects
that satisfy these protocols. Tests and the gate simulator hand it fakes.
Everything here is called on the scheduler thread; asynchronous work reports
back as result events (``gatekeeper.model.events``) put on the scheduler's
result queue."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Protocol

from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import ResultEvent

# --- Gerrit (source and reporter) -----------------------------------------


class SourceUnavailable(Exception):
    """The source could not be asked (connection down); asking later may work.

    Distinct from "the change does not exist" (``get_change`` returns None):
    the scheduler keeps an event whose source lookup raised this and tries it
    again later instead of dropping it."""


class Source(Protocol):
    def get_change(self, number: int, patchset: int | None = None,
                   refresh: bool = False) -> Change | None:
        """The change at ``patchset`` (current when None); None if unknown."""
        ...

    def get_changes_by_change_id(self, change_id: str) -> list[Change]:
        """Every change with this Change-Id (one per project/branch), for Depends-On."""
        ...

    def get_ref(self, project: str, ref: str, oldrev: str = "", newrev: str = "") -> Ref:
        ...

    def get_project_branches(self, project: str) -> list[str]:
        ...

    def invalidate(self, change_number: int | None = None) -> None:
        """Forget cached data (all of it when ``change_number`` is None)."""
        ...


@dataclass(frozen=True)
class ReportResult:
    ok: bool
    error: str | None = None  # why a vote/submit failed, in Gerrit's words


class Reporter(Protocol):
    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool = False) -> ReportResult:
        """Post ``message`` with ``labels`` on the change; submit it when asked.

        Retries transient failures itself (bounded); never raises for a
        Gerrit-side failure: the result says so."""
        ...


@dataclass(frozen=True)
class MailReport:
    """One digest mail: every job of an item's build set in one message."""

    to: tuple[str, ...]
    sender: str | None  # None: the mailer's default From:
    subject: str  # one line
    body: str
    key: str = ""  # the report decision (item, build set, point), for the durable outbox


class Mailer(Protocol):
    @property
    def durable(self) -> bool:
        """True: the scheduler writes mails to the database outbox with its turn
        (and pokes) instead of calling ``send``."""
        ...

    def send(self, mail: MailReport) -> None:
        """Queue ``mail`` and return at once (sending happens on the mailer's
        own thread, never on the scheduler's); failures are logged."""
        ...

    def poke(self) -> None:
        """A turn was committed: look at the outbox now."""
        ...


# --- build launcher and merger --------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    uuid: str
    job: str  # job name
    label: str | None  # node label, selects the Gearman function build:JOB:LABEL
    # ZUUL_* and the job's own parameters (the core's: model/buildparams.py,
    # whose chain-long values are joined when read)
    parameters: MutableMapping[str, str]
    precedence: str = "normal"  # low | normal | high -> Gearman priority
    timeout: int | None = None  # seconds
    # What the worker needs to know of the job (from the layout's Job):
    run: str | None = None  # script to run on the node, relative to the workspace
    artifacts: tuple[str, ...] = ()  # extra paths on the node collected as logs
    projects: tuple[str, ...] = ()  # projects cloned into the workspace besides ZUUL_PROJECT
    hold_on_failure: bool = True
    failure_output: tuple[str, ...] = ()  # regexes: a matching output line fails the build


class Launcher(Protocol):
    def launch(self, request: BuildRequest) -> None:
        """Start the build; BuildStarted/BuildProgress/BuildCompleted follow as events."""
        ...

    def cancel(self, build_uuid: str) -> bool:
        """Stop a queued or running build. A cancelled build completes with
        result CANCELED (or not at all if it was still queued: returns True
        and the caller forgets it)."""
        ...

    def abandon(self, build_uuid: str, worker: str | None) -> None:
        """Stop a build an earlier scheduler process launched (after a restart
        it can never report here); best effort, no event follows."""
        ...


@dataclass(frozen=True)
class MergeItem:
    project: str
    branch: str
    number: int | None = None  # None for a Ref item (just the branch tip / newrev)
    patchset: int | None = None
    ref: str = ""  # refs/changes/NN/N/PS, or the updated ref
    newrev: str = ""
    merge_mode: str = "merge-resolve"  # merge-resolve | merge | cherry-pick


@dataclass(frozen=True)
class MergeRequest:
    uuid: str
    # The branch tips of every project involved, then each change ahead in
    # queue order, the item's own change(s) last.
    items: tuple[MergeItem, ...]
    ref_name: str = ""  # e.g. refs/gatekeeper/master/Z<uuid>


class MergeClient(Protocol):
    """How the scheduler asks a merger (gatekeeper.merger) for a speculative state."""

    def merge(self, request: MergeRequest) -> None:
        """Build and publish the speculative state; MergeCompleted follows."""
        ...


# --- nodes (worker side) ---------------------------------------------------


@dataclass(frozen=True)
class NodeLease:
    """A node claimed for one build."""

    node_id: str
    label: str
    host: str
    port: int
    username: str
    private_key: str = field(repr=False, default="")  # path to the key file, never its content
    provider: str = ""  # becomes NODE_PROVIDER
    host_key: str | None = None  # "ssh-ed25519 AAAA..." to verify, None = unknown
    extra: dict[str, str] = field(default_factory=dict)


class NodeClaimError(Exception):
    """No node could be claimed (timeout, unknown label, pool unreachable)."""


class NodeClaimer(Protocol):
    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> NodeLease:
        """Block until a ready node of ``label`` is ours (raises on timeout).
        ``project``/``job`` let the pool match autohold requests."""
        ...

    def release(self, lease: NodeLease, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> None:
        """``state``: "used" (delete/reset it) or "hold" (keep for debugging);
        ``result`` (the build's) lets the pool apply autohold to failures."""
        ...


# Where adapters put what they learn (the scheduler's result queue).
EventSink = Callable[[ResultEvent], None]
