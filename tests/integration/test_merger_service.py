"""merger:merge over Gearman end to end, and git daemon serving the result."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import gear
import pytest

from gatekeeper import cli
from gatekeeper.gearman.mergeclient import GearmanMerger
from gatekeeper.gearman.nodelay import NoDelayClient
from gatekeeper.interfaces import MergeItem, MergeRequest
from gatekeeper.merger.gitdaemon import GitDaemon
from gatekeeper.merger.merger import Merger
from gatekeeper.merger.service import MergerService
from gatekeeper.model.events import MergeCompleted
from gatekeeper.netutil import free_port
from tests.fixtures.gearman_workers import EventLog
from tests.fixtures.git_upstream import Upstream, change_ref, git, read_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def upstream(tmp_path):
    up = Upstream(tmp_path / "upstream")
    up.create_project("org/demo", {"a.txt": "a\n"})
    up.create_project("org/lib", {"lib.py": "x = 1\n"})
    return up


@pytest.fixture
def daemon(tmp_path):
    d = GitDaemon(tmp_path / "publish", log_file=tmp_path / "git-daemon.log").start()
    yield d
    d.stop()


@pytest.fixture
def service(tmp_path, upstream, daemon, gearman_server):
    merger = Merger(tmp_path / "git", str(upstream.root), tmp_path / "publish",
                    "Gatekeeper", "gk@example.com")
    svc = MergerService(merger, gearman_server.host, gearman_server.port, daemon.url,
                        name="merger-test").start()
    assert svc.wait_for_server(10)
    yield svc
    svc.stop()


@pytest.fixture
def events():
    return EventLog()


@pytest.fixture
def client(gearman_server, events, service):
    c = GearmanMerger(gearman_server.host, gearman_server.port, events).start()
    assert c.wait_for_server(10)
    yield c
    c.stop()


def item(number, ps=1, project="org/demo"):
    return MergeItem(project, "master", number, ps, change_ref(number, ps))


def test_merge_over_gearman_and_fetch_through_git_daemon(tmp_path, upstream, client, events,
                                                          daemon):
    upstream.add_change("org/demo", 1, 1, {"one.txt": "1\n"})
    upstream.add_change("org/demo", 2, 1, {"two.txt": "2\n"})
    req = MergeRequest("m1", (MergeItem("org/demo", "master"), item(1), item(2)))
    client.merge(req)
    done = events.wait_for(MergeCompleted, "m1")[0]
    assert done.merged, done
    assert done.ref == "refs/gatekeeper/master/Zm1"
    assert done.url == daemon.url == f"git://127.0.0.1:{daemon.port}"
    # A worker's view: git fetch $ZUUL_URL/$ZUUL_PROJECT $ZUUL_REF.
    ws = tmp_path / "workspace"
    ws.mkdir()
    git(ws, "init", "--quiet")
    git(ws, "fetch", "--quiet", done.url + "/org/demo", done.ref)
    assert git(ws, "rev-parse", "FETCH_HEAD") == done.commits["org/demo"]
    assert read_tree(ws, "FETCH_HEAD") == {"a.txt": "a\n", "one.txt": "1\n", "two.txt": "2\n"}
    # Branches are served too.
    git(ws, "fetch", "--quiet", done.url + "/org/demo", "refs/heads/master")
    assert git(ws, "rev-parse", "FETCH_HEAD") == git(upstream.bare("org/demo"), "rev-parse",
                                                      "master")


def test_conflict_over_gearman(upstream, client, events):
    upstream.add_change("org/demo", 3, 1, {"a.txt": "three\n"})
    upstream.add_change("org/demo", 4, 2, {"a.txt": "four\n"})
    client.merge(MergeRequest("m2", (item(3), item(4, 2))))
    done = events.wait_for(MergeCompleted, "m2")[0]
    assert not done.merged
    assert done.conflict_files == ("a.txt",) and done.conflict_change == "4,2"
    assert done.url is None


def _raw_job(gearman_server, function, payload):
    c = NoDelayClient("raw")
    try:
        c.addServer(gearman_server.host, gearman_server.port)
        c.waitForServer(10)
        job = gear.TextJob(function, payload)
        c.submitJob(job)
        deadline = time.monotonic() + 20
        while not job.complete:
            assert time.monotonic() < deadline, "merger did not answer"
            time.sleep(0.01)
        return job
    finally:
        c.shutdown()


@pytest.mark.parametrize("payload,expect", [
    ("not json at all", "bad request"),
    ("[1, 2]", "bad request"),
    (json.dumps({"uuid": "x", "items": "nope"}), "items must be a list"),
    (json.dumps({"uuid": "x", "items": [{"project": "org/demo"}]}), "branch"),
    (json.dumps({"uuid": "x", "items": [{"project": "org/demo", "branch": "master",
                                         "evil": 1}]}), "unknown keys"),
    (json.dumps({"uuid": "x", "items": [{"project": "/etc", "branch": "master"}]}),
     "invalid project name"),
])
def test_bad_payloads_answered_and_service_survives(gearman_server, upstream, client, events,
                                                    payload, expect):
    job = _raw_job(gearman_server, "merger:merge", payload)
    assert not job.failure
    result = json.loads(job.data[-1])
    assert result["merged"] is False and expect in result["error"]
    bad_update = _raw_job(gearman_server, "merger:update", json.dumps({"projects": "x"}))
    assert "bad request" in json.loads(bad_update.data[-1])["error"]
    # Still serving.
    client.merge(MergeRequest("after", (MergeItem("org/demo", "master"),)))
    assert events.wait_for(MergeCompleted, "after")[0].merged


def test_unexpected_failure_is_work_fail_and_merge_error(service, client, events, monkeypatch):
    def explode(*a, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.merger, "merge", explode)
    client.merge(MergeRequest("boom", (MergeItem("org/demo", "master"),)))
    done = events.wait_for(MergeCompleted, "boom")[0]
    assert not done.merged and done.error == "the merger failed"
    monkeypatch.undo()
    client.merge(MergeRequest("ok", (MergeItem("org/demo", "master"),)))
    assert events.wait_for(MergeCompleted, "ok")[0].merged


def test_update_over_gearman_mirrors_branches(tmp_path, upstream, client, service):
    new = upstream.advance("org/lib", {"lib.py": "x = 2\n"})
    client.update(["org/lib"])
    pub = tmp_path / "publish" / "org/lib"
    deadline = time.monotonic() + 20
    while True:
        if (pub / "HEAD").exists():
            proc = subprocess.run(["git", "rev-parse", "--verify", "-q", "refs/heads/master"],
                                  cwd=pub, capture_output=True, text=True)
            if proc.stdout.strip() == new:
                break
        assert time.monotonic() < deadline, "update did not reach the publish repo"
        time.sleep(0.05)


def test_merger_lost_without_answer_gives_error(gearman_server, events, tmp_path):
    """A merger that dies mid-merge: the request ends (never hangs)."""
    from tests.fixtures.gearman_workers import ScriptedWorker

    def die(w, job):
        w.crash()

    c = GearmanMerger(gearman_server.host, gearman_server.port, events,
                      submit_timeout=10).start()
    w = ScriptedWorker(gearman_server.host, gearman_server.port, "dying-merger",
                       ["merger:merge"], die)
    try:
        assert c.wait_for_server(10)
        w.wait_registered(gearman_server.host, gearman_server.port, ["merger:merge"])
        c.merge(MergeRequest("lost", (MergeItem("org/demo", "master"),)))
        if gearman_server.kind == "gearmand":
            # gearmand re-queues it: a new merger picks it up.
            merger = Merger(tmp_path / "git", str(tmp_path / "nowhere"), tmp_path / "pub")
            svc = MergerService(merger, gearman_server.host, gearman_server.port, None).start()
            try:
                done = events.wait_for(MergeCompleted, "lost")[0]
            finally:
                svc.stop()
            assert not done.merged and "git clone failed" in done.error
        else:
            done = events.wait_for(MergeCompleted, "lost")[0]
            assert not done.merged and done.error == "the merger failed"
        assert len(events.of(MergeCompleted, "lost")) == 1
    finally:
        w.stop()
        c.stop()


def test_git_daemon_stop_ends_the_process_group(tmp_path):
    d = GitDaemon(tmp_path / "pub").start()
    port, pid = d.port, d._proc.pid
    d.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_gearman_command_serves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gatekeeper.cli", "gearman", "--port",
                             str(port)], stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        c = NoDelayClient("probe")
        c.addServer("127.0.0.1", port)
        c.waitForServer(20)
        c.shutdown()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def merger_config(tmp_path, gear_port: int, url_base: str, daemon: str, extra: str = "") -> str:
    cfg = tmp_path / "gatekeeper.yaml"
    cfg.write_text(f"""\
