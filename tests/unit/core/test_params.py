"""Build parameters in the Zuul tradition."""

from tests.unit.core.harness import Harness


def test_change_parameters(h: Harness):
    for _ in range(11):
        h.source.add("org/alone")
    a = h.source.add("org/stable", branch="stable/2026.1")
    b = h.source.add("org/stable", branch="stable/2026.1")
    h.approve(a)
    h.approve(b)
    req = h.running("project-unit", b)[0].request
    p = req.parameters
    assert p["ZUUL_UUID"] == req.uuid
    assert p["ZUUL_PROJECT"] == "org/stable"
    assert p["ZUUL_PIPELINE"] == "gate"
    assert p["ZUUL_BRANCH"] == "stable/2026.1"
    assert p["ZUUL_CHANGE"] == "13" and p["ZUUL_PATCHSET"] == "1"
    assert p["ZUUL_REF"].startswith("refs/gatekeeper/stable/2026.1/Z")
    assert p["ZUUL_COMMIT"] and len(p["ZUUL_COMMIT"]) == 40
    assert p["ZUUL_URL"] == "git://merger.example.org"
    assert p["ZUUL_CHANGES"] == ("org/stable:stable/2026.1:refs/changes/12/12/1^"
                                 "org/stable:stable/2026.1:refs/changes/13/13/1")
    assert p["ZUUL_CHANGE_IDS"] == "12,1 13,1"
    assert p["LOG_PATH"] == f"13/13/1/gate/project-unit/{req.uuid[:7]}"
    assert p["EXTRA"] == "yes-please"  # the job's own parameters
    assert req.label == "debian"
    assert req.job == "project-unit"


def test_each_build_has_its_own_uuid_and_ref(h: Harness):
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    reqs = [x.request for x in h.running()]
    assert len({r.uuid for r in reqs}) == 2
    assert len({r.parameters["ZUUL_REF"] for r in reqs}) == 2
    # b's state contains a: its commit differs from a's
    assert len({r.parameters["ZUUL_COMMIT"] for r in reqs}) == 2


def test_precedence_and_run_passed_through(make):
    h = make(extra_projects="""
  - name: org/run
    check: [run-job]
""")
    text = h.layout_yaml.replace("jobs:\n", "jobs:\n  - name: run-job\n    run: tools/x.sh\n"
                                 "    timeout: 90\n    artifacts: [/opt/stack/logs]\n", 1)
    from tests.unit.core.harness import Harness as H
    h = H(text)
    h.upload("org/run")
    req = h.running()[0].request
    assert req.run == "tools/x.sh"
    assert req.timeout == 90
    assert req.artifacts == ("/opt/stack/logs",)
    assert req.precedence == "normal"
