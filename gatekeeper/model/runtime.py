"""Runtime state of the scheduler: queues, items, build sets and builds.

Plain dataclasses owned by the scheduler thread. They are mutated only
through ``gatekeeper.core.door.Door`` (the one door), so that every state
change can be observed, persisted and replayed. Identity matters here (an
item is *that* item), so the mutable classes compare by identity."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gatekeeper.model.change import Change, Ref
from gatekeeper.model.states import BuildResult, BuildSetResult, MergeState, SubmitState


@dataclass(frozen=True)
class HistoryEntry:
    """One decision about an item (or about a change that never became one)."""

    time: float
    kind: str  # enqueue, not-enqueued, reset, nnfi, window, merge, launch, build, ...
    text: str


@dataclass(eq=False)
class Build:
    uuid: str
    job: str
    voting: bool = True
    attempt: int = 1  # 1-based launch number for this job in this build set
    result: BuildResult | None = None
    url: str | None = None
    launch_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    node: str | None = None
    provider: str | None = None
    worker: str | None = None
    progress: tuple[int, int] | None = None
    message: str | None = None  # worker's note on completion, or why it was skipped
    # A gate strategy's judgment of a failure (gatekeeper.core.strategy): None,
    # "suspect" (failed, not trusted yet), "rerun" (a rerun on the same state),
    # "flake" (not counted), "broken" (trusted).
    judgment: str | None = None
    suspect_failures: int = 0  # failed runs of this job on this state before this one
    failing: str | None = None  # still running, its output matched this failure-output

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.start_time)


@dataclass(frozen=True)
class SpeculativeChange:
    """One change (or ref) in the speculative state a build set tests."""

    project: str
    branch: str
    ref: str
    number: int | None = None
    patchset: int | None = None
    revision: str = ""

    @property
    def id_string(self) -> str:
        return f"{self.number},{self.patchset}" if self.number is not None else self.ref


@dataclass(eq=False)
class BuildSet:
    """One attempt at testing an item on one speculative state."""

    uuid: str
    # The item this set was tested on top of (None = the branch tips).
    base_item: str | None = None
    # What is merged, in order: every change ahead, then the item's own.
    changes: tuple[SpeculativeChange, ...] = ()
    merge_state: MergeState = MergeState.NEW
    merge_request: str | None = None
    merged: bool | None = None
    merge_error: str | None = None  # plain words: why it did not merge
    # The merger failed (a git fetch, the merger's connection), not the
    # change: reported in words of its own, not the merge-failure template.
    merge_infra: bool = False
    commits: dict[str, str] = field(default_factory=dict)
    ref: str | None = None
    git_url: str | None = None
    builds: dict[str, Build] = field(default_factory=dict)  # job name -> latest build
    result: BuildSetResult | None = None

    @property
    def is_fresh(self) -> bool:
        """Nothing requested or launched yet: resetting it costs nothing."""
        return self.merge_state == MergeState.NEW and not self.builds


@dataclass(eq=False)
class QueueItem:
    uuid: str
    change: Change | Ref
    pipeline: str
    queue: str  # name of the ChangeQueue holding it
    enqueue_time: float
    build_set: BuildSet
    live: bool = True  # False: a dependency carried along only to be merged under a live item
    active: bool = False  # inside the window: may request merges and launch builds
    item_ahead: QueueItem | None = field(default=None, repr=False)
    items_behind: list[QueueItem] = field(default_factory=list, repr=False)
    failing_reasons: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # change keys this item depends on (gate: must be ahead)
    reported_start: bool = False
    dequeued: bool = False
    dequeue_reason: str = ""
    merged: bool = False  # submitted by us
    # The submit of a succeeded head: asked (the outbox key of its report) and
    # answered by a SubmitCompleted event in a later turn.
    submit_state: SubmitState = SubmitState.NONE
    submit_key: str | None = None
    history: list[HistoryEntry] = field(default_factory=list, repr=False)
    trigger: str = ""  # the event that enqueued it, described
    # Increases along its queue: a position found by bisection, not a scan of
    # the queue. Kept by the Door's tracker (core/dirty.py), not stored: the
    # tracker numbers restored items when it registers them.
    order: int = field(default=0, repr=False)

    @property
    def submitting(self) -> bool:
        """Its submit is with Gerrit: Gerrit's answer decides what becomes of it."""
        return self.submit_state == SubmitState.SUBMITTING

    @property
    def is_change(self) -> bool:
        return isinstance(self.change, Change)

    @property
    def nnfi(self) -> QueueItem | None:
        """The nearest non-failing item ahead, which this item is tested on.

        The managers move an item behind its nnfi whenever they differ, so
        after each processing pass this is simply the item ahead (None: the
        branch tip; a non-live dependency ahead is part of the state, not an
        nnfi)."""
        ahead = self.item_ahead
        while ahead is not None and not ahead.live:
            ahead = ahead.item_ahead
        return ahead

    @property
    def display_name(self) -> str:
        """How people name this item: ``N,PS`` or ``project ref@rev``."""
        return self.change.display_name


@dataclass(eq=False)
class ChangeQueue:
    """A gate queue shared by projects, or one item's own queue in check."""

    name: str
    pipeline: str
    projects: set[str] = field(default_factory=set)
    items: list[QueueItem] = field(default_factory=list)
    window: int = 0  # 0 = unlimited
    window_floor: int = 1
    dynamic: bool = False  # made for one item; removed when empty


@dataclass(eq=False)
class PipelineState:
    name: str
    queues: list[ChangeQueue] = field(default_factory=list)
    # change key -> items of that change in this pipeline (all queues)
    index: dict[str, list[QueueItem]] = field(default_factory=dict)
    # Decisions about changes that never became items ("not enqueued because ...").
    decisions: deque[tuple[str, HistoryEntry]] = field(
        default_factory=lambda: deque(maxlen=1000))
    # Gate: dependency change key -> changes waiting for it to enter the queue.
    waiting: dict[str, list[Change]] = field(default_factory=dict)

    def queue_named(self, name: str) -> ChangeQueue | None:
        for q in self.queues:
            if q.name == name:
                return q
        return None

    def items(self) -> list[QueueItem]:
        return [i for q in self.queues for i in q.items]
