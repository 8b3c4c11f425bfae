"""Compiled pipelines and jobs, matcher semantics, the sample layouts and
the documented examples."""

from __future__ import annotations

import re
import textwrap

import pytest

from gatekeeper.layout.loader import load_layout
from gatekeeper.layout.model import ApprovalMatch, Job, JobTree, ReporterAction
from gatekeeper.yamlutil import load_text
from tests.unit.layout_helpers import PIPES, ROOT, errors, load, yaml_list

# ---------------------------------------------------------------- pipelines


RECHECK = r"(?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*(recheck|reverify)"


def test_pipeline_compiles_every_feature():
    layout = load(
        r"""
pipelines:
  - name: gate
    description: The gate.
    manager: dependent
    source: gerrit
    precedence: high
    trigger:
      gerrit:
        - event: [comment-added, change-restored]
          branch: ^master$
          ref: ^refs/heads/.*$
          approval:
            - Approved: 1
            - {Workflow: [1, 2]}
          comment: (?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*(recheck|reverify)
          username: ^jenkins$
          email: '@example\.org$'
          require-approval:
            - {Code-Review: 2, username: ^core-, newer-than: 2d}
          reject-approval:
            - {Verified: [-1, -2], older-than: 3600}
          ignore-deletes: false
      timer:
        - time: '*/15 * * * 1-5'
    require: {open: true, current-patchset: true, status: [NEW], approval: [{Verified: 1}]}
    reject: {approval: [{Code-Review: -2}]}
    start: {labels: {Verified: 0}}
    success: {labels: {Verified: 2, Code-Review: 2}, submit: true, message: 'OK {change}: {jobs}'}
    failure: {labels: {Verified: -2}}
    merge-failure: null
    dequeue-on-new-patchset: false
    fail-fast: true
    window: 10
    window-floor: 2
    window-increase-type: exponential
    window-increase-factor: 2
    window-decrease-type: linear
    window-decrease-factor: 3
    header: 'Gatekeeper ({pipeline})'
    footer: 'See {status_url}'
"""
    )
    p = layout.pipelines["gate"]
    assert (p.manager, p.precedence, p.description, p.source) == ("dependent", "high", "The gate.", "gerrit")
    (t,) = p.gerrit_triggers
    assert t.events == ("comment-added", "change-restored")
    assert [x.pattern for x in t.branches] == ["^master$"]
    assert [x.pattern for x in t.refs] == ["^refs/heads/.*$"]
    assert t.approvals == (ApprovalMatch("Approved", (1,)), ApprovalMatch("Workflow", (1, 2)))
    assert t.comments[0].pattern == RECHECK
    assert t.usernames[0].pattern == "^jenkins$" and t.emails[0].pattern == r"@example\.org$"
    (req,) = t.require_approvals
    assert (req.label, req.values, req.username.pattern, req.newer_than) == ("Code-Review", (2,), "^core-", 172800)
    (rej,) = t.reject_approvals
    assert (rej.label, rej.values, rej.older_than) == ("Verified", (-1, -2), 3600)
    assert t.ignore_deletes is False
    assert [x.cron for x in p.timer_triggers] == ["*/15 * * * 1-5"]
    assert p.require.open is True and p.require.current_patchset is True
    assert p.require.status == ("NEW",) and p.require.approvals == (ApprovalMatch("Verified", (1,)),)
    assert p.reject.approvals == (ApprovalMatch("Code-Review", (-2,)),)
    assert p.start == ReporterAction(labels={"Verified": 0})  # message None: the core's default
    assert p.success == ReporterAction(labels={"Verified": 2, "Code-Review": 2}, submit=True, message="OK {change}: {jobs}")
    assert p.failure == ReporterAction(labels={"Verified": -2})
    assert p.merge_failure == ReporterAction(send=False)
    assert (p.dequeue_on_new_patchset, p.fail_fast) == (False, True)
    w = p.window
    assert (w.window, w.floor, w.increase_type, w.increase_factor, w.decrease_type, w.decrease_factor) == (
        10, 2, "exponential", 2, "linear", 3,
    )
    assert (p.header, p.footer) == ("Gatekeeper ({pipeline})", "See {status_url}")


def test_pipeline_defaults():
    p = load(PIPES).pipelines["check"]
    assert (p.precedence, p.source, p.dequeue_on_new_patchset, p.fail_fast) == ("normal", "gerrit", True, False)
    assert p.start is p.success is p.failure is p.merge_failure is None
    assert p.window.window == 20 and p.window.floor == 3
    assert p.gerrit_triggers[0].ignore_deletes is True


