"""Runtime state <-> JSON-able dicts, for the scheduler's tables.

Hand-written (not ``dataclasses.asdict``): it is on the per-turn path, the
links between items are uuids, and a field added to a model class later
must not break reading what an older release wrote (missing keys take the
dataclass default; unknown keys are ignored)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.runtime import (
    Build,
    BuildSet,
    ChangeQueue,
    HistoryEntry,
    QueueItem,
    SpeculativeChange,
)
from gatekeeper.model.states import BuildResult, BuildSetResult, MergeState, SubmitState

_CHANGE_FIELDS = tuple(f.name for f in fields(Change) if f.name != "approvals")
_REF_FIELDS = tuple(f.name for f in fields(Ref))
_BUILD_FIELDS = tuple(f.name for f in fields(Build) if f.name != "progress")
_APPROVAL_FIELDS = tuple(f.name for f in fields(Approval))


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def change_to_dict(c: Change | Ref) -> dict[str, Any]:
    if isinstance(c, Change):
        d = {k: getattr(c, k) for k in _CHANGE_FIELDS}
        d["approvals"] = [{k: getattr(a, k) for k in _APPROVAL_FIELDS} for a in c.approvals]
        d["kind"] = "change"
        return d
    d = {k: getattr(c, k) for k in _REF_FIELDS}
    d["kind"] = "ref"
    return d


def change_from_dict(d: dict[str, Any]) -> Change | Ref:
    if d.get("kind") == "ref":
        return Ref(**_pick(Ref, d))
    return Change(**_pick(Change, {k: v for k, v in d.items() if k != "approvals"}),
                  approvals=[Approval(**_pick(Approval, a)) for a in d.get("approvals") or ()])


def build_to_dict(b: Build) -> dict[str, Any]:
    d = {k: getattr(b, k) for k in _BUILD_FIELDS}
    d["progress"] = list(b.progress) if b.progress else None
    return d


def build_from_dict(d: dict[str, Any]) -> Build:
    b = Build(**_pick(Build, {k: v for k, v in d.items() if k != "progress"}))
    b.result = BuildResult(b.result) if b.result is not None else None
    p = d.get("progress")
    b.progress = (int(p[0]), int(p[1])) if p else None
    return b


# A build set's ``changes`` (every change ahead, then its own) is set once, is
# up to the queue's length, and is written to its item's changes row and to
# the history's build set row: encoded once (per build set).
_CHANGES_CACHE: dict[str, tuple[tuple[SpeculativeChange, ...], str]] = {}
CACHE_LIMIT = 20000


def changes_json(bs: BuildSet) -> str:
    """``bs.changes`` as JSON (the history's field names: change, patchset)."""
    hit = _CHANGES_CACHE.get(bs.uuid)
    if hit is not None and hit[0] is bs.changes:
        return hit[1]
    text = json.dumps([{"project": x.project, "branch": x.branch, "ref": x.ref,
                        "change": x.number, "patchset": x.patchset, "revision": x.revision}
                       for x in bs.changes], separators=(",", ":"))
    if len(_CHANGES_CACHE) >= CACHE_LIMIT:
        _CHANGES_CACHE.clear()
    _CHANGES_CACHE[bs.uuid] = (bs.changes, text)
    return text


def _spec_from_dict(x: dict[str, Any]) -> SpeculativeChange:
    return SpeculativeChange(project=x["project"], branch=x["branch"], ref=x["ref"],
                             number=x.get("change", x.get("number")),
                             patchset=x.get("patchset"), revision=x.get("revision", ""))


def build_set_to_dict(bs: BuildSet, changes: bool = True) -> dict[str, Any]:
    return {
        "uuid": bs.uuid, "base_item": bs.base_item,
        **({"changes": json.loads(changes_json(bs))} if changes else {}),
        "merge_state": bs.merge_state, "merge_request": bs.merge_request,
        "merged": bs.merged, "merge_error": bs.merge_error,
        "merge_infra": bs.merge_infra, "commits": dict(bs.commits),
        "ref": bs.ref, "git_url": bs.git_url, "result": bs.result,
        "builds": [build_to_dict(b) for b in bs.builds.values()],
    }


def build_set_from_dict(d: dict[str, Any]) -> BuildSet:
    bs = BuildSet(**_pick(BuildSet, {k: v for k, v in d.items()
                                     if k not in ("changes", "builds", "commits")}))
    bs.changes = tuple(_spec_from_dict(x) for x in d.get("changes") or ())
    bs.commits = dict(d.get("commits") or {})
    bs.merge_state = MergeState(bs.merge_state)
    bs.result = BuildSetResult(bs.result) if bs.result is not None else None
    for b in d.get("builds") or ():
        build = build_from_dict(b)
        bs.builds[build.job] = build
    return bs


def item_json(item: QueueItem) -> str:
    """``item_to_dict`` as JSON text, without its build set's changes: those are
    a row of their own (``schema.item_changes``), written when they change."""
    return json.dumps(item_to_dict(item, changes=False), separators=(",", ":"))


def item_to_dict(item: QueueItem, changes: bool = True) -> dict[str, Any]:
    return {
        "uuid": item.uuid, "change": change_to_dict(item.change), "pipeline": item.pipeline,
        "queue": item.queue, "enqueue_time": item.enqueue_time,
        "build_set": build_set_to_dict(item.build_set, changes), "live": item.live,
        "active": item.active, "ahead": item.item_ahead.uuid if item.item_ahead else None,
        "failing_reasons": list(item.failing_reasons), "needs": list(item.needs),
        "reported_start": item.reported_start, "dequeued": item.dequeued,
        "dequeue_reason": item.dequeue_reason, "merged": item.merged,
        "submit_state": item.submit_state, "submit_key": item.submit_key,
        "history": [[h.time, h.kind, h.text] for h in item.history],
        "trigger": item.trigger,
    }


def item_from_dict(d: dict[str, Any]) -> tuple[QueueItem, str | None]:
    """The item (unlinked) and the uuid of the item it was tested on top of."""
    bs = dict(d["build_set"])
    if "changes" in d:  # from their own row, or inside the item's (before 0003)
        bs["changes"] = d["changes"]
    item = QueueItem(
        uuid=d["uuid"], change=change_from_dict(d["change"]), pipeline=d["pipeline"],
        queue=d["queue"], enqueue_time=d["enqueue_time"],
        build_set=build_set_from_dict(bs), live=d.get("live", True),
        active=d.get("active", False), failing_reasons=tuple(d.get("failing_reasons") or ()),
        needs=tuple(d.get("needs") or ()), reported_start=d.get("reported_start", False),
        dequeued=d.get("dequeued", False), dequeue_reason=d.get("dequeue_reason", ""),
        merged=d.get("merged", False),
        submit_state=SubmitState(d.get("submit_state") or ""),
        submit_key=d.get("submit_key"),
        history=[HistoryEntry(t, k, x) for t, k, x in d.get("history") or ()],
        trigger=d.get("trigger", ""))
    return item, d.get("ahead")


def queue_to_dict(q: ChangeQueue) -> dict[str, Any]:
    return {"projects": sorted(q.projects), "items": [i.uuid for i in q.items],
            "window": q.window, "window_floor": q.window_floor, "dynamic": q.dynamic}


def queue_from_dict(pipeline: str, name: str, d: dict[str, Any]) -> tuple[ChangeQueue, list[str]]:
    q = ChangeQueue(name=name, pipeline=pipeline, projects=set(d.get("projects") or ()),
                    window=d.get("window", 0), window_floor=d.get("window_floor", 1),
                    dynamic=d.get("dynamic", False))
    return q, list(d.get("items") or ())
