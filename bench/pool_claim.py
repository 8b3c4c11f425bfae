"""Node pool: claim latency over Gearman, and time to restore min-ready.

1. ``echo``: a bare Gearman round trip (NoDelayClient -> embedded
   gear.Server -> NoDelayWorker that answers at once) — the floor any
   Gearman request pays. ``claim``: ``GearmanNodeClaimer.claim()`` with a
   ready node waiting, same server, same run: against ``gatekeeper pool``
   in its own process (local sshd nodes; the deployment shape), and
   in-process (fake cloud) on a quiet pool and back to back while the pool
   launches replacements. Printed: median/p90 and the ratio to echo.
2. ``restore``: a pool keeping min_ready nodes on the fake cloud (boot
   delay --boot-delay seconds) gets min_ready claims at once; the time
   until min_ready nodes are ready again, against the boot delay itself
   (the floor: servers boot in parallel).

    .venv/bin/python bench/pool_claim.py [--claims 200] [--min-ready 10] [--boot-delay 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.gearman.nodelay import NoDelayClient, NoDelayWorker
from gatekeeper.gearman.server import EmbeddedGearmanServer
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.claimer import GearmanNodeClaimer
from gatekeeper.nodes.db import PoolStore
from gatekeeper.nodes.fakecloud import FakeCloud, remove_cloud
from gatekeeper.nodes.gearsvc import PoolGearmanWorker
from gatekeeper.nodes.service import PoolService
from gatekeeper.store.db import create_engine
from tests.fixtures.pool import (
    FakeReadyCheck,
    cloud_provider,
    pool_config,
    wait_for,
)


def echo_latencies(host: str, port: int, n: int) -> list[float]:
    import gear

    worker = NoDelayWorker("echo")
    worker.addServer(host, port)
    worker.waitForServer()
    worker.registerFunction("echo")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                job = worker.getJob()
            except gear.InterruptedError:
                return
            job.sendWorkComplete(job.arguments)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    done = threading.Event()

    class Client(NoDelayClient):
        def handleWorkComplete(self, packet):
            job = super().handleWorkComplete(packet)
            done.set()
            return job

    client = Client("bench")
    client.addServer(host, port)
    client.waitForServer()
    out = []
    for i in range(n):
        done.clear()
        start = time.perf_counter()
        client.submitJob(gear.Job(b"echo", b'{"x":1}', unique=str(i).encode()))
        done.wait(10)
        out.append(time.perf_counter() - start)
    stop.set()
    worker.shutdown()
    client.shutdown()
    return out


def claims_against_pool_process(host: str, port: int, tmp: Path, n: int) -> list[float]:
    """Claims against ``gatekeeper pool`` running as its own process (local
    provider: sshd nodes), each once the pool is back at min_ready — the
    deployment shape: worker and pool in different processes."""
    import os
    import signal
    import subprocess

    from gatekeeper.nodes.localsshd import generate_keypair
    from gatekeeper.nodes.providers.local import LocalProvider

    key = generate_keypair(tmp / "key")
    cfg = tmp / "gatekeeper.yaml"
    cfg.write_text(f"""
gerrit: {{server: 127.0.0.1, user: gk, sshkey: {key}}}
gearman: {{server: {host}, port: {port}, embedded: false}}
scheduler: {{layout: [layout.yaml], state_dir: state}}
pool:
  labels: [{{name: local, image: plain, min_ready: 4}}]
  providers:
    - {{name: lo, driver: local, max_servers: 1000,
       images: [{{name: plain, private_key: {key}}}]}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", "pool", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parent.parent,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve()
                                                                 .parent.parent)})
    store = None
    out: list[float] = []
    try:
        db = tmp / "state" / "gatekeeper.sqlite"
        wait_for(db.exists, timeout=60)
        store = PoolStore(create_engine(f"sqlite:///{db}"))
        claimer = GearmanNodeClaimer(host, port)
        for i in range(n):
            wait_for(lambda: len(store.list_nodes([NodeState.READY])) >= 4, timeout=60)
            start = time.perf_counter()
            claimer.claim("local", f"p{i}", timeout=60)
            out.append(time.perf_counter() - start)
        claimer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        LocalProvider("lo", tmp / "state" / "pool" / "local" / "lo").close()
    return out


