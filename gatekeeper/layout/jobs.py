"""Job definitions: explicit names, matrix variants and regex definitions.

A definition whose name starts with ``^`` is a regular expression: its
attributes apply to every concrete job whose name it matches (``re.search``),
in layout order. Attributes of the job's own (explicit or matrix) definition
win over every regex definition. A concrete job exists when it is defined
explicitly, is a matrix variant, or is referenced by a project and matched by
at least one regex definition."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.layout.matrix import apply_variant, variant_names
from gatekeeper.layout.model import Job
from gatekeeper.layout.pipelines import as_list, patterns
from gatekeeper.layout.problems import Problems, Source
from gatekeeper.layout.schema import parse_duration


@dataclass
class Definition:
    attrs: dict[str, Any]
    src: Source
    variant_of: str | None = None
    variant: dict[str, str] = field(default_factory=dict)


@dataclass
class JobRegistry:
    problems: Problems
    explicit: dict[str, Definition] = field(default_factory=dict)
    regexes: list[tuple[re.Pattern[str], Definition]] = field(default_factory=list)
    matrices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    matrix_src: dict[str, Source] = field(default_factory=dict)

    def add(self, raw: dict[str, Any], src: Source) -> None:
        name = raw["name"]
        attrs = {k: v for k, v in raw.items() if k not in ("name", "description")}
        if "matrix-exclude" in raw and "matrix" not in raw:
            self.problems.add(src, ["matrix-exclude"], "matrix-exclude needs a matrix")
            return
        if name.startswith("^"):
            if "matrix" in raw:
                self.problems.add(src, ["matrix"], "a regex job definition cannot have a matrix")
                return
            try:
                pattern = re.compile(name)
            except re.error as e:
                self.problems.add(src, ["name"], f"bad regular expression {name!r}: {e}")
                return
            self.regexes.append((pattern, Definition(attrs, src)))
            return
        if "matrix" not in raw:
            self._add_explicit(name, Definition(attrs, src), src)
            return
        if name in self.matrices:
            first = self.matrix_src[name]
            self.problems.add(src, ["name"], f"duplicate job {name!r} (first defined at {first.where('name')})")
            return
        try:
            excl = raw.get("matrix-exclude") or []
            variants = variant_names(name, raw["matrix"], excl if isinstance(excl, list) else [excl])
        except ValueError as e:
            self.problems.add(src, ["matrix-exclude" if "exclude" in str(e) else "name"], str(e))
            return
        self.matrices[name] = tuple(v.name for v in variants)
        self.matrix_src[name] = src
        for v in variants:
            self._add_explicit(
                v.name, Definition(apply_variant(raw, v.values), src, name, v.values), src
            )

    def _add_explicit(self, name: str, d: Definition, src: Source) -> None:
        if name in self.explicit:
            first = self.explicit[name].src
            what = f"job {name!r}" if d.variant_of is None else f"matrix variant {name!r}"
            self.problems.add(src, ["name"], f"duplicate {what} (first defined at {first.where('name')})")
            return
        self.explicit[name] = d

    def expand(self, name: str) -> tuple[str, ...]:
        """A base matrix name stands for all its variants."""
        return self.matrices.get(name, (name,))

    def matching_regexes(self, name: str) -> list[Definition]:
        return [d for p, d in self.regexes if p.search(name)]

    def known(self, name: str) -> bool:
        return name in self.explicit or bool(self.matching_regexes(name))

    def resolve(self, name: str) -> tuple[Job, dict[str, Source]]:
        """The concrete job and, per attribute, the definition that set it."""
        attrs: dict[str, Any] = {}
        origin: dict[str, Source] = {}
        layers = self.matching_regexes(name)
        own = self.explicit.get(name)
        if own is not None:
            layers.append(own)
        for d in layers:
            for k, v in d.attrs.items():
                attrs[k] = v
                origin[k] = d.src
        job = build_job(name, attrs, own.variant_of if own else None, own.variant if own else {})
        return job, origin


def _str_param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_job(
    name: str, attrs: dict[str, Any], variant_of: str | None, variant: dict[str, str]
) -> Job:
    timeout = attrs.get("timeout")
    return Job(
        name=name,
        label=attrs.get("label"),
        run=attrs.get("run"),
        timeout=parse_duration(timeout) if timeout is not None else None,
        voting=attrs.get("voting", True),
        attempts=attrs.get("attempts", 3),
        branches=patterns(attrs.get("branch")),
        files=patterns(attrs.get("files")),
        irrelevant_files=patterns(attrs.get("irrelevant-files")),
        parameters={k: _str_param(v) for k, v in (attrs.get("parameters") or {}).items()},
        artifacts=tuple(as_list(attrs.get("artifacts"))),
        projects=tuple(as_list(attrs.get("projects"))),
        success_message=attrs.get("success-message"),
        failure_message=attrs.get("failure-message"),
        success_url=attrs.get("success-url"),
        failure_url=attrs.get("failure-url"),
        hold_on_failure=attrs.get("hold-on-failure", True),
        failure_output=patterns(attrs.get("failure-output")),
        variant_of=variant_of,
        variant=dict(variant),
    )
