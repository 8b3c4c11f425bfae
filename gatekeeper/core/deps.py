"""Change dependencies: Depends-On footers and git parents, with cycles found
and every problem said in plain words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gatekeeper.model.change import Change

MAX_DEPENDENCIES = 200  # a change needing more than this is refused, not walked forever


class ChangeLookup(Protocol):
    def get_change(self, number: int, patchset: int | None = None,
                   refresh: bool = False) -> Change | None: ...

    def get_changes_by_change_id(self, change_id: str) -> list[Change]: ...


@dataclass
class Dependencies:
    order: list[Change] = field(default_factory=list)  # open changes needed, dependencies first
    direct: list[Change] = field(default_factory=list)  # open changes the change itself needs
    problems: list[str] = field(default_factory=list)
    cycle: list[Change] | None = None


def direct_needs(change: Change, lookup: ChangeLookup) -> tuple[list[Change], list[str]]:
    """Open changes ``change`` needs (merged ones are satisfied) and problems."""
    needs: dict[str, Change] = {}
    problems: list[str] = []
    for number in change.needed_by_parent:
        c = lookup.get_change(number)
        if c is None:
            problems.append(f"its git parent is change {number}, which Gerrit does not know")
        elif c.is_merged:
            continue
        elif not c.is_open:
            problems.append(f"its git parent is change {c.id_string}, which is "
                            f"{c.status.lower()}")
        else:
            needs[c.key] = c
    for change_id in change.depends_on:
        found = [c for c in lookup.get_changes_by_change_id(change_id)
                 if c.number != change.number]
        if not found:
            problems.append(f"Depends-On: {change_id} matches no change")
            continue
        open_ = [c for c in found if c.is_open]
        if open_:
            for c in open_:
                needs[c.key] = c
        elif not any(c.is_merged for c in found):
            ids = ", ".join(f"{c.id_string} ({c.status.lower()})" for c in found)
            problems.append(f"Depends-On: {change_id} names only closed changes: {ids}")
    return list(needs.values()), problems


def resolve(change: Change, lookup: ChangeLookup) -> Dependencies:
    """Walk the dependencies of ``change`` depth first; report a cycle with its path."""
    deps = Dependencies()
    state: dict[str, str] = {}
    by_key: dict[str, Change] = {change.key: change}
    path: list[str] = []

    def visit(c: Change) -> None:
        k = c.key
        if state.get(k) == "done" or deps.cycle is not None:
            return
        if state.get(k) == "visiting":
            loop = path[path.index(k):] + [k]
            deps.cycle = [by_key[x] for x in loop]
            names = " -> ".join(by_key[x].id_string for x in loop)
            deps.problems.append(
                f"dependency cycle: {names}. Changes that depend on each other cannot be "
                "tested or merged one after the other; remove one of the Depends-On "
                "footers or reorder the commits")
            return
        if len(by_key) > MAX_DEPENDENCIES:
            deps.problems.append(f"more than {MAX_DEPENDENCIES} changes are needed")
            return
        state[k] = "visiting"
        path.append(k)
        needs, problems = direct_needs(c, lookup)
        if c is change:
            deps.direct = list(needs)
            deps.problems.extend(problems)
        else:
            deps.problems.extend(f"{c.id_string}, which it needs: {p}" for p in problems)
        for n in needs:
            by_key.setdefault(n.key, n)
            visit(by_key[n.key])
        path.pop()
        state[k] = "done"
        if c is not change:
            deps.order.append(c)

    visit(change)
    return deps
