"""Time from a Gerrit approval to the first gate job starting, end to end.

A LocalSite (Gerrit emulator over SSH, embedded Gearman, merger + git daemon,
worker, sshd nodes, scheduler) with ``event_delay`` 0. For each of N changes:
approve it, then time the phases seen by the scheduler:

  approval -> trigger event handled -> merge requested/completed -> build started

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
from pathlib import Path

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        site = LocalSite(Path(tmp) / "site", nodes=2, event_delay=0.0)
        site.start()
        try:
            sched = site.scheduler
            stamps: dict[str, float] = {}
            original = sched.add_result_event

            def spy(ev: object) -> None:
                if isinstance(ev, BuildStarted | MergeCompleted):
                    stamps.setdefault(f"{type(ev).__name__}:{getattr(ev, 'build_uuid', None) or ev.request_uuid}", time.perf_counter())
                original(ev)

            sched.add_result_event = spy
            listener = StreamClock(site)
            site.emulator.wait_for_stream_clients(2, 10)
            totals, baselines, merges = [], [], []
            for i in range(args.changes):
                n = site.emulator.create_change("demo/nova", subject=f"Bench change {i}",
                                                files={f"bench/{i}.txt": f"{i}\n"})
                _wait(site.idle, 120)
                stamps.clear()
                t0 = time.perf_counter()
                site.emulator.approve(n, user="core")
                start = _wait(lambda: next((t for k, t in stamps.items()
                                            if k.startswith("BuildStarted")), None), 120)
                totals.append(start - t0)
                merges.append(min(t for k, t in stamps.items()
                                  if k.startswith("MergeCompleted")) - t0)
                baselines.append(_wait(lambda n=n: listener.seen.get(n), 30) - t0)
                _wait(site.idle, 120)
            listener.close()
        finally:
            site.stop()
    med, base = statistics.median(totals), statistics.median(baselines)
    print(f"changes: {args.changes}")
    print(f"baseline  approval -> event at a bare stream-events client: median "
          f"{base * 1000:.1f} ms")
    print(f"gatekeeper approval -> speculative merge completed:           median "
          f"{statistics.median(merges) * 1000:.1f} ms")
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
