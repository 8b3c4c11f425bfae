"""``gatekeeper validate`` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "layouts/example.yaml")
OPENSTACK = str(ROOT / "layouts/openstack.yaml")
CONFIG = str(ROOT / "etc/gatekeeper.yaml")

GOOD = """\
pipelines:
  - name: check
    manager: independent
    trigger: {gerrit: [{event: patchset-created}]}
jobs:
  - name: unit
    label: precise
projects:
  - name: org/p
    check: [unit]
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["validate", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_sample_layouts_validate(capsys):
    rc, out, err = run(capsys, EXAMPLE, OPENSTACK)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        f"OK: {EXAMPLE}: 4 pipelines, 7 jobs, 1 projects",
        f"OK: {OPENSTACK}: 4 pipelines, 51 jobs, 12 projects",
    ]


def test_sample_layouts_validate_against_sample_config(capsys):
    rc, out, err = run(capsys, "--config", CONFIG, EXAMPLE, OPENSTACK)
    assert (rc, err) == (0, "")
    assert out.splitlines()[-1].startswith(f"OK: {CONFIG}: config valid, ")


def test_config_alone_checks_its_own_layout_list(capsys):
    rc, out, err = run(capsys, "--config", CONFIG)
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == f"OK: {ROOT / 'layouts/example.yaml'}: 4 pipelines, 7 jobs, 1 projects"


def test_one_line_summary(tmp_path, capsys):
    p = tmp_path / "l.yaml"
    p.write_text(GOOD)
    assert run(capsys, str(p)) == (0, f"OK: {p}: 1 pipelines, 1 jobs, 1 projects\n", "")


def test_merge_validates_files_as_one_layout(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(GOOD.split("jobs:")[0])
    b.write_text("jobs:" + GOOD.split("jobs:")[1])
    rc, out, err = run(capsys, str(a), str(b))
    assert rc == 2  # each alone: b references the unknown pipeline 'check'
    assert f"{b}:6: projects[0].check: unknown pipeline 'check'" in err
    assert run(capsys, "--merge", str(a), str(b)) == (
        0, f"OK: {a}, {b}: 1 pipelines, 1 jobs, 1 projects\n", "",
    )


def test_misspelled_key_on_line_n(tmp_path, capsys):
    lines = GOOD.splitlines()
    lines.insert(6, "    lable: precise")  # line 7
    p = tmp_path / "l.yaml"
    p.write_text("\n".join(lines) + "\n")
    rc, out, err = run(capsys, str(p))
    assert (rc, out) == (2, "")
    assert err == f"{p}:7: jobs[0].lable: unknown key (did you mean 'label'?)\n"


def test_every_error_printed_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("independent", "parallel").replace("precise", "[x]") + "  - name: q\n    gate: [nope]\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    rc, out, err = run(capsys, str(bad), str(tmp_path / "missing.yaml"), str(tmp_path), str(empty), str(binary))
    assert (rc, out) == (2, "")
    assert err.splitlines() == [
        f"{bad}:3: pipelines[0].manager: must be one of: independent, dependent, serial",
        f"{bad}:7: jobs[0].label: expected str, got list",
        f"{tmp_path / 'missing.yaml'}: no such file",
        f"{tmp_path}: is a directory, not a file",
        f"{empty}:1: empty layout (expected pipelines, jobs, project-templates and/or projects)",
        f"{binary}:1: not valid UTF-8 (byte 0)",
    ]
    assert "Traceback" not in err


def test_cross_reference_errors_all_reported(tmp_path, capsys):
    p = tmp_path / "l.yaml"
    p.write_text(GOOD + "  - name: org/q\n    check: [unit, nope]\n    gate: [unit]\n")
    rc, out, err = run(capsys, str(p))
    assert rc == 2
    assert err.splitlines() == [
        f"{p}:12: projects[1].check[1]: unknown job 'nope'",
        f"{p}:13: projects[1].gate: unknown pipeline 'gate' (project keys are: name, templates, "
        "queue, merge-mode, description; pipelines: check)",
    ]


def test_config_labels_checked(tmp_path, capsys):
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(
        "gerrit: {server: h, user: u, sshkey: k}\nscheduler: {layout: l.yaml}\n"
        "worker:\n  nodes:\n    - {name: n, host: h, username: u, private_key: k, labels: [trusty]}\n"
    )
    p = tmp_path / "l.yaml"
    p.write_text(GOOD.replace("label: precise\n", "label: precise\n    run: org/p/run.sh\n"))
    rc, out, err = run(capsys, "--config", str(cfg), str(p))
    assert (rc, out) == (2, "")
    assert err == f"{p}:7: jobs[0].label: unknown label 'precise'; known labels: trusty\n"


def test_bad_config_and_bad_layout_both_reported(tmp_path, capsys):
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text("gerrit: {server: h, user: u, sshkey: k}\nscheduler: {layout: l.yaml}\nweb: {listen: 8001}\n")
    p = tmp_path / "l.yaml"
    p.write_text(GOOD.replace("[unit]", "[unti]"))
    rc, out, err = run(capsys, "--config", str(cfg), str(p))
    assert rc == 2
    assert err.splitlines() == [
        f"{cfg}:3: web.listen: expected HOST:PORT, e.g. 127.0.0.1:8001",
        f"{p}:10: projects[0].check[0]: unknown job 'unti'",
    ]


def test_nothing_to_validate(capsys):
    assert run(capsys) == (2, "", "nothing to validate: give LAYOUT files and/or --config FILE\n")


def test_missing_config_file(tmp_path, capsys):
    rc, out, err = run(capsys, "--config", str(tmp_path / "nope.yaml"), EXAMPLE)
    assert (rc, err) == (2, f"{tmp_path / 'nope.yaml'}: no such file\n")


@pytest.mark.parametrize("argv", [["--help"], ["validate", "--help"]])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "validate" in capsys.readouterr().out


def test_config_pool_section_is_validated(tmp_path, capsys):
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(
        "gerrit: {server: h, user: u, sshkey: k}\nscheduler: {layout: l.yaml}\n"
        "pool:\n  labels:\n    - {name: precise}\n"
        "  providers:\n    - name: cloud\n      driverr: openstack\n"
    )
    p = tmp_path / "l.yaml"
    p.write_text(GOOD)
    rc, out, err = run(capsys, "--config", str(cfg), str(p))
    assert (rc, out) == (2, "")
    assert f"{cfg}:8: pool.providers[0].driverr:" in err, err
    assert f"{cfg}:7: pool.providers[0].driver: required key missing" in err, err


def test_config_pool_with_labels_only_is_valid(tmp_path, capsys):
    """A worker host's config names the pool's labels but holds no cloud
    credentials: the pool itself runs elsewhere."""
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(
        "gerrit: {server: h, user: u, sshkey: k}\nscheduler: {layout: l.yaml}\n"
        "pool:\n  labels:\n    - {name: precise}\n"
    )
    p = tmp_path / "l.yaml"
    p.write_text(GOOD.replace("label: precise\n", "label: precise\n    run: org/p/run.sh\n"))
    rc, out, err = run(capsys, "--config", str(cfg), str(p))
    assert rc == 0, err
    assert "unknown label" not in err  # pool labels count as known labels
