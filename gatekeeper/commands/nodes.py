"""``gatekeeper nodes -c CONFIG list|hold|delete``: operate on pool nodes.

Works on the pool's database directly (the same one the pool service uses),
so it works whether or not the service is running; the service acts on the
change at its next pass. ``delete`` retires a node: a cloud node is
deleted, a static host is reset (also the way to return a failed static
host to service after fixing it). A node in use is only deleted with
``--force``. A worker's own static nodes (``worker.nodes``) are listed too,
named ``WORKER/NAME`` (the worker records them, gatekeeper/worker/noderecords.py):
``hold`` holds one, ``delete`` releases a held one back to service; the
worker acts on it at its next claim or release (within seconds)."""

from __future__ import annotations

import argparse
import json
import time

from gatekeeper.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="list nodes (not deleted ones unless --all)")
    ls.add_argument("--state", action="append", help="only nodes in this state (repeatable)")
    ls.add_argument("--label")
    ls.add_argument("--all", action="store_true", help="include deleted nodes")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    hold = sub.add_parser("hold", help="keep a node for debugging")
    hold.add_argument("node_id", type=_node_id, help="ID, or WORKER/NAME of a worker's node")
    hold.add_argument("--for", dest="hold_for", type=float, default=None,
                      help="seconds (default: until deleted)")
    hold.add_argument("--reason", default="held by operator")
    delete = sub.add_parser("delete", help="delete (cloud) or reset (static) a node; "
                            "release a worker's held node")
    delete.add_argument("node_id", type=_node_id, help="ID, or WORKER/NAME of a worker's node")
    delete.add_argument("--force", action="store_true", help="even if a build is using it")


def _node_id(text: str) -> int | str:
    if "/" in text:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a node ID or WORKER/NAME: {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands.pool import open_store
    from gatekeeper.model.states import NodeState
    from gatekeeper.nodes.db import LIVE_STATES
    from gatekeeper.worker.noderecords import list_worker_nodes

    store = open_store(args.config)
    now = time.time()
    if args.action == "list":
        states = args.state or (None if args.all else list(LIVE_STATES))
        nodes = store.list_nodes(states, label=args.label)
        mine = [w for w in list_worker_nodes(store.engine)
                if (states is None or w.state in states)
                and (args.label is None or args.label in w.labels)]
        if args.json:
            for n in nodes:
                print(json.dumps({"id": n.id, "label": n.label, "provider": n.provider,
                                  "state": n.state, "host": n.host, "port": n.port,
                                  "external_id": n.external_id, "build": n.build,
                                  "age": round(now - n.state_time), "hold_until": n.hold_until,
                                  "hold_reason": n.hold_reason}, sort_keys=True))
            for w in mine:
                print(json.dumps({"id": w.ident, "label": ",".join(w.labels),
                                  "provider": f"worker:{w.worker}", "state": w.state,
                                  "host": w.host, "port": w.port, "external_id": None,
                                  "build": w.build, "age": round(now - w.state_time),
                                  "hold_until": w.hold_until, "hold_reason": w.hold_reason},
                                 sort_keys=True))
            return 0
        print(f"{'ID':>6} {'LABEL':<14} {'PROVIDER':<12} {'STATE':<9} {'AGE':>7}  "
              f"{'ADDRESS':<21} {'BUILD':<12} COMMENT")
        for n in nodes:
            addr = f"{n.host}:{n.port}" if n.host else "-"
            age = _age(now - n.state_time)
            comment = n.hold_reason if n.state == NodeState.HOLD else (n.static_name or "")
            print(f"{n.id:>6} {n.label:<14} {n.provider:<12} {n.state:<9} {age:>7}  "
                  f"{addr:<21} {n.build[:12]:<12} {comment}")
        for w in mine:
            comment = w.hold_reason if w.state == NodeState.HOLD else ""
            print(f"{w.ident:>6} {','.join(w.labels):<14} {'worker:' + w.worker:<12} "
                  f"{w.state:<9} {_age(now - w.state_time):>7}  {w.host + ':' + str(w.port):<21} "
                  f"{w.build[:12]:<12} {comment}")
        return 0
    if isinstance(args.node_id, str):
        return _worker_node(store.engine, args, now)
    node = store.get_node(args.node_id)
    if node is None or node.state == NodeState.DELETED:
        raise UserError(f"nodes: no node {args.node_id}")
    if args.action == "hold":
        until = None if args.hold_for is None else now + args.hold_for
        if not store.transition(node.id, [NodeState.READY, NodeState.HOLD, NodeState.USED, NodeState.FAILED], NodeState.HOLD, now,
                                hold_until=until, hold_reason=args.reason):
            raise UserError(f"nodes: node {node.id} is {node.state}; only ready, used, "
                            "failed or held nodes can be held")
        print(f"node {node.id} held" + (f" for {args.hold_for:g}s" if until else ""))
        return 0
    allowed = [NodeState.READY, NodeState.HOLD, NodeState.USED, NodeState.FAILED] + ([NodeState.IN_USE] if args.force else [])
    if not store.transition(node.id, allowed, NodeState.USED, now, hold_until=None,
                            hold_reason="deleted by operator"):
        hint = " (use --force)" if node.state == NodeState.IN_USE else ""
        raise UserError(f"nodes: node {node.id} is {node.state}{hint}")
    print(f"node {node.id} marked for deletion")
    return 0


def _worker_node(engine, args: argparse.Namespace, now: float) -> int:
    """hold / delete (release) of a worker's static node, through its record."""
    from gatekeeper.model.states import NodeState
    from gatekeeper.worker.noderecords import get_worker_node, operator_transition

    w = get_worker_node(engine, args.node_id)
    if w is None:
        raise UserError(f"nodes: no worker node {args.node_id}")
    if args.action == "hold":
        until = None if args.hold_for is None else now + args.hold_for
        if not operator_transition(engine, w.ident, [NodeState.READY, NodeState.HOLD],
                                   NodeState.HOLD, now, hold_until=until,
                                   hold_reason=args.reason):
            raise UserError(f"nodes: node {w.ident} is {w.state}; only ready or held worker "
                            "nodes can be held")
        print(f"node {w.ident} held" + (f" for {args.hold_for:g}s" if until else "")
              + f" (worker {w.worker} takes it at its next claim)")
        return 0
    if not operator_transition(engine, w.ident, [NodeState.HOLD], NodeState.READY, now):
        raise UserError(f"nodes: node {w.ident} is {w.state}; a worker's node is only "
                        "released from a hold (the worker returns it after each build)")
    print(f"node {w.ident} released (worker {w.worker} takes it back at its next claim)")
    return 0


def _age(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
