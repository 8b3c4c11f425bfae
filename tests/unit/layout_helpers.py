"""Shared helpers for the layout tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout_text

ROOT = Path(__file__).resolve().parents[2]

PIPES = """\
pipelines:
  - name: check
    manager: independent
    trigger: {gerrit: [{event: patchset-created}]}
  - name: gate
    manager: dependent
    trigger: {gerrit: [{event: comment-added, approval: [{Approved: 1}]}]}
"""  # 7 lines


def load(text: str, **kw):
    return load_layout_text(textwrap.dedent(text), "L", **kw)


def errors(text: str, **kw) -> list[str]:
    with pytest.raises(UserError) as e:
        load(text, **kw)
    return e.value.messages


def yaml_list(items) -> str:
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"
