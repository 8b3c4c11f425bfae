"""The status snapshot (for the web page): no secrets, plain JSON types."""

from __future__ import annotations

from typing import Any

from gatekeeper.core import jobs as jobsel
from gatekeeper.core.engine import Engine
from gatekeeper.model.runtime import QueueItem, SpeculativeChange

# Each item names what it was tested on relative to an item ahead: "that
# item's changes, that item, then these" — the usual chain costs one id per
# item instead of its whole depth (a full list per item made the document
# quadratic in the queue's length: 4.8 MB at 1,000 items). ``gatekeeper.model.statusdoc``
# expands it for readers.
_BASE: dict[str, tuple[tuple[SpeculativeChange, ...], str, tuple[SpeculativeChange, ...],
                       tuple[str | None, list[str]]]] = {}
_BASE_LIMIT = 20000


def _tested_on(item: QueueItem) -> tuple[str | None, list[str]]:
    """(base item id, extra change ids) for ``item``'s build set."""
    bs = item.build_set
    ahead = item.nnfi or item.item_ahead
    ahead_bs = ahead.build_set if ahead is not None else None
    if ahead_bs is not None:
        hit = _BASE.get(bs.uuid)
        if hit is not None and hit[0] is bs.changes and hit[1] == ahead_bs.uuid \
                and hit[2] is ahead_bs.changes:
            return hit[3]
    ahead_ids = ahead_bs.changes if ahead_bs is not None else ()
    own = bs.changes[:-1]
    # A reader appends the base item's "change": it must be the id its chain ends with.
    if ahead is not None and ahead_ids and own == ahead_ids \
            and ahead.display_name == ahead_ids[-1].id_string:
        value: tuple[str | None, list[str]] = (ahead.uuid, [])
    else:
        value = (None, [x.id_string for x in own])
    if ahead_bs is not None:
        if len(_BASE) >= _BASE_LIMIT:
            _BASE.clear()
        _BASE[bs.uuid] = (bs.changes, ahead_bs.uuid, ahead_bs.changes, value)
    return value


def _item(engine: Engine, item: QueueItem) -> dict[str, Any]:
    c = item.change
    bs = item.build_set
    base, extra = _tested_on(item)
    selected = jobsel.select_jobs(engine.ctx.layout, item.pipeline, c)
    jobs = []
    for s in selected:
        b = bs.builds.get(s.job.name)
        jobs.append({
            "name": s.job.name, "voting": s.job.voting, "parent": s.parent,
            "uuid": b.uuid if b else None, "result": b.result if b else None,
            "url": b.url if b else None, "attempt": b.attempt if b else 0,
            "launch_time": b.launch_time if b else None,
            "start_time": b.start_time if b else None,
            "end_time": b.end_time if b else None,
            "node": b.node if b else None, "worker": b.worker if b else None,
            "message": b.message if b else None,
            "judgment": b.judgment if b else None,
            "failing": b.failing if b else None,
        })
    return {
        "id": item.uuid, "change": item.display_name, "project": c.project, "branch": c.branch,
        "number": c.number, "patchset": c.patchset,
        "url": c.url, "live": item.live, "active": item.active,
        "enqueue_time": item.enqueue_time,
        "item_ahead": item.item_ahead.uuid if item.item_ahead else None,
        "items_behind": [b.uuid for b in item.items_behind],
        "nnfi": item.nnfi.display_name if item.nnfi else None,
        "tested_on_base": base, "tested_on_extra": extra,  # extra is shared: read-only
        "failing_reasons": list(item.failing_reasons),
        "merge_state": bs.merge_state, "merged": bs.merged, "merge_error": bs.merge_error,
        "submit_state": item.submit_state,
        "jobs": jobs,
        "last_decision": item.history[-1].text if item.history else "",
    }


def status(engine: Engine) -> dict[str, Any]:
    pipelines = []
    for name, state in engine.states.items():
        p = engine.ctx.layout.pipelines[name]
        pipelines.append({
            "name": name, "manager": p.manager, "description": p.description,
            "queues": [{"name": q.name, "window": q.window, "projects": sorted(q.projects),
                        "items": [_item(engine, i) for i in q.items]}
                       for q in state.queues],
        })
    return {"pipelines": pipelines, "status_url": engine.ctx.status_url}
