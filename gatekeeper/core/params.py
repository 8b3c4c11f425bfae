"""Build parameters in the Zuul tradition (devstack-gate reads these names)."""

from __future__ import annotations

from gatekeeper.layout.model import Job, Pipeline
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.runtime import BuildSet, QueueItem


def log_path(pipeline: str, item: QueueItem, job: str, uuid: str) -> str:
    c = item.change
    if isinstance(c, Change):
        n = str(c.number)
        return f"{n[-2:]}/{n}/{c.patchset}/{pipeline}/{job}/{uuid[:7]}"
    if c.newrev:
        return f"{c.newrev[:2]}/{c.newrev}/{pipeline}/{job}/{uuid[:7]}"
    return f"{pipeline}/{c.project}/{c.branch or c.ref}/{job}/{uuid[:7]}"


def zuul_changes(bs: BuildSet) -> str:
    """``project:branch:ref`` of every change in the speculative state, ``^``-joined."""
    return "^".join(f"{c.project}:{c.branch}:{c.ref}" for c in bs.changes if c.number is not None)


def build_parameters(pipeline: Pipeline, item: QueueItem, job: Job, uuid: str,
                     git_url: str = "") -> dict[str, str]:
    c = item.change
    bs = item.build_set
    params: dict[str, str] = dict(job.parameters)
    for axis, value in job.variant.items():
        params.setdefault(f"MATRIX_{axis.upper().replace('-', '_')}", value)
    params.update({
        "ZUUL_UUID": uuid,
        "ZUUL_PROJECT": c.project,
        "ZUUL_PIPELINE": pipeline.name,
        "ZUUL_JOB": job.name,
        "ZUUL_VOTING": "1" if job.voting else "0",
        "ZUUL_URL": bs.git_url or git_url,
        "ZUUL_REF": bs.ref or "",
        "ZUUL_COMMIT": bs.commits.get(c.project, ""),
        "LOG_PATH": log_path(pipeline.name, item, job.name, uuid),
    })
    if isinstance(c, Change):
        params.update({
            "ZUUL_BRANCH": c.branch,
            "ZUUL_CHANGE": str(c.number),
            "ZUUL_PATCHSET": str(c.patchset),
            "ZUUL_CHANGES": zuul_changes(bs),
            "ZUUL_CHANGE_IDS": " ".join(x.id_string for x in bs.changes if x.number is not None),
        })
    elif isinstance(c, Ref):
        params.update({
            "ZUUL_BRANCH": c.branch or "",
            "ZUUL_REFNAME": c.ref,
            "ZUUL_OLDREV": c.oldrev,
            "ZUUL_NEWREV": c.newrev,
            "ZUUL_SHORT_OLDREV": c.oldrev[:7],
            "ZUUL_SHORT_NEWREV": c.newrev[:7],
        })
        if not params["ZUUL_REF"]:
            params["ZUUL_REF"] = c.ref
        if not params["ZUUL_COMMIT"]:
            params["ZUUL_COMMIT"] = c.newrev
    return params
