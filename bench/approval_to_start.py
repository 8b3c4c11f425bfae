"""Time from a Gerrit approval to the first gate job starting, end to end.

A LocalSite (Gerrit emulator over SSH, embedded Gearman, merger + git daemon,
worker, sshd nodes, scheduler) with ``event_delay`` 0. For each of N changes:
approve it, then time the phases seen by the scheduler:

  approval -> trigger event handled -> merge requested/completed -> build started

and, inside them, the stages of the merger (job taken, fetched from Gerrit,
changes applied, result published) and of the worker (job taken, node
claimed). Every stage is stamped once per change by wrapping the in-process
objects of the site (nothing in gatekeeper/ knows about the bench); the
closing table gives each stage's median time since the approval and since
the stage before, and the work counted per change (ssh connections made
and git processes run by the merger).

Baseline, measured in the same run on the same emulator: the time for the
same ``comment-added`` event to reach a plain paramiko ``stream-events``
client (what any Gerrit listener pays). Prints medians and the ratio.

    .venv/bin/python bench/approval_to_start.py [--changes 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.model.events import BuildStarted, MergeCompleted
from gatekeeper.quickstart.site import LocalSite


class StreamClock:
    """A bare stream-events listener stamping when each approval arrives."""

    def __init__(self, site: LocalSite):
        emu = site.emulator
        key = paramiko.Ed25519Key.from_private_key_file(str(site.root / "keys" /
                                                            "gatekeeper_ed25519"))
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # loopback bench
        self.client.connect(emu.host, port=emu.port, username="gatekeeper", pkey=key,
                            look_for_keys=False, allow_agent=False)
        self.client.get_transport().sock.setsockopt(6, 1, 1)  # TCP_NODELAY
        self.chan = self.client.get_transport().open_session()
        self.chan.exec_command("gerrit stream-events")
        self.seen: dict[int, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        while True:
            data = self.chan.recv(65536)
            if not data:
                return
            now = time.perf_counter()
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                ev = json.loads(line)
                if ev.get("type") == "comment-added" and any(
                        a.get("type") == "Workflow" and a.get("value") == "1"
                        for a in ev.get("approvals", [])):
                    self.seen.setdefault(int(ev["change"]["number"]), now)

    def close(self) -> None:
        self.client.close()


# (stage, what it is) in the order they happen; "approval" is t0.
STAGES = (
    ("event", "scheduler has the trigger event"),
    ("merge_req", "scheduler asks for the merge"),
    ("merger_got", "merger took the job"),
    ("fetched", "merger fetched from Gerrit"),
    ("applied", "merger applied the change(s)"),
    ("published", "merger published the ref"),
    ("merge_done", "scheduler has MergeCompleted"),
    ("launch", "scheduler launches the first job"),
    ("worker_got", "worker took the build"),
    ("claimed", "worker claimed a node"),
    ("started", "scheduler has BuildStarted"),
)


class Stamps:
    """First time each stage is reached since :meth:`reset`, plus work counters."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.at: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.t.clear()
            self.count.clear()
            self.at.clear()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        with self.lock:
            if stage not in self.t:
                self.t[stage] = now
                # work done until this stage (the build goes on after "started")
                self.at[stage] = dict(self.count)

    def add(self, what: str) -> None:
        with self.lock:
            self.count[what] = self.count.get(what, 0) + 1


def _wrap(obj: object, name: str, before: Callable[..., None] | None = None,
          after: Callable[..., None] | None = None) -> None:
    """Replace ``obj.name`` by a wrapper calling ``before(*args)`` / ``after(result)``."""
    original = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(*args)
        out = original(*args, **kwargs)
        if after is not None:
            after(out)
        return out

    setattr(obj, name, wrapper)


