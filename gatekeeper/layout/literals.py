"""Literals a regex cannot match without: a cheap test before ``re.search``.

``required_literals`` reads a compiled pattern's parse tree and returns
strings of which every match contains at least one (or None when it cannot
say). ``CommentFilter.search`` then answers exactly like ``pattern.search``
but skips the regex when the text contains none of them — a recheck regex
like ``(?i)^(Patch Set [0-9]+:)?( [\\w\\\\+-]*)*(\\n\\n)?\\s*(recheck|reverify)``
backtracks over every comment otherwise. tests/unit/layout/test_literals.py
checks the equivalence on generated patterns and texts."""

from __future__ import annotations

import importlib
import re
from typing import Any

# The regex parser's tree (re._parser since Python 3.11; typeshed does not
# describe it, hence Any).
_sre_parse: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

MAX_LITERALS = 16  # beyond this many alternatives the test is not cheaper

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT}
if hasattr(_c, "POSSESSIVE_REPEAT"):
    _REPEATS.add(_c.POSSESSIVE_REPEAT)
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)

Literals = frozenset[str]


def _best(options: list[Literals]) -> Literals | None:
    """The most selective set: the one whose shortest literal is longest."""
    if not options:
        return None
    return max(options, key=lambda s: (min(map(len, s)), -len(s)))


def _seq(items: Any, icase: bool) -> Literals | None:
    """Every match of the sequence ``items`` contains one of the result."""
    options: list[Literals] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            options.append(frozenset(["".join(run)]))
            run.clear()

    for op, av in items:
        if op is _c.LITERAL:
            ch = chr(av)
            if icase and not ch.isascii():
                close_run()  # its case variants are not ASCII's: say nothing
                continue
            run.append(ch.lower() if icase else ch)
            continue
        close_run()
        found = _node(op, av, icase)
        if found is not None:
            options.append(found)
    close_run()
    return _best(options)


def _node(op: Any, av: Any, icase: bool) -> Literals | None:
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            return None  # flags changed inside: say nothing about it
        return _seq(sub, icase)
    if op in _REPEATS:
        low, _high, sub = av
        return _seq(sub, icase) if low >= 1 else None
    if _ATOMIC is not None and op is _ATOMIC:
        return _seq(av, icase)
    if op is _c.BRANCH:
        _none, branches = av
        union: set[str] = set()
        for b in branches:
            found = _seq(b, icase)
            if found is None:
                return None
            union |= found
        return frozenset(union) if len(union) <= MAX_LITERALS else None
    return None  # classes, anchors, assertions, backreferences: no literal


def required_literals(pattern: re.Pattern[str]) -> tuple[Literals, bool] | None:
    """(literals, ignorecase): every match of ``pattern`` contains one of
    ``literals`` (lowercased when ignorecase, then valid for ASCII text only);
    None when there is no such set worth testing."""
    if not isinstance(pattern.pattern, str) or pattern.flags & re.LOCALE:
        return None
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:
        return None
    icase = bool(parsed.state.flags & re.IGNORECASE)
    found = _seq(list(parsed), icase)
    if found is None or "" in found:
        return None
    return found, icase


class CommentFilter:
    """``search(text)`` is ``pattern.search(text) is not None``, cheaper."""

    __slots__ = ("icase", "literals", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        req = required_literals(pattern)
        self.literals: tuple[str, ...] | None = None if req is None else tuple(sorted(req[0]))
        self.icase = False if req is None else req[1]

    def search(self, text: str) -> bool:
        lits = self.literals
        if lits is not None:
            if self.icase:
                if text.isascii():  # ASCII folds only to ASCII: lower() is exact
                    low = text.lower()
                    if not any(lit in low for lit in lits):
                        return False
            elif not any(lit in text for lit in lits):
                return False
        return self.pattern.search(text) is not None
