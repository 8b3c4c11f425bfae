"""Build arguments: validation, ZUUL_CHANGES, log paths."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.worker.buildargs import (
    BadBuildArgs,
    ChangeRef,
    check_log_path,
    default_log_path,
    parse_build_args,
    parse_zuul_changes,
)

FN = "build:gate-devstack:devstack"


def args(**over: Any) -> dict[str, Any]:
    meta = over.pop("gatekeeper", {})
    a: dict[str, Any] = {
        "ZUUL_UUID": "0123456789abcdef", "ZUUL_PROJECT": "org/project", "ZUUL_PIPELINE": "gate",
        "ZUUL_BRANCH": "master", "ZUUL_REF": "refs/gatekeeper/master/Z1",
        "ZUUL_URL": "git://127.0.0.1:9418", "ZUUL_CHANGE": "12345", "ZUUL_PATCHSET": "3",
        "ZUUL_CHANGES": "org/lib:master:refs/changes/01/1/1^org/project:master:refs/changes/45/12345/3",
    }
    a.update(over)
    a["gatekeeper"] = {"job": "gate-devstack", "label": "devstack", "timeout": 600,
                       "run": ".gatekeeper/jobs/devstack-vm-gate.sh", "artifacts": ["a/b"],
                       "projects": ["openstack-dev/devstack", "org/lib"],
                       "hold_on_failure": True, **meta}
    return a


def test_valid_arguments() -> None:
    spec = parse_build_args(FN, args(DEVSTACK_GATE_TEMPEST=1, FLAG=True, EMPTY=None))
    assert spec.uuid == "0123456789abcdef" and spec.job == "gate-devstack"
    assert spec.label == "devstack" and spec.timeout == 600.0
    assert spec.log_path == "45/12345/3/gate/gate-devstack/0123456"
    assert spec.params["LOG_PATH"] == spec.log_path
    assert spec.params["DEVSTACK_GATE_TEMPEST"] == "1"
    assert spec.params["FLAG"] == "true" and spec.params["EMPTY"] == ""
    assert "gatekeeper" not in spec.params
    # ZUUL_PROJECT first, then the change set, then the job's projects; no duplicates.
    assert spec.all_projects() == ["org/project", "org/lib", "openstack-dev/devstack"]


def test_label_from_function_and_plain_function() -> None:
    spec = parse_build_args(FN, args(gatekeeper={"label": None}))
    assert spec.label == "devstack"
    spec = parse_build_args("build:gate-devstack", args())
    assert spec.label == "devstack"


def test_log_path_given_is_kept_and_checked() -> None:
    assert parse_build_args(FN, args(LOG_PATH="/a/b/c/")).log_path == "a/b/c"
    with pytest.raises(BadBuildArgs, match="LOG_PATH"):
        parse_build_args(FN, args(LOG_PATH="a/../../etc"))


@pytest.mark.parametrize("over, match", [
    ({"gatekeeper": {"job": "other"}}, "does not match"),
    ({"gatekeeper": {"label": "other"}}, "label"),
    ({"ZUUL_UUID": "x"}, "ZUUL_UUID"),
    ({"ZUUL_UUID": "$(reboot)abcdef"}, "ZUUL_UUID"),
    ({"ZUUL_PROJECT": ""}, "ZUUL_PROJECT"),
    ({"ZUUL_PROJECT": "../../etc"}, "project"),
    ({"ZUUL_PROJECT": "-oProxyCommand=x"}, "project"),
    ({"ZUUL_BRANCH": "$(touch /tmp/x)"}, "branch"),
    ({"ZUUL_BRANCH": "master;reboot"}, "branch"),
    ({"ZUUL_REF": "--upload-pack=touch /tmp/x"}, "ref"),
    ({"ZUUL_REF": "refs/heads/`id`"}, "ref"),
    ({"ZUUL_URL": "ext::sh -c touch% /tmp/x"}, "ZUUL_URL"),
    ({"ZUUL_URL": "-u x"}, "ZUUL_URL"),
    ({"ZUUL_CHANGES": "a:b"}, "ZUUL_CHANGES"),
    ({"ZUUL_CHANGES": "org/p:master:refs/changes/$(id)"}, "ref"),
    ({"gatekeeper": {"timeout": "10"}}, "timeout"),
    ({"gatekeeper": {"timeout": -1}}, "timeout"),
    ({"gatekeeper": {"run": "/bin/sh"}}, "run"),
    ({"gatekeeper": {"run": "x/../../y"}}, "run"),
    ({"gatekeeper": {"artifacts": "logs"}}, "artifacts"),
    ({"gatekeeper": {"artifacts": ["-e x"]}}, "artifact"),
    ({"gatekeeper": {"projects": ["ok", "../x"]}}, "project"),
    ({"gatekeeper": {"hold_on_failure": "yes"}}, "hold_on_failure"),
    ({"BAD-NAME": "x"}, "parameter name"),
    ({"LIST": [1]}, "not a string"),
    ({"NUL": "a\x00b"}, "NUL"),
])
def test_malformed(over: dict[str, Any], match: str) -> None:
    with pytest.raises(BadBuildArgs, match=match):
        parse_build_args(FN, args(**over))


def test_missing_gatekeeper_object_and_wrong_function() -> None:
    a = args()
    del a["gatekeeper"]
    with pytest.raises(BadBuildArgs, match="gatekeeper"):
        parse_build_args(FN, a)
    with pytest.raises(BadBuildArgs, match="not a build function"):
        parse_build_args("merger:merge", args())


def test_free_text_values_are_data() -> None:
    hostile = "$(touch /tmp/x); `id` 'q' \"d\"\nnext"
    spec = parse_build_args(FN, args(ZUUL_CHANGE_IDS=hostile, MESSAGE=hostile))
    assert spec.params["ZUUL_CHANGE_IDS"] == hostile


def test_parse_zuul_changes() -> None:
    assert parse_zuul_changes("") == []
    assert parse_zuul_changes("a/b:stable/1.0:refs/changes/01/1/2^c:master:refs/changes/02/2/1") == [
        ChangeRef("a/b", "stable/1.0", "refs/changes/01/1/2"),
        ChangeRef("c", "master", "refs/changes/02/2/1")]


def test_default_log_path_for_changes_and_refs() -> None:
    p = {"ZUUL_PIPELINE": "check", "ZUUL_CHANGE": "7", "ZUUL_PATCHSET": "2"}
    assert default_log_path(p, "job", "abcdef123456") == "7/7/2/check/job/abcdef1"
    p = {"ZUUL_PIPELINE": "post", "ZUUL_NEWREV": "deadbeef00"}
    assert default_log_path(p, "job", "abcdef123456") == "de/deadbeef00/post/job/abcdef1"


@pytest.mark.parametrize("bad", ["", "/", "a//b", "a/./b", "../a", "a/.."])
def test_check_log_path_rejects(bad: str) -> None:
    with pytest.raises(BadBuildArgs):
        check_log_path(bad)
