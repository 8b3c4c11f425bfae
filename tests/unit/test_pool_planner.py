"""The pool planner: pure decisions over snapshots (virtual clock)."""

from __future__ import annotations

import itertools
import random

from gatekeeper.model.states import ImageState, NodeState
from gatekeeper.nodes.db import Image, Node
from gatekeeper.nodes.planner import (
    STATIC,
    LabelView,
    ProviderView,
    Snapshot,
    Timeouts,
    current_image,
    plan,
)

_ids = itertools.count(1)


def node(label="deb", provider="a", state=NodeState.READY, t=0.0, **kw) -> Node:
    return Node(id=kw.pop("id", next(_ids)), label=label, provider=provider, state=state,
                state_time=t, created=t, image="debian", **kw)


def image(provider="a", version=1, state=ImageState.READY, created=0.0, name="debian", **kw) -> Image:
    return Image(id=kw.pop("id", next(_ids)), provider=provider, image=name, version=version,
                 state=state, state_time=created, created=created, **kw)


def prov(name, max_servers=10, healthy=True, build=False, kind="cloud"):
    return ProviderView(name, kind=kind, max_servers=max_servers, healthy=healthy,
                        images=("debian",), needs_image_build=("debian",) if build else ())


def snap(nodes=(), images=(), providers=(prov("a"),), labels=(LabelView("deb", "debian", 2),),
         now=1000.0, **kw) -> Snapshot:
    return Snapshot(now=now, nodes=tuple(nodes), images=tuple(images),
                    providers=tuple(providers), labels=tuple(labels), **kw)


def test_min_ready_reached_from_nothing():
    p = plan(snap())
    assert [(lc.label, lc.provider) for lc in p.launches] == [("deb", "a"), ("deb", "a")]


def test_building_nodes_count_towards_min_ready():
    p = plan(snap(nodes=[node(state=NodeState.BUILDING, id=1)], busy_nodes=frozenset({1})))
    assert len(p.launches) == 1


def test_claims_restore_min_ready():
    nodes = [node(state=NodeState.IN_USE), node(state=NodeState.IN_USE), node(state=NodeState.READY)]
    assert len(plan(snap(nodes=nodes)).launches) == 1


def test_demand_adds_to_min_ready():
    p = plan(snap(nodes=[node()], demand={"deb": 3}))
    assert len(p.launches) == 4  # 2 min-ready + 3 waiting - 1 ready


def test_max_servers_never_exceeded_across_providers():
    providers = (prov("a", 2), prov("b", 3))
    p = plan(snap(providers=providers, demand={"deb": 50}))
    by = {name: sum(1 for lc in p.launches if lc.provider == name) for name in "ab"}
    assert by == {"a": 2, "b": 3}


def test_max_servers_counts_every_live_node_including_deleting():
    nodes = [node(state=NodeState.IN_USE), node(state=NodeState.HOLD), node(state=NodeState.DELETING, external_id="x")]
    p = plan(snap(nodes=nodes, providers=(prov("a", 4),), busy_nodes=frozenset()))
    assert len(p.launches) == 1


def test_max_servers_property_random():
    rng = random.Random(7)
    states = [NodeState.READY, NodeState.BUILDING, NodeState.IN_USE, NodeState.USED, NodeState.HOLD, NodeState.DELETING, NodeState.FAILED, NodeState.DELETED]
    for _ in range(300):
        providers = tuple(prov(n, rng.randint(0, 5), healthy=rng.random() > 0.2,
                               build=rng.random() < 0.5) for n in ("a", "b", "c"))
        images = [image(provider=rng.choice("abc"), version=v,
                        state=rng.choice([NodeState.READY, NodeState.BUILDING, NodeState.FAILED]),
                        created=rng.choice([0.0, -90000.0])) for v in range(rng.randint(0, 4))]
        nodes = [node(provider=rng.choice("abc"), state=rng.choice(states),
                      label=rng.choice(["deb", "cent"]), hold_until=2000.0,
                      external_id="e") for _ in range(rng.randint(0, 12))]
        labels = (LabelView("deb", "debian", rng.randint(0, 4)),
                  LabelView("cent", "debian", rng.randint(0, 4)))
        s = snap(nodes=nodes, providers=providers, labels=labels, images=images,
                 demand={"deb": rng.randint(0, 5)}, busy_nodes=frozenset(n.id for n in nodes),
                 busy_images=frozenset(i.id for i in images))
        p = plan(s)
        for pv in providers:
            live = sum(1 for n in nodes if n.provider == pv.name and n.state != NodeState.DELETED)
            live += sum(1 for i in images if i.provider == pv.name and i.state == ImageState.BUILDING)
            launched = sum(1 for lc in p.launches if lc.provider == pv.name)
            launched += sum(1 for b in p.image_builds if b[0] == pv.name)
            assert launched == 0 or live + launched <= pv.max_servers
            if not pv.healthy:
                assert launched == 0


