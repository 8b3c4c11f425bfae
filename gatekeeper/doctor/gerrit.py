"""Probes of Gerrit: reachable, host key known, login, stream-events allowed,
the layout's projects visible, the labels the pipelines vote on present."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from gatekeeper.doctor.result import Check, fail, ok, warn
from gatekeeper.gerrit.ssh import (
    GerritAuthError,
    GerritError,
    GerritHostKeyError,
    GerritSSH,
    SshTarget,
)
from gatekeeper.layout.model import Layout
from gatekeeper.shell import command_line


def voted_labels(layout: Layout) -> set[str]:
    """Every label some pipeline's report sets."""
    out: set[str] = set()
    for p in layout.pipelines.values():
        for action in (p.start, p.success, p.failure, p.merge_failure):
            if action is not None and action.send:
                out |= set(action.labels)
    return out


def check_gerrit(cfg: Any, layout: Layout | None, timeout: float = 10.0) -> Iterator[Check]:
    g = cfg.gerrit
    where = f"{g.server}:{g.port}"
    target = SshTarget(g.server, g.port, g.user, g.private_key, known_hosts=g.known_hosts,
                       host_key_checking=g.host_key_checking, connect_timeout=timeout)
    ssh = GerritSSH(target, command_timeout=30)
    try:
        version = ssh.run(["gerrit", "version"])
    except GerritHostKeyError as e:
        yield ok("gerrit", f"{where} reachable")
        yield fail("gerrit host key", f"{e} (known_hosts: {g.known_hosts or '~/.ssh/known_hosts'};"
                   f" add it with: ssh-keyscan -p {g.port} {g.server})")
        return
    except GerritAuthError as e:
        yield ok("gerrit", f"{where} reachable")
        yield ok("gerrit host key", "known")
        yield fail("gerrit login", str(e))
        return
    except GerritError as e:
        yield fail("gerrit", str(e))
        return
    yield ok("gerrit", f"{where} reachable")
    try:
        if g.host_key_checking:
            yield ok("gerrit host key", f"known ({g.known_hosts or '~/.ssh/known_hosts'})")
        else:
            yield warn("gerrit host key", "not checked (gerrit.host_key_checking: false)")
        yield ok("gerrit login", f"{g.user} logged in ({version.stdout.strip() or 'version ?'})")
        yield _stream_events(ssh, g.user)
        if layout is not None:
            yield from _projects_and_labels(ssh, layout)
    finally:
        ssh.close()


def _stream_events(ssh: GerritSSH, user: str, wait: float = 2.0) -> Check:
    """Gerrit refuses stream-events at once without the capability; a stream
    that is still open after ``wait`` seconds is allowed."""
    try:
        chan = ssh.open_channel()
    except GerritError as e:
        return fail("gerrit stream-events", str(e))
    try:
        chan.exec_command(command_line(["gerrit", "stream-events"]))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not chan.exit_status_ready():
            time.sleep(0.05)
        if chan.exit_status_ready():
            err = b""
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(4096)
            why = err.decode("utf-8", "replace").strip().splitlines()
            return fail("gerrit stream-events", f"{user} may not stream events: "
                        f"{why[0] if why else 'exit status ' + str(chan.recv_exit_status())} "
                        "(grant the 'Stream Events' capability)")
        return ok("gerrit stream-events", f"{user} may stream events")
    finally:
        chan.close()


def _projects_and_labels(ssh: GerritSSH, layout: Layout) -> Iterator[Check]:
    try:
        res = ssh.run(["gerrit", "ls-projects", "--format", "JSON"])
    except GerritError as e:
        yield fail("gerrit projects", str(e))
        return
    try:
        visible = set(json.loads(res.stdout or "{}")) if res.ok else set()
    except ValueError:
        visible = set()
    if not res.ok:
        yield fail("gerrit projects", f"ls-projects failed: {res.error_text(200)}")
        return
    wanted = sorted(layout.projects)
    missing = [p for p in wanted if p not in visible]
    if missing:
        yield fail("gerrit projects", f"{len(missing)} of {len(wanted)} layout projects not "
                   f"visible to the account: {', '.join(missing[:5])}"
                   f"{' ...' if len(missing) > 5 else ''}")
    else:
        yield ok("gerrit projects", f"all {len(wanted)} layout projects visible")
    labels = voted_labels(layout)
    if not labels:
        return
    absent: dict[str, list[str]] = {}
    seen = 0
    for project in (p for p in wanted if p in visible):
        try:
            q = ssh.run(["gerrit", "query", "--format=JSON", "--submit-records",
                         f"project:{project}", "limit:1"])
        except GerritError as e:
            yield fail("gerrit labels", str(e))
            return
        rows = [json.loads(line) for line in q.stdout.splitlines() if line.strip()]
        records = [r for row in rows if row.get("type") != "stats"
                   for r in row.get("submitRecords") or [] if r.get("labels")]
        if not records:
            continue  # no open change to read the project's labels from
        seen += 1
        have = {lb.get("label") for r in records for lb in r["labels"]}
        for label in sorted(labels - have):
            absent.setdefault(label, []).append(project)
    if absent:
        yield fail("gerrit labels", "; ".join(
            f"{label} (voted on by the pipelines) is not a label of {', '.join(ps[:3])}"
            for label, ps in absent.items()))
    elif seen:
        yield ok("gerrit labels", f"{', '.join(sorted(labels))} present on the {seen} "
                 "project(s) with an open change")
    else:
        yield warn("gerrit labels", f"{', '.join(sorted(labels))}: not checked (no open change "
                   "in any layout project to read the labels from)")
