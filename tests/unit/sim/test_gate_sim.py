"""The gate simulator: the real core in virtual time, checked against the
closed form and an independent model of Zuul's dependent pipeline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gatekeeper.cli import main
from gatekeeper.errors import UserError
from gatekeeper.sim.gate.run import simulate
from gatekeeper.sim.gate.workload import load_workload, parse_workload

BENCH = Path(__file__).resolve().parents[3] / "bench" / "workloads"

FIXED_WINDOW = """
arrivals: {{backlog: {n}}}
bad: {p}
duration: 30
pipeline: {{window: {w}, window-floor: 1, window-increase-type: exponential,
           window-increase-factor: 1, window-decrease-type: exponential,
           window-decrease-factor: 1}}
"""


@pytest.mark.parametrize("window", [5, 10, 20])
def test_fixed_window_matches_closed_form(window: int) -> None:
    """Fixed window W, unlimited nodes, no flakes, a backlog: in steady state
    merges per T = (1-p)(1-(1-p)^W)/p. Steady state: the rounds before the
    last W changes (the drain at the end has a shorter queue)."""
    merges = rounds = changes = bad = 0
    for seed in range(6):
        r = simulate(parse_workload(FIXED_WINDOW.format(n=900, p=0.1, w=window), "w.yaml"), seed)
        resolved = last = 0
        for t, merged, is_bad in r.outcomes:
            if resolved >= r.changes - 2 * window:
                break
            resolved += 1
            merges += merged
            bad += is_bad
            last = int(round(t / 30.0))
        rounds += last
        changes += resolved
    p = bad / changes  # the fates this run drew (variance of the draw is not the core's)
    expected = (1 - p) * (1 - (1 - p) ** window) / p
    assert merges / rounds == pytest.approx(expected, rel=0.02)


def _round_model(seed: int, n: int, p: float, window: int, floor: int) -> tuple[int, float]:
    """Zuul's gate as rounds of T: every item in the window tested at once;
    the first bad one and all behind it reset; window +1 per merge, halved
    per failure. The fates are drawn as the simulator draws them."""
    rng = random.Random(seed)
    bad = [rng.random() < p for _ in range(n)]
    i, w, t, merged = 0, window, 0.0, 0
    while i < n:
        t += 30.0
        win = bad[i:i + w]
        k = win.index(True) if True in win else len(win)
        merged += k
        i += k + (1 if k < len(win) else 0)
        w = w + k if k == len(win) else max(floor, (w + k) // 2)
    return merged, t


def test_classic_equals_round_model_on_backlog() -> None:
    """On workload (a) the real core does exactly what the round model does:
    same merges, same makespan, seed by seed."""
    wl = load_workload(str(BENCH / "a-backlog.yaml"))
    for seed in range(5):
        r = simulate(wl, seed)
        merged, minutes = _round_model(seed, 200, 0.1, 20, 3)
        assert (r.merged, r.makespan_h * 60) == (merged, pytest.approx(minutes))
        assert r.bad_merged == 0 and r.good_rejected == 0


def test_flaky_day_small() -> None:
    """A small (c)-like day: everything resolved, no bad change merged, the
    pool never over capacity, flakes reject good changes under Zuul."""
    wl = parse_workload("""
