"""``gatekeeper merger``: the speculative merger service.

Registers ``merger:merge`` and ``merger:update`` on Gearman, keeps clones
of the projects under --git-dir (fetched from --git-url-base, e.g.
``ssh://gatekeeper@127.0.0.1:29418/``), publishes results as
``refs/gatekeeper/...`` in bare repositories under --publish-root and
serves them with ``git daemon`` (loopback, port 9418 by default). The
merge result carries ZUUL_URL (``git://HOST:PORT``); the scheduler puts
it and ZUUL_REF in the build parameters and workers fetch ZUUL_REF from
``$ZUUL_URL/$ZUUL_PROJECT``. With --no-git-daemon, serve --publish-root yourself
and pass its base URL as --zuul-url."""

from __future__ import annotations

import argparse
import logging
import os

from gatekeeper.errors import UserError

HELP = "run the speculative merger (merger:merge, merger:update)"
log = logging.getLogger("gatekeeper.commands.merger")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config",
                        help="service config (gatekeeper.yaml): gearman, gerrit and merger "
                             "sections; with it, the options below (except --name) are "
                             "not used")
    parser.add_argument("--gearman-host", default="127.0.0.1")
    parser.add_argument("--gearman-port", type=int, default=4730)
    parser.add_argument("--git-url-base",
                        help="where projects are fetched from (ssh://user@host:29418/, a path, "
                             "file://...)")
    parser.add_argument("--git-dir", default="/var/lib/gatekeeper/merger/git",
                        help="working clones")
    parser.add_argument("--publish-root", default="/var/lib/gatekeeper/merger/publish",
                        help="bare repositories workers fetch speculative refs from")
    parser.add_argument("--user-name", default="Gatekeeper", help="committer name of merges")
    parser.add_argument("--user-email", default="gatekeeper@localhost")
    parser.add_argument("--ssh-key", help="private key for ssh:// fetches (path)")
    parser.add_argument("--known-hosts", help="known_hosts file to verify the Gerrit host key "
                             "(default: pin it on first use)")
    parser.add_argument("--git-daemon-host", default="127.0.0.1")
    parser.add_argument("--git-daemon-port", type=int, default=9418)
    parser.add_argument("--no-git-daemon", action="store_true",
                        help="do not run git daemon (then --zuul-url is required)")
    parser.add_argument("--zuul-url", help="ZUUL_URL base reported to workers "
                                           "(default: the git daemon's git://HOST:PORT)")
    parser.add_argument("--name", help="worker name on Gearman (merger-HOSTNAME)")
    parser.add_argument("--keep-refs", type=int, default=1000,
                        help="speculative refs kept per project")
    parser.add_argument("--max-ref-age", type=float, default=72.0,
                        help="hours after which speculative refs are pruned")


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "debug", False):
        logging.getLogger("gear").setLevel(logging.WARNING)  # gear logs every packet at INFO
    from gatekeeper.commands._service import wait_for_signal
    from gatekeeper.merger.gitdaemon import GitDaemon
    from gatekeeper.merger.merger import Merger
    from gatekeeper.merger.service import MergerService

    if args.config:
        return _run_from_config(args)
    if not args.git_url_base:
        raise UserError("merger: give -c CONFIG or --git-url-base")
    if args.no_git_daemon and not args.zuul_url:
        raise UserError("merger: --no-git-daemon needs --zuul-url (where workers fetch from)")
    for opt in ("ssh_key", "known_hosts"):
        path = getattr(args, opt)
        if path and not os.path.isfile(path):
            raise UserError(f"merger: --{opt.replace('_', '-')} {path}: no such file")
    for opt in ("git_dir", "publish_root"):
        try:
            os.makedirs(getattr(args, opt), exist_ok=True)
        except OSError as e:
            raise UserError(f"merger: --{opt.replace('_', '-')}: {e}") from e
    merger = Merger(args.git_dir, args.git_url_base, args.publish_root, args.user_name,
                    args.user_email, private_key=args.ssh_key, known_hosts=args.known_hosts,
                    keep_refs=args.keep_refs, max_ref_age=args.max_ref_age * 3600)
    daemon = None
    if not args.no_git_daemon:
        daemon = GitDaemon(args.publish_root, args.git_daemon_host, args.git_daemon_port)
        try:
            daemon.start()
        except RuntimeError as e:
            raise UserError(f"merger: git daemon on {args.git_daemon_host}:"
                            f"{args.git_daemon_port}: {e}") from e
    zuul_url = args.zuul_url or (daemon.url if daemon else None)
    service = MergerService(merger, args.gearman_host, args.gearman_port, zuul_url,
                            name=args.name)
    try:
        service.start()
        return wait_for_signal()
    finally:
        service.stop()
        if daemon is not None:
            daemon.stop()


def _run_from_config(args: argparse.Namespace) -> int:
    from gatekeeper.commands._service import wait_for_signal
    from gatekeeper.config import load_config
    from gatekeeper.services.merger import MergerProcess

    proc = MergerProcess(load_config(args.config), name=args.name)
    try:
        proc.start()
        return wait_for_signal()
    finally:
        proc.stop()
