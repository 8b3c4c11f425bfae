"""Layouts the scenarios run against (YAML through the real loader)."""

PIPELINES = r"""
pipelines:
  - name: check
    manager: independent
    trigger:
      gerrit:
        - event: patchset-created
        - event: comment-added
          comment: (?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*(recheck|reverify)
    success:
      labels: {Verified: 1}
    failure:
      labels: {Verified: -1}
  - name: gate
    manager: dependent
    fail-fast: FAILFAST
    trigger:
      gerrit:
        - event: comment-added
          approval: [{Workflow: 1}]
    require:
      open: true
      current-patchset: true
      approval: [{Code-Review: 2}]
    start:
      labels: {Verified: 0}
    success:
      labels: {Verified: 2}
      submit: true
    failure:
      labels: {Verified: -2}
    merge-failure:
      labels: {Verified: -1}
    window: WINDOW
    window-floor: 2
    window-increase-type: linear
    window-increase-factor: 1
    window-decrease-type: exponential
    window-decrease-factor: 2
  - name: post
    manager: serial
    trigger:
      gerrit:
        - event: ref-updated
          ref: ^refs/heads/.*$
  - name: periodic
    manager: independent
    trigger:
      timer:
        - time: "0 2 * * *"
    failure:
      labels: {}
"""

JOBS = r"""
jobs:
  - name: ^.*$
    label: debian
  - name: project-docs
    files: ['^doc/.*$']
  - name: project-test2
    irrelevant-files: ['^doc/.*$']
  - name: project-experimental
    voting: false
  - name: project-stable
    branch: ^stable/.*$
  - name: project-unit
    parameters:
      EXTRA: yes-please
  - name: project-lossy
    attempts: 2
  - name: nightly
    matrix:
      python: ["3.11", "3.12"]
"""

PROJECTS = r"""
projects:
  - name: org/project
    queue: integrated
    check:
      - project-merge:
          - project-test1
          - project-test2
      - project-docs
      - project-experimental
    gate:
      - project-merge:
          - project-test1
          - project-test2
    post:
      - project-post
    periodic:
      - nightly
  - name: org/project1
    queue: integrated
    check: [project1-test]
    gate: [project1-test]
  - name: org/project2
    queue: integrated
    check: [project2-test]
    gate: [project2-test]
  - name: org/alone
    check: [alone-test]
    gate: [alone-test]
  - name: org/stable
    check: [project-unit, project-stable]
    gate: [project-unit, project-stable]
  - name: org/lossy
    check: [project-lossy]
    gate: [project-lossy]
"""


def layout(window: int = 20, fail_fast: bool = False, extra_projects: str = "",
           ceiling: int = 0) -> str:
    pipes = PIPELINES.replace("WINDOW", str(window)).replace("FAILFAST", str(fail_fast).lower())
    if ceiling:
        pipes = pipes.replace("    window-floor: 2\n",
                              f"    window-floor: 2\n    window-ceiling: {ceiling}\n")
    return pipes + JOBS + PROJECTS + extra_projects
