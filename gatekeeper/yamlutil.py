"""YAML loading that remembers line numbers, and error formatting.

Every mapping is loaded as :class:`LineDict` and every sequence as
:class:`LineList`; both are ordinary ``dict``/``list`` subclasses that also
carry ``line`` (where the node starts) and ``lines`` (the line of each key or
item). Voluptuous errors carry a path into the data; :func:`format_invalid`
walks that path through the loaded document to find the line to report.

Error format (used by config and layout alike)::

    FILE:LINE: path.to.key: message

Path style: mapping keys joined with ``.``, sequence indices in brackets,
e.g. ``pipelines[0].trigger.gerrit[1].event``. Line numbers are 1-based."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import voluptuous as vol
import yaml

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.yamlutil")


class LineDict(dict):
    """A dict that knows the line of itself and of each of its keys."""

    line: int = 0

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LineList(list):
    """A list that knows the line of itself and of each item."""

    line: int = 0

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.lines):
            return self.lines[index]
        return self.line


# libyaml's parser is ~10x faster than the pure-Python one and keeps marks.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_SafeBase):
    """SafeLoader producing LineDict/LineList and rejecting duplicate keys
    (PyYAML silently keeps the last one, which hides typos)."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode):
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as e:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from e
        if key in data:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {data.lines[key]})",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode):
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    data.lines = [child.start_mark.line + 1 for child in node.value]


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_text(path: str) -> str:
    """Read a UTF-8 file; every failure becomes a one-line UserError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a file") from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte {e.start})") from None


def load_text(text: str, filename: str) -> Any:
    """Parse one YAML document; syntax errors become ``FILE:LINE: message``."""
    try:
        return yaml.load(text, Loader=LineLoader)  # LineLoader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        what = " ".join(p for p in (e.context, e.problem) if p) or str(e)
        raise UserError(f"{filename}:{line}: YAML syntax error: {what}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{filename}:1: YAML error: {e}") from None
    except RecursionError:
        raise UserError(f"{filename}:1: YAML nested too deeply") from None


def load_file(path: str) -> Any:
    return load_text(read_text(path), path)


def format_path(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def line_for_path(data: Any, path: Sequence[Any]) -> int:
    """The line of the deepest node along ``path`` that exists in ``data``."""
    line = getattr(data, "line", 0) or 1
    node = data
    for p in path:
        if isinstance(node, LineDict) and p in node:
            line = node.line_of(p)
            node = node[p]
        elif isinstance(node, LineList) and isinstance(p, int) and 0 <= p < len(node):
            line = node.line_of(p)
            node = node[p]
        else:
            break
    return line


def located(filename: str, line: int, path: Sequence[Any] | str, message: str) -> str:
    where = path if isinstance(path, str) else format_path(path)
    return f"{filename}:{line}: {where}: {message}" if where else f"{filename}:{line}: {message}"


def format_invalid(
    error: vol.Invalid,
    data: Any,
    filename: str,
    prefix: Sequence[Any] = (),
    schema: Any = None,
) -> list[str]:
    """Every error of ``error`` (a MultipleInvalid holds many) as
    ``FILE:LINE: path: message``, sorted by line. ``prefix`` is prepended to
    each path when the schema was applied to a sub-document. ``schema``
    (the one that was applied) lets unknown keys suggest a valid neighbour."""
    return [m for _, m in invalid_lines(error, data, filename, prefix, schema)]


def invalid_lines(
    error: vol.Invalid,
    data: Any,
    filename: str,
    prefix: Sequence[Any] = (),
    schema: Any = None,
) -> list[tuple[int, str]]:
    """Like :func:`format_invalid`, with each message's line number."""
    errors: Iterable[vol.Invalid] = (
        error.errors if isinstance(error, vol.MultipleInvalid) else [error]
    )
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for err in errors:
        path = list(prefix) + list(err.path)
        line = line_for_path(data, path)
        words = sorted(keys_at(schema, list(err.path)[:-1])) if schema is not None else []
        msg = located(filename, line, path, _message(err, data, path, words))
        if msg not in seen:
            seen.add(msg)
            out.append((line, msg))
    out.sort(key=lambda t: t[0])
    return out


def _message(err: vol.Invalid, data: Any, path: list[Any], words: list[str]) -> str:
    msg = err.msg
    if msg == "extra keys not allowed":
        close = difflib.get_close_matches(str(path[-1]), words, n=1) if path else []
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if msg == "required key not provided":
        return "required key missing"
    if _BUILTIN_EXPECTED.fullmatch(msg):
        # Show what was found; voluptuous only says what it wanted.
        found = _lookup(data, path)
        if found is not _MISSING:
            return f"{msg}, got {type_name(found)}"
    return msg


def keys_at(schema: Any, path: Sequence[Any]) -> set[str]:
    """The literal keys the mapping at ``path`` of ``schema`` accepts (for
    "did you mean"). Validators wrapping a schema expose it as ``.inner``."""
    while True:
        if isinstance(schema, vol.Schema):
            schema = schema.schema
        elif hasattr(schema, "inner"):
            if path and isinstance(path[0], int):
                path = path[1:]
            schema = schema.inner
        else:
            break
    if isinstance(schema, (vol.All, vol.Any)):
        return set().union(*(keys_at(v, path) for v in schema.validators))
    if isinstance(schema, list):
        if path and isinstance(path[0], int):
            return set().union(*(keys_at(v, path[1:]) for v in schema))
        return set()
    if not isinstance(schema, dict):
        return set()
    literal = {(k.schema if isinstance(k, vol.Marker) else k): v for k, v in schema.items()}
    if not path:
        return {k for k in literal if isinstance(k, str)}
    if path[0] in literal:
        return keys_at(literal[path[0]], path[1:])
    return set()


_MISSING = object()
# voluptuous' own type messages ("expected str"), which do not say what was found
_BUILTIN_EXPECTED = re.compile(r"expected (\w+|a dictionary|a list)")


def _lookup(data: Any, path: Sequence[Any]) -> Any:
    node = data
    for p in path:
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__
