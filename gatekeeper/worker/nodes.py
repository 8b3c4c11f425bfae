"""A node claimer over a fixed list of machines (bare metal, static VMs, local sshd nodes).

Implements ``gatekeeper.interfaces.NodeClaimer``. The pool service's Gearman
claimer implements the same interface, so the executor does not know which
one it has. Static nodes are never deleted: "used" returns the node to the
free list (a site resets it between builds, e.g. LVM snapshot + kexec),
"hold" keeps it out of rotation until the hold expires or an operator
releases it. With ``records`` (the pool's database, noderecords.py) every
claim, release and hold is written there, where ``gatekeeper nodes`` shows
them and an operator holds or releases a node; holds survive a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gatekeeper.interfaces import NodeClaimError, NodeLease
from gatekeeper.model.states import NodeState
from gatekeeper.nodes.holdcap import DEFAULT_MAX_HELD, hold_refusal
from gatekeeper.worker.noderecords import FOREVER, WorkerNodeRecords

__all__ = ["NodeClaimError", "StaticNode", "StaticNodeClaimer"]

log = logging.getLogger("gatekeeper.worker.nodes")


@dataclass(frozen=True)
class StaticNode:
    """A machine of ``worker.nodes`` (the config builds these), handed out by label."""

    name: str
    host: str
    labels: tuple[str, ...]
    port: int = 22
    username: str = "gatekeeper"
    private_key: str = field(repr=False, default="")  # path to the key file
    provider: str = "static"
    host_key: str | None = None  # "ssh-ed25519 AAAA..."; None = unknown (warned about)
    workdir: str = "workspace"  # relative paths are relative to the user's home

    def lease(self) -> NodeLease:
        return NodeLease(node_id=self.name, label="", host=self.host, port=self.port,
                         username=self.username, private_key=self.private_key,
                         provider=self.provider, host_key=self.host_key,
                         extra={"workdir": self.workdir})


@dataclass
class _Slot:
    node: StaticNode
    build: str | None = None  # build uuid holding a claim
    held_until: float | None = None  # hold expiry (clock time)
    hold_reason: str = ""


class StaticNodeClaimer:
    """Hands out each node to at most one build at a time.

    ``clock`` measures hold expiry; waiting for a free node uses a condition
    variable with real time (``claim``'s ``timeout`` is in seconds)."""

    def __init__(self, nodes: Iterable[StaticNode],
                 clock: Callable[[], float] = time.time,
                 max_held: float = DEFAULT_MAX_HELD,
                 records: WorkerNodeRecords | None = None) -> None:
        self.max_held = max_held  # see gatekeeper.nodes.holdcap
        self._slots: dict[str, _Slot] = {}
        for n in nodes:
            if n.name in self._slots:
                raise ValueError(f"duplicate static node name {n.name!r}")
            self._slots[n.name] = _Slot(n)
        self._clock = clock
        self._cond = threading.Condition()
        self._records = records
        if records is not None:
            kept = records.register((s.node for s in self._slots.values()), clock())
            for name, (until, reason) in kept.items():
                self._slots[name].held_until, self._slots[name].hold_reason = until, reason
                log.info("node %s: still held (%s)", name, reason)

    def _write(self, slot: _Slot, state: NodeState) -> None:
        if self._records is not None:
            self._records.write(slot.node.name, state, self._clock(), build=slot.build or "",
                                hold_until=slot.held_until, hold_reason=slot.hold_reason)

    def _sync(self) -> None:
        """Take an operator's holds and releases from the records."""
        held = self._records.holds() if self._records is not None else None
        if held is None:
            return
        for name, s in self._slots.items():
            if name in held and s.held_until is None and s.build is None:
                s.held_until, s.hold_reason = held[name]
                log.info("node %s held by an operator: %s", name, s.hold_reason)
            elif name not in held and s.held_until is not None:
                log.info("node %s released by an operator (was: %s)", name, s.hold_reason)
                s.held_until, s.hold_reason = None, ""

    @property
    def labels(self) -> frozenset[str]:
        """Every label some node of this claimer carries."""
        return frozenset(label for s in self._slots.values() for label in s.node.labels)

    def _expire_holds(self) -> None:
        self._sync()
        now = self._clock()
        for s in self._slots.values():
            if s.held_until is not None and s.held_until <= now:
                log.info("node %s: hold expired (%s)", s.node.name, s.hold_reason)
                s.held_until, s.hold_reason = None, ""
                self._write(s, NodeState.READY)

    def _free(self, label: str) -> _Slot | None:
        for s in self._slots.values():
            if label in s.node.labels and s.build is None and s.held_until is None:
                return s
        return None

    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> NodeLease:
        if label not in self.labels:
            raise NodeClaimError(f"no static node has label {label!r}")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._expire_holds()
                slot = self._free(label)
                if slot is not None:
                    slot.build = build_uuid
                    self._write(slot, NodeState.IN_USE)
                    log.info("node %s claimed by build %s (label %s)",
                             slot.node.name, build_uuid, label)
                    lease = slot.node.lease()
                    return NodeLease(**{**lease.__dict__, "label": label})
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NodeClaimError(
                        f"no free node with label {label!r} within {timeout:g}s")
                # Wake up at least every few seconds to notice hold expiry.
                self._cond.wait(min(remaining, 5.0))

    def release(self, lease: NodeLease, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> None:
        if state not in (NodeState.USED, NodeState.HOLD):
            raise ValueError(f"release state must be 'used' or 'hold', not {state!r}")
        with self._cond:
            slot = self._slots.get(lease.node_id)
            if slot is None or slot.build is None:
                log.warning("release of node %s that is not claimed", lease.node_id)
                return
            build, slot.build = slot.build, None
            refused = self._hold_refusal(slot) if state == NodeState.HOLD else None
            if refused is not None:
                log.info("node %s not held: %s; released by build %s", lease.node_id,
                         refused, build)
            elif state == NodeState.HOLD and (hold_for is None or hold_for > 0):
                slot.held_until = (self._clock() + hold_for if hold_for is not None
                                   else FOREVER)
                slot.hold_reason = reason or f"build {build}"
                log.info("node %s held for %s: %s", lease.node_id,
                         "ever" if hold_for is None else f"{hold_for:g}s", slot.hold_reason)
                self._write(slot, NodeState.HOLD)
            else:
                log.info("node %s released by build %s", lease.node_id, build)
                self._write(slot, NodeState.READY)
            self._cond.notify_all()

    def _hold_refusal(self, slot: _Slot) -> str | None:
        self._expire_holds()
        for label in slot.node.labels:
            same = [s for s in self._slots.values() if label in s.node.labels]
            held = sum(1 for s in same if s.held_until is not None)
            why = hold_refusal(label, len(same), held, self.max_held)
            if why is not None:
                return why
        return None

    def unhold(self, node_name: str) -> bool:
        """Return a held node to service (operator action); False if it was not held."""
        with self._cond:
            slot = self._slots.get(node_name)
            if slot is None or slot.held_until is None:
                return False
            slot.held_until, slot.hold_reason = None, ""
            self._write(slot, NodeState.READY)
            self._cond.notify_all()
            return True

    def state(self) -> list[dict[str, object]]:
        """A snapshot for status pages and tests: one dict per node."""
        with self._cond:
            self._expire_holds()
            return [{"name": s.node.name, "labels": list(s.node.labels), "build": s.build,
                     "held_until": s.held_until, "hold_reason": s.hold_reason}
                    for s in self._slots.values()]
