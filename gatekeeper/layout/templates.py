"""Project templates (Zuul 2 style) with parameters.

A template maps pipeline names to job trees whose job names may contain
``{param}`` placeholders. A project applies it with ``templates: [NAME]`` or
``templates: [{name: NAME, PARAM: value}]``. Every template gets ``{name}``
(the project's short name, after the last ``/``) and ``{project}`` (the full
name); explicit parameters override them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gatekeeper.layout.model import JobTree
from gatekeeper.layout.problems import Problems, Source
from gatekeeper.layout.schema import TEMPLATE_KEYS
from gatekeeper.layout.trees import TreeBuilder


@dataclass
class Template:
    name: str
    raw: dict[str, Any]
    src: Source

    def pipelines(self) -> list[str]:
        return [k for k in self.raw if k not in TEMPLATE_KEYS]


@dataclass
class TemplateRegistry:
    problems: Problems
    templates: dict[str, Template] = field(default_factory=dict)

    def add(self, raw: dict[str, Any], src: Source, pipelines: set[str]) -> None:
        name = raw["name"]
        if name in self.templates:
            first = self.templates[name].src
            self.problems.add(
                src, ["name"], f"duplicate project-template {name!r} (first defined at {first.where('name')})"
            )
            return
        t = Template(name, raw, src)
        for p in t.pipelines():
            if p not in pipelines:
                self.problems.add(src, [p], f"unknown pipeline {p!r}")
        self.templates[name] = t

    def apply(
        self,
        ref: Any,
        project: str,
        ref_src: Source,
        ref_path: list[Any],
        trees: TreeBuilder,
        pipelines: set[str],
    ) -> dict[str, tuple[JobTree, ...]] | None:
        """The template's trees for ``project``; None if the template is unknown."""
        name = ref if isinstance(ref, str) else ref["name"]
        t = self.templates.get(name)
        if t is None:
            self.problems.add(ref_src, ref_path, f"unknown project-template {name!r}")
            return None
        params = {"name": project.rsplit("/", 1)[-1], "project": project}
        if isinstance(ref, dict):
            params.update({str(k): _param(v) for k, v in ref.items() if k != "name"})
        context = f" (template {name!r} applied to project {project!r})"
        out: dict[str, tuple[JobTree, ...]] = {}
        for p in t.pipelines():
            if p in pipelines:
                out[p] = trees.build(t.raw[p], t.src, [p], params, context)
        return out


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
