"""The quickstart's story: three approved changes, one of which breaks the gate.

Alice uploads three changes to two projects that share the ``integrated``
gate queue; a core reviewer approves all three at once. The gate tests them
in parallel, each on top of the ones ahead of it. The middle change breaks
the (stand-in) devstack exercises: it is voted down and removed, the change
behind it is re-tested without it, and the other two merge in order."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from gatekeeper.model.statusdoc import chains
from gatekeeper.quickstart.site import LocalSite

Say = Callable[[str], None]


@dataclass
class Outcome:
    ok: bool
    problems: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)


def upload_changes(site: LocalSite) -> dict[str, int]:
    emu = site.emulator
    return {
        "A": emu.create_change("demo/nova", subject="Add a quota API", owner="alice",
                               files={"nova/quota.py": "def limit():\n    return 10\n"}),
        "B": emu.create_change("demo/glance", subject="Rework the image cache", owner="alice",
                               files={"glance/cache.py": "CACHE = {}\n",
                                      # the stand-in devstack's exercise.sh fails on this
                                      "FAIL_GATE": "this change breaks devstack\n"}),
        "C": emu.create_change("demo/nova", subject="Document the quota API", owner="alice",
                               files={"doc/quota.rst": "Quotas\n======\n"}),
    }


def _snapshot(site: LocalSite) -> set[tuple[str, str, str, str]]:
    out = set()
    for p in site.status()["pipelines"]:
        for q in p["queues"]:
            lists = chains(q["items"])
            for item in q["items"]:
                ahead = " ".join(lists[item["id"]]) or "the branch tip"
                for j in item["jobs"]:
                    state = j["result"] or ("running" if j["start_time"] else "queued")
                    out.add((p["name"], item["change"], f"{j['name']} on {ahead}", state))
    return out


def wait_until_idle(site: LocalSite, timeout: float, say: Say | None = None) -> bool:
    """Follow the queues (printing changes of state) until all are empty."""
    seen: set[tuple[str, str, str, str]] = set()
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        snap = _snapshot(site)
        for pipeline, change, job, state in sorted(snap - seen):
            if say:
                say(f"  {pipeline:<6} {change:<6} {job:<48} {state}")
        seen |= snap
        if site.idle():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:  # events may still be in flight
                return True
        else:
            quiet_since = None
        time.sleep(0.2)
    return False


def run_story(site: LocalSite, say: Say = print, timeout: float = 600.0) -> Outcome:
    emu = site.emulator
    say("Uploading three changes (A and C to demo/nova, B to demo/glance) ...")
    changes = upload_changes(site)
    say("A core reviewer approves all three (Code-Review +2, Workflow +1) ...")
    for name in ("A", "B", "C"):
        emu.approve(changes[name], user="core")
    say("Following the check and gate pipelines:")
    outcome = Outcome(ok=True, changes=changes)
    if not wait_until_idle(site, timeout, say):
        outcome.problems.append(f"the queues did not drain within {timeout:.0f}s")
    _report(site, changes, say, outcome)
    outcome.ok = not outcome.problems
    return outcome


def _report(site: LocalSite, changes: dict[str, int], say: Say, outcome: Outcome) -> None:
    emu = site.emulator
    say("")
    say("What Gerrit shows now:")
    expected = {"A": "MERGED", "B": "NEW", "C": "MERGED"}
    log_urls = []
    for name, number in changes.items():
        status = emu.status(number)
        verified = emu.votes(number).get("Verified", {}).get("gatekeeper")
        say(f"  {name} = change {number}: {status}, Verified {verified:+d}" if verified
            is not None else f"  {name} = change {number}: {status}, no Verified vote")
        if status != expected[name]:
            outcome.problems.append(f"change {name} is {status}, expected {expected[name]}")
        for author, text in emu.messages(number):
            if author == "gatekeeper":
                say("    | " + text.replace("\n", "\n    | "))
                log_urls += re.findall(r"(https?://\S+/logs/\S+?)\s", text + " ")
    say("")
    say("Why C was tested twice (gatekeeper explain " + str(changes["C"]) + ", gate):")
    gate = site.scheduler.explain(changes["C"]).split("\n\n")
    for block in gate:
        if " in gate" in block.split("\n", 1)[0]:
            for line in block.splitlines()[1:]:
                if any(k in line for k in ("enqueue", "merge ", "reset", "launch", "submit")):
                    say("  " + line)
    say("")
    for project in ("demo/nova", "demo/glance"):
        say(f"  {project} master: " + " <- ".join(emu.git_log(project)[:4]))
    merged = [int(e["change"]["number"]) for e in emu.events()
              if e.get("type") == "change-merged"]
    names = {v: k for k, v in changes.items()}
    say("  merged in this order: " + (", ".join(names.get(m, str(m)) for m in merged) or "none"))
    if merged != [changes["A"], changes["C"]]:
        outcome.problems.append(f"merged {merged}, expected A then C")
    if "Rework the image cache" in emu.git_log("demo/glance"):
        outcome.problems.append("B, which breaks the gate, was merged")
    if log_urls:
        url = log_urls[-1].rstrip("/") + "/console.txt"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                console = resp.read().decode(errors="replace")
            say(f"  console log: {url} ({'NODE_PROVIDER=' in console and 'has' or 'LACKS'} "
                "NODE_PROVIDER=)")
            if "NODE_PROVIDER=" not in console:
                outcome.problems.append(f"{url} does not show NODE_PROVIDER=")
        except OSError as e:
            outcome.problems.append(f"log URL {url} cannot be read: {e}")
    else:
        outcome.problems.append("no log URL in any report")
