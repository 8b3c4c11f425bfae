"""Report messages: templates from the layout, the job list, plain reasons."""

from __future__ import annotations

import logging
import string

from gatekeeper.core.jobs import SelectedJob
from gatekeeper.layout.model import Pipeline, ReporterAction
from gatekeeper.model.change import Change
from gatekeeper.model.runtime import Build, QueueItem
from gatekeeper.model.states import INFRA_RESULTS, BuildResult

log = logging.getLogger("gatekeeper.core.report")

MERGE_FAILURE_TEXT = (
    "Merge Failed.\n\nThis change or one of its cross-repo dependencies was unable to be "
    "automatically merged with the current state of its repository. Please rebase the "
    "change and upload a new patchset.")
# The merger failed (not a conflict): nothing for the author to do. Sent with
# the merge-failure reporter's votes, never with its message (about conflicts).
MERGE_ERROR_TEXT = (
    "Merge Error.\n\nThe merger could not prepare this change for testing because of an "
    "infrastructure problem, not because of the change. The change was not tested; it "
    "can be tried again (e.g. recheck) once the problem is fixed.")


# {result} of a mail's subject, per report point.
MAIL_RESULT = {"start": "STARTED", "success": "SUCCESS", "failure": "FAILURE",
               "merge-failure": "MERGE FAILURE", "merge-error": "MERGE ERROR",
               "not-enqueued": "NOT ENQUEUED"}

DEFAULT_TEMPLATES = {
    "start": "Starting {pipeline} jobs.",
    "success": "Build succeeded ({pipeline} pipeline).",
    "failure": "Build failed ({pipeline} pipeline).",
    "merge-failure": MERGE_FAILURE_TEXT,
    "merge-error": MERGE_ERROR_TEXT,
    "not-enqueued": "Not enqueued in the {pipeline} pipeline.",
}


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {sec:02d}s"
    return f"{m}m {sec:02d}s"


def _url_for(s: SelectedJob, build: Build, fields: dict[str, str]) -> str | None:
    pattern = s.job.success_url if build.result == BuildResult.SUCCESS else s.job.failure_url
    if pattern:
        try:
            return pattern.format_map(_Fields(fields))
        except (ValueError, IndexError, AttributeError, KeyError):
            log.warning("bad url pattern %r of job %s", pattern, s.job.name)
    return build.url


def job_line(s: SelectedJob, build: Build | None, fields: dict[str, str]) -> str:
    """``- NAME URL : RESULT in 5m 03s (non-voting)``"""
    if build is None:
        return f"- {s.job.name} : NOT RUN"
    result = build.result or "IN PROGRESS"
    if build.result == BuildResult.SUCCESS and s.job.success_message:
        result = s.job.success_message
    elif build.result not in (None, BuildResult.SUCCESS, BuildResult.SKIPPED) and s.job.failure_message:
        result = s.job.failure_message
    url = _url_for(s, build, dict(fields, job=s.job.name, uuid=build.uuid))
    line = f"- {s.job.name}{' ' + url if url else ''} : {result}"
    if build.result in INFRA_RESULTS and build.message:
        line += f": {build.message}"  # why: it is not the change's doing
    if build.duration is not None and build.result not in (None, BuildResult.SKIPPED):
        line += f" in {format_duration(build.duration)}"
    if not s.job.voting:
        line += " (non-voting)"
    if build.judgment in ("flake", "broken") and build.message:
        line += f" ({build.message})"  # a gate strategy's verdict on its failure
    return line


def job_lines(selected: list[SelectedJob], item: QueueItem, fields: dict[str, str]) -> str:
    bs = item.build_set
    return "\n".join(job_line(s, bs.builds.get(s.job.name), fields) for s in selected)


class _Fields(dict[str, str]):
    """Unknown ``{names}`` stay as written instead of failing the report."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, fields: dict[str, str]) -> str:
    try:
        return string.Formatter().vformat(template, (), _Fields(fields))
    except (ValueError, IndexError, AttributeError, KeyError) as e:
        log.warning("report template %r cannot be rendered (%s); sending it as written",
                    template, e)
        return template


def base_fields(pipeline: Pipeline, item: QueueItem, status_url: str) -> dict[str, str]:
    c = item.change
    return {
        "pipeline": pipeline.name,
        "change": c.id_string if isinstance(c, Change) else f"{c.ref}",
        "project": c.project,
        "branch": c.branch or "",
        "status_url": status_url,
        "patchset": "" if c.patchset is None else str(c.patchset),
        "number": "" if c.number is None else str(c.number),
    }


def compose(pipeline: Pipeline, kind: str, action: ReporterAction | None,
            fields: dict[str, str], jobs: str, reason: str) -> str:
    """Header, the rendered template (plus the job list and the reason when
    the template does not place them itself), footer."""
    if action is not None and action.message and kind != "merge-error":
        template = action.message
    else:
        template = DEFAULT_TEMPLATES[kind]
    all_fields = dict(fields, jobs=jobs, reason=reason)
    parts = []
    if pipeline.header:
        parts.append(render(pipeline.header, all_fields).strip())
    parts.append(render(template, all_fields).strip())
    if reason and "{reason}" not in template:
        parts.append(reason)
    if kind == "start" and fields.get("status_url") and "{status_url}" not in template:
        parts.append(fields["status_url"])
    if jobs and kind != "start" and "{jobs}" not in template:
        parts.append(jobs)
    if pipeline.footer:
        parts.append(render(pipeline.footer, all_fields).strip())
    return "\n\n".join(p for p in parts if p)
