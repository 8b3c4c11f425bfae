"""Dispatch of `gerrit ...` SSH commands (argv already split like Gerrit).

Option parsing follows args4j as Gerrit uses it: ``--opt value``,
``--opt=value``, short aliases, unknown options are fatal. Failures print
``fatal: ...`` (or ``error: ...`` per patch set for review) and exit 1."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.sim.gerrit.query import (
    QueryError,
    QueryOptions,
    change_row,
    parse_query,
    run_query,
    text_row,
)
from gatekeeper.sim.gerrit.state import GerritState, ReviewError

log = logging.getLogger("gatekeeper.sim.gerrit.commands")


class Fatal(Exception):
    """Ends the command with ``fatal: <msg>`` on stderr and exit 1."""


@dataclass
class Session:
    """What a command may touch of its SSH channel."""

    username: str
    read_stdin: Callable[[], bytes]
    out: Callable[[str], None]
    err: Callable[[str], None]
    # Serves stream-events until it ends; the exit status, None when the client went away.
    stream: Callable[[frozenset[str]], int | None]


@dataclass
class Faults:
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_reviews: int = 0
    fail_message: str = "fatal: internal server error"
    # A slow Gerrit: a submit waits while this is clear (then is applied,
    # whether or not its client is still there, as Gerrit would).
    submits_open: threading.Event = field(default_factory=lambda: _opened(threading.Event()))
    submits_waiting: int = 0
    SUBMIT_HOLD_MAX = 600.0  # seconds a held submit waits at most (a test forgot to release)

    def wait_to_submit(self) -> None:
        if self.submits_open.is_set():
            return
        with self.lock:
            self.submits_waiting += 1
        try:
            self.submits_open.wait(self.SUBMIT_HOLD_MAX)
        finally:
            with self.lock:
                self.submits_waiting -= 1

    def take_review_failure(self) -> str | None:
        with self.lock:
            if self.fail_reviews <= 0:
                return None
            self.fail_reviews -= 1
            return self.fail_message


def _opened(ev: threading.Event) -> threading.Event:
    ev.set()
    return ev


@dataclass(frozen=True)
class Opt:
    dest: str
    takes_value: bool = False
    repeat: bool = False


def parse_options(argv: list[str], spec: dict[str, Opt]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        value: str | bool
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        opt = spec.get(name)
        if opt is None:
            raise Fatal(f'"{name}" is not a valid option')
        if opt.takes_value:
            if eq:
                value = inline
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise Fatal(f'Option "{name}" takes an operand')
        else:
            if eq:
                raise Fatal(f'"{arg}" is not a valid option')
            value = True  # a flag
        if opt.repeat:
            values.setdefault(opt.dest, []).append(value)
        else:
            values[opt.dest] = value
    return values, positional


class GerritCommands:
    def __init__(self, state: GerritState, faults: Faults, version: str):
        self.state = state
        self.faults = faults
        self.version = version
        self.commands: dict[str, Callable[[list[str], Session], int | None]] = {
            "version": self.cmd_version,
            "ls-projects": self.cmd_ls_projects,
            "query": self.cmd_query,
            "review": self.cmd_review,
            "stream-events": self.cmd_stream_events,
        }

    def run(self, argv: list[str], session: Session) -> int | None:
        """The exit status to send; None when the client has gone (nothing to send)."""
        if not argv:
            session.err("fatal: no command given\n")
            return 1
        if argv[0] != "gerrit":
            session.err(f"fatal: Gerrit Code Review: {argv[0]}: not found\n")
            return 1
        if len(argv) == 1:
            session.err("gerrit [COMMAND] [ARG ...] [--] [--help (-h)]\n\nAvailable commands "
                        "of gerrit are:\n\n" + "".join(f"   {c}\n" for c in self.commands))
            return 1
        handler = self.commands.get(argv[1])
        if handler is None:
            session.err(f"fatal: gerrit: {argv[1]}: not found\n")
            return 1
        try:
            return handler(argv[2:], session)
        except Fatal as e:
            session.err(f"fatal: {e}\n")
            return 1

    # --- simple commands ----------------------------------------------------
    def cmd_version(self, argv: list[str], s: Session) -> int:
        parse_options(argv, {})
        s.out(f"gerrit version {self.version}\n")
        return 0

    def cmd_ls_projects(self, argv: list[str], s: Session) -> int:
        opts, rest = parse_options(argv, {
            "--format": Opt("format", True), "--show-branch": Opt("branch", True, True),
            "-b": Opt("branch", True, True), "--prefix": Opt("prefix", True),
            "-p": Opt("prefix", True), "--type": Opt("type", True),
            "--description": Opt("desc"), "-d": Opt("desc"),
        })
        if rest:
            raise Fatal(f'"{rest[0]}" is not a valid option')
        fmt = str(opts.get("format", "TEXT")).upper()
        if fmt not in ("TEXT", "JSON", "JSON_COMPACT"):
            raise Fatal(f'"{opts["format"]}" is not a valid value for "--format"')
        with self.state.lock:
            names = sorted(n for n in self.state.projects
                           if n.startswith(opts.get("prefix", "")))
            heads = {}
            for name in names:
                repo = self.state.projects[name]
                heads[name] = {b: repo.rev_parse(f"refs/heads/{b}")
                               for b in opts.get("branch", [])}
        if fmt.startswith("JSON"):
            out: dict[str, Any] = {}
            for name in names:
                entry: dict[str, Any] = {"id": name.replace("/", "%2F"), "state": "ACTIVE"}
                if opts.get("branch"):
                    entry["branches"] = {b: sha for b, sha in heads[name].items() if sha}
                out[name] = entry
            s.out(json.dumps(out) + "\n")
            return 0
        for name in names:
            shas = [sha for sha in heads[name].values() if sha]
            if opts.get("branch") and not shas:
                continue
            s.out((f"{shas[0]} " if shas else "") + name + "\n")
        return 0

    # --- query ----------------------------------------------------------------
    def cmd_query(self, argv: list[str], s: Session) -> int:
        flags = {
            "--current-patch-set": "current_patch_set", "--patch-sets": "patch_sets",
            "--all-approvals": "all_approvals", "--comments": "comments",
            "--commit-message": "commit_message", "--dependencies": "dependencies",
            "--files": "files", "--all-reviewers": "all_reviewers",
            "--submit-records": "submit_records", "--no-limit": "no_limit",
        }
        spec = {name: Opt(dest) for name, dest in flags.items()}
        spec.update({"--format": Opt("format", True), "--start": Opt("start", True),
                     "-S": Opt("start", True)})
        values, terms = parse_options(argv, spec)
        fmt = str(values.pop("format", "TEXT")).upper()
        if fmt not in ("JSON", "TEXT"):
            raise Fatal(f'"{fmt}" is not a valid value for "--format"')
        start = values.pop("start", "0")
        if not str(start).isdigit():
            raise Fatal(f'"{start}" is not a valid value for "--start"')
        opts = QueryOptions(start=int(start), **{k: True for k in values})
        if not terms:
            raise Fatal('Argument "QUERY" is required')
        t0 = time.monotonic()
        try:
            with self.state.lock:
                parsed = parse_query(" ".join(terms), self.state.now())
                hits, more = run_query(list(self.state.changes.values()), parsed, opts)
                rows = [change_row(self.state, c, opts) for c in hits]
        except QueryError as e:
            if fmt == "JSON":
                s.out(json.dumps({"type": "error", "message": str(e)}) + "\n")
                return 0
            raise Fatal(str(e)) from None
        stats = {"type": "stats", "rowCount": len(rows),
                 "runTimeMilliseconds": int((time.monotonic() - t0) * 1000),
                 "moreChanges": more}
        if fmt == "JSON":
            for row in rows:
                s.out(json.dumps(row, separators=(",", ":")) + "\n")
            s.out(json.dumps(stats) + "\n")
        else:
            s.out("".join(text_row(f"change {row['id']}", row) for row in rows))
            s.out("".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}\n"
                          for k, v in stats.items()))
        return 0

    # --- review ---------------------------------------------------------------
    def _review_spec(self) -> dict[str, Opt]:
        spec = {
            "--project": Opt("project", True), "-p": Opt("project", True),
            "--branch": Opt("branch", True), "-b": Opt("branch", True),
            "--message": Opt("message", True), "-m": Opt("message", True),
            "--notify": Opt("notify", True), "-n": Opt("notify", True),
            "--tag": Opt("tag", True), "-t": Opt("tag", True),
            "--abandon": Opt("abandon"), "--restore": Opt("restore"),
            "--rebase": Opt("rebase"), "--submit": Opt("submit"), "-s": Opt("submit"),
            "--json": Opt("json"), "-j": Opt("json"),
            "--strict-labels": Opt("strict_labels"),
            "--label": Opt("label", True, True), "-l": Opt("label", True, True),
        }
        # Gerrit adds one option per configured label: --code-review, --verified ...
        for name in self.state.labels:
            spec["--" + name.lower()] = Opt("vote:" + name, True)
        return spec

    def cmd_review(self, argv: list[str], s: Session) -> int:
        values, targets = parse_options(argv, self._review_spec())
        failure = self.faults.take_review_failure()
        if failure is not None:
            log.info("review failing on purpose: %s", failure)
            if values.get("json"):
                s.read_stdin()  # a server-side failure comes after the input was read
            s.err(failure.rstrip("\n") + "\n")
            return 1
        labels: dict[str, int] = {}
        for key, raw in values.items():
            if key.startswith("vote:"):
                labels[key[5:]] = _vote_value(raw, "--" + key[5:].lower())
        for item in values.get("label", []):
            name, eq, raw = item.partition("=")
            if not eq or not name:
                raise Fatal(f'"{item}" is not a valid value for "--label"')
            labels[name] = _vote_value(raw, "--label")
        message = values.get("message", "")
        if values.get("abandon") and values.get("restore"):
            raise Fatal("abandon and restore actions are mutually exclusive")
        if values.get("abandon") and values.get("submit"):
            raise Fatal("abandon and submit actions are mutually exclusive")
        if values.get("json"):
            for opt in ("submit", "restore", "abandon", "message", "rebase"):
                if values.get(opt):
                    raise Fatal(f"json and {opt} actions are mutually exclusive")
            if labels:
                raise Fatal("json and label options are mutually exclusive")
            message, labels = _review_input(s.read_stdin())
        if values.get("rebase"):
            raise Fatal("--rebase is not supported by the emulator")
        if not targets:
            raise Fatal('Argument "{COMMIT | CHANGE,PATCHSET}" is required')
        if values.get("submit"):
            self.faults.wait_to_submit()
        ok = True
        with self.state.lock:
            resolved = []
            for target in targets:
                try:
                    resolved += self.state.find_patchsets(target, values.get("project"),
                                                          values.get("branch"))
                except ReviewError as e:
                    raise Fatal(str(e)) from None
            for change, ps in resolved:
                try:
                    self.state.review(change.number, ps.number, s.username, labels, message,
                                      submit=bool(values.get("submit")),
                                      abandon=bool(values.get("abandon")),
                                      restore=bool(values.get("restore")))
                except ReviewError as e:
                    ok = False
                    s.err(f"error: {e}\n")
        if not ok:
            s.err("fatal: one or more reviews failed; review output above\n")
            return 1
        return 0

    # --- stream-events --------------------------------------------------------
    def cmd_stream_events(self, argv: list[str], s: Session) -> int | None:
        values, rest = parse_options(argv, {"--subscribe": Opt("types", True, True),
                                            "-s": Opt("types", True, True)})
        if rest:
            raise Fatal(f'"{rest[0]}" is not a valid option')
        acct = self.state.accounts.get(s.username)
        caps = acct.capabilities if acct else frozenset()
        if "stream-events" not in caps and "administrate-server" not in caps:
            raise Fatal("stream events not permitted")
        return s.stream(frozenset(values.get("types", [])))


def _vote_value(raw: Any, option: str) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise Fatal(f'"{raw}" is not a valid value for "{option}"') from None


def _review_input(data: bytes) -> tuple[str, dict[str, int]]:
    """ReviewInput JSON (message, labels, tag, notify, ...) from stdin."""
    try:
        doc = json.loads(data.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Fatal(f"Invalid json input: {e}") from None
    if not isinstance(doc, dict):
        raise Fatal("Invalid json input: expected a ReviewInput object")
    message = doc.get("message") or ""
    if not isinstance(message, str):
        raise Fatal("Invalid json input: message must be a string")
    raw_labels = doc.get("labels") or {}
    if not isinstance(raw_labels, dict):
        raise Fatal("Invalid json input: labels must be an object")
    labels = {}
    for name, value in raw_labels.items():
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise Fatal(f"Invalid json input: label {name} must be a number")
        labels[str(name)] = _vote_value(value, f"labels.{name}")
    return message, labels
