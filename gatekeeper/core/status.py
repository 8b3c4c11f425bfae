"""The status snapshot (for the web page): no secrets, plain JSON types."""

from __future__ import annotations

from typing import Any

from gatekeeper.core import jobs as jobsel
from gatekeeper.core.engine import Engine
from gatekeeper.model.runtime import BuildSet, QueueItem, SpeculativeChange

# tested_on of a build set never changes once its merge was requested; at
# 1,000 queued items rebuilding these lists was most of a snapshot's cost.
_TESTED_ON: dict[str, tuple[tuple[SpeculativeChange, ...], list[str]]] = {}
_TESTED_ON_LIMIT = 20000


def _tested_on(bs: BuildSet) -> list[str]:
    hit = _TESTED_ON.get(bs.uuid)
    if hit is not None and hit[0] is bs.changes:
        return hit[1]
    ids = [x.id_string for x in bs.changes[:-1]]
    if len(_TESTED_ON) >= _TESTED_ON_LIMIT:
        _TESTED_ON.clear()
    _TESTED_ON[bs.uuid] = (bs.changes, ids)
    return ids


def _item(engine: Engine, item: QueueItem) -> dict[str, Any]:
    c = item.change
    bs = item.build_set
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
        })
    return {
        "id": item.uuid, "change": item.display_name, "project": c.project, "branch": c.branch,
        "number": c.number, "patchset": c.patchset,
        "url": c.url, "live": item.live, "active": item.active,
        "enqueue_time": item.enqueue_time,
        "item_ahead": item.item_ahead.uuid if item.item_ahead else None,
        "items_behind": [b.uuid for b in item.items_behind],
        "nnfi": item.nnfi.display_name if item.nnfi else None,
        "tested_on": _tested_on(bs),  # shared: the document is read-only
        "failing_reasons": list(item.failing_reasons),
        "merge_state": bs.merge_state, "merged": bs.merged, "merge_error": bs.merge_error,
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
