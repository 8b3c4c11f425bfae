"""Checks of a compiled layout against what the worker will refuse or cannot
do at run time, so ``gatekeeper validate`` reports them before any build.

Always (every load, services too): job names, ``run`` paths, ``artifacts``
and project names follow the rules the worker applies to a build's
arguments (gatekeeper.model.names) -- a build breaking them is refused.

For a site (``validate --config``): a job with a node label has a ``run``
script; a ``run`` script lies in a project the job clones (the project
under test or the job's ``projects``) or among the job scripts the worker
provides under ``.gatekeeper/jobs/`` (shipped ones and ``worker.jobs_dir``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gatekeeper.layout.model import Job, JobTree, Project
from gatekeeper.layout.problems import Problems, Source
from gatekeeper.model.names import (
    BadName,
    check_artifact,
    check_job_name,
    check_project,
    check_relative_path,
)

JOBS_DIR = ".gatekeeper/jobs"  # where the worker puts job scripts in the workspace


@dataclass(frozen=True)
class SiteFacts:
    """What the site's worker provides; ``job_scripts`` None: not known here."""

    job_scripts: frozenset[str] | None = None
    mail: bool = True  # the config has an smtp section


def check_mail(raw: dict[str, Any], src: Source, facts: SiteFacts, problems: Problems) -> None:
    """A pipeline that mails needs the config's smtp server."""
    if facts.mail:
        return
    for key in ("start", "success", "failure", "merge-failure"):
        action = raw.get(key)
        if isinstance(action, dict) and "smtp" in action:
            problems.add(src, [key, "smtp"], "mail reports need the config's smtp section "
                         "(smtp.server), which is missing")


def check_job(job: Job, origin: dict[str, Source], own: Source | None,
              problems: Problems) -> None:
    """The job's own attributes against the worker's argument rules."""
    name_src = own or next(iter(origin.values()), None)
    if name_src is not None:
        _try(problems, name_src, ["name"], check_job_name, job.name)
    if job.run is not None:
        _try(problems, origin["run"], ["run"], lambda r: check_relative_path(r, "run script"),
             job.run, hint=_RUN_HINT if job.run.startswith("/") else "")
    for a in job.artifacts:
        _try(problems, origin["artifacts"], ["artifacts"], check_artifact, a)
    for p in job.projects:
        _try(problems, origin["projects"], ["projects"], check_project, p)


_RUN_HINT = (f" (the worker runs it from the workspace: ship it in a project the job clones,"
             f" or put it in worker.jobs_dir and write run: {JOBS_DIR}/NAME)")


def check_project_name(project: Project, src: Source, problems: Problems) -> None:
    _try(problems, src, ["name"], check_project, project.name)


def check_site(jobs: dict[str, Job], origins: dict[str, dict[str, Source]],
               projects: dict[str, Project], project_src: dict[str, Source],
               raw_keys: Mapping[str, Iterable[str]], facts: SiteFacts,
               problems: Problems) -> None:
    # One message per definition (a regex definition may stand for many jobs).
    grouped: dict[tuple[int, str, str], tuple[Source, list[str], str, str]] = {}

    def add(src: Source, sub: str, key: str, name: str, message: str) -> None:
        grouped.setdefault((id(src), sub, key), (src, [], sub, message))[1].append(name)

    for name, job in jobs.items():
        origin = origins[name]
        if job.label is not None and job.run is None and "label" in origin:
            add(origin["label"], "label", "no-run", name, "a job with a node label needs a run "
                "script: the worker would end every build ERROR")
        if job.run is not None and job.run.startswith(JOBS_DIR + "/") \
                and facts.job_scripts is not None:
            script = job.run[len(JOBS_DIR) + 1:]
            if script not in facts.job_scripts:
                known = ", ".join(sorted(facts.job_scripts)) or "none"
                add(origin["run"], "run", job.run, name,
                    f"no job script {script!r} on the worker (it has: {known}; "
                    "site scripts go in worker.jobs_dir)")
    for src, names, sub, message in grouped.values():
        problems.add(src, [sub], message + _used_by(src, names))
    for pname, project in projects.items():
        src = project_src[pname]
        keys = set(raw_keys[pname])
        for pipeline, tree in project.pipelines.items():
            bad: dict[str, list[str]] = {}
            for jname in _names(tree):
                used = jobs.get(jname)
                if (used is None or used.run is None or used.run.startswith(JOBS_DIR + "/")
                        or not _valid_run(used.run)):  # a bad path is reported once, above
                    continue
                cloned = [pname, *used.projects]
                if not any(used.run.startswith(p + "/") for p in cloned):
                    bad.setdefault(used.run, []).append(jname)
            for run, names in bad.items():
                problems.add(
                    src, [pipeline] if pipeline in keys else ["name"],
                    f"{_few(names)} run{'s' if len(names) == 1 else ''} {run}, which is in no "
                    f"project cloned for {pname}: write the project first "
                    f"({pname}/{run}), list its project in the job's projects, or use "
                    f"{JOBS_DIR}/",
                )


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"job{'s' if len(names) > 1 else ''} {shown}"


def _used_by(src: Source, names: list[str]) -> str:
    node: Any = src.doc
    for p in src.path:
        node = node[p]
    own = node.get("name", "") if isinstance(node, dict) else ""
    return "" if names == [own] else f" (for {_few(names)})"


def _valid_run(run: str) -> bool:
    try:
        check_relative_path(run, "run script")
    except BadName:
        return False
    return True


def _names(tree: JobTree) -> list[str]:
    return tree.job_names()


def _try(problems: Problems, src: Source, sub: list[Any], check: Any, value: str,
         hint: str = "") -> None:
    try:
        check(value)
    except BadName as e:
        problems.add(src, sub, f"{e}{hint}")
