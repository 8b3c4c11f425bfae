"""Every rule the worker enforces on a build at run time is one
``gatekeeper validate`` enforces on the layout or config first.

Each row: a layout/config mistake, proof that the running system refuses it
(the worker's argument check, its ssh, its function registration), and
the ``FILE:LINE: key: message`` validate prints for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gatekeeper.cli import main
from gatekeeper.gearman.launcher import build_arguments
from gatekeeper.interfaces import BuildRequest, NodeLease
from gatekeeper.worker.buildargs import BadBuildArgs, parse_build_args
from gatekeeper.worker.service import build_functions
from gatekeeper.worker.ssh import SshNode, known_hosts_line

LAYOUT = """\
pipelines:
  - name: check
    manager: independent
    trigger: {{gerrit: [{{event: patchset-created}}]}}
jobs:
  - name: {job}
    label: {label}
{extra}
projects:
  - name: {project}
    check: [{job}]
"""

CONFIG = """\
gerrit: {{server: 127.0.0.1, user: gk, sshkey: key}}
scheduler: {{layout: layout.yaml}}
merger:
  url: {merger_url}
worker:
  git_base_url: {git_base_url}
  nodes:
    - name: n1
      host: {host}
      username: {user}
      private_key: key
      labels: [small]
{node_extra}
"""

RIGHT = dict(job="unit", label="small", extra="    run: org/p/run.sh", project="org/p",
             merger_url="git://127.0.0.1:9418", git_base_url="ssh://gk@127.0.0.1:29418",
             host="127.0.0.1", user="gk", node_extra="")


def _request(**over: Any) -> BuildRequest:
    job = over.pop("job", "unit")
    params = {"ZUUL_UUID": "a" * 32, "ZUUL_PROJECT": over.pop("project", "org/p"),
              "ZUUL_PIPELINE": "check", "ZUUL_URL": over.pop("zuul_url", "git://h/")}
    return BuildRequest("a" * 32, job, "small", params, **over)


def _worker_refuses_args(**over: Any) -> None:
    r = _request(**over)
    with pytest.raises(BadBuildArgs):
        parse_build_args(f"build:{r.job}:small", build_arguments(r))


def _ssh_refuses(host: str = "127.0.0.1", user: str = "gk", host_key: str | None = None,
                 tmp: Path = Path("/tmp")) -> None:
    with pytest.raises(ValueError):
        lease = NodeLease("n1", "small", host, 22, user, host_key=host_key)
        if host_key:
            known_hosts_line(host, 22, host_key)
        SshNode(lease, tmp / "ssh", multiplex=False)


def _no_function(label: str) -> None:
    assert build_functions([("unit", label)], {"small"}) == []


CASES = [
    # (id, overrides of RIGHT, runtime refusal, line, key, words in validate's message)
    ("absolute run", {"extra": "    run: /srv/jobs/job.sh"},
     lambda t: _worker_refuses_args(run="/srv/jobs/job.sh"),
     8, "jobs[0].run", "must be relative to the workspace"),
    ("run leaves workspace", {"extra": "    run: ../job.sh"},
     lambda t: _worker_refuses_args(run="../job.sh"), 8, "jobs[0].run", "inside the workspace"),
    ("run as option", {"extra": "    run: -x.sh"},
     lambda t: _worker_refuses_args(run="-x.sh"), 8, "jobs[0].run", "leading '-'"),
    ("artifact outside", {"extra": "    run: org/p/run.sh\n    artifacts: [../../etc]"},
     lambda t: _worker_refuses_args(run="org/p/r.sh", artifacts=("../../etc",)),
     9, "jobs[0].artifacts", "invalid artifact path"),
    ("extra project", {"extra": "    run: org/p/run.sh\n    projects: [../evil]"},
     lambda t: _worker_refuses_args(run="org/p/r.sh", projects=("../evil",)),
     9, "jobs[0].projects", "invalid project name"),
    ("job name", {"job": "'unit:tests'"},
     lambda t: _worker_refuses_args(job="unit:tests", run="org/p/r.sh"),
     6, "jobs[0].name", "invalid job name"),
    ("project name", {"project": "org/p/../x", "extra": "    run: .gatekeeper/jobs/run-tox.sh"},
     lambda t: _worker_refuses_args(project="org/p/../x", run="org/p/r.sh"),
     10, "projects[0].name", "invalid project name"),
    ("label no node has", {"label": "huge"}, lambda t: _no_function("huge"),
     7, "jobs[0].label", "unknown label 'huge'"),
    ("merger url", {"merger_url": "'ext::sh -c touch% /tmp/x'"},
     lambda t: _worker_refuses_args(zuul_url="ext::sh -c touch% /tmp/x"),
     4, "merger.url", "invalid ZUUL_URL"),
    ("node host", {"host": "'-oProxyCommand=x'"}, lambda t: _ssh_refuses(host="-oProxyCommand=x",
                                                                      tmp=t),
     9, "worker.nodes[0].host", "invalid host"),
    ("node user", {"user": "'a b'"}, lambda t: _ssh_refuses(user="a b", tmp=t),
     10, "worker.nodes[0].username", "invalid username"),
    ("node host key", {"node_extra": "      host_key: AAAAC3Nza"},
     lambda t: _ssh_refuses(host_key="AAAAC3Nza", tmp=t),
     13, "worker.nodes[0].host_key", "TYPE BASE64"),
]


def _write(tmp_path: Path, values: dict[str, str]) -> Path:
    (tmp_path / "layout.yaml").write_text(LAYOUT.format(**values))
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(CONFIG.format(**values))
    return cfg


def test_the_right_site_validates(tmp_path, capsys):
    cfg = _write(tmp_path, RIGHT)
    assert main(["validate", "--config", str(cfg)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("over, refused, line, key, words",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_at_run_time_is_refused_by_validate(tmp_path, capsys, over, refused, line,
                                                     key, words):
    refused(tmp_path)  # the running system refuses it ...
    cfg = _write(tmp_path, {**RIGHT, **over})
    assert main(["validate", "--config", str(cfg)]) == 2  # ... and validate says so first
    err = capsys.readouterr().err
    where = "gatekeeper.yaml" if "." in key.split("[")[0] and not key.startswith(
        ("jobs", "projects")) else "layout.yaml"
    assert f"{tmp_path / where}:{line}: {key}: " in err, err
    assert words in err, err
    assert "Traceback" not in err


SITE = [
    # Not refused by the worker's argument check, but certain to fail every build.
    ("label without run", {"extra": ""}, 7, "jobs[0].label", "needs a run script"),
    ("run in no cloned project", {"extra": "    run: tools/run.sh"}, 11, "projects[0].check",
     "which is in no project cloned for org/p"),
    ("missing job script", {"extra": "    run: .gatekeeper/jobs/nope.sh"}, 8, "jobs[0].run",
     "no job script 'nope.sh' on the worker"),
]


@pytest.mark.parametrize("over, line, key, words", [c[1:] for c in SITE],
                         ids=[c[0] for c in SITE])
def test_builds_certain_to_fail_are_refused_by_validate(tmp_path, capsys, over, line, key,
                                                        words):
    cfg = _write(tmp_path, {**RIGHT, **over})
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'layout.yaml'}:{line}: {key}: " in err, err
    assert words in err, err


def test_site_job_scripts_come_from_jobs_dir(tmp_path, capsys):
    values = {**RIGHT, "extra": "    run: .gatekeeper/jobs/site/unit.sh"}
    cfg = _write(tmp_path, values)
    jobs = tmp_path / "jobs"
    (jobs / "site").mkdir(parents=True)
    (jobs / "site/unit.sh").write_text("#!/bin/sh\n")
    cfg.write_text(cfg.read_text().replace("worker:\n", "worker:\n  jobs_dir: jobs\n"))
    assert main(["validate", "--config", str(cfg)]) == 0, capsys.readouterr().err
    (jobs / "site/unit.sh").unlink()
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "no job script 'site/unit.sh'" in capsys.readouterr().err


MAIL_LAYOUT = """\
pipelines:
  - name: nightly
    manager: independent
    trigger: {timer: [{time: "0 2 * * *"}]}
    success:
      smtp: {to: ci@example.org}
    failure:
      smtp:
        to: [ci@example.org, "x@example.org\\nBcc: evil@example.org"]
        subject: "{pipeline} {nope}"
jobs:
  - name: unit
    label: small
    run: org/p/run.sh
projects:
  - name: org/p
    nightly: [unit]
"""


def test_mail_reports_are_validated(tmp_path, capsys):
    cfg = _write(tmp_path, RIGHT)
    (tmp_path / "layout.yaml").write_text(MAIL_LAYOUT)
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    lay = tmp_path / "layout.yaml"
    assert f"{lay}:9: pipelines[0].failure.smtp.to[1]: expected a mail address" in err, err
    assert f"{lay}:10: pipelines[0].failure.smtp.subject: " in err and "{nope}" in err, err
    # A valid mailing layout, but the config has no smtp section.
    lay.write_text(MAIL_LAYOUT.replace('"x@example.org\\nBcc: evil@example.org"', "qa@example.org")
                   .replace("{nope}", "{result}"))
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{lay}:6: pipelines[0].success.smtp: mail reports need the config's smtp" in err
    cfg.write_text(cfg.read_text() + "smtp: {server: 127.0.0.1, port: 2525, from: ci@x.org}\n")
    assert main(["validate", "--config", str(cfg)]) == 0, capsys.readouterr().err
