"""The arguments of a ``build:JOB`` Gearman job, checked before anything runs.

Everything that becomes a path, a git ref or an environment variable name
is validated here; everything else (messages, ids, job parameters) is data
and only ever travels as one argv word."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.gearman.protocol import BUILD_PREFIX
from gatekeeper.model.names import (
    MAX_FAILURE_OUTPUT,
    MAX_PATTERN,
    BadName,
    check_artifact,
    check_branch,
    check_git_url,
    check_job_name,
    check_project,
    check_ref,
    check_relative_path,
)

__all__ = ["BadBuildArgs", "check_branch", "check_project", "check_ref", "check_relative_path"]


# Malformed build arguments (WORK_FAIL, never a crash): the same rules that
# ``gatekeeper validate`` applies to the layout (gatekeeper.model.names).
BadBuildArgs = BadName

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UUID = re.compile(r"^[A-Za-z0-9_-]{7,64}$")


@dataclass(frozen=True)
class ChangeRef:
    """One entry of ZUUL_CHANGES (``project:branch:ref``)."""

    project: str
    branch: str
    ref: str


def parse_zuul_changes(value: str) -> list[ChangeRef]:
    """``p1:b1:refs/changes/..^p2:b2:refs/...`` -> entries, in queue order."""
    out: list[ChangeRef] = []
    for entry in filter(None, value.split("^")):
        parts = entry.split(":")
        if len(parts) != 3:
            raise BadBuildArgs(f"invalid ZUUL_CHANGES entry: {entry!r}")
        project, branch, ref = parts
        out.append(ChangeRef(check_project(project), check_branch(branch), check_ref(ref)))
    return out


def default_log_path(params: Mapping[str, str], job: str, uuid: str) -> str:
    """Zuul's layout: ``<last-2-of-change>/<change>/<ps>/<pipeline>/<job>/<uuid[:7]>``.

    Ref items (no change) use the new revision the way Zuul did."""
    pipeline = params.get("ZUUL_PIPELINE") or "unknown"
    change = params.get("ZUUL_CHANGE") or ""
    if change:
        ps = params.get("ZUUL_PATCHSET") or "0"
        head = f"{change[-2:]}/{change}/{ps}"
    else:
        rev = params.get("ZUUL_NEWREV") or params.get("ZUUL_COMMIT") or "0000000"
        head = f"{rev[:2]}/{rev}"
    return f"{head}/{pipeline}/{job}/{uuid[:7]}"


def check_log_path(path: str) -> str:
    path = path.strip("/")
    if not path or any(p in ("", ".", "..") for p in path.split("/")) or "\x00" in path:
        raise BadBuildArgs(f"invalid LOG_PATH: {path!r}")
    return path


@dataclass(frozen=True)
class BuildSpec:
    uuid: str
    job: str
    label: str | None
    params: dict[str, str]  # ZUUL_* and job parameters: the script's environment
    log_path: str
    timeout: float | None = None
    run: str | None = None
    artifacts: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()  # the job's own extra projects
    hold_on_failure: bool = True
    changes: tuple[ChangeRef, ...] = field(default=())
    failure_output: tuple[re.Pattern[str], ...] = ()

    @property
    def project(self) -> str:
        return self.params["ZUUL_PROJECT"]

    def all_projects(self) -> list[str]:
        """Every project the workspace needs: ZUUL_PROJECT, the change set, the job's list."""
        seen: dict[str, None] = {self.project: None}
        for c in self.changes:
            seen.setdefault(c.project, None)
        for p in self.projects:
            seen.setdefault(p, None)
        return list(seen)


