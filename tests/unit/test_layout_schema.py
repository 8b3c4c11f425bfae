"""Every schema rule and error shape of the layout language:
a table of bad layouts -> the exact ``FILE:LINE: key: message`` lines."""

from __future__ import annotations

import textwrap

import pytest

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout, load_layout_text

# Lines 1-6; cases append from line 7 on.
BASE = """\
pipelines:
  - name: check
    manager: independent
    trigger:
      gerrit:
        - event: patchset-created
"""


def errors(text: str, known_labels=None) -> list[str]:
    with pytest.raises(UserError) as e:
        load_layout_text(textwrap.dedent(text), "L", known_labels=known_labels)
    return e.value.messages


CASES = [
    # --- top level
    ("pipeline:\n  - name: x\n", ["L:1: pipeline: unknown key (did you mean 'pipelines'?)"]),
    ("project-template: []\n", ["L:1: project-template: unknown key (did you mean 'project-templates'?)"]),
    ("pipelines: {name: x}\n", ["L:1: pipelines: expected a list, got mapping"]),
    ("jobs:\n  - just-a-name\n", ["L:2: jobs[0]: expected a dictionary, got string"]),
    # --- pipelines
    (
        "pipelines:\n  - name: check\n    managr: independent\n    trigger: {timer: {time: '* * * * *'}}\n",
        [
            "L:2: pipelines[0].manager: required key missing",
            "L:3: pipelines[0].managr: unknown key (did you mean 'manager'?)",
        ],
    ),
    (
        BASE + "    manager: independent\n",
        ["L:7: YAML syntax error: duplicate key 'manager' (first on line 3)"],
    ),
    (
        "pipelines:\n  - name: p\n    manager: parallel\n    trigger: {timer: {time: '@daily'}}\n",
        [
            "L:3: pipelines[0].manager: must be one of: independent, dependent, serial",
            "L:4: pipelines[0].trigger.timer.time: bad cron expression '@daily' "
            "(expected 5 fields: minute hour day month weekday)",
        ],
    ),
    ("pipelines:\n  - name: p\n    manager: serial\n", ["L:2: pipelines[0].trigger: required key missing"]),
    (
        "pipelines:\n  - name: p\n    manager: serial\n    trigger: {}\n",
        ["L:4: pipelines[0].trigger: needs at least one trigger (gerrit or timer)"],
    ),
    (BASE + "    precedence: urgent\n", ["L:7: pipelines[0].precedence: must be one of: low, normal, high"]),
    (BASE + "    source: github\n", ["L:7: pipelines[0].source: must be one of: gerrit"]),
    (BASE + "    window: -1\n", ["L:7: pipelines[0].window: value must be at least 0"]),
    (BASE + "    window-floor: 0\n", ["L:7: pipelines[0].window-floor: value must be at least 1"]),
    (
        BASE + "    window: 2\n    window-floor: 5\n",
        ["L:8: pipelines[0].window-floor: window-floor (5) is larger than window (2)"],
    ),
    (BASE + "    window-ceiling: 5\n",
     ["L:7: pipelines[0].window-ceiling: a window-ceiling needs manager: dependent (this "
      "pipeline's manager is independent)"]),
    (BASE.replace("independent", "dependent") + "    window: 10\n    window-ceiling: 5\n",
     ["L:8: pipelines[0].window-ceiling: window-ceiling (5) is smaller than the window (10) or "
      "window-floor (3)"]),
    (BASE.replace("independent", "dependent") + "    window: 0\n    window-ceiling: 5\n",
     ["L:8: pipelines[0].window-ceiling: window 0 is unlimited: a window-ceiling needs a window"]),
    (BASE.replace("independent", "dependent") + "    window-ceiling: 0\n",
     ["L:7: pipelines[0].window-ceiling: value must be at least 1"]),
    (
        BASE + "    window-increase-type: quadratic\n",
        ["L:7: pipelines[0].window-increase-type: must be one of: linear, exponential"],
    ),
    (BASE + "    dequeue-on-new-patchset: yes please\n", ["L:7: pipelines[0].dequeue-on-new-patchset: expected bool, got string"]),
    (BASE + "    dequeue_on_new_patchset: false\n", ["L:7: pipelines[0].dequeue_on_new_patchset: unknown key (did you mean 'dequeue-on-new-patchset'?)"]),
    (BASE + "    fail-fast: 1\n", ["L:7: pipelines[0].fail-fast: expected bool, got integer"]),
    # --- gerrit triggers
    (
        BASE + "        - event: [comment-added, patchset-uploaded]\n",
        [
            "L:7: pipelines[0].trigger.gerrit[1].event[1]: must be one of: patchset-created, "
            "draft-published, comment-added, change-merged, change-abandoned, change-restored, "
            "ref-updated, topic-changed, reviewer-added, hashtags-changed, wip-state-changed, "
            "private-state-changed, vote-deleted"
        ],
    ),
    (
        BASE + "        - branch: master\n",
        ["L:7: pipelines[0].trigger.gerrit[1].event: required key missing"],
    ),
    (
        BASE + "          branch: '^(master'\n",
        ["L:7: pipelines[0].trigger.gerrit[0].branch: bad regular expression '^(master': "
         "missing ), unterminated subpattern at position 1"],
    ),
    (
        BASE + "          ref: ['^refs/heads/.*$', '[']\n",
        ["L:7: pipelines[0].trigger.gerrit[0].ref[1]: bad regular expression '[': "
         "unterminated character set at position 0"],
    ),
    (
        BASE + "          comment: '(?i)recheck(('\n          username: '*bot'\n",
        [
            "L:7: pipelines[0].trigger.gerrit[0].comment: bad regular expression '(?i)recheck((': "
            "missing ), unterminated subpattern at position 12",
            "L:8: pipelines[0].trigger.gerrit[0].username: bad regular expression '*bot': "
            "nothing to repeat at position 0",
        ],
    ),
    (
        BASE + "          approval:\n            - Approved: yes\n            - {}\n",
        [
            "L:8: pipelines[0].trigger.gerrit[0].approval[0].Approved: expected a vote value (integer) or a list of them",
            "L:9: pipelines[0].trigger.gerrit[0].approval[1]: expected a label and a value, e.g. {Approved: 1}",
        ],
    ),
    (
        BASE + "          require-approval:\n            - username: jenkins\n",
        ["L:8: pipelines[0].trigger.gerrit[0].require-approval[0]: needs at least one label, e.g. {Verified: 1}"],
    ),
    (
        BASE + "          reject-approval: [{Verified: -1, newer-than: soon}]\n",
        ["L:7: pipelines[0].trigger.gerrit[0].reject-approval[0].newer-than: "
         "expected a duration (seconds, or e.g. 30m, 2h, 1d), not 'soon'"],
    ),
    (BASE + "          ignore-deletes: no\n          events: x\n", ["L:8: pipelines[0].trigger.gerrit[0].events: unknown key (did you mean 'event'?)"]),
    # --- timer
    (
        BASE + "      timer:\n        - time: '61 * * * *'\n        - cron: '0 2 * * *'\n",
        [
            "L:8: pipelines[0].trigger.timer[0].time: bad cron expression '61 * * * *' "
            "(expected 5 fields: minute hour day month weekday)",
            "L:9: pipelines[0].trigger.timer[1].cron: unknown key",
            "L:9: pipelines[0].trigger.timer[1].time: required key missing",
        ],
    ),
    (
        BASE + "      timer:\n        - time: '0 2 * *'\n",
        ["L:8: pipelines[0].trigger.timer[0].time: bad cron expression '0 2 * *' "
         "(expected 5 fields: minute hour day month weekday)"],
    ),
    # --- require / reject
    (
        BASE + "    require:\n      open: yes\n      approvals: [{Verified: 1}]\n",
        ["L:9: pipelines[0].require.approvals: unknown key (did you mean 'approval'?)"],
    ),
    (BASE + "    reject:\n      status: []\n", ["L:8: pipelines[0].reject.status: must not be an empty list"]),
    # --- reporters
    (
        BASE + "    success:\n      labels: {Verified: one}\n      submit: 'yes'\n",
        [
            "L:8: pipelines[0].success.labels.Verified: expected an integer vote",
            "L:9: pipelines[0].success.submit: expected bool, got string",
        ],
    ),
    (
        BASE + "    failure:\n      message: 'Build {status}: {jobs}'\n",
        ["L:8: pipelines[0].failure.message: unknown template variable {status}; known: "
         "{pipeline}, {change}, {project}, {branch}, {number}, {patchset}, {jobs}, {status_url}, {reason}"],
    ),
    (
        BASE + "    merge-failure:\n      message: 'oops {'\n",
        ["L:8: pipelines[0].merge-failure.message: bad template 'oops {': "
         "Single '{' encountered in format string (write {{ and }} for literal braces)"],
    ),
    (
        BASE + "    start:\n      message: 'job {0}'\n",
        ["L:8: pipelines[0].start.message: bad template 'job {0}': use named fields like {pipeline}"],
    ),
    (BASE + "    success:\n      vote: {Verified: 1}\n", ["L:8: pipelines[0].success.vote: unknown key"]),
    (BASE + "    header: '{nope}'\n", ["L:7: pipelines[0].header: unknown template variable {nope}; known: "
                                       "{pipeline}, {change}, {project}, {branch}, {number}, {patchset}, {jobs}, {status_url}, {reason}"]),
    # --- jobs
    ("jobs:\n  - label: x\n", ["L:2: jobs[0].name: required key missing"]),
    ("jobs:\n  - name: ''\n", ["L:2: jobs[0].name: must not be empty"]),
    (
        "jobs:\n  - name: j\n    lable: x\n    voting: 'no'\n    attempts: 0\n",
        [
            "L:3: jobs[0].lable: unknown key (did you mean 'label'?)",
            "L:4: jobs[0].voting: expected bool, got string",
            "L:5: jobs[0].attempts: value must be at least 1",
        ],
    ),
    (
        "jobs:\n  - name: j\n    timeout: -5\n  - name: k\n    timeout: 2 hours\n",
        [
            "L:3: jobs[0].timeout: duration must be positive",
            "L:5: jobs[1].timeout: expected a duration (seconds, or e.g. 30m, 2h, 1d), not '2 hours'",
        ],
    ),
    (
        "jobs:\n  - name: j\n    files: ['^doc/', '*.rst']\n    irrelevant_files: []\n",
        [
            "L:3: jobs[0].files[1]: bad regular expression '*.rst': nothing to repeat at position 0",
            "L:4: jobs[0].irrelevant_files: unknown key (did you mean 'irrelevant-files'?)",
        ],
    ),
    (
        "jobs:\n  - name: j\n    parameters:\n      OK: 1\n      not ok: x\n      LIST: [1]\n",
        [
            "L:5: jobs[0].parameters.not ok: parameter names must be identifiers",
            "L:6: jobs[0].parameters.LIST: expected a string, number or boolean",
        ],
    ),
    (
        "jobs:\n  - name: j\n    failure-output: ['ok', '(bad']\n  - name: k\n"
        "    failure-output: [" + ", ".join(["x"] * 21) + "]\n",
        [
            "L:3: jobs[0].failure-output[1]: bad regular expression '(bad': missing ), "
            "unterminated subpattern at position 0",
            "L:5: jobs[1].failure-output: at most 20 patterns",
        ],
    ),
    ("jobs:\n  - name: '^(bad'\n", ["L:2: jobs[0].name: bad regular expression '^(bad': missing ), unterminated subpattern at position 1"]),
    ("jobs:\n  - name: j\n    success-url: 'http://x/{'\n", ["L:3: jobs[0].success-url: bad template 'http://x/{': Single '{' encountered in format string (write {{ and }} for literal braces)"]),
    # --- matrix
    (
        "jobs:\n  - name: m\n    matrix:\n      hypervisor: []\n      os: centos\n      bad axis: [a]\n",
        [
            "L:4: jobs[0].matrix.hypervisor: expected a non-empty list of values",
            "L:5: jobs[0].matrix.os: expected a non-empty list of values",
            "L:6: jobs[0].matrix.bad axis: axis name must be an identifier",
        ],
    ),
    (
        "jobs:\n  - name: m\n    matrix:\n      hv: [xen, xen, 'k v m']\n",
        [
            "L:4: jobs[0].matrix.hv[1]: duplicate value 'xen'",
            "L:4: jobs[0].matrix.hv[2]: value must be letters, digits, or _ . + -",
        ],
    ),
    ("jobs:\n  - name: m\n    matrix: [xen]\n", ["L:3: jobs[0].matrix: expected a mapping of axis name to a list of values"]),
    # --- project templates
    ("project-templates:\n  - check: [a]\n", ["L:2: project-templates[0].name: required key missing"]),
    # --- projects and job trees
    ("projects:\n  - check: [a]\n", ["L:2: projects[0].name: required key missing"]),
    (
        "projects:\n  - name: p\n    check:\n      - a:\n        - b\n        - c: null\n      - 5\n      - {d: e, f: g}\n      - ''\n",
        [
            "L:6: projects[0].check[0].a[1].c: children missing (write the job name alone)",
            "L:7: projects[0].check[1]: expected a job name or {job: [children]}, got integer",
            "L:8: projects[0].check[2]: a job with children is a mapping with exactly one key (the parent job name)",
            "L:9: projects[0].check[3]: job name must not be empty",
        ],
    ),
    ("projects:\n  - name: p\n    check: {a: b}\n", ["L:3: projects[0].check: expected a list of job names (or {job: [children]} mappings)"]),
    (
        "projects:\n  - name: p\n    merge-mode: rebase\n    queue: ''\n",
        [
            "L:3: projects[0].merge-mode: must be one of: merge-resolve, merge, cherry-pick",
            "L:4: projects[0].queue: must not be empty",
        ],
    ),
    (
        "projects:\n  - name: p\n    templates: [{nme: t}]\n",
        ["L:3: projects[0].templates[0]: expected a template name or {name: TEMPLATE, PARAM: value, ...}"],
    ),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_schema_errors(text, expected):
    assert errors(text) == expected


def test_all_errors_of_a_file_are_reported_in_line_order():
    text = (
        BASE
        + "    precedence: top\n"  # 7
        + "jobs:\n"  # 8
        + "  - name: a\n"  # 9
        + "    voting: perhaps\n"  # 10
        + "  - nam: b\n"  # 11
        + "projects:\n"  # 12
        + "  - name: p\n"  # 13
        + "    check: [5]\n"  # 14
    )
    assert errors(text) == [
        "L:7: pipelines[0].precedence: must be one of: low, normal, high",
        "L:10: jobs[0].voting: expected bool, got string",
        "L:11: jobs[1].nam: unknown key (did you mean 'name'?)",
        "L:11: jobs[1].name: required key missing",
        "L:14: projects[0].check[0]: expected a job name or {job: [children]}, got integer",
    ]


def test_misspelled_key_on_line_n_reports_n_and_the_key():
    lines = BASE.splitlines() + ["    dequeue-on-new-patchet: false"]
    n = len(lines)
    (msg,) = errors("\n".join(lines) + "\n")
    assert msg.startswith(f"L:{n}: pipelines[0].dequeue-on-new-patchet: unknown key")


def test_errors_from_several_files_all_reported_in_file_order(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(BASE + "    precedence: top\n")
    b.write_text("jobs:\n  - name: j\n    voting: 2\n")
    with pytest.raises(UserError) as e:
        load_layout([str(b), str(a)])
    assert e.value.messages == [
        f"{b}:3: jobs[0].voting: expected bool, got integer",
        f"{a}:7: pipelines[0].precedence: must be one of: low, normal, high",
    ]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "{p}:1: empty layout (expected pipelines, jobs, project-templates and/or projects)"),
        (b"# only a comment\n", "{p}:1: empty layout (expected pipelines, jobs, project-templates and/or projects)"),
        (b"- a\n- b\n", "{p}:1: expected a mapping with pipelines, jobs, project-templates and/or projects"),
        (b"jobs:\n  - name: \xe9\n", "{p}:2: not valid UTF-8 (byte 16)"),
        (b"jobs: [\n", "{p}:2: YAML syntax error: while parsing a flow node"),  # + parser's words
    ],
)
def test_unusable_files(tmp_path, content, expected):
    p = tmp_path / "l.yaml"
    p.write_bytes(content)
    with pytest.raises(UserError) as e:
        load_layout([str(p)])
    (msg,) = e.value.messages
    assert msg.startswith(expected.format(p=p))