def test_url_patterns_use_url_variables():
    assert errors(PIPES + "jobs:\n  - name: j\n    failure-url: 'http://x/{jobs}'\n") == [
        "L:10: jobs[0].failure-url: unknown template variable {jobs}; known: {pipeline}, "
        "{change}, {project}, {branch}, {number}, {patchset}, {status_url}, {job}, {uuid}"
    ]


@pytest.mark.parametrize(
    "comment, matches",
    [
        ("recheck", True),
        ("Patch Set 3:\n\nrecheck", True),
        ("Patch Set 3: Code-Review+1\n\nrecheck", True),
        ("RECHECK please", True),
        ("reverify", True),
        ("Patch Set 1:\n\nplease do not recheck", False),
        ("looks good", False),
    ],
)
def test_openstack_recheck_regex(comment, matches):
    layout = load_layout([str(ROOT / "layouts/openstack.yaml")])
    check = layout.pipelines["check"]
    (trigger,) = [t for t in check.gerrit_triggers if t.comments]
    assert bool(trigger.comments[0].search(comment)) is matches


# ---------------------------------------------------------------- jobs and matchers


def test_job_attributes_and_defaults():
    layout = load(
        PIPES
        + """\
jobs:
  - name: full
    label: l
    run: scripts/run.sh
    timeout: 90m
    voting: false
    attempts: 5
    branch: [^master$, ^stable/]
    files: ^src/
    irrelevant-files: [^doc/, \\.rst$]
    parameters: {A: 1, B: true, C: text}
    artifacts: /opt/logs
    projects: [org/lib]
    success-message: fine
    failure-message: broken
    success-url: 'http://logs/{job}/{uuid}'
    failure-url: 'http://logs/{job}/{uuid}/fail'
    hold-on-failure: false
    failure-output: ['^FAILED: ', Traceback]
  - name: bare
"""
    )
    j = layout.jobs["full"]
    assert (j.label, j.run, j.timeout, j.voting, j.attempts) == ("l", "scripts/run.sh", 5400, False, 5)
    assert [p.pattern for p in j.branches] == ["^master$", "^stable/"]
    assert [p.pattern for p in j.files] == ["^src/"]
    assert [p.pattern for p in j.irrelevant_files] == ["^doc/", r"\.rst$"]
    assert j.parameters == {"A": "1", "B": "true", "C": "text"}
    assert (j.artifacts, j.projects) == (("/opt/logs",), ("org/lib",))
    assert (j.success_message, j.failure_message) == ("fine", "broken")
    assert (j.success_url, j.failure_url) == ("http://logs/{job}/{uuid}", "http://logs/{job}/{uuid}/fail")
    assert j.hold_on_failure is False
    assert [p.pattern for p in j.failure_output] == ["^FAILED: ", "Traceback"]
    assert layout.jobs["bare"] == Job(name="bare")


@pytest.mark.parametrize(
    "files, irrelevant, changed, expected",
    [
        ((), (), ["a.py"], True),
        (("^src/",), (), ["src/x.py"], True),
        (("^src/",), (), ["doc/x.rst", "src/x.py"], True),
        (("^src/",), (), ["doc/x.rst"], False),
        ((), (r"^doc/", r"\.rst$"), ["doc/a.txt", "README.rst"], False),
        ((), (r"^doc/",), ["doc/a.txt", "nova/a.py"], True),
        ((), (r"^doc/",), [], True),  # no files (e.g. an empty merge): not skipped
        (("^src/",), (), [], False),  # ... but nothing matches `files`
        (("^src/",), (r"^doc/",), None, True),  # unknown: always run
    ],
)
def test_changes_match(files, irrelevant, changed, expected):
    layout = load(
        PIPES
        + "jobs:\n  - name: j\n"
        + (f"    files: {yaml_list(files)}\n" if files else "")
        + (f"    irrelevant-files: {yaml_list(irrelevant)}\n" if irrelevant else "")
    )
    assert layout.jobs["j"].changes_match(changed) is expected


@pytest.mark.parametrize(
    "branch, expected",
    [("master", True), ("stable/havana", True), ("feature/x", False), (None, True)],
)
def test_branch_matches(branch, expected):
    layout = load(PIPES + "jobs:\n  - name: j\n    branch: [^master$, ^stable/]\n  - name: any\n")
    assert layout.jobs["j"].branch_matches(branch) is expected
    assert layout.jobs["any"].branch_matches(branch) is True


