"""``gatekeeper worker -c CONFIG``: run builds on nodes (the devstack-gate worker).

Reads the service config: ``gearman`` (where to register), ``worker``
(jobs_root, log_root, log_url, hostname, static ``nodes``) and
``scheduler.layout`` (which jobs exist and their labels). Registers
``build:JOB`` and ``build:JOB:LABEL`` for every job whose label its
claimer can serve (``--job`` narrows that), and ``stop:<name>``.

Nodes come from ``worker.nodes`` (static) or, with none configured, from
the pool service over Gearman (``node:claim:LABEL``). Static nodes' host
keys are pinned from ``--known-hosts`` (``ssh-keyscan -p PORT HOST``);
a node with no known key is used unverified, with a warning.

SIGHUP re-reads the layout files and registers the functions of new jobs;
functions of removed jobs are unregistered once no build of them runs here.
A bad layout is logged and the worker keeps its functions."""

from __future__ import annotations

import argparse
import logging

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
                             "(default: worker.git_base_url, else ZUUL_URL)")
    parser.add_argument("--git-cache", metavar="DIR",
                        help="bare copies of the projects, updated per build "
                             "(default: JOBS_ROOT/.git-cache; '' disables)")
    parser.add_argument("--hold-hours", type=float, default=None,
                        help="how long the node of a failed build is held (worker.hold_hours, 24)")
    parser.add_argument("--claim-timeout", type=float, default=3600.0,
                        help="seconds a build waits for a node (3600)")
    parser.add_argument("--default-timeout", type=float, default=3 * 3600.0,
                        help="timeout of jobs that set none, in seconds (10800)")
    parser.add_argument("--finish-on-stop", action="store_true",
                        help="on SIGTERM let running builds finish (default: abort them)")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import serve
    from gatekeeper.config import load_config
    from gatekeeper.worker.wiring import WorkerOptions

    cfg = load_config(args.config)
    options = WorkerOptions(
        name=args.name, executors=args.executors, jobs=args.job, known_hosts=args.known_hosts,
        git_base_url=args.git_base_url, git_cache=args.git_cache,
        hold_hours=args.hold_hours,
        claim_timeout=args.claim_timeout, default_timeout=args.default_timeout)
    from gatekeeper.services.worker import WorkerProcess

    return serve(lambda on_fatal: WorkerProcess(cfg, options, abort=not args.finish_on_stop))
