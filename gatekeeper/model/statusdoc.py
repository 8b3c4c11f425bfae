"""Reading the status document (``gatekeeper.core.status``) where it is compact.

An item names what its build set is tested on as ``tested_on_base`` (the id
of an item ahead in the same queue: "that item's changes, then that item")
plus ``tested_on_extra`` (change ids after those); without a base the extra
list is the whole of it. Readers expand it here, in one pass per queue.
A snapshot from a scheduler before this form has only ``tested_on``, the
whole list: it is read as the extra list without a base."""

from __future__ import annotations

from typing import Any


def chains(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each item's full list of changes it is tested on, by item id (one queue's
    items, front to back, as ``status()`` lists them)."""
    out: dict[str, list[str]] = {}
    change: dict[str, str] = {}
    for i in items:
        iid = str(i.get("id"))
        change[iid] = str(i.get("change"))
        base = i.get("tested_on_base")
        extra = [str(x) for x in _extra(i)]
        if base is not None and str(base) in out:
            extra = out[str(base)] + [change[str(base)]] + extra
        out[iid] = extra
    return out


def chains_without(items: list[dict[str, Any]], label: str) -> dict[str, bool]:
    """By item id: is the item tested without the change ``label``? Linear in
    the queue, whatever its depth (no list is expanded)."""
    with_it: dict[str, bool] = {}
    change: dict[str, str] = {}
    for i in items:
        iid = str(i.get("id"))
        change[iid] = str(i.get("change"))
        base = i.get("tested_on_base")
        has = label in _extra(i)
        if not has and base is not None and str(base) in with_it:
            has = with_it[str(base)] or change[str(base)] == label
        with_it[iid] = has
    return {k: not v for k, v in with_it.items()}


def _extra(item: dict[str, Any]) -> list[Any]:
    extra = item.get("tested_on_extra", item.get("tested_on"))
    return extra if isinstance(extra, list) else []