def test_launches_spread_across_providers():
    p = plan(snap(providers=(prov("a"), prov("b")), labels=(LabelView("deb", "debian", 4),)))
    assert sorted(lc.provider for lc in p.launches) == ["a", "a", "b", "b"]


def test_unhealthy_provider_skipped_other_serves():
    p = plan(snap(providers=(prov("a", healthy=False), prov("b"))))
    assert {lc.provider for lc in p.launches} == {"b"}


def test_label_restricted_to_providers():
    labels = (LabelView("deb", "debian", 2, providers=("b",)),)
    p = plan(snap(providers=(prov("a"), prov("b")), labels=labels))
    assert {lc.provider for lc in p.launches} == {"b"}


def test_no_launch_without_ready_image_when_images_are_built():
    p = plan(snap(providers=(prov("a", build=True),)))
    assert p.launches == ()
    assert p.image_builds == (("a", "debian"),)


def test_launch_boots_newest_ready_image():
    imgs = [image(version=1, id=101), image(version=2, id=102),
            image(version=3, state=ImageState.FAILED, id=103)]
    p = plan(snap(images=imgs, providers=(prov("a", build=True),),
                  busy_images=frozenset({103})))
    assert {lc.image_id for lc in p.launches} == {102}
    assert current_image(imgs, "a", "debian").id == 102


def test_used_nodes_deleted_static_reset():
    nodes = [node(state=NodeState.USED, id=1), node(provider="m", state=NodeState.USED, id=2)]
    providers = (prov("a"), ProviderView("m", kind=STATIC, images=("debian",)))
    p = plan(snap(nodes=nodes, providers=providers, labels=()))
    assert p.deletes == (1,) and p.resets == (2,)
    assert p.reasons[1] == "used"


def test_busy_nodes_left_alone():
    p = plan(snap(nodes=[node(state=NodeState.USED, id=1)], busy_nodes=frozenset({1}), labels=()))
    assert p.deletes == ()


def test_hold_and_expiry():
    nodes = [node(state=NodeState.HOLD, hold_until=999.0, id=1), node(state=NodeState.HOLD, hold_until=1001.0, id=2),
             node(state=NodeState.HOLD, hold_until=None, id=3)]
    p = plan(snap(nodes=nodes, labels=()))
    assert p.deletes == (1,) and p.reasons[1] == "hold expired"


def test_building_without_launcher_deleted_and_stuck_building_deleted():
    nodes = [node(state=NodeState.BUILDING, id=1, t=990.0), node(state=NodeState.BUILDING, id=2, t=990.0),
             node(state=NodeState.BUILDING, id=3, t=0.0)]
    p = plan(snap(nodes=nodes, labels=(), busy_nodes=frozenset({2, 3}),
                  timeouts=Timeouts(building=500.0)))
    assert p.deletes == (1, 3)


def test_deleting_retried_after_delay():
    nodes = [node(state=NodeState.DELETING, id=1, t=990.0, external_id="x"),
             node(state=NodeState.DELETING, id=2, t=900.0, external_id="y")]
    p = plan(snap(nodes=nodes, labels=(), timeouts=Timeouts(delete_retry=60.0)))
    assert p.deletes == (2,)


def test_failed_cloud_node_deleted_static_failed_kept():
    nodes = [node(state=NodeState.FAILED, id=1), node(provider="m", state=NodeState.FAILED, id=2)]
    providers = (prov("a"), ProviderView("m", kind=STATIC, images=("debian",)))
    p = plan(snap(nodes=nodes, providers=providers, labels=()))
    assert p.deletes == (1,) and p.resets == ()


def test_ready_node_of_removed_label_deleted():
    p = plan(snap(nodes=[node(label="gone", id=1)]))
    assert 1 in p.deletes


