"""Events that flow into the scheduler loop.

Three queues, drained in this order each turn (as Zuul does): management
events, result events, trigger events. All are immutable values; producers
run on adapter threads, only the scheduler thread consumes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from gatekeeper.model.change import Approval
from gatekeeper.model.states import BuildResult

# --- trigger events -------------------------------------------------------


@dataclass(frozen=True)
class TriggerEvent:
    """A normalized Gerrit stream event (or timer tick).

    ``type`` is Gerrit's event type (``patchset-created``, ``comment-added``,
    ``change-merged``, ``change-abandoned``, ``change-restored``,
    ``ref-updated``, ``reviewer-added``, ``draft-published``,
    ``topic-changed``, ``merge-failed`` ...) or ``timer``."""

    type: str
    project: str | None = None
    branch: str | None = None
    ref: str | None = None  # ref-updated: refName; change events: refs/changes/...
    change_number: int | None = None
    patchset: int | None = None
    change_id: str | None = None
    oldrev: str | None = None
    newrev: str | None = None
    comment: str | None = None
    # Approvals carried by the event (comment-added); ``old_value`` is set by
    # Gerrit >= 2.13 when the vote changed in this event.
    approvals: tuple[EventApproval, ...] = ()
    account_username: str | None = None
    account_email: str | None = None
    account_name: str | None = None
    timestamp: float | None = None  # eventCreatedOn (epoch seconds)
    timespec: str | None = None  # timer events: the cron expression that fired
    pipeline: str | None = None  # timer events: the pipeline whose timer fired
    source: str = "gerrit"
    synthetic: bool = False  # made by catch-up after a reconnect, not streamed

    @property
    def is_change_event(self) -> bool:
        return self.change_number is not None

    def describe(self) -> str:
        what = f"{self.change_number},{self.patchset}" if self.is_change_event else (self.ref or "")
        who = self.account_username or self.account_email or "?"
        return f"{self.type} {self.project or '-'} {what} by {who}"


@dataclass(frozen=True)
class EventApproval:
    label: str  # as Gerrit sends it in events: type "Verified"/"Code-Review"/"Workflow"
    value: int
    old_value: int | None = None

    def as_approval(self, username: str | None = None) -> Approval:
        return Approval(self.label, self.value, username=username)


# --- result events (from launcher and merger adapters) --------------------


@dataclass(frozen=True)
class BuildStarted:
    build_uuid: str
    worker: str | None = None
    node: str | None = None
    provider: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class BuildProgress:
    build_uuid: str
    numerator: int
    denominator: int


@dataclass(frozen=True)
class BuildFailing:
    """The running build's output matched its job's ``failure-output``: it will
    end FAILURE (the job runs on for its logs)."""

    build_uuid: str
    pattern: str


@dataclass(frozen=True)
class BuildCompleted:
    build_uuid: str
    result: BuildResult
    url: str | None = None
    node: str | None = None
    provider: str | None = None
    worker: str | None = None
    message: str | None = None  # one-line reason, shown in the report and the status
    # False when another attempt would end the same way (the worker refused the
    # job's arguments, the job has no run script): reported at once.
    retry: bool = True


@dataclass(frozen=True)
class MergeCompleted:
    request_uuid: str
    merged: bool
    # project -> commit sha of the speculative state, for every project touched
    commits: dict[str, str] = field(default_factory=dict)
    ref: str | None = None  # the published ref name (same in each project)
    conflict_files: tuple[str, ...] = ()
    conflict_change: str | None = None  # "N,PS" of the change that did not merge
    error: str | None = None  # infrastructure error (could not fetch ...)
    # ZUUL_URL: where workers fetch ``ref`` from (the merger's git daemon),
    # as url + "/" + project (no trailing slash); None when not merged.
    url: str | None = None


@dataclass(frozen=True)
class SubmitCompleted:
    """Gerrit's answer to an item's submit (sent by the report outbox, or by
    the in-memory reporter); ``key`` is the report decision's key."""

    key: str
    ok: bool
    error: str | None = None


# --- management events ----------------------------------------------------


@dataclass(frozen=True)
class Reconfigure:
    """Load the layout again (SIGHUP); keep the old one if the new one is bad."""

    paths: tuple[str, ...] = ()
    # Returns the new Layout or raises (UserError) if it does not load; the
    # scheduler keeps the old layout then. None: the scheduler's own loader.
    loader: Callable[[], object] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Enqueue:
    pipeline: str
    project: str
    change_number: int | None = None
    patchset: int | None = None
    ref: str | None = None
    oldrev: str | None = None
    newrev: str | None = None


@dataclass(frozen=True)
class Dequeue:
    pipeline: str
    project: str
    change_number: int | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Promote:
    """Move these changes to the head of their gate queue, in this order."""

    pipeline: str
    change_numbers: tuple[int, ...]


@dataclass(frozen=True)
class Answered:
    """A management event whose sender wants to know how it went: the loop
    calls ``reply(None)`` once handled, or ``reply(error)``."""

    event: Request
    reply: Callable[[str | None], None] = field(compare=False)


# --- the unions the scheduler's queues carry --------------------------------
# A new kind goes into its union; every ``match`` over the union ends in
# ``assert_never``, so a kind nobody handles is a type error, not a silent drop.

BuildEvent: TypeAlias = BuildStarted | BuildProgress | BuildFailing | BuildCompleted
ResultEvent: TypeAlias = BuildEvent | MergeCompleted | SubmitCompleted
# What an operator (or SIGHUP) asks of the loop; Answered carries one and a reply.
Request: TypeAlias = Reconfigure | Enqueue | Dequeue | Promote
ManagementEvent: TypeAlias = Request | Answered
