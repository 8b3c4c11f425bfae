"""A build's parameters, with the values that name the whole speculative
state (ZUUL_CHANGES, ZUUL_CHANGE_IDS) joined only when first read.

Deep in a long gate queue those values grow with the item's depth; the core
launches a build in constant time whatever the depth, and the launcher that
sends the job (gearman: ``dict(parameters)``) pays for the join once. What is
read is the same string, in the same key order, as an eager dict would hold:
the state (``changes``) is an immutable tuple shared with the build set."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatekeeper.model.runtime import SpeculativeChange

# A value computed from the speculative state when first read.
Joined = Callable[["Sequence[SpeculativeChange]"], str]


def zuul_changes(changes: Sequence[SpeculativeChange]) -> str:
    """project:branch:ref of every change in the state, ^-joined."""
    return "^".join(f"{x.project}:{x.branch}:{x.ref}" for x in changes if x.number is not None)


def zuul_change_ids(changes: Sequence[SpeculativeChange]) -> str:
    """N,PS of every change in the state, space-separated."""
    return " ".join(x.id_string for x in changes if x.number is not None)


class BuildParameters(MutableMapping[str, str]):
    """ZUUL_* and the job's own parameters of one build (a ``dict`` to read)."""

    __slots__ = ("_values", "changes")

    def __init__(self, values: dict[str, str | Joined],
                 changes: Sequence[SpeculativeChange] = ()):
        self._values = values
        self.changes = changes  # the speculative state the joined values name

    def __getitem__(self, key: str) -> str:
        v = self._values[key]
        if not isinstance(v, str):
            v = self._values[key] = v(self.changes)
        return v

    def __setitem__(self, key: str, value: str) -> None:
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def unjoined(self) -> int:
        """How many values were never read (so never computed): tests count the work."""
        return sum(1 for v in self._values.values() if not isinstance(v, str))

    def __repr__(self) -> str:
        return f"BuildParameters({dict(self)!r})"

