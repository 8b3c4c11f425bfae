"""Build a ready-to-start WorkerService from the service config.

Shared by ``gatekeeper worker`` and the all-in-one command. Errors a user
can cause (missing key file, unknown job, no servable job) are UserErrors."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatekeeper.errors import UserError
from gatekeeper.layout.model import Layout
from gatekeeper.worker.executor import BuildExecutor, ExecutorSettings
from gatekeeper.worker.noderecords import WorkerNodeRecords
from gatekeeper.worker.nodes import StaticNode, StaticNodeClaimer
from gatekeeper.worker.service import GearServer, WorkerService, build_functions
from gatekeeper.worker.ssh import host_key_from_known_hosts
from gatekeeper.worker.workspace import WorkspaceBuilder

log = logging.getLogger("gatekeeper.worker.wiring")
_reload_lock = threading.Lock()


@dataclass
class WorkerOptions:
    """What the command line adds to the config."""

    name: str | None = None  # default: worker.hostname
    executors: int | None = None  # default: number of static nodes, or 2 with the pool
    jobs: list[str] | None = None  # serve only these jobs
    known_hosts: str | None = None  # known_hosts file pinning static nodes' host keys
    git_base_url: str | None = None  # default: ZUUL_URL
    git_cache: str | None = None  # default: JOBS_ROOT/.git-cache; "" = no cache
    hold_hours: float | None = None  # default: worker.hold_hours (24)
    claim_timeout: float = 3600.0
    default_timeout: float = 3 * 3600.0


def static_nodes(cfg: Any, known_hosts: str | None) -> list[StaticNode]:
    text = ""
    if known_hosts:
        try:
            with open(known_hosts, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UserError(f"worker: --known-hosts {known_hosts}: {e.strerror}") from e
    out = []
    for n in cfg.worker.nodes:
        if not os.path.isfile(n.private_key):
            raise UserError(f"{cfg.path}: worker.nodes.{n.name}.private_key: "
                            f"{n.private_key}: no such file")
        host_key = n.host_key or host_key_from_known_hosts(text, n.host, n.port)
        out.append(dataclasses.replace(n, host_key=host_key))
    return out


def node_records(cfg: Any, worker: str) -> WorkerNodeRecords | None:
    """Where this worker records its static nodes' claims and holds (the
    pool's database, for ``gatekeeper nodes``); None, and a warning, if it
    cannot be opened: the holds then live in this process only."""
    from gatekeeper.commands.pool import database_url
    from gatekeeper.nodes.db import PoolStore
    from gatekeeper.store.db import create_engine

    try:
        store = PoolStore(create_engine(database_url(cfg)))
    except UserError as e:
        log.warning("worker %s: static node holds are kept in memory only (gatekeeper nodes "
                    "does not show them): %s", worker, e.messages[0])
        return None
    return WorkerNodeRecords(store.engine, worker)


def layout_functions(cfg: Any, labels: set[str], only: list[str] | None,
                     layout: Layout | None = None) -> list[str]:
    """The ``build:`` functions a worker serving ``labels`` registers for
    ``layout`` (default: load the config's layout files); UserError if none."""
    if layout is None:
        from gatekeeper.layout.loader import load_layout

        layout = load_layout([cfg.resolve(p) for p in cfg.scheduler.layout], cfg.known_labels())
    if only:
        unknown = sorted(set(only) - set(layout.jobs))
        if unknown:
            raise UserError(f"worker: --job {', '.join(unknown)}: not in the layout")
    functions = build_functions(((j.name, j.label) for j in layout.jobs.values()), labels,
                                only=only)
    if not functions:
        raise UserError(f"worker: no job of the layout has a label this worker serves "
                        f"({', '.join(sorted(labels)) or 'none'})")
    return functions


def reload_layout(cfg: Any, service: WorkerService, options: WorkerOptions | None = None
                  ) -> bool:
    """SIGHUP: re-read the layout files and re-register ``service``'s functions
    (same label rules as at start). A bad layout is logged and changes nothing.
    Call it from a thread of its own, not from the signal handler: the main
    thread may hold a lock it needs (gear's, the service's)."""
    from gatekeeper.config import pool_labels

    opts = options or WorkerOptions()
    labels = ({lb for n in cfg.worker.nodes for lb in n.labels} if cfg.worker.nodes
              else pool_labels(cfg.pool))
    with _reload_lock:  # two quick SIGHUPs: one after the other
        try:
            functions = layout_functions(cfg, labels, opts.jobs)
        except UserError as e:
            log.error("layout reload rejected; worker %s keeps its %d functions:\n%s",
                      service.name, len(service.functions), "\n".join(e.messages))
            return False
        try:
            service.reload(functions)
        except Exception:
            log.exception("worker %s: re-registering functions failed", service.name)
            return False
    return True


def reload_layout_in_background(cfg: Any, service: WorkerService,
                                options: WorkerOptions | None = None) -> threading.Thread:
    """``reload_layout`` in a new thread (what a SIGHUP handler calls)."""
    t = threading.Thread(target=reload_layout, args=(cfg, service, options),
                         name="worker-reload", daemon=True)
    t.start()
    return t


def worker_from_config(cfg: Any, options: WorkerOptions | None = None,
                       layout: Layout | None = None) -> WorkerService:
    """A WorkerService (not started) for ``cfg`` (a gatekeeper.config.Config)."""
    from gatekeeper.config import pool_labels

    opts = options or WorkerOptions()
    wk = cfg.worker
    name = opts.name or wk.hostname
    static = (StaticNodeClaimer(static_nodes(cfg, opts.known_hosts), max_held=wk.max_held,
                                records=node_records(cfg, name))
              if wk.nodes else None)
    labels = set(static.labels) if static is not None else pool_labels(cfg.pool)
    if not labels:
        raise UserError(f"{cfg.path}: worker: no worker.nodes and no pool labels: "
                        "this worker could never get a node")
    functions = layout_functions(cfg, labels, opts.jobs, layout)
    executors = opts.executors or wk.executors or (len(wk.nodes) if wk.nodes else 2)
    if executors < 1:
        raise UserError("worker: --executors must be at least 1")
    for key, path in (("git_private_key", wk.git_private_key), ("git_known_hosts", wk.git_known_hosts),
                      ("jobs_dir", wk.jobs_dir)):
        if path and not os.path.exists(path):
            raise UserError(f"{cfg.path}: worker.{key}: {path}: no such file or directory")
    log_url = wk.log_url or f"http://{cfg.web.host}:{cfg.web.port}/logs"
    for d in (wk.jobs_root, wk.log_root):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise UserError(f"{cfg.path}: worker: cannot create {d}: {e.strerror}") from e
    settings = ExecutorSettings(worker_name=name, jobs_root=Path(wk.jobs_root),
                                log_root=Path(wk.log_root), log_url=log_url,
                                claim_timeout=opts.claim_timeout,
                                default_timeout=opts.default_timeout,
                                hold_for=(opts.hold_hours if opts.hold_hours is not None
                                          else wk.hold_hours) * 3600)
    claimer: Any = static
    on_stop = None
    if claimer is None:  # nodes come from the pool service, over Gearman
        import gear

        from gatekeeper.nodes.claimer import GearmanNodeClaimer

        try:
            g = cfg.gearman
            claimer = GearmanNodeClaimer(g.server, g.port, client_id=f"{name}-claimer",
                                         ssl_key=g.ssl_key, ssl_cert=g.ssl_cert,
                                         ssl_ca=g.ssl_ca)
        except gear.TimeoutError:
            raise UserError(f"worker: no Gearman server at {cfg.gearman.server}:"
                            f"{cfg.gearman.port} (needed to claim nodes from the pool)") from None
        on_stop = claimer.close
    cache = (Path(wk.jobs_root) / ".git-cache" if opts.git_cache is None
             else Path(opts.git_cache) if opts.git_cache else None)
    executor = BuildExecutor(settings, claimer,
                             WorkspaceBuilder(git_base_url=opts.git_base_url or wk.git_base_url,
                                              cache_dir=cache, jobs_dir=wk.jobs_dir,
                                              private_key=wk.git_private_key,
                                              known_hosts=wk.git_known_hosts))
    g = cfg.gearman
    return WorkerService(executor, functions,
                         [GearServer(g.server, g.port, g.ssl_key, g.ssl_cert, g.ssl_ca)],
                         max_builds=executors, on_stop=on_stop)