def _str_params(args: Mapping[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for k, v in args.items():
        if k == "gatekeeper":
            continue
        if not _ENV_NAME.match(k):
            raise BadBuildArgs(f"invalid parameter name {k!r}")
        if isinstance(v, bool):
            v = "true" if v else "false"
        if v is None:
            v = ""
        if not isinstance(v, (str, int, float)):
            raise BadBuildArgs(f"parameter {k} is not a string")
        params[k] = str(v)
        if "\x00" in params[k]:
            raise BadBuildArgs(f"parameter {k} contains a NUL byte")
    return params


def parse_build_args(function: str, args: Mapping[str, Any]) -> BuildSpec:
    """Validate the JSON arguments of ``function`` (``build:JOB[:LABEL]``)."""
    if not function.startswith(BUILD_PREFIX):
        raise BadBuildArgs(f"not a build function: {function!r}")
    fn_job, _, fn_label = function[len(BUILD_PREFIX):].partition(":")
    meta = args.get("gatekeeper")
    if not isinstance(meta, dict):
        raise BadBuildArgs("missing 'gatekeeper' object")
    params = _str_params(args)
    for key in ("ZUUL_UUID", "ZUUL_PROJECT", "ZUUL_PIPELINE"):
        if not params.get(key):
            raise BadBuildArgs(f"missing {key}")
    uuid = params["ZUUL_UUID"]
    if not _UUID.match(uuid):
        raise BadBuildArgs(f"invalid ZUUL_UUID: {uuid!r}")
    job = meta.get("job") or fn_job
    if not isinstance(job, str) or job != fn_job:
        raise BadBuildArgs(f"job {job!r} does not match function {function!r}")
    check_job_name(job)
    label = meta.get("label") or None
    if label is not None and (not isinstance(label, str) or (fn_label and label != fn_label)):
        raise BadBuildArgs(f"label {label!r} does not match function {function!r}")
    label = label or fn_label or None
    check_project(params["ZUUL_PROJECT"])
    if params.get("ZUUL_BRANCH"):
        check_branch(params["ZUUL_BRANCH"])
    if params.get("ZUUL_REF"):
        check_ref(params["ZUUL_REF"])
    if params.get("ZUUL_URL"):
        check_git_url(params["ZUUL_URL"], "ZUUL_URL")
    changes = tuple(parse_zuul_changes(params.get("ZUUL_CHANGES", "")))
    timeout = meta.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise BadBuildArgs(f"invalid timeout: {timeout!r}")
    run = meta.get("run") or None
    if run is not None:
        if not isinstance(run, str):
            raise BadBuildArgs("'run' is not a string")
        check_relative_path(run, "run script")
    artifacts = meta.get("artifacts") or []
    projects = meta.get("projects") or []
    if not isinstance(artifacts, list) or not all(isinstance(a, str) for a in artifacts):
        raise BadBuildArgs("'artifacts' is not a list of strings")
    for a in artifacts:
        check_artifact(a)
    if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
        raise BadBuildArgs("'projects' is not a list of strings")
    for p in projects:
        check_project(p)
    hold = meta.get("hold_on_failure", True)
    if not isinstance(hold, bool):
        raise BadBuildArgs("'hold_on_failure' is not a boolean")
    failure_output = _failure_output(meta.get("failure_output") or [])
    log_path = check_log_path(params.get("LOG_PATH") or default_log_path(params, job, uuid))
    params["LOG_PATH"] = log_path
    return BuildSpec(uuid=uuid, job=job, label=label, params=params, log_path=log_path,
                     timeout=float(timeout) if timeout is not None else None, run=run,
                     artifacts=tuple(artifacts), projects=tuple(projects),
                     hold_on_failure=hold, changes=changes, failure_output=failure_output)


def _failure_output(value: object) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise BadBuildArgs("'failure_output' is not a list of strings")
    if len(value) > MAX_FAILURE_OUTPUT or any(len(p) > MAX_PATTERN for p in value):
        raise BadBuildArgs(f"'failure_output': at most {MAX_FAILURE_OUTPUT} patterns of "
                           f"{MAX_PATTERN} characters")
    out = []
    for p in value:
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise BadBuildArgs(f"'failure_output': bad regex {p!r}: {e}") from None
    return tuple(out)
