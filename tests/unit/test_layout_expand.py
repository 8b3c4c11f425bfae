"""Compiling layouts: templates, matrix, regex job definitions, job trees,
cross-reference errors, pipelines, and the matcher semantics of the model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout, load_layout_text
from gatekeeper.layout.model import ApprovalMatch, Job, JobTree, ReporterAction

ROOT = Path(__file__).resolve().parents[2]

PIPES = """\
pipelines:
  - name: check
    manager: independent
    trigger: {gerrit: [{event: patchset-created}]}
  - name: gate
    manager: dependent
    trigger: {gerrit: [{event: comment-added, approval: [{Approved: 1}]}]}
"""  # 7 lines


def load(text: str, **kw):
    return load_layout_text(textwrap.dedent(text), "L", **kw)


def errors(text: str, **kw) -> list[str]:
    with pytest.raises(UserError) as e:
        load(text, **kw)
    return e.value.messages


def yaml_list(items) -> str:
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"


def tree(*items) -> JobTree:
    """tree('a', ('b', ['c'])) -> root with a, and b whose child is c."""

    def node(item):
        if isinstance(item, str):
            return JobTree(job=item)
        name, children = item
        return JobTree(job=name, children=tuple(node(c) for c in children))

    return JobTree(job=None, children=tuple(node(i) for i in items))


# ---------------------------------------------------------------- job trees


def test_job_tree_nesting():
    layout = load(
        PIPES
        + """\
jobs: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}]
projects:
  - name: org/p
    check:
      - a
      - b:
          - c:
              - d
          - e
    gate:
      - a: e
"""
    )
    p = layout.projects["org/p"]
    assert p.pipelines["check"] == tree("a", ("b", [("c", ["d"]), "e"]))
    assert p.pipelines["gate"] == tree(("a", ["e"]))
    assert p.pipelines["check"].job_names() == ["a", "b", "c", "d", "e"]
    assert list(layout.jobs) == ["a", "b", "c", "d", "e"]


def test_same_job_twice_in_one_pipeline_is_an_error():
    assert errors(
        PIPES
        + """\
jobs: [{name: a}, {name: b}]
projects:
  - name: org/p
    check:
      - a:
          - b
      - b
"""
    ) == ["L:11: projects[0].check: job 'b' appears more than once in pipeline 'check' of project 'org/p'"]


# ---------------------------------------------------------------- templates


TEMPLATES = (
    PIPES
    + """\
jobs:
  - name: ^gate-.*$
    label: precise
  - name: integration
project-templates:
  - name: python-jobs
    check:
      - gate-{name}-pep8
      - gate-{name}-{python}
    gate:
      - gate-{name}-pep8:
          - integration
"""
)  # ends at line 19


def test_template_with_parameters_expands_per_project():
    layout = load(
        TEMPLATES
        + """\
projects:
  - name: openstack/nova
    templates:
      - name: python-jobs
        python: python27
    check:
      - integration
  - name: openstack/glance
    templates: [{name: python-jobs, python: py3, name-override: x}]
"""
    )
    nova = layout.projects["openstack/nova"]
    assert nova.templates == ("python-jobs",)
    # template trees first, then the project's own
    assert nova.pipelines["check"] == tree("gate-nova-pep8", "gate-nova-python27", "integration")
    assert nova.pipelines["gate"] == tree(("gate-nova-pep8", ["integration"]))
    glance = layout.projects["openstack/glance"]
    assert glance.pipelines["check"].job_names() == ["gate-glance-pep8", "gate-glance-py3"]
    # regex definitions make the referenced names concrete jobs
    assert layout.jobs["gate-nova-pep8"].label == "precise"
    assert layout.jobs["gate-glance-py3"].label == "precise"
    assert layout.jobs["integration"].label is None


def test_template_parameters_can_override_name_and_use_project():
    layout = load(
        PIPES
        + """\
jobs: [{name: ^.*$}]
project-templates:
  - name: t
    check: ['{name}-unit', 'x-{project}']
projects:
  - name: org/repo
    templates: [t]
  - name: org/other
    templates:
      - {name: t, project: renamed}
"""
    )
    assert layout.projects["org/repo"].pipelines["check"].job_names() == ["repo-unit", "x-org/repo"]
    assert layout.projects["org/other"].pipelines["check"].job_names() == ["other-unit", "x-renamed"]


def test_template_errors():
    assert errors(
        TEMPLATES
        + """\
  - name: bad
    chek: [x]
