"""Render the decisions about an item or a change as text (``gatekeeper
explain``, the status page's item view)."""

from __future__ import annotations

import time

from gatekeeper.core.engine import Engine
from gatekeeper.model.runtime import HistoryEntry, QueueItem
from gatekeeper.model.states import SubmitState


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def render_history(entries: list[HistoryEntry]) -> str:
    """One line per decision: ``TIME  KIND  TEXT``."""
    return "\n".join(f"{_ts(e.time)}  {e.kind:<12} {e.text}" for e in entries)


def explain_item(item: QueueItem) -> str:
    where = "dequeued: " + item.dequeue_reason if item.dequeued else (
        f"queue {item.queue}, tested on top of "
        f"{item.item_ahead.display_name if item.item_ahead else 'the branch tip'}"
        f"{'' if item.active else ' (waiting outside the window)'}")
    head = f"{item.display_name} in {item.pipeline} ({'live' if item.live else 'dependency'}): {where}"
    if item.submit_state == SubmitState.SUBMITTING:
        head += "\n  submitting: waiting for Gerrit's answer to its submit"
    if item.failing_reasons:
        head += "\n  failing because " + "; ".join(item.failing_reasons)
    return head + "\n" + render_history(item.history)


def explain_change(engine: Engine, key: str) -> str:
    """Everything the core decided about change ``key`` (its number)."""
    parts = [explain_item(i) for i in engine.find_items(key)]
    for name, state in engine.states.items():
        entries = [e for k, e in state.decisions if k == key]
        if entries:
            parts.append(f"{key} in {name} (not enqueued):\n" + render_history(entries))
    return "\n\n".join(parts) if parts else f"nothing is known about {key}"
