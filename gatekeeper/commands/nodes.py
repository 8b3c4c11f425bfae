"""``gatekeeper nodes -c CONFIG list|hold|delete``: operate on pool nodes.

Works on the pool's database directly (the same one the pool service uses),
so it works whether or not the service is running; the service acts on the
change at its next pass. ``delete`` retires a node: a cloud node is
deleted, a static host is reset (also the way to return a failed static
host to service after fixing it). A node in use is only deleted with
``--force``."""

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
    hold.add_argument("node_id", type=int)
    hold.add_argument("--for", dest="hold_for", type=float, default=None,
                      help="seconds (default: until deleted)")
    hold.add_argument("--reason", default="held by operator")
    delete = sub.add_parser("delete", help="delete (cloud) or reset (static) a node")
    delete.add_argument("node_id", type=int)
    delete.add_argument("--force", action="store_true", help="even if a build is using it")


def run(args: argparse.Namespace) -> int:
    from gatekeeper.commands.pool import open_store
    from gatekeeper.model.states import NodeState
    from gatekeeper.nodes.db import LIVE_STATES

    store = open_store(args.config)
    now = time.time()
    if args.action == "list":
        states = args.state or (None if args.all else list(LIVE_STATES))
        nodes = store.list_nodes(states, label=args.label)
        if args.json:
            for n in nodes:
                print(json.dumps({"id": n.id, "label": n.label, "provider": n.provider,
                                  "state": n.state, "host": n.host, "port": n.port,
                                  "external_id": n.external_id, "build": n.build,
                                  "age": round(now - n.state_time), "hold_until": n.hold_until,
                                  "hold_reason": n.hold_reason}, sort_keys=True))
            return 0
        print(f"{'ID':>6} {'LABEL':<14} {'PROVIDER':<12} {'STATE':<9} {'AGE':>7}  "
              f"{'ADDRESS':<21} {'BUILD':<12} COMMENT")
        for n in nodes:
            addr = f"{n.host}:{n.port}" if n.host else "-"
            age = _age(now - n.state_time)
            comment = n.hold_reason if n.state == NodeState.HOLD else (n.static_name or "")
            print(f"{n.id:>6} {n.label:<14} {n.provider:<12} {n.state:<9} {age:>7}  "
                  f"{addr:<21} {n.build[:12]:<12} {comment}")
        return 0
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


def _age(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