projects:
  - name: openstack/nova
    templates: [python-jobs, nope]
"""
    ) == [
        "L:16: project-templates[0].check[1]: template parameter {python} is not set "
        "(template 'python-jobs' applied to project 'openstack/nova') (set: {name}, {project})",
        "L:21: project-templates[1].chek: unknown pipeline 'chek'",
        "L:24: projects[0].templates[1]: unknown project-template 'nope'",
    ]


def test_unknown_job_from_template_names_template_and_project():
    assert errors(
        PIPES
        + """\
jobs: [{name: ^gate-.*-pep8$}]
project-templates:
  - name: t
    check: ['gate-{name}-pep8', '{name}-docs']
projects:
  - name: org/a
    templates: [t]
"""
    ) == [
        "L:11: project-templates[0].check[1]: unknown job 'a-docs' "
        "(template 't' applied to project 'org/a')"
    ]


# ---------------------------------------------------------------- matrix


MATRIX = (
    PIPES
    + """\
jobs:
  - name: cloudstack
    label: cloudstack-{os}
    run: tools/nightly-{hypervisor}.sh
    parameters:
      MGMT: "{os}"
      OTHER: "{notanaxis}"
    matrix:
      hypervisor: [xen, kvm]
      os: [rhel, ubuntu]
"""
)


def test_matrix_expands_to_distinct_variants():
    layout = load(MATRIX + "projects:\n  - name: apache/cloudstack\n    check: [cloudstack]\n")
    names = ["cloudstack-xen-rhel", "cloudstack-xen-ubuntu", "cloudstack-kvm-rhel", "cloudstack-kvm-ubuntu"]
    assert layout.matrices == {"cloudstack": tuple(names)}
    assert list(layout.jobs) == names
    assert layout.projects["apache/cloudstack"].pipelines["check"].job_names() == names
    j = layout.jobs["cloudstack-kvm-ubuntu"]
    assert j.variant_of == "cloudstack"
    assert j.variant == {"hypervisor": "kvm", "os": "ubuntu"}
    assert j.label == "cloudstack-ubuntu"
    assert j.run == "tools/nightly-kvm.sh"
    assert j.parameters == {
        "MGMT": "ubuntu",
        "OTHER": "{notanaxis}",  # not an axis: left as written
        "HYPERVISOR": "kvm",
        "OS": "ubuntu",
    }


def test_matrix_name_pattern_and_single_variant_reference():
    layout = load(
        PIPES
        + """\
jobs:
  - name: cs-{os}-on-{hv}
    matrix: {hv: [xen], os: [centos, 7]}
    parameters: {HV: explicit}
projects:
  - name: p
    check: [cs-7-on-xen]
    gate: ['cs-{os}-on-{hv}']
"""
    )
    assert layout.matrices == {"cs-{os}-on-{hv}": ("cs-centos-on-xen", "cs-7-on-xen")}
    assert layout.projects["p"].pipelines["check"].job_names() == ["cs-7-on-xen"]
    assert layout.projects["p"].pipelines["gate"].job_names() == ["cs-centos-on-xen", "cs-7-on-xen"]
    assert layout.jobs["cs-7-on-xen"].parameters == {"HV": "explicit", "OS": "7"}


@pytest.mark.parametrize(
    "jobs, expected",
    [
        (
            "  - name: cs-{os}\n    matrix: {hv: [xen], os: [a]}\n",
            ["L:9: jobs[0].name: the job name mentions some matrix axes but not {hv}"],
        ),
        (
            "  - name: cs-{arch}\n    matrix: {hv: [xen]}\n",
            ["L:9: jobs[0].name: the job name mentions some matrix axes but not {hv}"],
        ),
        (
            "  - name: cs-xen\n  - name: cs\n    matrix: {hv: [xen]}\n",
            ["L:10: jobs[1].name: duplicate matrix variant 'cs-xen' (first defined at L:9)"],
        ),
        (
            "  - name: cs\n    matrix: {hv: [xen]}\n  - name: cs\n    matrix: {hv: [kvm]}\n",
            ["L:11: jobs[1].name: duplicate job 'cs' (first defined at L:9)"],
        ),
        (
            "  - name: ^cs.*$\n    matrix: {hv: [xen]}\n",
            ["L:10: jobs[0].matrix: a regex job definition cannot have a matrix"],
        ),
    ],
)
def test_matrix_errors(jobs, expected):
    assert errors(PIPES + "jobs:\n" + jobs) == expected


def test_matrix_exclude():
    layout = load(
        PIPES
        + """\
