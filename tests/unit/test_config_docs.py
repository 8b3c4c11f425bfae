"""The documented config keys are the schema's keys, both ways: every key the
code accepts (and so may read) has a row in doc/configuration.md (the pool's
in doc/nodepool.md), every row names a real key, and doc/worker.md lists
every worker and node key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import voluptuous as vol

from gatekeeper.config import SCHEMA
from gatekeeper.nodes.config import POOL_SCHEMA

DOC = Path(__file__).resolve().parents[2] / "doc"


def _key(k: Any) -> str:
    return str(k.schema if isinstance(k, vol.Marker) else k)


def _mapping(value: Any) -> dict[Any, Any] | None:
    """The mapping a validator checks, if it is one (through Schema/All/list)."""
    if isinstance(value, vol.Schema):
        value = value.schema
    if isinstance(value, dict):
        return value
    if isinstance(value, vol.All):
        for v in value.validators:
            m = _mapping(v)
            if m is not None:
                return m
    return None


def schema_keys(schema: Any, prefix: str = "") -> dict[str, set[str]]:
    """section path -> its keys; lists of mappings become ``name[]``."""
    out: dict[str, set[str]] = {}
    mapping = _mapping(schema)
    assert mapping is not None
    for k, v in mapping.items():
        name = _key(k)
        out.setdefault(prefix, set()).add(name)
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(v, list) and v and _mapping(v[0]) is not None:
            out.update(schema_keys(v[0], path + "[]"))
        elif _mapping(v) is not None and prefix == "":
            out.update(schema_keys(v, path))
    return out


def table_keys(text: str) -> dict[str, set[str]]:
    """``## section`` headings -> the backticked names in the first column of
    their tables (``Each entry of `nodes`:`` starts worker.nodes[])."""
    out: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        m = re.match(r"^## (\w+)", line)
        if m:
            section = m.group(1)
        elif line.startswith("Each entry of `nodes`"):
            section = "worker.nodes[]"
        elif line.startswith("| `") and section:
            first = line.split("|")[1]
            out.setdefault(section, set()).update(re.findall(r"`([^`]+)`", first))
    return out


def test_configuration_md_documents_exactly_the_schema() -> None:
    code = schema_keys(SCHEMA)
    doc = table_keys((DOC / "configuration.md").read_text())
    sections = {s for s in code if s and s != "pool"}
    assert code[""] == {*sections, "pool"} - {"worker.nodes[]"}
    for section in sorted(sections):
        assert doc.get(section) == code[section], (
            f"{section}: undocumented {sorted(code[section] - doc.get(section, set()))}, "
            f"documented but not in the schema {sorted(doc.get(section, set()) - code[section])}")


def test_nodepool_md_documents_every_pool_key() -> None:
    code = schema_keys(POOL_SCHEMA)[""]
    text = (DOC / "nodepool.md").read_text()
    table = text[text.index("## Configuration reference (`pool:` section)"):]
    table = table[:table.index("\n## ", 1)]
    doc = {k for line in table.splitlines() if line.startswith("| `")
           for k in re.findall(r"`([^`]+)`", line.split("|")[1])}
    assert doc == code, (sorted(code - doc), sorted(doc - code))


def test_worker_md_lists_every_key_the_worker_reads() -> None:
    code = schema_keys(SCHEMA)
    text = (DOC / "worker.md").read_text()
    table = text[text.index("## Config keys it reads"):]
    table = table[:table.index("\n## ", 1)]
    doc = {k for line in table.splitlines() if line.startswith("| `")
           for k in re.findall(r"`([^`]+)`", line.split("|")[1])}
    wanted = ({f"worker.{k}" for k in code["worker"]}
              | {f"worker.nodes[].{k}" for k in code["worker.nodes[]"]}
              | {f"gearman.{k}" for k in code["gearman"] if k != "embedded"}
              | {"scheduler.layout", "pool.labels", "web.listen"})
    assert doc == wanted, (sorted(wanted - doc), sorted(doc - wanted))
