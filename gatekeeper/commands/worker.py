"""``gatekeeper worker -c CONFIG``: run builds on nodes (the devstack-gate worker).

Reads the service config: ``gearman`` (where to register), ``worker``
(jobs_root, log_root, log_url, hostname, static ``nodes``) and
``scheduler.layout`` (which jobs exist and their labels). Registers
``build:JOB`` and ``build:JOB:LABEL`` for every job whose label its
claimer can serve (``--job`` narrows that), and ``stop:<name>``.

Nodes come from ``worker.nodes`` (static) or, with none configured, from
the pool service over Gearman (``node:claim:LABEL``). Static nodes' host
keys are pinned from ``--known-hosts`` (``ssh-keyscan -p PORT HOST``);
a node with no known key is used unverified, with a warning."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from gatekeeper.errors import UserError

HELP = "run builds on nodes (claims, workspace, rsync, ssh, logs)"
log = logging.getLogger("gatekeeper.commands.worker")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, help="service config (gatekeeper.yaml)")
    parser.add_argument("--name", help="worker name on Gearman (default: worker.hostname)")
    parser.add_argument("--executors", type=int,
                        help="builds run at once (default: number of static nodes, or 2)")
    parser.add_argument("--job", action="append", default=None, metavar="NAME",
                        help="serve only this job (repeatable; default: every job of the layout "
                             "with a label the worker can get nodes for)")
    parser.add_argument("--known-hosts", help="known_hosts file with the static nodes' host keys")
    parser.add_argument("--git-base-url",
                        help="where projects outside the change set are cloned from "
                             "(default: ZUUL_URL, the merger's git server)")
    parser.add_argument("--hold-hours", type=float, default=24.0,
                        help="how long the node of a failed build is held (24)")
    parser.add_argument("--claim-timeout", type=float, default=3600.0,
                        help="seconds a build waits for a node (3600)")
    parser.add_argument("--default-timeout", type=float, default=3 * 3600.0,
                        help="timeout of jobs that set none, in seconds (10800)")
    parser.add_argument("--finish-on-stop", action="store_true",
                        help="on SIGTERM let running builds finish (default: abort them)")


def _static_nodes(cfg: Any, known_hosts: str | None) -> list[Any]:
    from gatekeeper.worker.nodes import StaticNode
    from gatekeeper.worker.ssh import host_key_from_known_hosts

    text = ""
    if known_hosts:
        try:
            with open(known_hosts, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UserError(f"worker: --known-hosts {known_hosts}: {e.strerror}") from e
    out = []
    for n in cfg.worker.nodes:
        host_key = getattr(n, "host_key", None) or host_key_from_known_hosts(text, n.host, n.port)
        if not os.path.isfile(n.private_key):
            raise UserError(f"{cfg.path}: worker.nodes.{n.name}.private_key: "
                            f"{n.private_key}: no such file")
        out.append(StaticNode(name=n.name, host=n.host, port=n.port, labels=tuple(n.labels),
                              username=n.username, private_key=n.private_key,
                              provider=n.provider, host_key=host_key,
                              workdir=getattr(n, "workdir", None) or "workspace"))
    return out


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import wait_for_signal
    from gatekeeper.config import load_config, pool_labels
    from gatekeeper.layout.loader import load_layout
    from gatekeeper.worker.executor import BuildExecutor, ExecutorSettings
    from gatekeeper.worker.nodes import StaticNodeClaimer
    from gatekeeper.worker.service import GearServer, WorkerService, build_functions
    from gatekeeper.worker.workspace import WorkspaceBuilder

    cfg = load_config(args.config)
    wk = cfg.worker
    name = args.name or wk.hostname
    claimer: Any
    close_claimer = None
    if wk.nodes:
        claimer = StaticNodeClaimer(_static_nodes(cfg, args.known_hosts))
        labels = set(claimer.labels)
    else:
        from gatekeeper.nodes.claimer import GearmanNodeClaimer

        labels = pool_labels(cfg.pool)
        if not labels:
            raise UserError(f"{cfg.path}: worker: no worker.nodes and no pool labels: "
                            "this worker could never get a node")
        claimer = GearmanNodeClaimer(cfg.gearman.server, cfg.gearman.port,
                                     client_id=f"{name}-claimer")
        close_claimer = claimer.close
    layout = load_layout([cfg.resolve(p) for p in cfg.scheduler.layout], cfg.known_labels())
    if args.job:
        unknown = sorted(set(args.job) - set(layout.jobs))
        if unknown:
            raise UserError(f"worker: --job {', '.join(unknown)}: not in the layout")
    functions = build_functions(((j.name, j.label) for j in layout.jobs.values()), labels,
                                only=args.job)
    if not functions:
        raise UserError(f"worker: no job of the layout has a label this worker serves "
                        f"({', '.join(sorted(labels)) or 'none'})")
    executors = args.executors or (len(wk.nodes) if wk.nodes else 2)
    if executors < 1:
        raise UserError("worker: --executors must be at least 1")
    log_url = wk.log_url or f"http://{cfg.web.host}:{cfg.web.port}/logs"
    for d in (wk.jobs_root, wk.log_root):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise UserError(f"{cfg.path}: worker: cannot create {d}: {e.strerror}") from e
    settings = ExecutorSettings(worker_name=name, jobs_root=Path(wk.jobs_root),
                                log_root=Path(wk.log_root), log_url=log_url,
                                claim_timeout=args.claim_timeout,
                                default_timeout=args.default_timeout,
                                hold_for=args.hold_hours * 3600)
    executor = BuildExecutor(settings, claimer, WorkspaceBuilder(git_base_url=args.git_base_url))
    g = cfg.gearman
    service = WorkerService(executor, functions,
                            [GearServer(g.server, g.port, g.ssl_key, g.ssl_cert, g.ssl_ca)],
                            max_builds=executors)
    try:
        service.start(connect_timeout=None)
        return wait_for_signal()
    finally:
        service.stop(abort=not args.finish_on_stop)
        if close_claimer is not None:
            close_claimer()