jobs:
  - name: cs
    matrix: {hv: [xen, kvm, vmware], os: [rhel, ubuntu]}
    matrix-exclude:
      - {hv: vmware, os: ubuntu}
      - {hv: kvm}
"""
    )
    assert layout.matrices == {"cs": ("cs-xen-rhel", "cs-xen-ubuntu", "cs-vmware-rhel")}
    assert "matrix-exclude" not in str(layout.jobs["cs-xen-rhel"])


@pytest.mark.parametrize(
    "job, expected",
    [
        (
            "    matrix: {hv: [xen]}\n    matrix-exclude: [{hv: kvm, os: x}, {}]\n",
            [
                "L:11: jobs[0].matrix-exclude[0].hv: 'kvm' is not a value of axis 'hv'",
                "L:11: jobs[0].matrix-exclude[0].os: 'os' is not a matrix axis",
                "L:11: jobs[0].matrix-exclude[1]: expected {axis: value, ...}",
            ],
        ),
        ("    matrix-exclude: {hv: kvm}\n", ["L:10: jobs[0].matrix-exclude: matrix-exclude needs a matrix"]),
        (
            "    matrix: {hv: [xen]}\n    matrix-exclude: {hv: xen}\n",
            ["L:11: jobs[0].matrix-exclude: matrix-exclude excludes every variant"],
        ),
    ],
)
def test_matrix_exclude_errors(job, expected):
    assert errors(PIPES + "jobs:\n  - name: cs\n" + job) == expected


def test_matrix_job_cannot_have_children():
    assert errors(MATRIX + "projects:\n  - name: p\n    check:\n      - cloudstack: [cloudstack-xen-rhel]\n") == [
        "L:21: projects[0].check[0]: matrix job 'cloudstack' cannot have children: each of its "
        "4 variants would run them (list the variants you mean)"
    ]


# ---------------------------------------------------------------- regex job definitions


def test_regex_definitions_apply_in_order_and_explicit_wins():
    layout = load(
        PIPES
        + """\
jobs:
  - name: ^.*$
    label: precise
    timeout: 1h
    voting: true
  - name: ^.*-py26$
    label: oneiric
    voting: false
  - name: gate-nova-py26
    timeout: 600
  - name: special-py26
    label: lucid
projects:
  - name: nova
    check: [gate-nova-py26, gate-nova-py27, special-py26]
"""
    )
    j = layout.jobs["gate-nova-py26"]
    assert (j.label, j.timeout, j.voting) == ("oneiric", 600, False)
    j = layout.jobs["gate-nova-py27"]
    assert (j.label, j.timeout, j.voting) == ("precise", 3600, True)
    j = layout.jobs["special-py26"]
    assert (j.label, j.timeout, j.voting) == ("lucid", 3600, False)


def test_regex_definitions_also_apply_to_matrix_variants():
    layout = load(MATRIX + "  - name: ^cloudstack-vmware-.*$\n    voting: false\n  - name: ^cloudstack-xen-.*$\n    voting: false\n    label: override\n")
    assert layout.jobs["cloudstack-xen-rhel"].voting is False
    assert layout.jobs["cloudstack-xen-rhel"].label == "cloudstack-rhel"  # own definition wins
    assert layout.jobs["cloudstack-kvm-rhel"].voting is True


def test_referenced_name_must_match_a_definition():
    assert errors(
        PIPES
        + """\
jobs:
  - name: ^gate-.*$
projects:
  - name: p
    check:
      - gate-ok
      - unit:
          - unknown-child
