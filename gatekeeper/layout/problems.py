"""Collects located layout errors so one run reports all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.errors import UserError
from gatekeeper.yamlutil import format_path, line_for_path


@dataclass
class Source:
    """Where a raw entry came from: file, its parsed document, and the path
    of the entry inside it (e.g. ``["jobs", 3]``)."""

    filename: str
    doc: Any
    path: tuple[Any, ...]

    def line(self, *sub: Any) -> int:
        return line_for_path(self.doc, [*self.path, *sub])

    def where(self, *sub: Any) -> str:
        return f"{self.filename}:{self.line(*sub)}"


@dataclass
class Problems:
    messages: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, src: Source, sub: Sequence[Any], message: str) -> None:
        path = [*src.path, *sub]
        where = format_path(path)
        line = src.line(*sub)
        text = f"{src.filename}:{line}: {where}: {message}" if where else f"{src.filename}:{line}: {message}"
        if all(m != text for _, _, m in self.messages):
            self.messages.append((src.filename, line, text))

    def extend_raw(self, filename: str, lines: list[tuple[int, str]]) -> None:
        for line, text in lines:
            self.messages.append((filename, line, text))

    def __bool__(self) -> bool:
        return bool(self.messages)

    def raise_if_any(self, order: Sequence[str]) -> None:
        if not self.messages:
            return
        rank = {f: i for i, f in enumerate(order)}
        msgs = sorted(self.messages, key=lambda m: (rank.get(m[0], len(rank)), m[1]))
        raise UserError([m for _, _, m in msgs])
