"""Every check ``gatekeeper doctor`` runs, in order. Each yields Checks; a
check that cannot run because an earlier one failed says so."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gatekeeper.doctor.gerrit import check_gerrit
from gatekeeper.doctor.result import Check, Verdict, fail, ok, warn
from gatekeeper.errors import UserError
from gatekeeper.layout.model import Layout


def run_checks(config_path: str, known_hosts: str | None = None,
               timeout: float = 10.0) -> Iterator[Check]:
    from gatekeeper.config import load_config

    try:
        cfg = load_config(config_path)
    except UserError as e:
        yield fail("config", f"{len(e.messages)} problem(s); first: {e.messages[0]}")
        return
    yield ok("config", f"{cfg.path} valid")
    layout = None
    for check in check_layouts(cfg):
        if isinstance(check, Layout):
            layout = check
        else:
            yield check
    yield from check_files(cfg)
    yield from check_gerrit(cfg, layout, timeout)
    yield from check_gearman(cfg, layout, timeout)
    yield from check_nodes(cfg, known_hosts, timeout)
    yield check_database(cfg)
    yield from check_logs(cfg, timeout)


def check_layouts(cfg: Any) -> Iterator[Check | Layout]:
    from gatekeeper.commands.validate import site_facts
    from gatekeeper.layout.loader import load_layout

    problems: list[str] = []
    if cfg.pool:
        from gatekeeper.nodes.config import validate_pool

        problems += validate_pool(cfg.pool, cfg.path)
    try:
        layout = load_layout(list(cfg.scheduler.layout), cfg.known_labels(), site_facts(cfg))
    except UserError as e:
        problems += e.messages
        layout = None
    if problems:
        yield fail("layouts", f"{len(problems)} problem(s); first: {problems[0]} "
                   "(all of them: gatekeeper validate --config ...)")
    if layout is not None:
        if not problems:
            yield ok("layouts", f"{len(layout.pipelines)} pipelines, {len(layout.jobs)} jobs, "
                     f"{len(layout.projects)} projects")
        yield layout


def check_files(cfg: Any) -> Iterator[Check]:
    """Files the services read: they exist here (this host's share of the site)."""
    wk = cfg.worker
    files = [("gerrit.private_key", cfg.gerrit.private_key)]
    if cfg.gerrit.known_hosts and cfg.gerrit.host_key_checking:
        files.append(("gerrit.known_hosts", cfg.gerrit.known_hosts))
    files += [(f"worker.nodes.{n.name}.private_key", n.private_key) for n in wk.nodes]
    files += [(f"worker.{k}", v) for k, v in (("git_private_key", wk.git_private_key),
                                                ("git_known_hosts", wk.git_known_hosts),
                                                ("jobs_dir", wk.jobs_dir)) if v]
    missing = [f"{key}: {path}" for key, path in files if not os.path.exists(path)]
    if missing:
        yield fail("files", "missing: " + "; ".join(missing))
    else:
        yield ok("files", f"{len(files)} key/known_hosts/script paths present")


def check_gearman(cfg: Any, layout: Layout | None, timeout: float) -> Iterator[Check]:
    from gatekeeper.gearman import admin
    from gatekeeper.gearman.protocol import MERGE_FUNCTION, build_function, node_claim_function

    g = cfg.gearman
    try:
        status = admin.status(admin.AdminTarget(g.server, g.port, g.ssl_key, g.ssl_cert,
                                                g.ssl_ca), timeout=timeout)
    except admin.AdminError as e:
        yield fail("gearman", f"{g.server}:{g.port} unreachable: {e}")
        return
    served = {name for name, st in status.items() if st.workers > 0}
    yield ok("gearman", f"{g.server}:{g.port} reachable, {len(served)} functions with workers")
    yield (ok("gearman merger", f"{MERGE_FUNCTION} registered") if MERGE_FUNCTION in served
           else fail("gearman merger", f"no merger registered ({MERGE_FUNCTION}): start "
                     "gatekeeper merger"))
    if layout is None:
        return
    jobs = [j for j in layout.jobs.values() if j.label]
    unserved = [j.name for j in jobs if build_function(j.name) not in served
                and build_function(j.name, j.label) not in served]
    if unserved:
        yield fail("gearman workers", f"{len(unserved)} of {len(jobs)} jobs have no worker "
                   f"registered: {', '.join(unserved[:5])}{' ...' if len(unserved) > 5 else ''}")
    else:
        yield ok("gearman workers", f"a worker for each of the {len(jobs)} jobs")
    if not cfg.worker.nodes:
        labels = sorted({j.label for j in jobs if j.label})
        absent = [lb for lb in labels if node_claim_function(lb) not in served]
        yield (fail("gearman pool", f"no pool serves {', '.join(absent)} (node:claim:LABEL): "
                    "start gatekeeper pool") if absent
               else ok("gearman pool", f"the pool serves {', '.join(labels) or 'no label'}"))


def check_nodes(cfg: Any, known_hosts: str | None, timeout: float) -> Iterator[Check]:
    from gatekeeper.ssh import SshError
    from gatekeeper.worker.ssh import SshNode
    from gatekeeper.worker.wiring import static_nodes

    if not cfg.worker.nodes:
        return
    try:
        nodes = static_nodes(cfg, known_hosts)
    except UserError as e:
        yield fail("nodes", e.messages[0])
        return
    for n in nodes:
        name = f"node {n.name}"
        if not n.host_key:
            yield warn(name, f"{n.host}:{n.port}: no host key pinned (host_key, or doctor/"
                       "worker --known-hosts): its identity is not verified")
            continue
        lease = n.lease()
        with tempfile.TemporaryDirectory(prefix="gk-doctor-") as tmp:
            try:
                node = SshNode(lease, Path(tmp), connect_timeout=timeout, multiplex=False)
                cp = node.run(["true"], timeout=timeout + 5)
            except (SshError, ValueError, OSError) as e:
                yield fail(name, f"{n.username}@{n.host}:{n.port}: {e}")
                continue
        if cp.returncode == 0:
            yield ok(name, f"{n.username}@{n.host}:{n.port} reachable, host key verified")
        else:
            yield fail(name, f"{n.username}@{n.host}:{n.port}: "
                       f"{(cp.stderr or '').strip()[-200:] or 'exit ' + str(cp.returncode)}")


def check_database(cfg: Any) -> Check:
    import sqlalchemy as sa

    from gatekeeper.store.db import create_engine, redact_url
    from gatekeeper.store.migrate import _checked_revision, head_revision

    url = cfg.database.url
    shown = redact_url(url)
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
        return warn("database", f"{shown} does not exist yet (the scheduler creates it)")
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                current = _checked_revision(conn, f"database {shown}")
        finally:
            engine.dispose()
    except UserError as e:
        return fail("database", e.messages[0])
    except sa.exc.SQLAlchemyError as e:
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        password = sa.engine.make_url(url).password
        if password:
            first = first.replace(str(password), "***")
        return fail("database", f"{shown}: {first}")
    head = head_revision()
    if current == head:
        return ok("database", f"{shown} reachable, schema at {head}")
    if current is None:
        return warn("database", f"{shown} reachable, empty (the scheduler creates the schema)")
    return warn("database", f"{shown} reachable, schema {current} (this release: {head}; the "
                "scheduler upgrades it at start)")


def check_logs(cfg: Any, timeout: float) -> Iterator[Check]:
    wk = cfg.worker
    name = f".gatekeeper-doctor-{uuid.uuid4().hex[:12]}.txt"
    probe = Path(wk.log_root) / name
    token = uuid.uuid4().hex
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
    except OSError as e:
        yield fail("log root", f"{wk.log_root} not writable: {e.strerror or e}")
        return
    try:
        yield ok("log root", f"{wk.log_root} writable")
        url = wk.log_url.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = r.read(1000).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, ValueError) as e:
            yield fail("log url", f"{url}: {getattr(e, 'reason', e)} (logs are not served "
                       "there; worker.log_url must serve worker.log_root)")
            return
        yield (ok("log url", f"{wk.log_url} serves {wk.log_root}") if token in body
               else fail("log url", f"{url} answers, but not with the file in {wk.log_root}"))
    finally:
        probe.unlink(missing_ok=True)


def verdict_of(checks: list[Check]) -> Verdict:
    if any(c.verdict is Verdict.FAIL for c in checks):
        return Verdict.FAIL
    return Verdict.WARN if any(c.verdict is Verdict.WARN for c in checks) else Verdict.OK
