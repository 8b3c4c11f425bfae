"""A synthetic status snapshot of any size (the shape ``core.status`` makes),
for the web's browser tests and its render benchmark."""

from __future__ import annotations

from typing import Any

JOBS = ("merge", "unit-py3", "functional", "tempest-full", "docs")


def sample_status(items: int, now: float, projects: int = 20,
                  subject: str = "") -> dict[str, Any]:
    """``items`` changes in one gate queue: the first window running, one
    failing every 50, the rest waiting; every 10th item also in check."""
    gate, check = [], []
    window = 20
    base = None  # the nearest non-failing item ahead: items behind a failing one skip it
    for n in range(1, items + 1):
        project = f"org/project{n % projects}"
        running = n <= window
        failing = running and n % 50 == 7
        jobs = []
        for k, name in enumerate(JOBS):
            done = running and k == 0
            jobs.append({"name": name + subject, "voting": name != "docs",
                         "uuid": f"{n:06d}{k}" if running else None,
                         "result": ("FAILURE" if failing and k == 0 else "SUCCESS")
                         if done else None,
                         "url": f"/logs/{n}/1/gate/{name}/" if running else None,
                         "attempt": 1 if running else 0,
                         "launch_time": now - 600 if running else None,
                         "start_time": now - 590 + n if running else None,
                         "end_time": now - 500 if done else None,
                         "node": "node-1" if running else None, "worker": None})
        item = {"id": f"item{n}", "change": f"{n},1", "number": n, "patchset": 1,
                "project": project, "branch": "master", "url": f"http://gerrit/{n}",
                "live": True, "active": n <= window, "enqueue_time": now - 3600 + n,
                "item_ahead": f"item{n - 1}" if n > 1 else None,
                "items_behind": [f"item{n + 1}"] if n < items else [],
                "nnfi": None, "tested_on_base": base,
                "tested_on_extra": [],
                "failing_reasons": ["job merge failed"] if failing else [],
                "merge_state": "MERGED", "merged": True, "merge_error": None,
                "jobs": jobs, "last_decision": f"enqueued {subject}"}
        gate.append(item)
        if not failing:
            base = item["id"]
        if n % 10 == 0:
            check.append({**item, "id": f"check{n}", "tested_on_base": None,
                          "tested_on_extra": [], "item_ahead": None,
                          "items_behind": []})
    return {"pipelines": [
        {"name": "check", "manager": "independent", "description": "",
         "queues": [{"name": "", "window": 0, "projects": [], "items": check}]},
        {"name": "gate", "manager": "dependent", "description": "",
         "queues": [{"name": "integrated", "window": window, "projects": [],
                     "items": gate}]}],
        "status_url": "", "errors": []}
