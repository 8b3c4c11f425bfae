"""Event intake: parse a stream-events line and decide which pipelines it triggers.

A 2,000-project layout with 3 pipelines (check, gate, post) and a mix of
Gerrit 3.x ``stream-events`` lines (comment-added with votes, patchset-created,
ref-updated, change-merged, reviewer-added). For each line: parse it into a
TriggerEvent, look up its change, and decide which pipelines it enters — what
the scheduler does before any queue is touched. Baseline, same run, same
lines: bare ``json.loads``.

Two lookups: a Change shared from memory (what the decision itself costs),
and ``GerritSource``'s cache (what the scheduler pays per event when the
source hands out its cached Change).

    .venv/bin/python bench/intake.py [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.core import filters
from gatekeeper.gerrit.events import parse_line
from gatekeeper.gerrit.source import GerritSource
from gatekeeper.layout.loader import load_layout_text
from gatekeeper.layout.model import Layout
from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.events import TriggerEvent

PROJECTS = 2000
RECHECK = r"(?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*(recheck|reverify)"


def layout_text(projects: int) -> str:
    pipelines = f"""
pipelines:
  - name: check
    manager: independent
    trigger:
      gerrit:
        - event: patchset-created
        - event: comment-added
          comment: '{RECHECK}'
    success: {{labels: {{Verified: 1}}}}
    failure: {{labels: {{Verified: -1}}}}
  - name: gate
    manager: dependent
    trigger:
      gerrit:
        - event: comment-added
          approval: [{{Workflow: 1}}]
    require:
      open: true
      current-patchset: true
      approval: [{{Code-Review: 2}}]
    success: {{labels: {{Verified: 2}}, submit: true}}
    failure: {{labels: {{Verified: -2}}}}
  - name: post
    manager: serial
    trigger:
      gerrit:
        - event: ref-updated
          ref: ^refs/heads/.*$
jobs:
  - name: ^.*$
    label: debian
