"""Payload encoding between scheduler, merger and workers (no sockets)."""

from __future__ import annotations

import json

import pytest

from gatekeeper.gearman import admin
from gatekeeper.gearman.launcher import PRIORITY, build_arguments
from gatekeeper.gearman.protocol import build_function, decode, encode, stop_function
from gatekeeper.interfaces import BuildRequest, MergeItem, MergeRequest
from gatekeeper.merger.payload import (
    merge_args,
    merge_result,
    parse_merge_args,
    parse_merge_result,
)
from gatekeeper.model.events import MergeCompleted


def test_build_arguments_keep_zuul_parameters_at_top_level():
    req = BuildRequest("u1", "tempest", "jammy", {"ZUUL_UUID": "u1", "ZUUL_REF": "refs/x",
                                                 "OWN": "v"},
                       precedence="low", timeout=60, run="run.sh", artifacts=("a",),
                       projects=("p",), hold_on_failure=False)
    args = json.loads(encode(build_arguments(req)))
    assert args["ZUUL_UUID"] == "u1" and args["ZUUL_REF"] == "refs/x" and args["OWN"] == "v"
    assert args["gatekeeper"] == {"job": "tempest", "label": "jammy", "timeout": 60,
                                  "run": "run.sh", "artifacts": ["a"], "projects": ["p"],
                                  "hold_on_failure": False, "failure_output": []}
    assert build_function("tempest", "jammy") == "build:tempest:jammy"
    assert build_function("tempest") == "build:tempest"
    assert stop_function("w1") == "stop:w1"
    assert set(PRIORITY) == {"high", "normal", "low"}


def test_merge_payload_round_trip():
    req = MergeRequest("m", (MergeItem("p", "master"),
                             MergeItem("p", "master", 3, 2, "refs/changes/03/3/2",
                                       merge_mode="cherry-pick")), "refs/gatekeeper/master/Zm")
    assert parse_merge_args(decode(encode(merge_args(req)))) == req


@pytest.mark.parametrize("args,msg", [
    ({"items": {}}, "items must be a list"),
    ({"items": [1]}, "not an object"),
    ({"items": [{"project": "p", "branch": ""}]}, "branch"),
    ({"items": [{"project": "p", "branch": "m", "number": "3"}]}, "number"),
    ({"items": [{"project": "p", "branch": "m", "number": True}]}, "number"),
    ({"items": [{"project": "p", "branch": "m", "ref": 5}]}, "ref"),
    ({"uuid": 5, "items": []}, "strings"),
])
def test_merge_args_errors_name_the_problem(args, msg):
    with pytest.raises(ValueError, match=msg):
        parse_merge_args(args)


def test_merge_result_round_trip_and_url_only_when_merged():
    ok = MergeCompleted("m", True, {"p": "a" * 40}, "refs/gatekeeper/master/Zm")
    back = parse_merge_result("m", decode(encode(merge_result(ok, "git://127.0.0.1:9418"))))
    assert back == MergeCompleted("m", True, {"p": "a" * 40}, "refs/gatekeeper/master/Zm",
                                  url="git://127.0.0.1:9418")
    bad = MergeCompleted("m", False, conflict_files=("a",), conflict_change="3,2")
    assert parse_merge_result("m", merge_result(bad, "git://x/")) == bad
    with pytest.raises(ValueError):
        parse_merge_result("m", {"commits": ["x"]})


def test_decode_rejects_non_objects():
    assert decode(b"") == {}
    with pytest.raises(ValueError):
        decode(b"[1]")


def test_admin_command_is_one_line():
    with pytest.raises(ValueError):
        admin.command(admin.AdminTarget("127.0.0.1", 1), "status\nshutdown")


def test_zuul_url_has_no_trailing_slash(tmp_path):
    # Job scripts fetch "$ZUUL_URL/$ZUUL_PROJECT"; git daemon refuses "//".
    from gatekeeper.merger.merger import Merger
    from gatekeeper.merger.service import MergerService

    m = Merger(tmp_path / "g", "/nowhere", tmp_path / "p")
    assert MergerService(m, "127.0.0.1", 1, "git://127.0.0.1:9418/").zuul_url == \
        "git://127.0.0.1:9418"
    assert MergerService(m, "127.0.0.1", 1, None).zuul_url is None
