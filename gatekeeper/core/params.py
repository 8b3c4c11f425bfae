"""Build parameters in the Zuul tradition (devstack-gate reads these names)."""

from __future__ import annotations

from gatekeeper.layout.model import Job, Pipeline
from gatekeeper.model.buildparams import BuildParameters, Joined
from gatekeeper.model.change import Subject
from gatekeeper.model.runtime import QueueItem


def build_parameters(pipeline: Pipeline, item: QueueItem, job: Job, uuid: str,
                     git_url: str = "") -> BuildParameters:
    c: Subject = item.change
    bs = item.build_set
    params: dict[str, str | Joined] = dict(job.parameters)
    for axis, value in job.variant.items():
        params.setdefault(f"MATRIX_{axis.upper().replace('-', '_')}", value)
    params.update({
        "ZUUL_UUID": uuid,
        "ZUUL_PROJECT": c.project,
        "ZUUL_PIPELINE": pipeline.name,
        "ZUUL_JOB": job.name,
        "ZUUL_VOTING": "1" if job.voting else "0",
        "ZUUL_URL": bs.git_url or git_url,
        "LOG_PATH": c.log_path(pipeline.name, job.name, uuid),
    })
    own = c.build_parameters(bs.changes)
    params.update(own)
    # The merger's speculative ref and commit when it made them, else the subject's own.
    params["ZUUL_REF"] = bs.ref or _plain(own.get("ZUUL_REF"))
    params["ZUUL_COMMIT"] = bs.commits.get(c.project) or _plain(own.get("ZUUL_COMMIT"))
    return BuildParameters(params, bs.changes)


def _plain(v: str | Joined | None) -> str:
    return v if isinstance(v, str) else ""
