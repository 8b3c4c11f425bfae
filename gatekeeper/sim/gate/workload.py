"""The workload file of ``gatekeeper simulate``: what arrives, what breaks,
how long builds take, how many nodes there are, and the gate's settings.

Checked with a voluptuous schema; every problem is reported as
``FILE:LINE: key: message`` (as the layout loader does). Times in the file
are minutes; rates are per hour. See doc/simulate.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from gatekeeper.errors import UserError
from gatekeeper.layout.schema import WINDOW_TYPES, choice
from gatekeeper.yamlutil import (
    LineDict,
    invalid_lines,
    line_for_path,
    load_text,
    located,
    read_text,
)

PROBABILITY = vol.All(vol.Coerce(float), vol.Range(min=0.0, max=1.0),
                      msg="expected a probability between 0 and 1")
POSITIVE = vol.All(vol.Coerce(float), vol.Range(min=0.0, min_included=False),
                   msg="expected a number above 0")
COUNT = vol.All(int, vol.Range(min=1), msg="expected a whole number of at least 1")
NAME = vol.All(str, vol.Match(r"^[A-Za-z0-9][A-Za-z0-9_.+/-]*$"),
               msg="expected a name (letters, digits, _ . + / -)")
FLAKE_PER = ("state", "job")

ARRIVALS = vol.Any(
    vol.Schema({vol.Required("backlog"): COUNT}),
    vol.Schema({vol.Required("poisson"): POSITIVE, vol.Required("hours"): POSITIVE}),
    vol.Schema({vol.Required("times"): [vol.All(vol.Coerce(float), vol.Range(min=0.0))]}),
    msg="expected {backlog: N}, {poisson: RATE_PER_HOUR, hours: H} or {times: [MINUTES, ...]}",
)

DURATION = vol.Any(
    POSITIVE,
    vol.Schema({vol.Required("mean"): POSITIVE,
                "sigma": vol.All(vol.Coerce(float), vol.Range(min=0.0))}),
    msg="expected minutes, or {mean: MINUTES, sigma: S} (lognormal)",
)

FLAKE = vol.Any(
    PROBABILITY,
    vol.Schema({
        "rate": PROBABILITY,
        "per": choice(*FLAKE_PER),
        "jobs": {NAME: PROBABILITY},
        "projects": {NAME: PROBABILITY},
    }),
    msg="expected a probability, or {rate: P, per: state|job, jobs: {JOB: P}, projects: {PROJECT: P}}",
)

# Pipeline keys copied into the simulated layout's gate pipeline as written
# (the layout loader validates them again, strategy knobs included).
PIPELINE = vol.Schema({
    "window": vol.All(int, vol.Range(min=0)),
    "window-floor": vol.All(int, vol.Range(min=1)),
    "window-increase-type": choice(*WINDOW_TYPES),
    "window-increase-factor": vol.All(int, vol.Range(min=1)),
    "window-decrease-type": choice(*WINDOW_TYPES),
    "window-decrease-factor": vol.All(int, vol.Range(min=1)),
    "fail-fast": bool,
    "strategy": vol.Any(str, dict, msg="expected a strategy name or {name: NAME, KNOB: value}"),
})

WORKLOAD = vol.Schema({
    "name": str,
    "description": str,
    vol.Required("arrivals"): ARRIVALS,
    "bad": PROBABILITY,
    "flake": FLAKE,
    "jobs": vol.Any(COUNT, [NAME], msg="expected a number of jobs or a list of job names"),
    "duration": DURATION,
    "durations": {NAME: DURATION},
    "early-failure": vol.All(vol.Coerce(float), vol.Range(min=0.0, max=1.0, min_included=False),
                             msg="expected a fraction of the duration in (0, 1]"),
    "nodes": vol.Any(0, COUNT, msg="expected a node count (0: unlimited)"),
    "projects": vol.Any(COUNT, [NAME], msg="expected a number of projects or a list of names"),
    "merge-time": vol.All(vol.Coerce(float), vol.Range(min=0.0)),
    "pipeline": PIPELINE,
    "seeds": COUNT,
    "horizon": POSITIVE,
})


@dataclass(frozen=True)
class Duration:
    mean: float  # minutes
    sigma: float = 0.0  # lognormal sigma; 0 = fixed


@dataclass(frozen=True)
class Workload:
    name: str = "workload"
    description: str = ""
    backlog: int = 0  # changes approved at time 0
    rate: float = 0.0  # Poisson arrivals per hour ...
    hours: float = 0.0  # ... for this long
    times: tuple[float, ...] = ()  # or explicit approval times (minutes)
    bad: float = 0.0  # probability a change is bad (every state containing it fails)
    flake: float = 0.0  # flake probability (per tested state or per build, see flake_per)
    flake_per: str = "state"  # state: all jobs of a build set fail together; job: each alone
    flake_jobs: dict[str, float] = field(default_factory=dict)  # per-build rate of a job
    flake_projects: dict[str, float] = field(default_factory=dict)  # per-state rate of a project
    jobs: tuple[str, ...] = ("test",)
    duration: Duration = Duration(30.0)
    durations: dict[str, Duration] = field(default_factory=dict)  # per job
    early_failure: float = 1.0  # a failing build reports failing at this fraction of its run
    nodes: int = 0  # node pool capacity (0 = unlimited)
    projects: tuple[str, ...] = ("org/project",)
    merge_time: float = 0.0  # minutes the merger takes per speculative state
    pipeline: dict[str, Any] = field(default_factory=dict)
    seeds: int = 1
    horizon: float = 0.0  # hours of virtual time before a run is called stuck (0: automatic)

    def duration_of(self, job: str) -> Duration:
        return self.durations.get(job, self.duration)


def _duration(raw: Any) -> Duration:
    if isinstance(raw, dict):
        return Duration(float(raw["mean"]), float(raw.get("sigma", 0.0)))
    return Duration(float(raw))


def _names(raw: Any, one: str, prefix: str) -> tuple[str, ...]:
    """A list of names as given; a count N: ``one`` for 1, else PREFIX1..PREFIXN."""
    if isinstance(raw, list):
        return tuple(str(x) for x in raw)
    return (one,) if raw == 1 else tuple(f"{prefix}{i}" for i in range(1, int(raw) + 1))


def _check_names(doc: dict[str, Any], wl: Workload, filename: str) -> list[str]:
    """Per-job / per-project settings must name jobs and projects that exist."""
    out = []
    flake = doc.get("flake")
    refs: list[tuple[tuple[Any, ...], str, tuple[str, ...]]] = []
    if isinstance(flake, dict):
        refs += [(("flake", "jobs", k), "job", wl.jobs) for k in flake.get("jobs") or {}]
        refs += [(("flake", "projects", k), "project", wl.projects)
                 for k in flake.get("projects") or {}]
    refs += [(("durations", k), "job", wl.jobs) for k in doc.get("durations") or {}]
    for path, what, known in refs:
        if path[-1] not in known:
            out.append(located(filename, line_for_path(doc, path), list(path),
                               f"no {what} named {path[-1]!r} (there are: {', '.join(known)})"))
    if len(set(wl.jobs)) != len(wl.jobs):
        out.append(f"{filename}:{doc.line_of('jobs') if isinstance(doc, LineDict) else 1}: "
                   "jobs: duplicate job names")
    return out


def parse_workload(text: str, filename: str) -> Workload:
    doc = load_text(text, filename)
    if not isinstance(doc, dict):
        raise UserError(f"{filename}:1: expected a mapping (arrivals, bad, flake, jobs, ...)")
    try:
        WORKLOAD(doc)
    except vol.Invalid as e:
        raise UserError([m for _, m in invalid_lines(e, doc, filename, schema=WORKLOAD)]) from None
    arr = doc["arrivals"]
    flake = doc.get("flake", 0.0)
    if not isinstance(flake, dict):
        flake = {"rate": flake}
    wl = Workload(
        name=str(doc.get("name", filename)),
        description=str(doc.get("description", "")),
        backlog=int(arr.get("backlog", 0)),
        rate=float(arr.get("poisson", 0.0)),
        hours=float(arr.get("hours", 0.0)),
        times=tuple(sorted(float(t) for t in arr.get("times", ()))),
        bad=float(doc.get("bad", 0.0)),
        flake=float(flake.get("rate", 0.0)),
        flake_per=str(flake.get("per", "state")),
        flake_jobs={str(k): float(v) for k, v in (flake.get("jobs") or {}).items()},
        flake_projects={str(k): float(v) for k, v in (flake.get("projects") or {}).items()},
        jobs=_names(doc.get("jobs", 1), "test", "test-"),
        duration=_duration(doc.get("duration", 30.0)),
        durations={str(k): _duration(v) for k, v in (doc.get("durations") or {}).items()},
        early_failure=float(doc.get("early-failure", 1.0)),
        nodes=int(doc.get("nodes", 0)),
        projects=_names(doc.get("projects", 1), "org/project", "org/project-"),
        merge_time=float(doc.get("merge-time", 0.0)),
        pipeline=dict(doc.get("pipeline") or {}),
        seeds=int(doc.get("seeds", 1)),
        horizon=float(doc.get("horizon", 0.0)),
    )
    problems = _check_names(doc, wl, filename)
    if problems:
        raise UserError(problems)
    return wl


def load_workload(path: str) -> Workload:
    return parse_workload(read_text(path), path)