def test_deleted_nodes_do_not_count():
    p = plan(snap(nodes=[node(state=NodeState.DELETED), node(state=NodeState.DELETED)], providers=(prov("a", 2),)))
    assert len(p.launches) == 2


def test_static_provider_never_launches():
    providers = (ProviderView("m", kind=STATIC, images=("debian",), max_servers=5),)
    assert plan(snap(providers=providers)).launches == ()


def test_image_build_daily_and_retry_after_failure():
    providers = (prov("a", build=True),)
    fresh = [image(created=1000.0 - 3600)]
    assert plan(snap(images=fresh, providers=providers)).image_builds == ()
    stale = [image(created=1000.0 - 86400)]
    assert plan(snap(images=stale, providers=providers, now=1000.0)).image_builds == (
        ("a", "debian"),)
    # A failed build an hour ago (already cleaned up) keeps the old image in
    # service and is retried only after image_retry.
    recent_fail = stale + [image(version=2, state=ImageState.DELETED, created=1000.0 - 60)]
    p = plan(snap(images=recent_fail, providers=providers))
    assert p.image_builds == ()
    assert {lc.image_id for lc in p.launches} == {stale[0].id}


def test_image_build_not_started_while_building_or_unhealthy():
    providers = (prov("a", build=True),)
    b = image(state=ImageState.BUILDING, id=7, created=0)
    p = plan(snap(images=[b], providers=providers, busy_images=frozenset({7})))
    assert p.image_builds == () and p.image_deletes == ()
    assert plan(snap(providers=(prov("a", build=True, healthy=False),))).image_builds == ()


def test_orphan_image_build_cleaned():
    p = plan(snap(images=[image(state=ImageState.BUILDING, id=7)], providers=(prov("a", build=True),)))
    assert p.image_deletes == (7,)


def test_keep_current_and_previous_image():
    imgs = [image(version=v, id=200 + v, created=float(v)) for v in (1, 2, 3, 4)]
    imgs.append(image(version=5, state=ImageState.FAILED, id=205, created=5.0))
    p = plan(snap(images=imgs, providers=(prov("a", build=True),)))
    assert p.image_deletes == (201, 202, 205)


def test_old_image_kept_while_a_node_boots_from_it():
    imgs = [image(version=v, id=300 + v, created=float(v)) for v in (1, 2, 3)]
    nodes = [node(state=NodeState.BUILDING, image_id=301, id=9)]
    p = plan(snap(images=imgs, nodes=nodes, providers=(prov("a", build=True),),
                  busy_nodes=frozenset({9})))
    assert 301 not in p.image_deletes


def test_plan_is_deterministic():
    s = snap(providers=(prov("b"), prov("a")), demand={"deb": 3})
    assert plan(s) == plan(s)


def test_lost_claims_reclaimed_after_in_use_timeout():
    nodes = [node(state=NodeState.IN_USE, id=1, t=0.0), node(state=NodeState.IN_USE, id=2, t=900.0),
             node(provider="m", state=NodeState.IN_USE, id=3, t=0.0)]
    providers = (prov("a"), ProviderView("m", kind=STATIC, images=("debian",)))
    p = plan(snap(nodes=nodes, providers=providers, labels=(),
                  timeouts=Timeouts(in_use=500.0)))
    assert p.deletes == (1,) and p.resets == (3,)
    assert plan(snap(nodes=nodes, providers=providers, labels=(),
                     timeouts=Timeouts(in_use=0))).deletes == ()


def test_image_templates_count_against_max_servers():
    providers = (prov("a", max_servers=2, build=True),)
    imgs = [image(version=1, id=501, created=0.0),
            image(version=2, state=ImageState.BUILDING, id=502, created=1000.0 - 10)]
    p = plan(snap(images=imgs, providers=providers, busy_images=frozenset({502})))
    assert len(p.launches) == 1  # the template is the second server
    # A full provider builds its image only once there is room.
    full = [node(state=NodeState.IN_USE), node(state=NodeState.IN_USE)]
    p = plan(snap(nodes=full, providers=providers, images=[image(created=-86400.0)]))
    assert p.image_builds == () and p.launches == ()
    p = plan(snap(nodes=full[:1], providers=providers, images=[image(created=-86400.0)]))
    assert p.image_builds == (("a", "debian"),) and p.launches == ()
