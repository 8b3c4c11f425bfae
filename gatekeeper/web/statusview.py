"""The status snapshot made ready for people: filtered, with progress and ETAs.

Pure functions over the scheduler's snapshot (``gatekeeper.core.status``):
``view()`` keeps the items the filters ask for and adds, per job, its
expected duration (from the job's own history), elapsed time and progress;
per item, the jobs done, the time left, the estimated time to merge (for a
dependent queue: never before the item ahead of it) and which items were
re-tested without a failing one."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from gatekeeper.model.statusdoc import chains, chains_without
from gatekeeper.web.sources import EtaSource


@dataclass(frozen=True)
class Filters:
    project: str = ""
    change: str = ""
    pipeline: str = ""

    @classmethod
    def from_query(cls, q: Any) -> Filters:
        return cls(*(str(q.get(k) or "").strip()[:200] for k in ("project", "change",
                                                                  "pipeline")))

    def keeps(self, pipeline: str, item: dict[str, Any]) -> bool:
        if self.pipeline and self.pipeline != pipeline:
            return False
        if self.project and self.project.lower() not in str(item.get("project", "")).lower():
            return False
        if self.change:
            label = str(item.get("change", ""))
            if self.change != label and self.change != label.split(",")[0]:
                return False
        return True

    @property
    def active(self) -> bool:
        return bool(self.project or self.change or self.pipeline)


def job_state(job: dict[str, Any]) -> str:
    if job.get("result"):
        return str(job["result"])
    if job.get("failing"):  # running; its output matched failure-output
        return "failing"
    if job.get("start_time"):
        return "running"
    if job.get("launch_time"):
        return "launched"
    return "waiting"


def _job(job: dict[str, Any], project: str, etas: EtaSource, now: float) -> dict[str, Any]:
    state = job_state(job)
    eta = etas.job_eta(project, str(job.get("name", "")))
    job["state"] = state
    job["eta"] = eta
    elapsed = None
    if job.get("start_time"):
        elapsed = max(0.0, (job.get("end_time") or now) - job["start_time"])
    job["elapsed"] = elapsed
    if job.get("result"):
        job["progress"], job["remaining"] = 1.0, 0.0
    elif state == "running" and eta:
        job["progress"] = min(0.99, (elapsed or 0.0) / eta)
        job["remaining"] = max(0.0, eta - (elapsed or 0.0))
    else:
        job["progress"] = 0.0
        job["remaining"] = eta  # waiting: the whole run (None without history)
    return job


def _item(item: dict[str, Any], etas: EtaSource, now: float) -> dict[str, Any]:
    jobs = [_job(j, str(item.get("project", "")), etas, now) for j in item.get("jobs", [])]
    item["jobs_done"] = sum(1 for j in jobs if j.get("result"))
    item["jobs_total"] = len(jobs)
    remaining = [j["remaining"] for j in jobs]
    # Jobs run in parallel: the item is done when its slowest job is.
    item["remaining"] = None if any(r is None for r in remaining) else max(remaining, default=0.0)
    item["failing"] = bool(item.get("failing_reasons")) or any(
        j.get("result") not in (None, "SUCCESS") and j.get("voting", True) for j in jobs)
    return item


def view(status: dict[str, Any], filters: Filters, etas: EtaSource,
         now: float) -> dict[str, Any]:
    """A filtered copy of ``status`` with the derived fields (the input is untouched)."""
    out = {k: v for k, v in status.items() if k != "pipelines"}
    pipelines = []
    total = shown = 0
    for p in status.get("pipelines", []):
        name = str(p.get("name", ""))
        if filters.pipeline and filters.pipeline != name:
            total += sum(len(q.get("items", [])) for q in p.get("queues", []))
            continue
        queues = []
        for q in p.get("queues", []):
            items = q.get("items", [])
            total += len(items)
            full = [_item(copy.deepcopy(i), etas, now) for i in items]
            _to_merge(full, p.get("manager") == "dependent")
            _reset_behind(full)
            kept = [i for i in full if filters.keeps(name, i)]
            lists = chains(items)
            for i in kept:
                i["tested_on"] = lists.get(str(i.get("id")), [])
            shown += len(kept)
            queues.append({**{k: v for k, v in q.items() if k != "items"}, "items": kept})
        pipelines.append({**{k: v for k, v in p.items() if k != "queues"}, "queues": queues})
    out["pipelines"] = pipelines
    out["items_total"], out["items_shown"] = total, shown
    out["now"] = now
    return out


def _to_merge(items: list[dict[str, Any]], dependent: bool) -> None:
    """Estimated seconds until each item is done (and, in a gate, merged)."""
    ahead: float | None = 0.0
    for i in items:
        own = i["remaining"]
        if not dependent:
            i["time_to_merge"] = own
            continue
        ahead = None if own is None or ahead is None else max(own, ahead)
        i["time_to_merge"] = ahead


def _reset_behind(items: list[dict[str, Any]]) -> None:
    """For each failing item: the items behind it now tested without it."""
    for n, i in enumerate(items):
        if not i["failing"]:
            i["reset_behind"] = []
            continue
        without = chains_without(items, str(i.get("change")))
        i["reset_behind"] = [b.get("change") for b in items[n + 1:]
                             if without.get(str(b.get("id")), True)]
