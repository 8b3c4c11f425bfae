"""Statements of the per-turn write path, built once.

SQLAlchemy builds and caches a statement's compiled form by its cache key,
but building ``sa.update(t).where(...).values(...)`` and computing that key
costs ~0.15 ms per statement: more than the UPDATE itself on SQLite (see
bench/README.md, persistence.py). A statement built once with bound
parameters computes its key once; each execution only binds values."""

from __future__ import annotations

import functools

import sqlalchemy as sa


@functools.cache
def update(table: sa.Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> sa.Update:
    """``UPDATE table SET columns WHERE keys``: parameters are named as the columns,
    the keys prefixed with ``k_`` (see ``key_params``)."""
    return (sa.update(table)
            .where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys))
            .values({c: sa.bindparam(c) for c in columns}))


@functools.cache
def insert(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table``: the columns are those of the parameters given."""
    return sa.insert(table)


def key_params(**keys: object) -> dict[str, object]:
    """The WHERE parameters of an ``update`` statement."""
    return {f"k_{k}": v for k, v in keys.items()}
