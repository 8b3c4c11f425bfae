"""Matrix jobs: one definition times parameter axes -> distinct variant jobs.

``name: cloudstack-nightly`` with ``matrix: {hypervisor: [xen, kvm], os: [centos]}``
yields ``cloudstack-nightly-xen-centos`` and ``cloudstack-nightly-kvm-centos``
(axis values appended in axis order). A name that mentions axes, e.g.
``cloudstack-{os}-{hypervisor}``, is used as the pattern instead and must
mention every axis. ``{axis}`` is also substituted in ``label``, ``run``,
``artifacts``, ``projects`` and parameter values, and each variant gets the
parameter ``AXIS=value`` (axis name upper-cased) unless set explicitly."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SUBSTITUTED_KEYS = ("label", "run", "artifacts", "projects")


class SubstitutionError(ValueError):
    """A ``{placeholder}`` names no known variable."""


def substitute(text: str, values: Mapping[str, str], strict: bool = True) -> str:
    """Replace ``{var}`` by ``values[var]``. Unknown variables raise when
    ``strict``, else stay as written (other braces are never touched)."""

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in values:
            return str(values[key])
        if strict:
            raise SubstitutionError(key)
        return m.group(0)

    return PLACEHOLDER.sub(repl, text)


@dataclass(frozen=True)
class Variant:
    name: str
    values: dict[str, str]


def variant_names(
    base: str, matrix: Mapping[str, list[Any]], exclude: Sequence[Mapping[str, Any]] = ()
) -> list[Variant]:
    """Raises ValueError when the name mentions only some axes, or when
    ``exclude`` (partial axis->value mappings) leaves no variant."""
    axes = list(matrix)
    mentioned = {m.group(1) for m in PLACEHOLDER.finditer(base)}
    if mentioned and set(axes) - mentioned:
        missing = ", ".join("{" + a + "}" for a in axes if a not in mentioned)
        raise ValueError(f"the job name mentions some matrix axes but not {missing}")
    if mentioned - set(axes):
        unknown = ", ".join("{" + a + "}" for a in sorted(mentioned - set(axes)))
        raise ValueError(f"the job name mentions {unknown}, which is not a matrix axis")
    out = []
    for combo in itertools.product(*(matrix[a] for a in axes)):
        values = {a: str(v) for a, v in zip(axes, combo, strict=True)}
        if any(all(values[a] == str(v) for a, v in ex.items()) for ex in exclude):
            continue
        if mentioned:
            name = substitute(base, values)
        else:
            name = "-".join([base, *values.values()])
        out.append(Variant(name, values))
    if not out:
        raise ValueError("matrix-exclude excludes every variant")
    return out


def apply_variant(attrs: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a matrix job's attributes for one variant."""
    out = {k: v for k, v in attrs.items() if k not in ("matrix", "matrix-exclude", "name")}
    for key in SUBSTITUTED_KEYS:
        if key not in out:
            continue
        v = out[key]
        if isinstance(v, list):
            out[key] = [substitute(str(x), values, strict=False) for x in v]
        else:
            out[key] = substitute(str(v), values, strict=False)
    params = {
        k: substitute(str(v), values, strict=False) if isinstance(v, str) else v
        for k, v in (attrs.get("parameters") or {}).items()
    }
    for axis, value in values.items():
        params.setdefault(axis.upper(), value)
    out["parameters"] = params
    return out
