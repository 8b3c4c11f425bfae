"""Load layout YAML files into a compiled :class:`Layout`.

Two phases, each reporting every error it finds as ``FILE:LINE: key: message``:
1. every file is parsed (line numbers kept) and checked against the schema;
2. if all files passed, they are merged and cross-referenced: duplicate names
   (also across files), unknown jobs/templates/pipelines/labels, matrix and
   template expansion, regex job definitions.
Phase 2 is skipped when phase 1 failed: its checks assume valid shapes."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from typing import Any

import voluptuous as vol

from gatekeeper.errors import UserError
from gatekeeper.layout.checks import (
    SiteFacts,
    check_job,
    check_mail,
    check_project_name,
    check_site,
)
from gatekeeper.layout.jobs import JobRegistry
from gatekeeper.layout.model import Job, JobTree, Layout, Pipeline, Project, WindowConfig
from gatekeeper.layout.pipelines import build_pipeline
from gatekeeper.layout.problems import Problems, Source
from gatekeeper.layout.schema import LAYOUT, PROJECT_KEYS
from gatekeeper.layout.templates import TemplateRegistry
from gatekeeper.layout.trees import TreeBuilder, duplicate_jobs
from gatekeeper.yamlutil import LineDict, invalid_lines, load_text, read_text

log = logging.getLogger("gatekeeper.layout.loader")

Doc = tuple[str, dict[str, Any]]


def load_layout(paths: Iterable[str], known_labels: Iterable[str] | None = None,
                site: SiteFacts | None = None) -> Layout:
    """Load and merge layout files. ``known_labels``: when given, every job
    label must be one of them. ``site``: also check what the site's worker
    needs (see layout/checks.py). Raises UserError listing every problem."""
    paths = list(paths)
    if not paths:
        raise UserError("no layout files given")
    messages: list[str] = []
    texts: list[tuple[str, str]] = []
    for path in paths:
        try:
            texts.append((path, read_text(path)))
        except UserError as e:
            messages.extend(e.messages)
    docs, problems = _parse(texts)
    if messages:
        raise UserError(messages + [m for _, _, m in problems.messages])
    return _finish(docs, problems, paths, known_labels, site)


def load_layout_text(
    text: str, filename: str = "<layout>", known_labels: Iterable[str] | None = None
) -> Layout:
    """Load one layout given as text (``filename`` is used in messages)."""
    docs, problems = _parse([(filename, text)])
    return _finish(docs, problems, [filename], known_labels)


def _parse(texts: list[tuple[str, str]]) -> tuple[list[Doc], Problems]:
    problems = Problems()
    docs: list[Doc] = []
    for filename, text in texts:
        try:
            doc = load_text(text, filename)
        except UserError as e:
            problems.messages.extend((filename, 0, m) for m in e.messages)
            continue
        if doc is None:
            problems.messages.append(
                (filename, 1, f"{filename}:1: empty layout (expected pipelines, jobs, "
                 "project-templates and/or projects)")
            )
            continue
        if not isinstance(doc, LineDict):
            problems.messages.append(
                (filename, getattr(doc, "line", 1) or 1,
                 f"{filename}:{getattr(doc, 'line', 1) or 1}: expected a mapping with pipelines, "
                 "jobs, project-templates and/or projects")
            )
            continue
        try:
            LAYOUT(doc)
        except RecursionError:
            problems.messages.append((filename, 1, f"{filename}:1: layout nested too deeply"))
            continue
        except vol.Invalid as e:
            problems.messages.extend((filename, line, m) for line, m in invalid_lines(e, doc, filename, schema=LAYOUT))
            continue
        docs.append((filename, doc))
    return docs, problems


def _finish(
    docs: list[Doc], problems: Problems, order: list[str], known_labels: Iterable[str] | None,
    site: SiteFacts | None = None,
) -> Layout:
    problems.raise_if_any(order)
    try:
        layout = _compile(docs, problems, set(known_labels) if known_labels is not None else None,
                          site)
    except RecursionError:  # a job tree thousands of levels deep
        raise UserError(f"{order[0]}:1: job trees nested too deeply") from None
    problems.raise_if_any(order)
    log.debug(
        "layout %s: %d pipelines, %d jobs, %d projects",
        ", ".join(order), len(layout.pipelines), len(layout.jobs), len(layout.projects),
    )
    return layout


def _entries(docs: list[Doc], section: str) -> Iterable[tuple[dict[str, Any], Source]]:
    for filename, doc in docs:
        for i, raw in enumerate(doc.get(section) or []):
            yield raw, Source(filename, doc, (section, i))


def _compile(docs: list[Doc], problems: Problems, known_labels: set[str] | None,
             site: SiteFacts | None = None) -> Layout:
    pipelines = _pipelines(docs, problems)
    names = set(pipelines)

    registry = JobRegistry(problems)
    for raw, src in _entries(docs, "jobs"):
        registry.add(raw, src)

    templates = TemplateRegistry(problems)
    for raw, src in _entries(docs, "project-templates"):
        templates.add(raw, src, names)

    trees = TreeBuilder(registry, problems)
    projects: dict[str, Project] = {}
    project_src: dict[str, Source] = {}
    for raw, src in _entries(docs, "projects"):
        name = raw["name"]
        if name in projects:
            problems.add(
                src, ["name"],
                f"duplicate project {name!r} (first defined at {project_src[name].where('name')})",
            )
            continue
        project_src[name] = src
        projects[name] = _project(raw, src, templates, trees, names, problems)
        check_project_name(projects[name], src, problems)

    jobs: dict[str, Job] = {}
    origins: dict[str, dict[str, Source]] = {}
    bad_labels: dict[tuple[int, str], tuple[Source, list[str]]] = {}
    for name in [*registry.explicit, *trees.referenced]:
        if name in jobs or not registry.known(name):
            continue
        job, origin = registry.resolve(name)
        jobs[name] = job
        origins[name] = origin
        own = registry.explicit.get(name)
        check_job(job, origin, own.src if own else None, problems)
        if known_labels is not None and job.label is not None and job.label not in known_labels:
            src = origin["label"]
            bad_labels.setdefault((id(src), job.label), (src, []))[1].append(name)
    for (_, label), (src, users) in bad_labels.items():
        known = ", ".join(sorted(known_labels or ())) or "none"
        used = ""
        if users != [_def_name(src)]:
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            used = f" (used by {shown})"
        problems.add(src, ["label"], f"unknown label {label!r}{used}; known labels: {known}")
    if site is not None:
        for raw, src in _entries(docs, "pipelines"):
            check_mail(raw, src, site, problems)
        raw_keys = {n: list(_raw(s)) for n, s in project_src.items()}
        check_site(jobs, origins, projects, project_src, raw_keys, site, problems)
    return Layout(
        pipelines=pipelines,
        jobs=jobs,
        projects=projects,
        matrices=dict(registry.matrices),
        files=tuple(f for f, _ in docs),
    )


def _raw(src: Source) -> dict[str, Any]:
    node: Any = src.doc
    for p in src.path:
        node = node[p]
    return node


def _def_name(src: Source) -> str:
    node: Any = src.doc
    for p in src.path:
        node = node[p]
    return node.get("name", "")


def _pipelines(docs: list[Doc], problems: Problems) -> dict[str, Pipeline]:
    pipelines: dict[str, Pipeline] = {}
    first: dict[str, Source] = {}
    for raw, src in _entries(docs, "pipelines"):
        name = raw["name"]
        if name in PROJECT_KEYS:
            problems.add(src, ["name"], f"{name!r} is reserved (it is a project key)")
            continue
        if name in pipelines:
            problems.add(
                src, ["name"], f"duplicate pipeline {name!r} (first defined at {first[name].where('name')})"
            )
            continue
        window, floor = raw.get("window"), raw.get("window-floor")
        if window and floor and floor > window:
            problems.add(src, ["window-floor"], f"window-floor ({floor}) is larger than window ({window})")
        ceiling = raw.get("window-ceiling")
        if ceiling is not None:
            if raw.get("manager") != "dependent":
                problems.add(src, ["window-ceiling"], "a window-ceiling needs manager: dependent "
                             f"(this pipeline's manager is {raw.get('manager')})")
            elif window == 0:
                problems.add(src, ["window-ceiling"], "window 0 is unlimited: a window-ceiling "
                             "needs a window")
            elif ceiling < max(window or WindowConfig().window, floor or WindowConfig().floor):
                problems.add(src, ["window-ceiling"], f"window-ceiling ({ceiling}) is smaller than "
                             f"the window ({window or WindowConfig().window}) or window-floor "
                             f"({floor or WindowConfig().floor})")
        if "strategy" in raw and raw["manager"] != "dependent":
            problems.add(src, ["strategy"], "a gate strategy needs manager: dependent "
                         f"(this pipeline's manager is {raw['manager']})")
        first[name] = src
        pipelines[name] = build_pipeline(raw)
    return pipelines


def _project(
    raw: dict[str, Any],
    src: Source,
    templates: TemplateRegistry,
    trees: TreeBuilder,
    pipelines: set[str],
    problems: Problems,
) -> Project:
    name = raw["name"]
    collected: dict[str, list[JobTree]] = {}
    refs = raw.get("templates")
    refs_list = refs if isinstance(refs, list) else ([refs] if refs is not None else [])
    template_names = []
    for i, ref in enumerate(refs_list):
        ref_path = ["templates", i] if isinstance(refs, list) else ["templates"]
        applied = templates.apply(ref, name, src, ref_path, trees, pipelines)
        template_names.append(ref if isinstance(ref, str) else ref["name"])
        for p, t in (applied or {}).items():
            collected.setdefault(p, []).extend(t)
    for key, value in raw.items():
        if key in PROJECT_KEYS:
            continue
        if key not in pipelines:
            close = difflib.get_close_matches(str(key), [*PROJECT_KEYS, *pipelines], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.add(
                src, [key],
                f"unknown pipeline {key!r} ({hint}project keys are: {', '.join(PROJECT_KEYS)}; "
                f"pipelines: {', '.join(sorted(pipelines)) or 'none'})",
            )
            continue
        collected.setdefault(key, []).extend(trees.build(value, src, [key]))
    result: dict[str, JobTree] = {}
    for p in collected:  # order of first appearance: templates, then own keys
        tree = JobTree(job=None, children=tuple(collected[p]))
        for dup in duplicate_jobs(tree):
            problems.add(
                src, [p] if p in raw else ["name"],
                f"job {dup!r} appears more than once in pipeline {p!r} of project {name!r}",
            )
        result[p] = tree
    return Project(
        name=name,
        pipelines=result,
        queue=raw.get("queue"),
        merge_mode=raw.get("merge-mode", "merge-resolve"),
        templates=tuple(template_names),
    )

