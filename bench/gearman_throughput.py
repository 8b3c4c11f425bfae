"""Jobs per second through Gearman, with and without TCP_NODELAY.

For each server (the embedded gear.Server and Debian's gearmand) one
client submits jobs that one worker completes at once, two ways:
``serial`` (submit, wait for WORK_COMPLETE, next: the latency a build
launch sees) and ``window`` (32 jobs in flight). The baseline is gear's
own classes (no TCP_NODELAY); ``nodelay`` is ours (gatekeeper.gearman.
nodelay: client, worker and, for gear.Server, the server's connections).
Both run in the same process, same machine, same run.

    .venv/bin/python bench/gearman_throughput.py [--seconds 2.0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import gear

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.gearman.gearmand import GEARMAND, GearmandProcess
from gatekeeper.gearman.nodelay import NoDelayClient, NoDelayServer, NoDelayTextWorker


def make_client(base: type) -> type:
    class BenchClient(base):  # type: ignore[misc, valid-type]
        def __init__(self, client_id: str):
            self.done = threading.Condition()
            super().__init__(client_id=client_id)

        def handleWorkComplete(self, packet):
            job = super().handleWorkComplete(packet)
            with self.done:
                self.done.notify_all()
            return job

    return BenchClient


def worker_loop(worker: gear.Worker) -> None:
    while True:
        try:
            job = worker.getJob()
        except gear.InterruptedError:
            return
        job.sendWorkComplete(job.arguments)


def measure(port: int, nodelay: bool, seconds: float, window: int) -> float:
    client = make_client(NoDelayClient if nodelay else gear.Client)("bench-client")
    worker = (NoDelayTextWorker if nodelay else gear.TextWorker)("bench-worker")
    try:
        worker.addServer("127.0.0.1", port)
        worker.waitForServer(10)
        worker.registerFunction("bench")
        thread = threading.Thread(target=worker_loop, args=(worker,), daemon=True)
        thread.start()
        client.addServer("127.0.0.1", port)
        client.waitForServer(10)
        # Warm up (connections, registration).
        run_jobs(client, 5, 1)
        start = time.monotonic()
        done = 0
        while time.monotonic() - start < seconds:
            done += run_jobs(client, window, window)
        return done / (time.monotonic() - start)
    finally:
        worker.shutdown()
        client.shutdown()


def run_jobs(client, count: int, window: int) -> int:
    inflight: list[gear.TextJob] = []
    submitted = finished = 0
    while finished < count:
        while submitted < count and len(inflight) < window:
            job = gear.TextJob("bench", "x")
            client.submitJob(job)
            inflight.append(job)
            submitted += 1
        with client.done:
            while not any(j.complete for j in inflight):
                client.done.wait(5)
        still = [j for j in inflight if not j.complete]
        finished += len(inflight) - len(still)
        inflight = still
    return finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="gk-bench-"))
    try:
        for nodelay in (False, True):
            server = (NoDelayServer if nodelay else gear.Server)(port=0, host="127.0.0.1")
            try:
                for mode, window in (("serial", 1), ("window", 32)):
                    rows.append(("gear.Server", mode, nodelay,
                                 measure(server.port, nodelay, args.seconds, window)))
            finally:
                server.shutdown()
        if shutil.which(GEARMAND):
            proc = GearmandProcess(tmp / "gearmand.log").start()
            try:
                for nodelay in (False, True):
                    for mode, window in (("serial", 1), ("window", 32)):
                        rows.append(("gearmand", mode, nodelay,
                                     measure(proc.port, nodelay, args.seconds, window)))
            finally:
                proc.stop()
        else:
            print("gearmand not installed: skipped", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = {(s, m): r for s, m, nd, r in rows if not nd}
    print(f"{'server':<12} {'mode':<7} {'baseline jobs/s':>16} {'nodelay jobs/s':>15} {'ratio':>7}")
    for s, m, nd, r in rows:
        if nd:
            b = base[(s, m)]
            print(f"{s:<12} {m:<7} {b:16.1f} {r:15.1f} {r / b:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
