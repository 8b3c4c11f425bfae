"""The merger fetches over ssh:// (as from Gerrit) with our key and known_hosts."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from gatekeeper.interfaces import MergeItem
from gatekeeper.merger.merger import Merger
from tests.fixtures.git_upstream import Upstream, change_ref, read_tree

pytestmark = pytest.mark.integration


def test_merge_over_ssh_verifies_the_host_key(tmp_path, sshd_node, client_key):
    up = Upstream(tmp_path / "upstream")
    up.create_project("org/demo", {"a.txt": "a\n"})
    up.add_change("org/demo", 1, 1, {"b.txt": "b\n"})
    base = f"ssh://{sshd_node.username}@127.0.0.1:{sshd_node.port}{up.root}/"
    known = tmp_path / "known_hosts"
    known.write_text(sshd_node.known_hosts_line() + "\n")
    items = [MergeItem("org/demo", "master"),
             MergeItem("org/demo", "master", 1, 1, change_ref(1, 1))]

    merger = Merger(tmp_path / "git", base, tmp_path / "pub", private_key=str(client_key),
                    known_hosts=str(known))
    done = merger.merge(items, uuid="ssh")
    merger.close()
    assert done.merged, done
    assert read_tree(tmp_path / "pub" / "org/demo", done.ref) == {"a.txt": "a\n", "b.txt": "b\n"}

    # A host key we do not know: refused (no prompt, no hang), clear error.
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd_node.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIB6sF1Qz7m3y5yJQv0Yc2s9m1bWQ1k3O6o6mF2xJ8kq5\n")
    strict = Merger(tmp_path / "git2", base, tmp_path / "pub2", private_key=str(client_key),
                    known_hosts=str(other))
    refused = strict.merge(items, uuid="mitm")
    strict.close()
    assert not refused.merged
    assert "git clone failed" in refused.error
    assert "Host key verification failed" in refused.error
    assert "PRIVATE KEY" not in refused.error


def test_without_known_hosts_the_host_key_is_pinned_on_first_use(tmp_path, sshd_node,
                                                                 client_key):
    up = Upstream(tmp_path / "upstream")
    up.create_project("org/demo", {"a.txt": "a\n"})
    base = f"ssh://{sshd_node.username}@127.0.0.1:{sshd_node.port}{up.root}/"
    merger = Merger(tmp_path / "git", base, tmp_path / "pub", private_key=str(client_key))
    assert merger.merge([MergeItem("org/demo", "master")], uuid="first").merged
    pinned = tmp_path / "git" / "ssh_known_hosts"
    assert sshd_node.host_key_line().split()[1] in pinned.read_text()
    # The host key changes (or someone is in the middle): the next connection
    # is refused. (Fetches share one connection, whose key was checked when it
    # was made; close() ends it, as a merger restart or an idle minute would.)
    pinned.write_text(f"[127.0.0.1]:{sshd_node.port} ssh-ed25519 "
                      "AAAAC3NzaC1lZDI1NTE5AAAAIB6sF1Qz7m3y5yJQv0Yc2s9m1bWQ1k3O6o6mF2xJ8kq5\n")
    merger.close()
    refused = merger.merge([MergeItem("org/demo", "master")], uuid="second")
    merger.close()
    assert not refused.merged and "git fetch failed" in refused.error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent, init, reaps it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def emulator_merger(tmp_path, gerrit_emulator, monkeypatch):
    """A merger fetching from the Gerrit emulator over SSH, and a count of
    the SSH connections the emulator accepted."""
    from gatekeeper.sim.gerrit import server

    setup = gerrit_emulator
    emu = setup.emu
    connections = []
    real = server._Transport.__init__

    def counting(self, sock):
        connections.append(sock)
        real(self, sock)
    monkeypatch.setattr(server._Transport, "__init__", counting)
    base = f"ssh://gatekeeper@{emu.host}:{emu.port}/"

    def make(git_dir="git"):
        return Merger(tmp_path / git_dir, base, tmp_path / "pub", private_key=str(setup.key),
                      known_hosts=str(setup.known_hosts))
    return emu, make, connections


def test_fetches_share_one_ssh_connection_until_close(emulator_merger):
    emu, make, connections = emulator_merger
    merger = make()
    try:
        results = []
        for n in range(3):
            number = emu.create_change("org/project", subject=f"c{n}",
                                       files={f"f{n}.txt": f"{n}\n"})
            ref = f"refs/changes/{number % 100:02d}/{number}/1"
            results.append(merger.merge([MergeItem("org/project", "master", number, 1, ref)],
                                        uuid=f"s{n}"))
            assert results[-1].merged, results[-1]
        # clone + three fetches: one handshake
        assert len(connections) == 1
        sockets = merger.mux.sockets()
        assert len(sockets) == 1
        pid = merger.mux.master_pid(sockets[0])
        assert pid is not None and _alive(pid)
    finally:
        merger.close()
    assert merger.mux.sockets() == []
    assert _wait_gone(pid), "the ssh master outlived close()"
    # Used again after close: a new connection, ended by the next close.
    number = emu.create_change("org/project", subject="later", files={"l.txt": "l\n"})
    assert merger.merge([MergeItem("org/project", "master", number, 1,
                                   f"refs/changes/{number % 100:02d}/{number}/1")],
                        uuid="later").merged
    assert len(connections) == 2
    pid = merger.mux.master_pid(merger.mux.sockets()[0])
    merger.close()
    assert pid is not None and _wait_gone(pid)


def test_a_killed_mergers_ssh_master_is_ended_by_the_next_one(emulator_merger):
    emu, make, connections = emulator_merger
    first = make()
    assert first.merge([MergeItem("org/project", "master")], uuid="a").merged
    pid = first.mux.master_pid(first.mux.sockets()[0])
    assert pid is not None
    # kill -9 of the merger: no close(). The master is not our child (ssh
    # detached it), so it would live on until idle; the next merger on the
    # same git_dir ends it as it starts.
    del first
    second = make()
    try:
        assert _wait_gone(pid), "a stale ssh master survived the next merger's start"
        assert second.mux.sockets() == []
        assert second.merge([MergeItem("org/project", "master")], uuid="b").merged
    finally:
        second.close()


def test_the_shared_connection_uses_only_our_key_and_known_hosts(emulator_merger):
    emu, make, connections = emulator_merger
    merger = make()
    ssh = merger.env["GIT_SSH_COMMAND"]
    merger.close()
    for option in ("IdentitiesOnly=yes", "StrictHostKeyChecking=yes", "BatchMode=yes",
                   "ControlMaster=auto", "ControlPersist="):
        assert option in ssh
    # the control sockets live in a private directory of ours
    st = merger.mux.dir.stat()
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700


def _git_calls(monkeypatch):
    import gatekeeper.merger.merger as merger_mod
    import gatekeeper.merger.publish as publish_mod
    import gatekeeper.merger.repo as repo_mod
    calls: list[str] = []
    real = repo_mod.run_git

    def counting(args, *a, **kw):
        calls.append(args[0])
        return real(args, *a, **kw)
    for mod in (repo_mod, publish_mod, merger_mod):
        monkeypatch.setattr(mod, "run_git", counting)
    return calls


def test_a_fetch_that_would_bring_nothing_is_not_run(emulator_merger, monkeypatch):
    emu, make, connections = emulator_merger
    merger = make()
    try:
        number = emu.create_change("org/project", subject="c", files={"c.txt": "c\n"})
        item = MergeItem("org/project", "master", number, 1,
                         f"refs/changes/{number % 100:02d}/{number}/1")
        assert merger.merge([item], uuid="check").merged  # as the check pipeline does
        calls = _git_calls(monkeypatch)
        # The approval: same patchset, nothing moved. The server is asked for
        # its branch and tag tips on the merger's own connection; no git fetch.
        gate = merger.merge([item], uuid="gate")
        assert gate.merged
        assert calls == ["update-ref"], calls
        assert merger.probe.probes == 1
        # A branch moved: the probe sees it, the fetch runs, the state is on the new tip.
        calls.clear()
        emu.push_branch_commit("org/project", "master", {"moved.txt": "m\n"})
        moved = merger.merge([item], uuid="moved")
        assert moved.merged and calls.count("fetch") == 1, calls
        tree = read_tree(merger.publish_root / "org/project", moved.ref)
        assert tree["moved.txt"] == "m\n" and tree["c.txt"] == "c\n"
        # A new tag (or branch) is a change too.
        calls.clear()
        subprocess.run(["git", "tag", "v1", "master"], cwd=emu.project_path("org/project"),
                       check=True, capture_output=True)
        assert merger.merge([item], uuid="tag").merged and calls.count("fetch") == 1
        clone = merger.git_dir / "org/project"
        assert subprocess.run(["git", "rev-parse", "refs/tags/v1"], cwd=clone,
                              capture_output=True, check=False).returncode == 0
        # ... and once fetched, tags do not make every later probe differ.
        calls.clear()
        assert merger.merge([item], uuid="quiet").merged and "fetch" not in calls, calls
        # one connection for git (ControlMaster), one for the probe; none per merge
        assert len(connections) == 2
    finally:
        merger.close()


def test_the_probe_never_trusts_an_unknown_host_key(emulator_merger, tmp_path):
    emu, make, connections = emulator_merger
    merger = make()
    number = emu.create_change("org/project", subject="c", files={"c.txt": "c\n"})
    item = MergeItem("org/project", "master", number, 1,
                     f"refs/changes/{number % 100:02d}/{number}/1")
    try:
        assert merger.merge([item], uuid="one").merged
        assert merger.probe.refs("org/project") is not None
    finally:
        merger.close()
    # Another key in known_hosts (the server changed, or someone is in between):
    # the probe gets no answer, git refuses, the merge fails with git's reason.
    merger.probe.known_hosts = str(tmp_path / "wrong_known_hosts")
    (tmp_path / "wrong_known_hosts").write_text(
        f"[{emu.host}]:{emu.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIB6sF1Qz7m3y5yJQv0Yc2s9m1bWQ1k3O6o6mF2xJ8kq5\n")
    assert merger.probe.refs("org/project") is None
    merger.close()


def test_a_control_dir_removed_by_a_temp_cleaner_is_made_again(emulator_merger):
    import shutil

    emu, make, connections = emulator_merger
    merger = make()
    try:
        assert merger.merge([MergeItem("org/project", "master")], uuid="a").merged
        pid = merger.mux.master_pid(merger.mux.sockets()[0])
        shutil.rmtree(merger.mux.dir)  # the socket goes too; the master lives on
        number = emu.create_change("org/project", subject="c", files={"c.txt": "c\n"})
        done = merger.merge([MergeItem("org/project", "master", number, 1,
                                       f"refs/changes/{number % 100:02d}/{number}/1")],
                            uuid="b")
        assert done.merged, done
        assert len(merger.mux.sockets()) == 1
    finally:
        merger.close()
    # The orphaned master cannot be told to exit: it ends after ControlPersist
    # idle seconds (or now, with the emulator's connections, at teardown).
    assert pid is not None
