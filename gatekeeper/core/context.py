"""What the pipeline managers share: the layout, the door, the effects port."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gatekeeper.core.deps import ChangeLookup
from gatekeeper.core.door import Door
from gatekeeper.core.strategy import Learned
from gatekeeper.interfaces import BuildRequest, MailReport, MergeRequest, ReportResult
from gatekeeper.layout.model import Layout
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import BuildSet, QueueItem

log = logging.getLogger("gatekeeper.core.context")


class Effects(Protocol):
    """The outside world as the core sees it (the scheduler binds the adapters).

    launch/cancel/merge/submit are fire-and-forget: results come back as
    events (a submit's as ``SubmitCompleted`` with its key, in a later turn).
    report returns at once (with a store it only queues the outbox row)."""

    def launch(self, request: BuildRequest) -> None: ...

    def cancel(self, build_uuid: str) -> None: ...

    def merge(self, request: MergeRequest) -> None: ...

    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool) -> ReportResult: ...

    def submit(self, key: str, change: Change, message: str,
               labels: dict[str, int]) -> None: ...

    def mail(self, mail: MailReport) -> None: ...


@dataclass
class Context:
    layout: Layout
    door: Door
    effects: Effects
    lookup: ChangeLookup
    clock: Callable[[], float]
    new_uuid: Callable[[], str]
    status_url: str = ""
    git_url: str = ""
    # Indexes rebuilt from the items (not independent state): which build /
    # merge request belongs to which item and build set.
    builds: dict[str, tuple[QueueItem, BuildSet]] = field(default_factory=dict)
    merges: dict[str, tuple[QueueItem, BuildSet]] = field(default_factory=dict)
    submits: dict[str, QueueItem] = field(default_factory=dict)  # report key -> submitting item
    # Items that left their queue, newest last, for ``explain`` after the fact.
    finished: deque[QueueItem] = field(default_factory=lambda: deque(maxlen=500))
    # What each pipeline's gate strategy has learned (flake rates, broken rate).
    learned: dict[str, Learned] = field(default_factory=dict)
    ops: int = 0  # items processed or reset: the cost counter the scale tests assert on
    # Every pass visits every item (up to each window's end) instead of the
    # dirty walk: the reference the tests compare the dirty walk with.
    full_walk: bool = False
