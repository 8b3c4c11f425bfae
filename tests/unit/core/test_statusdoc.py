"""The status document's compact tested-on form expands to each build set's chain."""

import json
import random

from gatekeeper.model.statusdoc import chains, chains_without
from tests.unit.core.harness import Harness


def check(h: Harness) -> int:
    """Every item's expansion equals its build set's changes ahead; returns the
    number of change ids the document spells out."""
    st = h.sched.status()
    json.dumps(st)
    spelled = 0
    by_id = {i.uuid: i for state in h.engine.states.values() for i in state.items()}
    for p in st["pipelines"]:
        for q in p["queues"]:
            lists = chains(q["items"])
            for d in q["items"]:
                spelled += len(d["tested_on_extra"])
                want = [x.id_string for x in by_id[d["id"]].build_set.changes[:-1]]
                assert lists[d["id"]] == want
            for d in q["items"]:
                without = chains_without(q["items"], d["change"])
                assert without == {x["id"]: d["change"] not in lists[x["id"]]
                                   for x in q["items"]}
    return spelled


def test_chain_with_failures_and_merges(h: Harness):
    rnd = random.Random(7)
    changes = [h.source.add("org/project") for _ in range(12)]
    for c in changes:
        h.approve(c)
    check(h)
    for _ in range(60):
        if not h.running():
            break
        b = rnd.choice(h.running())
        h.clock.advance(30)
        h.complete("FAILURE" if rnd.random() < 0.15 else "SUCCESS", b.job, b.change)
        check(h)


def test_document_is_linear_in_queue_depth(h: Harness):
    for _ in range(40):
        h.approve(h.source.add("org/project"))
    # every item but the head names its chain by the item ahead: nothing spelled out
    assert check(h) == 0


def test_a_snapshot_of_whole_lists_still_reads():
    items = [{"id": "a", "change": "1,1", "tested_on": []},
             {"id": "b", "change": "2,1", "tested_on": ["1,1"]}]
    assert chains(items) == {"a": [], "b": ["1,1"]}
    assert chains_without(items, "1,1") == {"a": True, "b": False}
