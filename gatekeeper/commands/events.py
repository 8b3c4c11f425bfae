"""``gatekeeper events``: watch Gerrit's events as the scheduler sees them.

Connects with the service config's Gerrit settings, and prints one line per
event (type, project, change,patchset, who) followed by every pipeline the
event would enter, or why it would not -- the answer to "why didn't my change
enqueue?". ``--json`` prints the parsed events as JSON objects instead."""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import sys
import time
from typing import Any, TextIO

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.commands.events")



def configure(parser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")
    parser.add_argument("--layout", action="append", default=None, metavar="FILE",
                        help="layout file(s) to explain against (default: the config's)")
    parser.add_argument("--json", action="store_true", help="print parsed events as JSON lines")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="stop after N events")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop after S seconds")
    parser.add_argument("--connect-timeout", type=float, default=15.0, metavar="S",
                        help="give up if the stream is not up within S seconds (default 15)")


def describe_event(ev) -> str:
    what = f"{ev.change_number},{ev.patchset}" if ev.change_number is not None else (ev.ref or "-")
    who = ev.account_username or ev.account_email or ev.account_name or "?"
    extra = " (catch-up)" if ev.synthetic else ""
    approvals = " ".join(f"{a.label}{a.value:+d}" for a in ev.approvals)
    return (f"{ev.type} {ev.project or '-'} {what} by {who}{extra}"
            + (f" [{approvals}]" if approvals else ""))


def explain_lines(layout, ev, change) -> tuple[list[str], dict[str, dict[str, Any]]]:
    from gatekeeper.core.filters import match_trigger

    lines: list[str] = []
    result: dict[str, dict[str, Any]] = {}
    if layout is None:
        return lines, result
    for name, pipeline in layout.pipelines.items():
        m = match_trigger(pipeline, ev, change)
        result[name] = {"matched": bool(m.matched), "reasons": list(m.reasons)}
        verdict = "MATCH" if m.matched else "no"
        lines.append(f"  {name}: {verdict}: " + "; ".join(m.reasons))
    if layout.pipelines and ev.project and ev.project not in layout.projects:
        lines.append(f"  (project {ev.project} is not in the layout: nothing would be enqueued)")
    return lines, result


def run(args) -> int:
    from gatekeeper.config import load_config
    from gatekeeper.gerrit.connection import GerritConnection

    config = load_config(args.config)
    if logging.getLogger().level > logging.DEBUG:  # paramiko's per-connection INFO is noise here
        logging.getLogger("paramiko").setLevel(logging.WARNING)
    layout = None
    paths = args.layout or list(config.scheduler.layout)
    if paths:
        from gatekeeper.layout.loader import load_layout

        # Node labels do not matter for explaining triggers: do not check them.
        layout = load_layout(paths, known_labels=None)
    g = config.gerrit
    events: queue.Queue = queue.Queue()
    fatal: list[str] = []
    # No delay: an operator watching wants the event now; lookups happen after it anyway.
    conn = GerritConnection.from_config(g, events.put, event_delay=0.0, on_fatal=fatal.append)
    conn.start()
    try:
        if not conn.watcher.wait_connected(args.connect_timeout):
            raise UserError(f"{args.config}: gerrit: cannot stream events from "
                            f"{g.user}@{g.server}:{g.port}: "
                            + (fatal[0] if fatal else conn.error or "not connected in time"))
        version = conn.server_version()
        print(f"# connected to {g.user}@{g.server}:{g.port}"
              + (f" (Gerrit {'.'.join(map(str, version))})" if version else "")
              + "; watching events"
              + (f" against {len(layout.pipelines)} pipelines" if layout else ""),
              file=sys.stderr)
        return _loop(args, conn, layout, events, fatal, sys.stdout)
    finally:
        conn.stop()


def _loop(args, conn, layout, events: queue.Queue, fatal: list[str], out: TextIO) -> int:
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout is not None else None
    while args.count is None or seen < args.count:
        wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if wait <= 0:
            break
        try:
            ev = events.get(timeout=wait)
        except queue.Empty:
            if fatal:
                raise UserError(f"{args.config}: gerrit: {fatal[0]}") from None
            continue
        seen += 1
        change = None
        if layout is not None:
            change = _lookup(conn, ev)
        lines, result = explain_lines(layout, ev, change)
        if args.json:
            doc = dataclasses.asdict(ev)
            if layout is not None:
                doc["pipelines"] = result
            out.write(json.dumps(doc, sort_keys=True) + "\n")
        else:
            out.write(describe_event(ev) + "\n")
            for line in lines:
                out.write(line + "\n")
        out.flush()
    return 0


def _lookup(conn, ev):
    """The change/ref the event is about, as the scheduler would see it."""
    try:
        if ev.change_number is not None:
            return conn.source.get_change(ev.change_number, ev.patchset)
        if ev.project and ev.ref:
            return conn.source.get_ref(ev.project, ev.ref, ev.oldrev or "", ev.newrev or "")
    except Exception as e:  # explain without the change rather than stop watching
        log.warning("Could not look up %s: %s", describe_event(ev), e)
    return None
