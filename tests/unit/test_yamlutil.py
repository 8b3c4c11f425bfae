"""Line-keeping YAML loader and the FILE:LINE: path: message formatter."""

from __future__ import annotations

import textwrap

import pytest
import voluptuous as vol

from gatekeeper.errors import UserError
from gatekeeper.yamlutil import (
    LineDict,
    LineList,
    format_invalid,
    format_path,
    line_for_path,
    load_file,
    load_text,
    read_text,
)

DOC = textwrap.dedent(
    """\
    # comment
    top:
      a: 1
      list:
        - x
        -
          y
        - {k: v}
    other: [1,
      2]
    """
)


def test_every_mapping_key_and_sequence_item_has_its_line():
    data = load_text(DOC, "f.yaml")
    assert isinstance(data, LineDict) and isinstance(data["top"], LineDict)
    assert data.lines == {"top": 2, "other": 9}
    assert data["top"].lines == {"a": 3, "list": 4}
    lst = data["top"]["list"]
    assert isinstance(lst, LineList)
    assert lst == ["x", "y", {"k": "v"}]
    assert lst.lines == [5, 7, 8]
    assert lst[2].line == 8 and lst[2].lines == {"k": 8}
    assert data["other"].lines == [9, 10]


def test_line_for_path_stops_at_deepest_existing_node():
    data = load_text(DOC, "f.yaml")
    assert line_for_path(data, ["top", "list", 1]) == 7
    assert line_for_path(data, ["top", "list", 2, "k"]) == 8
    # a missing key reports the line of the mapping that should hold it
    assert line_for_path(data, ["top", "list", 2, "missing"]) == 8
    assert line_for_path(data, ["top", "nope", "deeper"]) == 2
    assert line_for_path(data, []) == 2


def test_format_path_style():
    assert format_path(["pipelines", 0, "trigger", "gerrit", 1, "event"]) == (
        "pipelines[0].trigger.gerrit[1].event"
    )
    assert format_path([]) == ""


def test_duplicate_key_is_an_error_with_both_lines():
    with pytest.raises(UserError) as e:
        load_text("a: 1\nb: 2\na: 3\n", "d.yaml")
    assert e.value.messages == [
        "d.yaml:3: YAML syntax error: duplicate key 'a' (first on line 1)"
    ]


def test_syntax_error_has_file_and_line():
    with pytest.raises(UserError) as e:
        load_text("a:\n  b: [1, 2\n  c: 3\n", "s.yaml")
    (msg,) = e.value.messages
    assert msg.startswith("s.yaml:3: YAML syntax error: ")


def test_tab_indentation_error_line():
    with pytest.raises(UserError) as e:
        load_text("a:\n\tb: 1\n", "t.yaml")
    assert e.value.messages[0].startswith("t.yaml:2: YAML syntax error")


def test_safe_loader_refuses_python_tags():
    with pytest.raises(UserError) as e:
        load_text("a: !!python/object/apply:os.system ['true']\n", "x.yaml")
    assert e.value.messages[0].startswith("x.yaml:1: YAML syntax error")


def test_merge_keys_still_work():
    data = load_text("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n", "m.yaml")
    assert data["d"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"ok: 1\n\xff\n", "{p}:2: not valid UTF-8 (byte 6)"),
    ],
)
def test_read_text_invalid_utf8(tmp_path, content, expected):
    p = tmp_path / "bad.yaml"
    p.write_bytes(content)
    with pytest.raises(UserError) as e:
        read_text(str(p))
    assert e.value.messages == [expected.format(p=p)]


def test_read_text_missing_and_directory(tmp_path):
    with pytest.raises(UserError) as e:
        read_text(str(tmp_path / "nope.yaml"))
    assert e.value.messages == [f"{tmp_path / 'nope.yaml'}: no such file"]
    with pytest.raises(UserError) as e:
        read_text(str(tmp_path))
    assert e.value.messages == [f"{tmp_path}: is a directory, not a file"]


def test_load_file_empty_is_none(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("# nothing\n")
    assert load_file(str(p)) is None


SCHEMA = vol.Schema(
    {
        vol.Required("name"): str,
        "manager": vol.Any("independent", "dependent", msg="must be one of: independent, dependent"),
        "items": [{"k": int}],
    }
)


def test_format_invalid_reports_all_errors_sorted_by_line():
    """voluptuous' str(e) shows only the first error: we must show all."""
    text = "manager: serial\nitems:\n  - k: one\nextra: 1\n"
    data = load_text(text, "v.yaml")
    with pytest.raises(vol.MultipleInvalid) as e:
        SCHEMA(data)
    assert len(e.value.errors) > 1
    assert format_invalid(e.value, data, "v.yaml", schema=SCHEMA) == [
        "v.yaml:1: manager: must be one of: independent, dependent",
        "v.yaml:1: name: required key missing",
        "v.yaml:3: items[0].k: expected int, got string",
        "v.yaml:4: extra: unknown key",  # nothing close among name, manager, items
    ]


def test_unknown_key_suggests_close_match():
    data = load_text("name: x\nmanagr: dependent\n", "v.yaml")
    with pytest.raises(vol.MultipleInvalid) as e:
        SCHEMA(data)
    assert format_invalid(e.value, data, "v.yaml", schema=SCHEMA) == [
        "v.yaml:2: managr: unknown key (did you mean 'manager'?)"
    ]


def test_format_invalid_with_prefix():
    data = load_text("pool:\n  x: 1\n  y: 2\n", "p.yaml")
    with pytest.raises(vol.MultipleInvalid) as e:
        vol.Schema({"x": str})({"x": data["pool"]["x"]})
    assert format_invalid(e.value, data, "p.yaml", prefix=["pool"]) == [
        "p.yaml:2: pool.x: expected str, got integer"
    ]


def test_suggestions_come_from_the_mapping_at_that_path():
    data = load_text("name: x\nitems:\n  - kk: 1\n    nam: 2\n", "v.yaml")
    with pytest.raises(vol.MultipleInvalid) as e:
        SCHEMA(data)
    # 'nam' is close to the top-level 'name', but items[0] only accepts 'k'
    assert format_invalid(e.value, data, "v.yaml", schema=SCHEMA) == [
        "v.yaml:3: items[0].kk: unknown key (did you mean 'k'?)",
        "v.yaml:4: items[0].nam: unknown key",
    ]


def test_absurd_nesting_is_a_user_error():
    # Our contract, whichever of Python's recursion limit or PyYAML's own nesting limit
    # (PyYAML >= 6.0.4) fires first: one UserError line naming FILE:LINE, no chained traceback.
    with pytest.raises(UserError) as e:
        load_text("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    [message] = e.value.messages
    assert message.startswith("deep.yaml:1: ")
    assert "nest" in message.lower()
    assert "\n" not in message
    assert e.value.__cause__ is None and e.value.__suppress_context__
