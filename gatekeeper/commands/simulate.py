"""``gatekeeper simulate WORKLOAD.yaml [--strategy NAME ...] [--seeds N] [--json]``.

Runs the real scheduler core in virtual time on the workload (doc/simulate.md)
once per seed and strategy, and prints per strategy the mean over the seeds:
merged, rejected, good changes rejected, makespan, merges/h, turnaround,
node-minutes per merge, builds and wasted builds. The same seeds give every
strategy the same arrivals and the same fates."""

from __future__ import annotations

import argparse
import json
import sys

from gatekeeper.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", metavar="WORKLOAD.yaml", nargs="?",
                        help="the workload file (not with --from-history)")
    parser.add_argument("--strategy", action="append", metavar="NAME",
                        help="a gate strategy to run (repeat to compare; default: the "
                        "workload's pipeline strategy, else zuul-classic)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="runs per strategy (default: the workload's seeds, else 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    hist = parser.add_argument_group("replay (doc/simulate.md)")
    hist.add_argument("--from-history", action="store_true",
                      help="estimate the workload from the site's build history")
    hist.add_argument("--config", metavar="FILE",
                      help="the service config: its database, and its layout's pipeline settings")
    hist.add_argument("--database", metavar="URL", help="the database URL (instead of --config)")
    hist.add_argument("--pipeline", default="gate", help="the dependent pipeline (default gate)")
    hist.add_argument("--days", type=float, default=7.0,
                      help="how much history, counted back from its newest build set (default 7)")


def strategies_known() -> list[str]:
    from gatekeeper.layout.strategy import PRESETS
    return list(PRESETS)


def run(args: argparse.Namespace) -> int:
    from gatekeeper.sim.gate.run import CLASSIC, Stuck
    from gatekeeper.sim.gate.workload import load_workload

    if args.from_history:
        if args.workload:
            raise UserError("give WORKLOAD.yaml or --from-history, not both")
        wl = _from_history(args)
    elif not args.workload:
        raise UserError("give a WORKLOAD.yaml (or --from-history)")
    else:
        wl = load_workload(args.workload)
    known = strategies_known()
    default = wl.pipeline.get("strategy", CLASSIC)
    wanted = args.strategy or [str(default["name"] if isinstance(default, dict) else default)]
    for name in wanted:
        if name not in known:
            raise UserError(f"--strategy: unknown strategy {name!r} (known: {', '.join(known)})")
    seeds = args.seeds if args.seeds is not None else wl.seeds
    if seeds < 1:
        raise UserError("--seeds: must be at least 1")
    try:
        summaries = _run(wl, wanted, seeds)
    except Stuck as e:
        print(f"{args.workload or 'history'}: the core got stuck: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"workload": wl.name, "seeds": seeds,
                          "results": [s.as_dict() for s in summaries]}, indent=2))
        return 0
    _print(wl.name, seeds, summaries)
    return 0


def _from_history(args: argparse.Namespace):  # -> Workload
    from gatekeeper.sim.gate.history import from_store, pipeline_settings
    from gatekeeper.sim.gate.workload import Workload

    base = Workload(seeds=args.seeds or 1)
    url = args.database
    if args.config:
        from gatekeeper.config import load_config
        from gatekeeper.layout.loader import load_layout

        config = load_config(args.config)
        url = url or config.database.url
        layout = load_layout(config.scheduler.layout)
        base = Workload(seeds=base.seeds, pipeline=pipeline_settings(layout, args.pipeline))
    if not url:
        raise UserError("--from-history needs --config FILE or --database URL")
    est = from_store(url, args.pipeline, args.days, base)
    print(est.describe(), file=sys.stderr)
    return est.workload


def _run(wl, strategies: list[str], seeds: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from gatekeeper.sim.gate.run import compare

    total = len(strategies) * seeds
    err = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True,
                  disable=total < 2 or not err.is_terminal) as bar:
        task = bar.add_task(f"simulating {wl.name}", total=total)
        return compare(wl, strategies, seeds, step=lambda: bar.advance(task))


def _print(name: str, seeds: int, summaries) -> None:
    from rich.console import Console
    from rich.table import Table

    from gatekeeper.sim.gate.table import COLUMNS, row

    table = Table(title=f"{name}: mean of {seeds} seed{'s' if seeds > 1 else ''}")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for s in summaries:
        table.add_row(*row(s))
    Console(width=200).print(table)
