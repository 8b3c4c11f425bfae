"""Compiling layouts: templates, matrix, regex job definitions, job trees,
cross-reference errors, pipelines, and the matcher semantics of the model."""

from __future__ import annotations

import pytest

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout
from gatekeeper.layout.model import JobTree
from tests.unit.layout_helpers import PIPES, errors, load


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
