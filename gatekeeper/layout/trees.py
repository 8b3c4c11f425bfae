"""Job trees of projects and project-templates.

YAML shape: a list whose items are job names or one-key mappings
``{parent: children}``; a child runs only if its parent succeeds. A matrix
base name expands to all its variants as siblings (each with the same
children). In templates, ``{param}`` placeholders in job names are
substituted first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.layout.jobs import JobRegistry
from gatekeeper.layout.matrix import SubstitutionError, substitute
from gatekeeper.layout.model import JobTree
from gatekeeper.layout.problems import Problems, Source


@dataclass
class TreeBuilder:
    registry: JobRegistry
    problems: Problems
    referenced: dict[str, None] = field(default_factory=dict)  # ordered set

    def build(
        self,
        raw: Any,
        src: Source,
        sub: list[Any],
        params: Mapping[str, str] | None = None,
        context: str = "",
    ) -> tuple[JobTree, ...]:
        """``params`` is None outside templates (names used as written)."""
        items = raw if isinstance(raw, list) else [raw]
        out: list[JobTree] = []
        for i, item in enumerate(items):
            path = [*sub, i] if isinstance(raw, list) else sub
            if isinstance(item, str):
                written, children_raw = item, None
            else:
                ((written, children_raw),) = item.items()
            name = self._name(written, src, path, params, context)
            children: tuple[JobTree, ...] = ()
            if children_raw is not None:
                children = self.build(children_raw, src, [*path, written], params, context)
            if name is None:
                continue
            names = self.registry.expand(name)
            if names == (name,) and not self.registry.known(name):
                self.problems.add(src, path, f"unknown job {name!r}{context}")
                continue
            if children and len(names) > 1:
                self.problems.add(
                    src, path,
                    f"matrix job {name!r} cannot have children: each of its {len(names)} "
                    f"variants would run them (list the variants you mean){context}",
                )
                continue
            for n in names:
                self.referenced[n] = None
                out.append(JobTree(job=n, children=children))
        return tuple(out)

    def _name(
        self,
        written: str,
        src: Source,
        path: list[Any],
        params: Mapping[str, str] | None,
        context: str,
    ) -> str | None:
        if params is None:
            return written
        try:
            return substitute(written, params)
        except SubstitutionError as e:
            known = ", ".join("{" + k + "}" for k in params)
            self.problems.add(
                src, path, f"template parameter {{{e}}} is not set{context} (set: {known})"
            )
            return None


def duplicate_jobs(tree: JobTree) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for n in tree.job_names():
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups
