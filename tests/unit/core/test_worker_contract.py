"""Every build the core launches is accepted by the worker's argument check
(the Gearman payload as the launcher encodes it)."""

from gatekeeper.gearman.launcher import build_arguments
from gatekeeper.gearman.protocol import build_function, decode, encode
from gatekeeper.worker.buildargs import parse_build_args
from tests.unit.core.harness import Harness


def _check_all(h: Harness) -> int:
    for b in h.launcher.builds:
        req = b.request
        spec = parse_build_args(build_function(req.job, req.label),
                                decode(encode(build_arguments(req))))
        assert spec.uuid == req.uuid
        assert spec.log_path == req.parameters["LOG_PATH"]
        assert [c.ref for c in spec.changes] == [
            x.split(":")[2] for x in filter(None, req.parameters.get("ZUUL_CHANGES", "").split("^"))]
    return len(h.launcher.builds)


def test_gate_check_post_periodic_builds_parse(h: Harness):
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(dep)
    h.approve(a)
    h.upload("org/project", files=["doc/x.rst"])
    h.ref_updated("org/project", "refs/heads/master", "a" * 40, "b" * 40)
    h.clock.t = h.sched.next_wakeup()
    h.settle()
    assert _check_all(h) >= 7