def instrument(site: LocalSite, st: Stamps) -> None:
    import subprocess

    from gatekeeper.merger import repo as repo_mod
    from gatekeeper.sim.gerrit import server as emu_server

    sched = site.scheduler
    svc = site.services
    _wrap(sched, "add_trigger_event", lambda ev: st.mark("event"))
    _wrap(sched.effects, "merge", lambda req: st.mark("merge_req"))
    _wrap(sched.effects, "launch", lambda req: st.mark("launch"))

    def result(ev: object) -> None:
        if isinstance(ev, MergeCompleted):
            st.mark("merge_done")
        elif isinstance(ev, BuildStarted):
            st.mark("started")

    _wrap(sched, "add_result_event", result)
    mservice = svc.merger.service
    merger = svc.merger.merger
    _wrap(mservice, "_handle", lambda job: st.mark("merger_got"))
    _wrap(merger, "_publish", lambda *a: st.mark("applied"), lambda out: st.mark("published"))
    _wrap(repo_mod.Repo, "update", after=lambda out: st.mark("fetched"))
    worker = svc.worker
    _wrap(worker, "_accept", lambda job: st.mark("worker_got"))
    _wrap(worker.executor, "_claim", after=lambda lease: st.mark("claimed"))
    # Work counted: SSH connections the emulator accepted, git processes by cwd.
    _wrap(emu_server._Transport, "__init__", lambda *a: st.add("ssh connections to Gerrit"))
    merger_dirs = (str(merger.git_dir), str(merger.publish_root))
    popen_init = subprocess.Popen.__init__

    def counted(self: Any, args: Any, *a: Any, **kw: Any) -> None:
        argv = [str(x) for x in args] if isinstance(args, list | tuple) else [str(args)]
        cwd = str(kw.get("cwd") or "")
        if argv and argv[0] == "git":
            if cwd.startswith(merger_dirs) or any(x.startswith(merger_dirs) for x in argv):
                st.add("git processes of the merger")
        elif argv and argv[0] == "ssh":
            st.add("ssh processes")
        popen_init(self, args, *a, **kw)

    subprocess.Popen.__init__ = counted  # type: ignore[method-assign]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=10)
    args = ap.parse_args()
    rows: list[dict[str, float]] = []
    counts: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        site = LocalSite(Path(tmp) / "site", nodes=2, event_delay=0.0)
        site.start()
        try:
            st = Stamps()
            instrument(site, st)
            listener = StreamClock(site)
            site.emulator.wait_for_stream_clients(2, 10)
            totals, baselines = [], []
            for i in range(args.changes):
                n = site.emulator.create_change("demo/nova", subject=f"Bench change {i}",
                                                files={f"bench/{i}.txt": f"{i}\n"})
                # The check pipeline's run must be over (its Verified vote is in):
                # idle() alone can be true before the upload's event is handled,
                # and check's merge and build would then run inside the window.
                _wait(lambda n=n: "Verified" in site.emulator.votes(n), 120)
                _wait(site.idle, 120)
                st.reset()
                t0 = time.perf_counter()
                site.emulator.approve(n, user="core")
                start = _wait(lambda: st.t.get("started"), 120)
                totals.append(start - t0)
                baselines.append(_wait(lambda n=n: listener.seen.get(n), 30) - t0)
                _wait(site.idle, 120)
                with st.lock:
                    rows.append({k: v - t0 for k, v in st.t.items()})
                    counts.append(dict(st.at.get("started", {})))
            listener.close()
        finally:
            site.stop()
    med, base = statistics.median(totals), statistics.median(baselines)
    print(f"changes: {args.changes}")
    print(f"{'stage':<12} {'what':<36} {'since approval':>15} {'since previous':>15}")
    print(f"{'approval':<12} {'the approval is made':<36} {0:>12.1f} ms {'':>15}")
    prev = 0.0
    for stage, what in STAGES:
        got = [r[stage] for r in rows if stage in r]
        if not got:
            print(f"{stage:<12} {what:<36} {'(not reached)':>15}")
            continue
        steps = [r[stage] - max([0.0] + [r[s] for s, _ in STAGES[:STAGES.index((stage, what))]
                                         if s in r and r[s] <= r[stage]])
                 for r in rows if stage in r]
        at = statistics.median(got)
        print(f"{stage:<12} {what:<36} {at * 1000:>12.1f} ms {statistics.median(steps) * 1000:>12.1f} ms")
        prev = at
    del prev
    for what in sorted({k for c in counts for k in c}):
        print(f"per change until started: {what}: median {statistics.median(c.get(what, 0) for c in counts):g}")
    print(f"baseline  approval -> event at a bare stream-events client: median "
          f"{base * 1000:.1f} ms")
    print(f"gatekeeper approval -> speculative merge completed:           median "
          f"{statistics.median(r['merge_done'] for r in rows) * 1000:.1f} ms")
    print(f"gatekeeper approval -> first gate job started on a node:     median "
          f"{med * 1000:.1f} ms  (p90 {sorted(totals)[int(0.9 * (len(totals) - 1))] * 1000:.1f} ms)")
    print(f"ratio: {med / base:.1f}x the bare event delivery")
    return 0


def _wait(cond, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.002)
    raise TimeoutError("benchmark step did not finish")


if __name__ == "__main__":
    sys.exit(main())