"""
    ) == [
        "L:14: projects[0].check[1]: unknown job 'unit'",
        "L:15: projects[0].check[1].unit[0]: unknown job 'unknown-child'",
    ]


def test_unreferenced_regex_definitions_create_no_jobs():
    layout = load(PIPES + "jobs:\n  - name: ^x.*$\n    label: a\n")
    assert layout.jobs == {}


# ---------------------------------------------------------------- cross references


def test_unknown_pipeline_in_project_suggests():
    assert errors(PIPES + "jobs: [{name: a}]\nprojects:\n  - name: p\n    chek: [a]\n    templtes: [x]\n") == [
        "L:11: projects[0].chek: unknown pipeline 'chek' (did you mean 'check'? project keys are: "
        "name, templates, queue, merge-mode, description; pipelines: check, gate)",
        "L:12: projects[0].templtes: unknown pipeline 'templtes' (did you mean 'templates'? project "
        "keys are: name, templates, queue, merge-mode, description; pipelines: check, gate)",
    ]


def test_duplicates_within_a_file():
    assert errors(
        PIPES
        + """\
  - name: check
    manager: serial
    trigger: {timer: [{time: '0 * * * *'}]}
  - name: queue
    manager: serial
    trigger: {timer: [{time: '0 * * * *'}]}
jobs: [{name: a}, {name: a}]
project-templates: [{name: t}, {name: t}]
projects: [{name: p}, {name: p}]
"""
    ) == [
        "L:8: pipelines[2].name: duplicate pipeline 'check' (first defined at L:2)",
        "L:11: pipelines[3].name: 'queue' is reserved (it is a project key)",
        "L:14: jobs[1].name: duplicate job 'a' (first defined at L:14)",
        "L:15: project-templates[1].name: duplicate project-template 't' (first defined at L:15)",
        "L:16: projects[1].name: duplicate project 'p' (first defined at L:16)",
    ]


def test_multiple_files_merge_and_duplicates_across_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(PIPES + "jobs:\n  - name: unit\n")
    b.write_text(
        "jobs:\n  - name: ^.*$\n    label: x\n"
        "project-templates:\n  - name: t\n    gate: [unit]\n"
        "projects:\n  - name: p\n    templates: [t]\n    check: [unit]\n"
    )
    layout = load_layout([str(a), str(b)])
    assert set(layout.pipelines) == {"check", "gate"}
    assert layout.jobs["unit"].label == "x"
    assert layout.projects["p"].pipelines == {"gate": tree("unit"), "check": tree("unit")}
    assert layout.files == (str(a), str(b))

    c = tmp_path / "c.yaml"
    c.write_text("pipelines:\n  - name: gate\n    manager: dependent\n    trigger: {timer: {time: '0 0 * * *'}}\njobs:\n  - name: unit\n")
    with pytest.raises(UserError) as e:
        load_layout([str(a), str(b), str(c)])
    assert e.value.messages == [
        f"{c}:2: pipelines[0].name: duplicate pipeline 'gate' (first defined at {a}:5)",
        f"{c}:6: jobs[0].name: duplicate job 'unit' (first defined at {a}:9)",
    ]


def test_unknown_labels_only_checked_when_known_labels_given():
    text = (
        PIPES
        + """\
jobs:
  - name: ^gate-.*$
    label: precise
  - name: dsvm
    label: devstack-precise
project-templates:
  - name: t
    check: ['gate-{name}-a', 'gate-{name}-b']
projects:
  - {name: p1, templates: [t], gate: [dsvm]}
  - {name: p2, templates: [t]}
"""
    )
    assert len(load(text).jobs) == 5
    assert len(load(text, known_labels={"precise", "devstack-precise"}).jobs) == 5
    assert errors(text, known_labels={"devstack-precise"}) == [
        "L:10: jobs[0].label: unknown label 'precise' (used by gate-p1-a, gate-p1-b, gate-p2-a "
        "and 1 more); known labels: devstack-precise",
    ]
    assert errors(text, known_labels=set()) == [
        "L:10: jobs[0].label: unknown label 'precise' (used by gate-p1-a, gate-p1-b, gate-p2-a "
        "and 1 more); known labels: none",
        "L:12: jobs[1].label: unknown label 'devstack-precise'; known labels: none",
    ]


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
    assert gate_job.run == "devstack-gate/devstack-vm-gate.sh"
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
    import re

    return re.findall(r"```yaml\n(.*?)```", (ROOT / doc).read_text(), re.S)


@pytest.mark.parametrize("doc", ["doc/layout.md", "doc/configuration.md"])
def test_documented_yaml_examples_parse(doc):
    from gatekeeper.yamlutil import load_text

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
