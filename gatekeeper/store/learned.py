"""What a gate strategy learned, back from the build history after a restart.

A strategy's per-job flake record (``gatekeeper.core.strategy.Learned``) is
in memory; when the scheduler starts it is seeded from the store's builds of
the same pipeline, so a restart does not make every job new again (whose
failures would be trusted until ``min-history`` builds are seen). A failure
counts as a flake when the same job passed on a state that contains every
change the failed state had (a rerun of the same commit, or an item behind
that included it) — the rule of ``simulate --from-history``; a failure not
proven a flake is left out, as the strategy leaves out a trusted one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.core.engine import Engine as CoreEngine
from gatekeeper.store import history, schema

State = frozenset[tuple[int, int]]


def _states(engine: Engine, uuids: set[str]) -> dict[str, State]:
    s = schema.buildsets
    out: dict[str, State] = {}
    if not uuids:
        return out
    with engine.connect() as conn:
        for row in conn.execute(sa.select(s).where(s.c.uuid.in_(sorted(uuids)))):
            bs = history._buildset(row)
            out[bs.uuid] = frozenset((c.change or 0, c.patchset or 0) for c in bs.changes
                                     if c.change is not None)
    return out


def flake_history(engine: Engine, pipeline: str, job: str, last: int) -> list[bool]:
    """The last ``last`` judged results of ``job`` in ``pipeline``, oldest
    first: True a failure counted as a flake, False a pass."""
    recs = [r for r in history.job_results(engine, job, last=last, pipeline=pipeline)
            if r.voting and r.result in ("SUCCESS", "FAILURE")]
    states = _states(engine, {r.buildset for r in recs})
    passed = [states[r.buildset] for r in recs if r.result == "SUCCESS" and r.buildset in states]
    out = []
    for r in reversed(recs):
        if r.result == "SUCCESS":
            out.append(False)
            continue
        st = states.get(r.buildset)
        if st and any(st <= other for other in passed):
            out.append(True)
    return out


def seed_learned(engine: Engine, core: CoreEngine) -> int:
    """Seed every strategy's flake record from the history; the number of
    builds read. A job already learned in this process is left as it is."""
    n = 0
    for name, learned in core.ctx.learned.items():
        for job in core.ctx.layout.jobs:
            if learned.seen(job):
                continue
            results = flake_history(engine, name, job, learned.size)
            learned.seed(job, results)
            n += len(results)
    return n