arrivals: {poisson: 30, hours: 3}
bad: 0.1
flake: 0.15
jobs: 3
duration: {mean: 45, sigma: 0.3}
nodes: 30
""", "c.yaml")
    r = simulate(wl, 1)
    assert r.merged + r.rejected == r.changes > 50
    assert r.bad_merged == 0
    assert 0 < r.max_busy <= 30
    assert r.flake_builds > 0 and r.good_rejected > 0
    assert 0 < r.wasted < r.builds
    again = simulate(wl, 1)
    assert (again.merged, again.builds, again.outcomes) == (r.merged, r.builds, r.outcomes)


def test_early_failure_finds_failures_sooner() -> None:
    text = "arrivals: {backlog: 60}\nbad: 0.2\njobs: 2\nduration: 60\n"
    late = simulate(parse_workload(text, "w.yaml"), 2)
    early = simulate(parse_workload(text + "early-failure: 0.25\n", "w.yaml"), 2)
    assert early.node_minutes < late.node_minutes  # the builds behind are cancelled sooner
    assert early.makespan_h < late.makespan_h
    assert early.merged == late.merged  # same fates, found sooner


def test_early_failure_keeps_the_failing_build_on_its_node() -> None:
    """A bad change with a good one behind: the bad build says it is failing
    a quarter of the way in, so the good one is re-tested without it from
    minute 15 (merged at 75, not 120), but the failing job runs on (as the
    worker's does, for its logs) and holds its node the whole hour, and the
    bad change is reported when it ends."""
    text = ("arrivals: {times: [0, 0]}\nbad: 0.5\njobs: 1\nduration: 60\n"
            "early-failure: 0.25\n")
    r = simulate(parse_workload(text, "w.yaml"), 1)  # seed 1: the first is bad
    # (minutes, merged, bad)
    assert r.outcomes == [(pytest.approx(60.0), False, True), (pytest.approx(75.0), True, False)]
    # 60 (the bad build, to its end) + 15 (the good one on top, cancelled)
    # + 60 (the good one re-tested)
    assert r.node_minutes == pytest.approx(135.0)


def test_per_job_flakes_and_projects() -> None:
    wl = parse_workload("""
arrivals: {times: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}
flake: {rate: 0.3, per: job, jobs: {lint: 0.0}, projects: {org/b: 0.5}}
jobs: [unit, lint]
projects: [org/a, org/b]
durations: {lint: 5}
""", "w.yaml")
    assert wl.flake_jobs == {"lint": 0.0} and wl.flake_projects == {"org/b": 0.5}
    r = simulate(wl, 3)
    assert r.merged + r.rejected == 10 and r.bad_merged == 0


@pytest.mark.parametrize("text,expected", [
    ("arrivals: {backlog: 0}\n", "w.yaml:1: arrivals"),
    ("arrivals: {backlog: 5}\nbad: 2\n", "w.yaml:2: bad: expected a probability"),
    ("arrivals: {backlog: 5}\nflake: {rate: 0.1, jobs: {nope: 0.1}}\n",
     "w.yaml:2: flake.jobs.nope: no job named 'nope'"),
    ("arrivals: {backlog: 5}\nduraton: 3\n", "w.yaml:2: duraton: unknown key (did you mean 'duration'?)"),
    ("bad: 0.1\n", "w.yaml:1: arrivals: required key missing"),
    ("arrivals: {backlog: 5}\npipeline:\n  windw: 3\n", "w.yaml:3: pipeline.windw: unknown key"),
])
def test_workload_errors_name_file_line_key(text: str, expected: str) -> None:
    with pytest.raises(UserError) as e:
        parse_workload(text, "w.yaml")
    assert any(m.startswith(expected) for m in e.value.messages), e.value.messages


def test_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text("name: tiny\narrivals: {backlog: 20}\nbad: 0.1\nseeds: 2\n")
    assert main(["simulate", str(wl)]) == 0
    out = capsys.readouterr().out
    assert "tiny: mean of 2 seeds" in out and "zuul-classic" in out and "merges/h" in out
    assert main(["simulate", str(wl), "--json", "--seeds", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seeds"] == 3 and data["results"][0]["runs"] == 3
    assert data["results"][0]["merged"] + data["results"][0]["rejected"] == 20
    assert main(["simulate", str(wl), "--strategy", "nope"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err
    wl.write_text("arrivals: {backlog: x}\n")
    assert main(["simulate", str(wl)]) == 2
    assert f"{wl}:1: arrivals" in capsys.readouterr().err


def test_no_strategy_merges_a_bad_change() -> None:
    """Every strategy, a few seeds of a small flaky day: every change is
    resolved, no bad change merges, flakes reject fewer good changes."""
    from gatekeeper.layout.strategy import PRESETS
    from gatekeeper.sim.gate.run import compare

    wl = parse_workload("""
arrivals: {poisson: 30, hours: 2}
bad: 0.15
flake: {rate: 0.2, jobs: {test-3: 0.1}}
jobs: 3
duration: {mean: 45, sigma: 0.3}
nodes: 40
pipeline: {window: 10, window-floor: 2, strategy: {name: zuul-classic, min-history: 5}}
""", "w.yaml")
    rows = {s.strategy: s for s in compare(wl, list(PRESETS), seeds=3)}
    for s in rows.values():
        assert s.bad_merged == 0, s
        assert s.merged + s.rejected > 40
    assert rows["evidence-sized"].good_rejected < rows["zuul-classic"].good_rejected


def test_from_history_estimates_the_workload(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A simulated site writes its build history as the service does (the
    store's journal, SQLite); --from-history estimates the workload from it
    and replays it."""
    from gatekeeper.sim.gate.history import from_store
    from gatekeeper.store.journal import StateJournal
    from gatekeeper.store.migrate import open_store

    url = f"sqlite:///{tmp_path}/gatekeeper.db"
    journal = StateJournal(open_store(url))
    attached = []

    def record(sched) -> None:
        if not attached:
            journal.attach(sched.door)
            attached.append(True)
        journal.flush(sched.engine, sched.clock())

    truth = parse_workload("""
arrivals: {poisson: 20, hours: 2}
bad: 0.15
flake: 0.1
jobs: 2
duration: {mean: 30, sigma: 0.2}
nodes: 12
""", "w.yaml")
    r = simulate(truth, 4, after_turn=record)
    est = from_store(url, "gate", days=7)
    wl = est.workload
    assert est.items == r.changes and len(wl.times) == r.changes and wl.times[0] == 0.0
    assert wl.jobs == ("test-1", "test-2") and wl.projects == ("org/project",)
    assert 0 < wl.nodes <= 12
    assert wl.bad == pytest.approx((r.changes - r.good) / r.changes, abs=0.08)
    for job in wl.jobs:
        assert wl.duration_of(job).mean == pytest.approx(30, rel=0.15)
        assert 0.1 <= wl.duration_of(job).sigma <= 0.3
    assert main(["simulate", "--from-history", "--database", url, "--seeds", "2",
                 "--strategy", "zuul-classic", "--strategy", "evidence-sized", "--json"]) == 0
    out = capsys.readouterr()
    assert "estimated from" in out.err
    data = json.loads(out.out)
    assert [s["strategy"] for s in data["results"]] == ["zuul-classic", "evidence-sized"]
    assert all(s["bad_merged"] == 0 for s in data["results"])
    assert main(["simulate", "--from-history"]) == 2
    assert "needs --config FILE or --database URL" in capsys.readouterr().err
