"""Gearman payloads of ``merger:merge`` / ``merger:update`` (see protocol.py).

MergeArgs:   {"uuid", "ref_name", "items": [{project, branch, number,
             patchset, ref, newrev, merge_mode}, ...]}
MergeResult: {"merged", "commits", "ref", "url", "conflict_files",
             "conflict_change", "error"}
UpdateArgs:  {"projects": [...]}; UpdateResult: {"updated": {project:
             {branch: sha}}, "error"}"""

from __future__ import annotations

import dataclasses
from typing import Any

from gatekeeper.interfaces import MergeItem, MergeRequest
from gatekeeper.model.events import MergeCompleted

_ITEM_FIELDS = {f.name: f for f in dataclasses.fields(MergeItem)}


def merge_args(request: MergeRequest) -> dict[str, Any]:
    return {"uuid": request.uuid, "ref_name": request.ref_name,
            "items": [dataclasses.asdict(i) for i in request.items]}


def parse_merge_args(args: dict[str, Any]) -> MergeRequest:
    """A MergeRequest from decoded JSON; ValueError naming what is wrong."""
    uuid = args.get("uuid", "")
    ref_name = args.get("ref_name", "") or ""
    raw = args.get("items")
    if not isinstance(uuid, str) or not isinstance(ref_name, str):
        raise ValueError("uuid and ref_name must be strings")
    if not isinstance(raw, list):
        raise ValueError("items must be a list")
    items = []
    for n, obj in enumerate(raw):
        if not isinstance(obj, dict):
            raise ValueError(f"items[{n}] is not an object")
        unknown = set(obj) - set(_ITEM_FIELDS)
        if unknown:
            raise ValueError(f"items[{n}]: unknown keys {sorted(unknown)}")
        for key in ("project", "branch"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise ValueError(f"items[{n}].{key} must be a non-empty string")
        for key in ("number", "patchset"):
            if obj.get(key) is not None and (not isinstance(obj[key], int)
                                             or isinstance(obj[key], bool)):
                raise ValueError(f"items[{n}].{key} must be an integer")
        for key in ("ref", "newrev", "merge_mode"):
            if key in obj and not isinstance(obj[key], str):
                raise ValueError(f"items[{n}].{key} must be a string")
        items.append(MergeItem(**obj))
    return MergeRequest(uuid, tuple(items), ref_name)


def merge_result(done: MergeCompleted, url: str | None) -> dict[str, Any]:
    return {"merged": done.merged, "commits": done.commits, "ref": done.ref,
            "url": url if done.merged else None,
            "conflict_files": list(done.conflict_files),
            "conflict_change": done.conflict_change, "error": done.error}


def parse_merge_result(uuid: str, result: dict[str, Any]) -> MergeCompleted:
    commits = result.get("commits") or {}
    if not isinstance(commits, dict):
        raise ValueError("commits must be an object")
    return MergeCompleted(
        uuid, bool(result.get("merged")),
        commits={str(k): str(v) for k, v in commits.items()},
        ref=result.get("ref") or None,
        conflict_files=tuple(str(f) for f in result.get("conflict_files") or ()),
        conflict_change=result.get("conflict_change") or None,
        error=result.get("error") or None,
        url=result.get("url") or None)