# ---------------------------------------------------------------- sample layouts


def test_example_layout():
    layout = load_layout([str(ROOT / "layouts/example.yaml")])
    assert set(layout.pipelines) == {"check", "gate", "post", "periodic"}
    assert layout.pipelines["periodic"].timer_triggers
    p = layout.projects["example/project"]
    assert p.pipelines["check"].children[2] == JobTree(
        job="example-unit", children=(JobTree(job="example-integration"),)
    )
    assert layout.jobs["example-experimental"].voting is False
    assert layout.matrices["example-nightly"] == ("example-nightly-3.11", "example-nightly-3.12")
    assert p.pipelines["periodic"].job_names() == ["example-nightly-3.11", "example-nightly-3.12"]
    assert "project-pep8" in p.pipelines["check"].job_names()


INTEGRATED = [
    "openstack/nova", "openstack/glance", "openstack/keystone", "openstack/horizon",
    "openstack/python-novaclient", "openstack/python-keystoneclient",
    "openstack-dev/devstack", "openstack-infra/devstack-gate",
]


def test_openstack_layout_shares_one_gate_queue():
    layout = load_layout([str(ROOT / "layouts/openstack.yaml")])
    gate_job = layout.jobs["gate-integration-tests-devstack-vm"]
    assert gate_job.label == "devstack-precise"
    assert gate_job.run == "openstack-infra/devstack-gate/devstack-vm-gate.sh"
    assert layout.pipelines["gate"].manager == "dependent"
    for name in INTEGRATED:
        assert layout.queue_name(name) == "integrated"
        assert "gate-integration-tests-devstack-vm" in layout.projects[name].pipelines["gate"].job_names()
    assert layout.queue_name("openstack/swift") == "openstack/swift"
    nova = layout.projects["openstack/nova"].pipelines["check"].job_names()
    for suffix in ("pep8", "python26", "python27", "docs", "coverage"):
        assert f"gate-nova-{suffix}" in nova
    assert layout.jobs["gate-nova-coverage"].voting is False
    assert layout.jobs["gate-nova-python26"].label == "oneiric"
    nightly = layout.projects["apache/cloudstack"].pipelines["periodic"].job_names()
    assert len(nightly) == 5 and "cloudstack-nightly-vmware-ubuntu" not in nightly
    assert layout.jobs["cloudstack-nightly-kvm-ubuntu"].label == "cloudstack-ubuntu"
    assert layout.pipelines["periodic"].timer_triggers[0].cron == "0 6 * * *"


# ---------------------------------------------------------------- documentation


def _yaml_blocks(doc: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / doc).read_text(), re.S)


@pytest.mark.parametrize("doc", ["doc/layout.md", "doc/configuration.md"])
def test_documented_yaml_examples_parse(doc):
    blocks = _yaml_blocks(doc)
    assert len(blocks) >= 1
    for i, block in enumerate(blocks):
        load_text(textwrap.dedent(block), f"{doc} block {i}")


def test_documented_jobs_and_templates_validate():
    """The job, regex, matrix and template examples compile together."""
    blocks = _yaml_blocks("doc/layout.md")
    jobs = [b for b in blocks if b.startswith("jobs:\n")]
    templates = [b for b in blocks if b.startswith("project-templates:\n")]
    assert len(jobs) == 3 and len(templates) == 1
    text = PIPES + "jobs:\n" + "".join(b.split("\n", 1)[1] for b in jobs) + "  - name: ^gate-.*$\n"
    text += templates[0] + "projects:\n  - name: org/nova\n    templates: [{name: python-jobs, python: py27}]\n"
    layout = load(text)
    assert "cloudstack-nightly-vmware-ubuntu" in layout.jobs
    assert layout.jobs["gate-nova-python26"].timeout == 3600
    assert layout.projects["org/nova"].pipelines["check"].job_names() == [
        "gate-nova-pep8", "gate-nova-py27", "gate-nova-docs",
    ]


def test_documented_config_example_loads(tmp_path):
    from gatekeeper.config import load_config

    (block,) = _yaml_blocks("doc/configuration.md")
    p = tmp_path / "gatekeeper.yaml"
    p.write_text(block)
    assert load_config(str(p)).known_labels() == {"devstack-precise"}