projects:
"""
    lines = [f"  - name: org/p{i}\n    check: [unit-{i}]\n    gate: [unit-{i}]\n"
             f"    post: [docs-{i}]\n" for i in range(projects)]
    return pipelines + "".join(lines)


def _account(i: int) -> dict[str, Any]:
    return {"name": f"Dev {i}", "email": f"dev{i}@example.org", "username": f"dev{i}"}


def _change(i: int, project: str) -> dict[str, Any]:
    return {"project": project, "branch": "master", "id": f"I{i:040x}", "number": i,
            "subject": f"Change number {i} does something useful", "owner": _account(i % 50),
            "url": f"https://review.example.org/c/{project}/+/{i}",
            "commitMessage": f"Change number {i}\n\nA body.\n\nChange-Id: I{i:040x}\n",
            "createdOn": 1_700_000_000, "status": "NEW"}


def _patchset(i: int) -> dict[str, Any]:
    return {"number": 1, "revision": f"{i:040x}", "parents": [f"{i + 1:040x}"],
            "ref": f"refs/changes/{i % 100:02d}/{i}/1", "uploader": _account(i % 50),
            "createdOn": 1_700_000_000, "author": _account(i % 50), "kind": "REWORK",
            "sizeInsertions": 10, "sizeDeletions": -2}


def make_lines(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        i = rnd.randrange(1, 100_000)
        project = f"org/p{rnd.randrange(PROJECTS)}"
        kind = rnd.random()
        base = {"eventCreatedOn": 1_700_000_000 + k}
        if kind < 0.40:
            wf = rnd.random() < 0.3
            comment = ("Patch Set 1: Workflow+1" if wf else
                       "Patch Set 1:\n\nrecheck" if rnd.random() < 0.2 else
                       "Patch Set 1: Code-Review+1\n\nLooks good to me, but someone else "
                       "must approve")
            approvals = [
                {"type": "Code-Review", "description": "Code-Review", "value": "2",
                 "oldValue": "2" if wf else "0"},
                {"type": "Verified", "description": "Verified", "value": "1"},
                {"type": "Workflow", "description": "Workflow", "value": "1" if wf else "0",
                 "oldValue": "0"},
            ]
            ev = {"type": "comment-added", "change": _change(i, project),
                  "patchSet": _patchset(i), "author": _account(i % 50),
                  "approvals": approvals, "comment": comment}
        elif kind < 0.65:
            ev = {"type": "patchset-created", "change": _change(i, project),
                  "patchSet": _patchset(i), "uploader": _account(i % 50)}
        elif kind < 0.80:
            ev = {"type": "ref-updated", "submitter": _account(i % 50),
                  "refUpdate": {"oldRev": f"{i:040x}", "newRev": f"{i + 1:040x}",
                                "refName": "refs/heads/master", "project": project}}
        elif kind < 0.90:
            ev = {"type": "change-merged", "change": _change(i, project),
                  "patchSet": _patchset(i), "submitter": _account(i % 50),
                  "newRev": f"{i + 2:040x}"}
        else:
            ev = {"type": "reviewer-added", "change": _change(i, project),
                  "patchSet": _patchset(i), "reviewer": _account(i % 50),
                  "adder": _account(i % 49)}
        out.append(json.dumps({**ev, **base}))
    return out


def change_for(ev: TriggerEvent) -> Change:
    assert ev.change_number is not None and ev.project is not None
    return Change(project=ev.project, branch=ev.branch or "master", number=ev.change_number,
                  patchset=ev.patchset or 1, change_id=ev.change_id or "",
                  ref=ev.ref or "", revision=ev.newrev or "", subject="Change",
                  commit_message="Change\n\nA body.\n", owner_username="dev1",
                  url="https://review.example.org/1", files=["a.py", "doc/b.rst"],
                  approvals=[Approval("Code-Review", 2, "core", granted_on=1_700_000_000),
                             Approval("Workflow", 1, "core", granted_on=1_700_000_000)])


def decider(layout: Layout):
    """The decision: which pipelines ``event`` about ``change`` enters."""
    triggered = getattr(filters, "triggered_pipelines", None)
    if triggered is not None:  # the index built at layout load
        return lambda ev, change, now: triggered(layout, ev, change, now)
    pipelines = list(layout.pipelines.values())

    def decide(ev: TriggerEvent, change: Change | Ref | None, now: float) -> list[str]:
        return [p.name for p in pipelines if filters.match_trigger(p, ev, change, now=now)]
    return decide


class _Target:
    username, host, port = "gatekeeper", "review.example.org", 29418


class _NoSSH:
    target = _Target()

    def run(self, argv):  # never reached: every change is cached
        raise AssertionError("bench source must not query")


def timed(fns, repeat: int) -> list[float]:
    """Best seconds of each of ``fns``, run in turn ``repeat`` times (so the
    machine's load weighs on each alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    layout = load_layout_text(layout_text(PROJECTS), "<bench layout>")
    lines = make_lines(args.events)
    decide = decider(layout)
    events = [parse_line(line) for line in lines]
    shared: dict[int, Change] = {}
    source = GerritSource(_NoSSH())  # type: ignore[arg-type]
    for ev in events:
        assert ev is not None
        if ev.change_number is not None:
            c = shared.setdefault(ev.change_number, change_for(ev))
            source._changes[(c.number, c.patchset)] = c
            source._changes[(c.number, None)] = c
    now = 1_700_000_000.0

    def subject(ev: TriggerEvent, lookup) -> Change | Ref | None:
        if ev.change_number is not None:
            return lookup(ev.change_number, ev.patchset)
        if ev.project and ev.ref:
            return Ref(ev.project, ev.ref, ev.oldrev or "", ev.newrev or "")
        return None

    def baseline() -> None:
        for line in lines:
            json.loads(line)

    def run(lookup) -> None:
        hits = 0
        for line in lines:
            ev = parse_line(line)
            if ev is None:
                continue
            hits += len(decide(ev, subject(ev, lookup), now))
        assert hits > 0

    def shared_lookup(number: int, ps: int | None) -> Change:
        return shared[number]

    t_json, t_shared, t_source = timed(
        [baseline, lambda: run(shared_lookup), lambda: run(source.get_change)], args.repeat)
    n = len(lines)
    print(f"{n} stream-events lines, {PROJECTS}-project layout, "
          f"{len(layout.pipelines)} pipelines (best of {args.repeat})")
    print(f"{'measurement':44} {'events/s':>10} {'x json.loads':>13}")
    for name, t in (("json.loads (baseline)", t_json),
                    ("parse + decide (shared Change)", t_shared),
                    ("parse + decide (GerritSource's cache)", t_source)):
        print(f"{name:44} {n / t:10,.0f} {t / t_json:12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