def summary(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=200)
    ap.add_argument("--min-ready", type=int, default=10)
    ap.add_argument("--boot-delay", type=float, default=1.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pool-bench-"))
    server = EmbeddedGearmanServer().start()
    try:
        echo = echo_latencies(server.host, server.port, args.claims)

        # -- claim latency with ready nodes ---------------------------------
        # Production loop timing (tick every second), not the tests' 50 ms.
        cloud = FakeCloud("bench")
        store = PoolStore(create_engine(f"sqlite:///{tmp}/claim.db"))
        cfg = replace(pool_config([cloud_provider(cloud, max_servers=10 ** 6)],
                                  min_ready=args.claims), tick_interval=1.0)
        svc = PoolService(store, cfg, ready_check=FakeReadyCheck([cloud])).start()
        gw = PoolGearmanWorker(svc, server.host, server.port).start()
        wait_for(lambda: len(store.list_nodes([NodeState.READY])) >= args.claims, timeout=600)
        claimer = GearmanNodeClaimer(server.host, server.port)
        # (a) back to back: each claim meets the replacement launch of the last.
        claims = []
        for i in range(args.claims):
            start = time.perf_counter()
            claimer.claim("deb", f"b{i}", timeout=60)
            claims.append(time.perf_counter() - start)
        # (b) a quiet pool: each claim once the replacement of the last is ready.
        quiet = []
        for i in range(min(50, args.claims)):
            wait_for(lambda: svc.idle() and len(store.list_nodes([NodeState.READY])) >= args.claims,
                     timeout=60)
            start = time.perf_counter()
            claimer.claim("deb", f"q{i}", timeout=60)
            quiet.append(time.perf_counter() - start)
        claimer.close()
        reg = svc.metrics.registry
        n = reg.value("claim_seconds", {"label": "deb"})
        pool_side = reg._sums["claim_seconds"][(("label", "deb"),)] / n
        gw.stop()
        svc.stop()
        remove_cloud("bench")

        separate = claims_against_pool_process(server.host, server.port, tmp / "proc", 30)

        # -- time to restore min-ready ---------------------------------------
        cloud = FakeCloud("bench2", boot_delay=args.boot_delay)
        store = PoolStore(create_engine(f"sqlite:///{tmp}/restore.db"))
        svc = PoolService(store, pool_config([cloud_provider(cloud, max_servers=10 ** 6,
                                                             boot_timeout=60)],
                                             min_ready=args.min_ready),
                          ready_check=FakeReadyCheck([cloud])).start()
        wait_for(lambda: len(store.list_nodes([NodeState.READY])) == args.min_ready, timeout=120)
        got = threading.Semaphore(0)
        for i in range(args.min_ready):
            svc.claim("deb", f"r{i}", 60, lambda lease, err: got.release())
        for _ in range(args.min_ready):
            got.acquire()
        start = time.perf_counter()
        wait_for(lambda: len(store.list_nodes([NodeState.READY])) == args.min_ready, timeout=120)
        restore = time.perf_counter() - start
        svc.stop()
        remove_cloud("bench2")
    finally:
        server.stop()
    em, ep = summary(echo)
    cm, cp = summary(claims)
    qm, qp = summary(quiet)
    print(f"gearman echo round trip      : median {em * 1000:.2f} ms  p90 {ep * 1000:.2f} ms "
          f"({len(echo)} requests)")
    print(f"claim, quiet pool            : median {qm * 1000:.2f} ms  p90 {qp * 1000:.2f} ms "
          f"({len(quiet)} claims) = {qm / em:.1f}x echo")
    print(f"claim, back to back (churn)  : median {cm * 1000:.2f} ms  p90 {cp * 1000:.2f} ms "
          f"({len(claims)} claims) = {cm / em:.1f}x echo")
    sm, sp = summary(separate)
    print(f"claim, pool in its own process: median {sm * 1000:.2f} ms  p90 {sp * 1000:.2f} ms "
          f"({len(separate)} claims) = {sm / em:.1f}x echo")
    print(f"pool side of a claim (mean)  : {pool_side * 1000:.2f} ms "
          "(request in -> lease out, all claims)")
    print(f"restore min-ready={args.min_ready} after {args.min_ready} claims: "
          f"{restore:.2f} s with a {args.boot_delay:g} s boot delay "
          f"({restore / args.boot_delay if args.boot_delay else float('nan'):.2f}x the boot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