gerrit: {{server: 127.0.0.1, user: gk, private_key: {tmp_path}/gerrit_key}}
gearman: {{server: 127.0.0.1, port: {gear_port}}}
scheduler: {{layout: layout.yaml}}
merger:
  git_url_base: {url_base}
  git_dir: {tmp_path}/cmd-git
  publish_dir: {tmp_path}/cmd-pub
  git_daemon: {daemon}
{extra}""")
    return str(cfg)


def test_merger_command_user_errors(capsys, tmp_path):
    cfg = merger_config(tmp_path, 4730, "/x", "false")
    assert cli.main(["merger", "-c", cfg]) == 2
    assert "merger.url must say where workers fetch" in capsys.readouterr().err
    cfg = merger_config(tmp_path, 4730, "/x", "127.0.0.1:9418",
                        f"  git_private_key: {tmp_path}/missing\n")
    assert cli.main(["merger", "-c", cfg]) == 2
    assert f"merger.git_private_key: {tmp_path}/missing: no such file" in capsys.readouterr().err


def test_merger_command_end_to_end(tmp_path, upstream, gear_server, events):
    """``gatekeeper merger -c CONFIG`` as a process: merges over Gearman, serves via git daemon."""
    upstream.add_change("org/demo", 9, 1, {"nine.txt": "9\n"})
    gd_port = free_port()
    cfg = merger_config(tmp_path, gear_server.port, str(upstream.root), f"127.0.0.1:{gd_port}")
    argv = [sys.executable, "-m", "gatekeeper.cli", "merger", "-c", cfg, "--name", "cmd-merger"]
    with open(tmp_path / "merger.log", "wb") as log:
        proc = subprocess.Popen(argv, stderr=log, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": os.getcwd()})
    c = GearmanMerger(gear_server.host, gear_server.port, events).start()
    try:
        assert c.wait_for_server(10)
        c.merge(MergeRequest("cmd", (MergeItem("org/demo", "master"), item(9))))
        done = events.wait_for(MergeCompleted, "cmd", timeout=30)[0]
        assert done.merged and done.url == f"git://127.0.0.1:{gd_port}"
        ws = tmp_path / "ws"
        ws.mkdir()
        git(ws, "init", "--quiet")
        git(ws, "fetch", "--quiet", f"{done.url}/org/demo", done.ref)
        assert "nine.txt" in read_tree(ws, "FETCH_HEAD")
    finally:
        c.stop()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 0
    # git daemon went with it.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gd_port), timeout=1).close()


def test_gearman_port_in_use_is_a_clear_error(capsys):
    from gatekeeper.gearman.server import EmbeddedGearmanServer

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match="cannot listen"):
            EmbeddedGearmanServer("127.0.0.1", port).start()
        assert cli.main(["gearman", "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
