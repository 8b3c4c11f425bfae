"""What a transaction changed in the store's in-memory bookkeeping, undone if it fails.

The journal and the history recorder remember what the database holds (which
rows exist, what each was last written with) to write only what changed. That
memory may only say what a *committed* transaction wrote: a turn whose
transaction fails is written again the next turn (the scheduler keeps its
changes), and must then not skip a row, or update one it never inserted."""

from __future__ import annotations

from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_MISSING: Any = object()


class Undo:
    def __init__(self) -> None:
        self._log: list[tuple[dict[Any, Any], Any, Any]] = []

    def set(self, d: dict[K, V], key: K, value: V) -> None:
        self._log.append((d, key, d.get(key, _MISSING)))
        d[key] = value

    def pop(self, d: dict[K, V], key: K) -> None:
        if key in d:
            self._log.append((d, key, d.pop(key)))

    def rollback(self) -> None:
        for d, key, old in reversed(self._log):
            if old is _MISSING:
                d.pop(key, None)
            else:
                d[key] = old
        self._log.clear()