def test_missing_file_and_directory_reported_with_others(tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text("jobs:\n  - name: j\n    voting: 3\n")
    with pytest.raises(UserError) as e:
        load_layout([str(tmp_path / "missing.yaml"), str(tmp_path), str(good)])
    assert e.value.messages == [
        f"{tmp_path / 'missing.yaml'}: no such file",
        f"{tmp_path}: is a directory, not a file",
        f"{good}:3: jobs[0].voting: expected bool, got integer",
    ]


def test_no_files():
    with pytest.raises(UserError) as e:
        load_layout([])
    assert e.value.messages == ["no layout files given"]


# ---------------------------------------------------------------- robustness

_REPLACEMENTS = ["null", "[]", "{a: 1}", "[1, {b: 2}]", "-1", "true", "'{x}'", "'^('"]


def _mutants(text: str):
    """Deterministic damage: drop each line; replace each value/item."""
    import re

    lines = text.splitlines()
    for i, line in enumerate(lines):
        yield "\n".join(lines[:i] + lines[i + 1:])
        m = re.match(r"^(\s*-?\s*[\w-]+:)\s*(.+)$", line) or re.match(r"^(\s*-\s+)(.+)$", line)
        if m:
            for r in _REPLACEMENTS:
                yield "\n".join([*lines[:i], f"{m.group(1)} {r}", *lines[i + 1:]])


def test_damaged_layouts_give_user_errors_never_exceptions():
    """No mutation of the sample layout may escape as anything but UserError."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "layouts/example.yaml").read_text()
    outcomes = {"ok": 0, "error": 0}
    for mutant in _mutants(text):
        try:
            load_layout_text(mutant, "M")
            outcomes["ok"] += 1
        except UserError as e:
            assert e.messages and all(m.startswith("M:") for m in e.messages), e.messages
            outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 300, outcomes
