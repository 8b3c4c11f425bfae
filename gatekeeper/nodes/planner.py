"""The pool's decisions, as one pure function over a snapshot.

No I/O, no threads, no clock reads: the service builds a :class:`Snapshot`
(records from the database, pending claims, provider health, the time) and
carries out the :class:`Plan`. Same snapshot, same plan — which is what lets
the unit tests cover hundreds of situations in milliseconds.

Provider kinds: ``cloud`` providers (libcloud, local sshd) launch and delete
servers; ``static`` providers own a fixed set of hosts that are reset after
use instead of deleted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gatekeeper.model.states import ImageState, NodeState
from gatekeeper.nodes.db import Image, Node

CLOUD = "cloud"
STATIC = "static"


@dataclass(frozen=True)
class ProviderView:
    name: str
    kind: str = CLOUD
    max_servers: int = 10
    healthy: bool = True  # False while backing off after errors or a quota refusal
    images: tuple[str, ...] = ()  # image names this provider builds/boots
    needs_image_build: tuple[str, ...] = ()  # images built by snapshot (others boot base)


@dataclass(frozen=True)
class LabelView:
    name: str
    image: str
    min_ready: int = 0
    providers: tuple[str, ...] = ()  # empty = every provider offering the image


@dataclass(frozen=True)
class Timeouts:
    building: float = 3600.0  # a launch thread running longer than this is stuck
    delete_retry: float = 60.0  # a failed delete is retried after this
    image_interval: float = 86400.0  # one image build per (image, provider) a day
    image_retry: float = 3600.0  # a failed image build is retried after this
    image_building: float = 3 * 3600.0
    # A claim nobody released (the worker died, the lease was lost): the
    # node is reclaimed after this. 0 disables.
    in_use: float = 2 * 86400.0


@dataclass(frozen=True)
class Snapshot:
    now: float
    nodes: tuple[Node, ...]
    images: tuple[Image, ...]
    providers: tuple[ProviderView, ...]
    labels: tuple[LabelView, ...]
    demand: Mapping[str, int] = field(default_factory=dict)  # pending claims per label
    busy_nodes: frozenset[int] = frozenset()  # nodes with an action running
    busy_images: frozenset[int] = frozenset()
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True)
class Launch:
    label: str
    provider: str
    image: str
    image_id: int | None  # the snapshot to boot (None: the provider's base image)


@dataclass(frozen=True)
class Plan:
    launches: tuple[Launch, ...] = ()
    deletes: tuple[int, ...] = ()  # node ids (cloud): delete the server
    resets: tuple[int, ...] = ()  # node ids (static): reset the host
    image_builds: tuple[tuple[str, str], ...] = ()  # (provider, image)
    image_deletes: tuple[int, ...] = ()  # image record ids
    reasons: Mapping[int, str] = field(default_factory=dict)  # node id -> why deleted/reset


def current_image(images: Iterable[Image], provider: str, image: str) -> Image | None:
    """The newest ready snapshot of ``image`` on ``provider``."""
    ready = [i for i in images if i.provider == provider and i.image == image
             and i.state == ImageState.READY]
    return max(ready, key=lambda i: (i.version, i.created), default=None)


def plan(snap: Snapshot) -> Plan:
    deletes, resets, reasons = _reap_nodes(snap)
    # Servers each provider has: every live node (including those being
    # deleted: the cloud still has them) and every image build's template.
    used: Counter[str] = Counter(n.provider for n in snap.nodes if n.state != NodeState.DELETED)
    used.update(i.provider for i in snap.images if i.state == ImageState.BUILDING)
    builds, image_deletes = _images(snap, used)
    used.update(p for p, _ in builds)
    launches = _launches(snap, set(deletes) | set(resets), used)
    return Plan(tuple(launches), tuple(deletes), tuple(resets), tuple(builds),
                tuple(image_deletes), reasons)


# -- nodes to delete or reset ---------------------------------------------

def _reap_nodes(snap: Snapshot) -> tuple[list[int], list[int], dict[int, str]]:
    providers = {p.name: p for p in snap.providers}
    labels = {lb.name for lb in snap.labels}
    t = snap.timeouts
    deletes: list[int] = []
    resets: list[int] = []
    reasons: dict[int, str] = {}
    for n in snap.nodes:
        busy = n.id in snap.busy_nodes
        prov = providers.get(n.provider)
        static = prov is not None and prov.kind == STATIC
        why = ""
        if n.state == NodeState.USED and not busy:
            why = "used"
        elif n.state == NodeState.HOLD and n.hold_until is not None and n.hold_until <= snap.now \
                and not busy:
            why = "hold expired"
        elif n.state == NodeState.BUILDING and (not busy or snap.now - n.state_time >= t.building):
            why = "stuck building" if busy else "building without a launcher"
        elif n.state == NodeState.DELETING and not busy and (
                snap.now - n.state_time >= t.delete_retry or n.external_id is None):
            why = "delete retry"
        elif n.state == NodeState.IN_USE and t.in_use and snap.now - n.state_time >= t.in_use \
                and not busy:
            why = "in use too long (lost claim?)"
        elif n.state == NodeState.FAILED and not busy and not static:
            why = "failed"
        elif n.state == NodeState.READY and not busy and (n.label not in labels or prov is None):
            why = "label or provider removed"
        if not why:
            continue
        if static and n.state != NodeState.DELETING:
            if prov is not None and n.state != NodeState.FAILED:
                resets.append(n.id)
                reasons[n.id] = why
        else:
            deletes.append(n.id)
            reasons[n.id] = why
    return deletes, resets, reasons


# -- launches -------------------------------------------------------------

def _launches(snap: Snapshot, leaving: set[int], used: Counter[str]) -> list[Launch]:
    have: Counter[str] = Counter(
        n.label for n in snap.nodes
        if n.state in (NodeState.READY, NodeState.BUILDING) and n.id not in leaving)
    launches: list[Launch] = []
    for label in sorted(snap.labels, key=lambda lb: lb.name):
        want = label.min_ready + max(0, snap.demand.get(label.name, 0))
        missing = want - have[label.name]
        candidates = [p for p in _label_providers(snap, label) if p.kind == CLOUD]
        for _ in range(max(0, missing)):
            choice = _pick_provider(snap, label, candidates, used)
            if choice is None:
                break
            prov, image = choice
            used[prov.name] += 1
            launches.append(Launch(label.name, prov.name, label.image,
                                   image.id if image else None))
    return launches


def _label_providers(snap: Snapshot, label: LabelView) -> list[ProviderView]:
    out = []
    for p in snap.providers:
        if label.providers and p.name not in label.providers:
            continue
        if label.image in p.images:
            out.append(p)
    return out


def _pick_provider(snap: Snapshot, label: LabelView, candidates: list[ProviderView],
                   used: Counter[str]) -> tuple[ProviderView, Image | None] | None:
    """The healthy provider with room and a bootable image, least loaded
    first (relative to its max-servers), so launches spread."""
    best: tuple[float, str] | None = None
    pick: tuple[ProviderView, Image | None] | None = None
    for p in candidates:
        if not p.healthy or used[p.name] >= p.max_servers:
            continue
        image = None
        if label.image in p.needs_image_build:
            image = current_image(snap.images, p.name, label.image)
            if image is None:
                continue  # no snapshot yet: cannot boot this label here
        key = (used[p.name] / max(1, p.max_servers), p.name)
        if best is None or key < best:
            best, pick = key, (p, image)
    return pick


# -- images ---------------------------------------------------------------

def _images(snap: Snapshot, used: Counter[str]) -> tuple[list[tuple[str, str]], list[int]]:
    t = snap.timeouts
    builds: list[tuple[str, str]] = []
    deletes: list[int] = []
    in_use_images = {n.image_id for n in snap.nodes
                     if n.state in (NodeState.BUILDING, NodeState.READY, NodeState.IN_USE) and n.image_id is not None}
    for p in snap.providers:
        for name in p.needs_image_build:
            recs = [i for i in snap.images if i.provider == p.name and i.image == name
                    and i.state != ImageState.DELETED]
            building = [i for i in recs if i.state == ImageState.BUILDING]
            ready = sorted((i for i in recs if i.state == ImageState.READY),
                           key=lambda i: (i.version, i.created), reverse=True)
            # Every attempt counts, including failed ones already cleaned up,
            # so a failing build is retried after image_retry, not each tick.
            last_try = max((i.created for i in snap.images
                            if i.provider == p.name and i.image == name), default=None)
            room = used[p.name] + sum(1 for b in builds if b[0] == p.name) < p.max_servers
            if not building and p.healthy and room:
                if last_try is None:
                    builds.append((p.name, name))
                elif snap.now - last_try >= t.image_retry and (
                        not ready or snap.now - ready[0].created >= t.image_interval):
                    builds.append((p.name, name))
            # A build record with no builder running is an orphan (the
            # service restarted mid-build): clean it up.
            deletes.extend(i.id for i in building if i.id not in snap.busy_images)
            # Keep the current and previous image; older ones go once no
            # node booting from them is still being launched.
            for i in ready[2:]:
                if i.id not in in_use_images and i.id not in snap.busy_images:
                    deletes.append(i.id)
            for i in recs:
                if i.id in snap.busy_images:
                    continue
                if i.state == ImageState.FAILED:
                    deletes.append(i.id)
                elif i.state == ImageState.DELETING and snap.now - i.state_time >= t.delete_retry:
                    deletes.append(i.id)
    return builds, sorted(set(deletes))
