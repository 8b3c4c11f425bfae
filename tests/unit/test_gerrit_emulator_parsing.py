"""Pure parts of the Gerrit emulator: Gerrit's SSH tokenizer, option and query parsing."""

from __future__ import annotations

import shlex

import pytest

from gatekeeper.sim.gerrit.commands import Fatal, Opt, parse_options
from gatekeeper.sim.gerrit.model import STATUS_NEW, Change
from gatekeeper.sim.gerrit.query import QueryError, parse_age, parse_query, parse_time
from gatekeeper.sim.gerrit.tokenizer import split_command

NASTY = [
    'x" --code-review +2 --submit --message "y',
    "it's",
    'back\\slash and \\" and \\\\',
    "line1\nline2\n\n",
    "$(touch /tmp/pwn) `id` ; | & > <",
    "\ttabs  and  spaces ",
    "ünïcødé ✓",
]


@pytest.mark.parametrize("value", NASTY)
def test_shlex_quote_round_trips_through_gerrits_tokenizer(value: str) -> None:
    argv = split_command(f"gerrit review 1,1 --message {shlex.quote(value)} --verified -1")
    assert argv == ["gerrit", "review", "1,1", "--message", value, "--verified", "-1"]


def test_tokenizer_matches_gerrit_split() -> None:
    # Double quotes group, backslash escapes inside them, single quotes are literal.
    assert split_command('a "b c" \'d e\' f\\ g') == ["a", "b c", "d e", "f g"]
    assert split_command('"a\\"b"') == ['a"b']
    assert split_command("'a\\b'") == ["a\\b"]
    assert split_command('"it\'s"') == ["it's"]
    assert split_command("trailing\\") == ["trailing\\"]
    assert split_command('empty "" words') == ["empty", "words"]
    # gerritlib's review() wraps the message in "%s": the injection Gerrit really sees.
    injected = split_command('gerrit review 1,1 --message "x" --code-review +2 --submit "y"')
    assert injected[3:] == ["--message", "x", "--code-review", "+2", "--submit", "y"]
    # gerritlib's query() appends a stray quote: it toggles quoting and vanishes.
    assert split_command('gerrit query --format json change:1"') == [
        "gerrit", "query", "--format", "json", "change:1"]


def test_option_parser_like_args4j() -> None:
    spec = {"--message": Opt("m", True), "-m": Opt("m", True), "--submit": Opt("s"),
            "--label": Opt("l", True, True)}
    values, rest = parse_options(["1,1", "--message=a=b", "--label", "X=1", "--label=Y=-1",
                                  "--submit", "--", "--submit"], spec)
    assert values == {"m": "a=b", "l": ["X=1", "Y=-1"], "s": True}
    assert rest == ["1,1", "--submit"]
    with pytest.raises(Fatal, match='"--nope" is not a valid option'):
        parse_options(["--nope"], spec)
    with pytest.raises(Fatal, match='Option "-m" takes an operand'):
        parse_options(["-m"], spec)
    with pytest.raises(Fatal, match="not a valid option"):
        parse_options(["--submit=yes"], spec)


def _change(number: int, updated: int, **kw: object) -> Change:
    base = dict(number=number, project="p", branch="master", change_id=f"I{number:040x}",
                owner="alice", subject="s", topic=None, status=STATUS_NEW,
                created_on=updated, last_updated=updated)
    base.update(kw)
    return Change(**base)  # type: ignore[arg-type]


def test_query_terms() -> None:
    now = 1_700_000_000
    changes = [_change(1, now - 10), _change(2, now - 7200, branch="stable"),
               _change(3, now, status="MERGED", topic="t")]

    def hits(q: str) -> list[int]:
        parsed = parse_query(q, now)
        return [c.number for c in changes if all(p(c) for p in parsed.predicates)]

    assert hits("is:open") == [1, 2]
    assert hits("status:merged topic:t") == [3]
    assert hits("owner:alice") == hits("owner:alice@example.com") == [1, 2, 3]
    assert hits("owner:malice@example.com") == hits("owner:ali") == []
    assert hits("branch:refs/heads/stable") == [2]
    assert hits("NOT branch:stable") == [1, 3]
    assert hits("-age:1h") == [1, 3]
    assert hits("age:1h") == [2]
    assert hits("2") == [2]
    assert hits(f"change:I{3:040x}") == [3]
    assert hits('after:"2023-11-14 22:13:10" status:open') == [1]
    assert parse_query("is:open limit:5", now).limit == 5
    assert parse_time("2023-11-14 22:13:20") == now
    assert parse_time("2023-11-14 23:13:20.000 +0100") == now
    assert parse_age("90min") == 5400
    for bad in ("frob:1", "status:weird", "limit:x", "age:3 fortnights", "after:yesterday",
                "a OR b", ""):
        with pytest.raises(QueryError):
            parse_query(bad, now)
