"""What a worker receives is byte-identical to the eager parameters of
before (ZUUL_CHANGES / ZUUL_CHANGE_IDS are joined when the launcher reads
them, model/buildparams.py), and the core itself never joins them."""

import hashlib

from gatekeeper.gearman.launcher import build_arguments
from gatekeeper.gearman.protocol import encode
from gatekeeper.interfaces import BuildRequest
from gatekeeper.model.buildparams import BuildParameters
from tests.unit.core.harness import Harness

# The parameters of the scenario's payloads (all but the "gatekeeper" object of
# job settings) as the eager build_parameters encoded them (main at 69c2782):
# all of them, and the deepest in full.
ALL_SHA256 = "4c4b8ca813594e3ac12f9e24015ac61de52742babf0c71939e447735ef82e337"
DEEPEST = (
    '{"LOG_PATH":"5/5/1/gate/project-merge/79830d1","ZUUL_BRANCH":"master","ZUUL_CHANGE":"5",'
    '"ZUUL_CHANGES":"org/project1:master:refs/changes/01/1/1^org/project2:master:refs/changes/02/2/1'
    '^org/project:master:refs/changes/03/3/1^org/project:master:refs/changes/04/4/1'
    '^org/project:master:refs/changes/05/5/1","ZUUL_CHANGE_IDS":"1,1 2,1 3,1 4,1 5,1",'
    '"ZUUL_COMMIT":"cea28e05e186f48fc86c4a4767716d500021192a","ZUUL_JOB":"project-merge",'
    '"ZUUL_PATCHSET":"1","ZUUL_PIPELINE":"gate","ZUUL_PROJECT":"org/project",'
    '"ZUUL_REF":"refs/gatekeeper/master/Zbbc3cfebfd329be1c72df6e700000012",'
    '"ZUUL_URL":"git://merger.example.org","ZUUL_UUID":"79830d1816ffc8b2c461f2f700000014",'
    '"ZUUL_VOTING":"1"}')


def _scenario(h: Harness) -> None:
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(dep)
    h.approve(a)
    for _ in range(3):
        h.approve(h.source.add("org/project"))
    h.upload("org/project", files=["doc/x.rst"])
    h.ref_updated("org/project", "refs/heads/master", "a" * 40, "b" * 40)
    h.clock.t = h.sched.next_wakeup()
    h.settle()


def _params_payload(request: BuildRequest) -> str:
    return encode({k: v for k, v in build_arguments(request).items() if k != "gatekeeper"})


def test_worker_payloads_byte_identical(h: Harness):
    _scenario(h)
    params = [b.request.parameters for b in h.launcher.builds]
    assert all(isinstance(p, BuildParameters) for p in params)
    # Launching joined nothing: a build costs the same at any depth.
    assert sum(p.unjoined() for p in params if isinstance(p, BuildParameters)) == 2 * sum(
        1 for p in params if "ZUUL_CHANGE_IDS" in p)
    payloads = [_params_payload(b.request) for b in h.launcher.builds]
    assert len(payloads) == 11
    assert hashlib.sha256("\n".join(payloads).encode()).hexdigest() == ALL_SHA256
    assert max(payloads, key=lambda p: p.count("refs/changes")) == DEEPEST
    # Read again (now joined) and as a dict, in the eager order.
    deep = next(b.request.parameters for b in h.launcher.builds
                if _params_payload(b.request) == DEEPEST)
    assert dict(deep)["ZUUL_CHANGE_IDS"] == "1,1 2,1 3,1 4,1 5,1"
    assert list(deep)[-8:] == ["LOG_PATH", "ZUUL_BRANCH", "ZUUL_CHANGE", "ZUUL_PATCHSET",
                               "ZUUL_CHANGES", "ZUUL_CHANGE_IDS", "ZUUL_REF", "ZUUL_COMMIT"]


def test_parameters_are_a_mutable_mapping():
    p = BuildParameters({"A": "1", "ZUUL_CHANGE_IDS": lambda cs: f"{len(cs)} changes"}, ("x", "y"))
    assert p.unjoined() == 1
    assert p == {"A": "1", "ZUUL_CHANGE_IDS": "2 changes"} and p.unjoined() == 0
    p["A"] = "2"
    del p["ZUUL_CHANGE_IDS"]
    assert dict(p) == {"A": "2"} and len(p) == 1 and p.get("B") is None
