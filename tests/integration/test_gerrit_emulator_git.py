"""The emulator's git side: clone/fetch/push over ssh:// with the system ssh,
and submit doing real merges (fast-forward, merge commit, conflict)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.gerrit_emulator import EmulatorSetup, StreamReader, connect, run

pytestmark = pytest.mark.integration


def git(*args: str, cwd: Path | None = None, setup: EmulatorSetup | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd or "/nonexistent"),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
           "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
    if setup is not None:
        env["GIT_SSH_COMMAND"] = setup.ssh_command()
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def url(setup: EmulatorSetup, user: str = "alice", project: str = "org/project") -> str:
    return f"ssh://{user}@127.0.0.1:{setup.emu.port}/{project}"


def test_clone_and_fetch_change_refs(gerrit_emulator: EmulatorSetup, tmp_path: Path) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Add b", files={"src/b.txt": "b\n"},
                          message_body="Why b matters.", depends_on=["I0123456789abcdef"])
    emu.add_patchset(n, files={"src/b.txt": "b2\n"})
    work = tmp_path / "work"
    git("clone", url(gerrit_emulator) + ".git", str(work), setup=gerrit_emulator)
    assert (work / "README").read_text() == "hello\n"
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == emu.branch_head("org/project")
    for ps, content in ((1, "b\n"), (2, "b2\n")):
        ref = f"refs/changes/{n:02d}/{n}/{ps}"
        git("fetch", "origin", ref, cwd=work, setup=gerrit_emulator)
        git("checkout", "-q", "FETCH_HEAD", cwd=work)
        assert (work / "src/b.txt").read_text() == content
    msg = git("log", "-1", "--format=%B", cwd=work).stdout
    assert msg == ("Add b\n\nWhy b matters.\n\nDepends-On: I0123456789abcdef\n"
                   f"Change-Id: {emu.change_id(n)}\n\n")
    row = emu.get_change(n)
    assert row["currentPatchSet"]["revision"] == git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert [p["kind"] for p in row["patchSets"]] == ["REWORK", "REWORK"]
    files = {f["file"]: f for f in row["currentPatchSet"]["files"]}
    assert files["src/b.txt"]["type"] == "ADDED" and "/COMMIT_MSG" in files
    # Also "git-upload-pack 'org/project'" without the leading slash (old clients).
    client = connect(emu, gerrit_emulator.key)
    try:
        status, out, err = run(client, "git-upload-pack 'nope/missing.git'")
        assert status == 1 and "project nope/missing not found" in err
    finally:
        client.close()


def test_submit_fast_forward_and_merge_commit(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    base = emu.branch_head("org/project")
    a = emu.create_change("org/project", subject="Change A", files={"a2.txt": "a\n"})
    b = emu.create_change("org/project", subject="Change B", files={"b2.txt": "b\n"})
    reader = StreamReader(emu, key, args="-s ref-updated -s change-merged")
    client = connect(emu, key, "gatekeeper")
    try:
        assert emu.wait_for_stream_clients(1, 10)
        emu.approve(a)
        emu.approve(b)
        assert run(client, f"gerrit review {a},1 --verified 2 --submit")[0] == 0
        rev_a = emu.get_change(a)["currentPatchSet"]["revision"]
        assert emu.branch_head("org/project") == rev_a  # fast-forward
        ev = reader.next()
        assert ev["type"] == "ref-updated"
        assert ev["refUpdate"] == {"oldRev": base, "newRev": rev_a,
                                   "refName": "refs/heads/master", "project": "org/project"}
        ev = reader.next()
        assert ev["type"] == "change-merged" and ev["newRev"] == rev_a
        assert ev["submitter"]["username"] == "gatekeeper"
        assert ev["change"]["status"] == "MERGED"
        assert emu.submit(b) == (True, None)
        head = emu.branch_head("org/project")
        repo = emu.project_path("org/project")
        parents = git("--git-dir", str(repo), "rev-list", "--parents", "-n1", head).stdout.split()
        assert parents[1:] == [rev_a, emu.get_change(b)["currentPatchSet"]["revision"]]
        log = emu.git_log("org/project")
        assert log[0] == 'Merge "Change B"' and set(log[1:3]) == {"Change A", "Change B"}
        assert reader.next()["refUpdate"]["newRev"] == head
        assert reader.next()["newRev"] == head
        tree = git("--git-dir", str(repo), "ls-tree", "--name-only", head).stdout.split()
        assert {"a2.txt", "b2.txt", "README"} <= set(tree)
    finally:
        reader.close()
        client.close()


def test_conflicting_submit_fails_like_gerrit(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    n = emu.create_change("org/project", subject="Edit README", files={"README": "mine\n"})
    emu.approve(n)
    pushed = emu.push_branch_commit("org/project", "master", {"README": "theirs\n"})
    client = connect(emu, key, "gatekeeper")
    try:
        status, out, err = run(client, f"gerrit review {n},1 --verified 2 --submit")
        assert status == 1
        assert "could not be merged due to a path conflict" in err
        assert err.endswith("fatal: one or more reviews failed; review output above\n")
    finally:
        client.close()
    assert emu.branch_head("org/project") == pushed
    assert emu.status(n) == "NEW"
    assert emu.votes(n)["Verified"] == {"gatekeeper": 2}  # votes land even if submit fails
    # A rebased patch set that resolves the conflict merges.
    emu.add_patchset(n, files={"README": "theirs\nmine\n"}, rebase=True)
    emu.approve(n)
    assert emu.submit(n) == (True, None)
    assert emu.branch_head("org/project") == emu.get_change(n)["currentPatchSet"]["revision"]


def test_dependent_changes_submit_in_order(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    parent = emu.create_change("org/project", subject="Parent")
    child = emu.create_change("org/project", subject="Child", parent_change=parent)
    emu.approve(parent)
    emu.approve(child)
    ok, err = emu.submit(child)
    assert not ok and "Depends on change that was not submitted" in err
    row = emu.get_change(child)
    assert row["dependsOn"][0]["number"] == parent
    assert emu.get_change(parent)["neededBy"][0]["number"] == child
    assert emu.submit(parent) == (True, None)
    assert emu.submit(child) == (True, None)
    assert emu.git_log("org/project")[:2] == ["Child", "Parent"]


def test_new_patchset_resets_votes(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Votes")
    emu.approve(n)
    assert emu.add_patchset(n, files={"x": "y\n"}) == 2
    assert emu.votes(n) == {}
    assert emu.votes(n, 1) == {"Code-Review": {"core": 2}, "Workflow": {"core": 1}}
    with pytest.raises(Exception, match="outdated patch set 1"):
        emu.review(n, 1, "core", {"Code-Review": 1})
    ok, err = emu.submit(n)
    assert not ok and "Code-Review" in err


def test_direct_push_emits_ref_updated(gerrit_emulator: EmulatorSetup, tmp_path: Path) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    work = tmp_path / "work"
    git("clone", url(gerrit_emulator, "gatekeeper"), str(work), setup=gerrit_emulator)
    (work / "pushed.txt").write_text("p\n")
    git("add", "pushed.txt", cwd=work)
    git("commit", "-q", "-m", "Pushed directly", cwd=work)
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        old = emu.branch_head("org/project")
        git("push", "origin", "HEAD:refs/heads/master", cwd=work, setup=gerrit_emulator)
        new = git("rev-parse", "HEAD", cwd=work).stdout.strip()
        ev = reader.next()
        assert ev["type"] == "ref-updated" and ev["submitter"]["username"] == "gatekeeper"
        assert ev["refUpdate"] == {"oldRev": old, "newRev": new, "refName": "refs/heads/master",
                                   "project": "org/project"}
        # Creating and deleting a branch: all-zero old/new revisions, as Gerrit.
        git("push", "origin", "HEAD:refs/heads/feature", cwd=work, setup=gerrit_emulator)
        assert reader.next()["refUpdate"] == {"oldRev": "0" * 40, "newRev": new,
                                              "refName": "refs/heads/feature",
                                              "project": "org/project"}
        git("push", "origin", ":refs/heads/feature", cwd=work, setup=gerrit_emulator)
        ev = reader.next()
        assert (ev["refUpdate"]["oldRev"], ev["refUpdate"]["newRev"]) == (new, "0" * 40)
        # Only branches, tags and refs/for/* may be pushed.
        proc = git("push", "origin", "HEAD:refs/changes/01/1/1", cwd=work,
                   setup=gerrit_emulator, check=False)
        assert proc.returncode != 0 and "not supported" in proc.stderr
        # alice may fetch but has no push right.
        git("remote", "set-url", "origin", url(gerrit_emulator, "alice"), cwd=work)
        proc = git("push", "origin", "HEAD:refs/heads/other", cwd=work, setup=gerrit_emulator,
                   check=False)
        assert proc.returncode != 0 and "push not permitted" in proc.stderr
    finally:
        reader.close()


def test_ref_advertisement_reader_that_hangs_up(gerrit_emulator: EmulatorSetup) -> None:
    """A client that reads the v0 ref advertisement, sends a flush and leaves
    (what `git ls-remote` does) must not wedge the session or leak git."""
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Advertised")
    client = connect(emu, gerrit_emulator.key)
    try:
        for _ in range(3):
            chan = client.get_transport().open_session(timeout=10)
            chan.settimeout(10)
            chan.exec_command("git-upload-pack '/org/project'")
            refs = {}
            buf = b""
            while True:
                while len(buf) < 4:
                    buf += chan.recv(65536)
                size = int(buf[:4], 16)
                if size == 0:
                    break
                while len(buf) < size:
                    buf += chan.recv(65536)
                sha, _, rest = buf[4:size].partition(b" ")
                refs[rest.split(b"\0")[0].strip().decode()] = sha.decode()
                buf = buf[size:]
            chan.sendall(b"0000")
            chan.close()
            assert refs["refs/heads/master"] == emu.branch_head("org/project")
            assert refs[f"refs/changes/{n:02d}/{n}/1"] == emu.get_change(n)["currentPatchSet"][
                "revision"]
        assert run(client, "gerrit version")[0] == 0
    finally:
        client.close()


def test_change_deleting_and_modifying_files(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Shuffle",
                          files={"README": None, "src/a.txt": "a\nmore\n", "new.txt": "n\n"})
    ps = emu.get_change(n)["currentPatchSet"]
    files = {f["file"]: (f["type"], f["insertions"], f["deletions"]) for f in ps["files"]}
    assert files["README"] == ("DELETED", 0, -1)
    assert files["src/a.txt"] == ("MODIFIED", 1, 0)
    assert files["new.txt"] == ("ADDED", 1, 0)
    assert (ps["sizeInsertions"], ps["sizeDeletions"]) == (2, -1)
    emu.approve(n)
    assert emu.submit(n) == (True, None)
    repo = emu.project_path("org/project")
    tree = git("--git-dir", str(repo), "ls-tree", "-r", "--name-only", "master").stdout.split()
    assert tree == ["new.txt", "src/a.txt"]


def test_push_for_review_creates_changes_and_patchsets(gerrit_emulator: EmulatorSetup,
                                                       tmp_path: Path) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    work = tmp_path / "work"
    git("clone", url(gerrit_emulator, "gatekeeper"), str(work), setup=gerrit_emulator)
    (work / "f.txt").write_text("one\n")
    git("add", "f.txt", cwd=work)
    git("commit", "-q", "-m", "No footer", cwd=work)
    proc = git("push", "origin", "HEAD:refs/for/master", cwd=work, setup=gerrit_emulator,
               check=False)
    assert proc.returncode != 0 and "missing Change-Id in message footer" in proc.stderr
    change_id = "I" + "ab" * 20
    git("commit", "-q", "--amend", "-m", f"Add f\n\nDepends-On: I{'1' * 40}\n"
        f"Change-Id: {change_id}", cwd=work)
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        proc = git("push", "origin", "HEAD:refs/for/master%topic=feature-f", cwd=work,
                   setup=gerrit_emulator)
        ev = reader.next()
        assert ev["type"] == "patchset-created"
        n = ev["change"]["number"]
        assert f"/c/org/project/+/{n} Add f [NEW]" in proc.stderr
        assert ev["change"]["id"] == change_id and ev["change"]["topic"] == "feature-f"
        assert ev["uploader"]["username"] == "gatekeeper"
        sha1 = git("rev-parse", "HEAD", cwd=work).stdout.strip()
        assert ev["patchSet"]["revision"] == sha1
        row = emu.get_change(n)
        assert row["commitMessage"].startswith("Add f\n\nDepends-On: I111")
        # The temporary refs/for ref is gone; the change ref is there.
        refs = git("ls-remote", "origin", cwd=work, setup=gerrit_emulator).stdout
        assert "refs/for/" not in refs and f"{sha1}\trefs/changes/{n:02d}/{n}/1" in refs
        # Amend and push again: patch set 2 of the same change.
        (work / "f.txt").write_text("two\n")
        git("commit", "-q", "-a", "--amend", "--no-edit", cwd=work)
        git("push", "origin", "HEAD:refs/for/master", cwd=work, setup=gerrit_emulator)
        ev = reader.next()
        assert (ev["change"]["number"], ev["patchSet"]["number"]) == (n, 2)
        assert ev["patchSet"]["kind"] == "REWORK"
        # Pushing the same commit again: "no new changes", as Gerrit says.
        proc = git("push", "origin", "HEAD:refs/for/master", cwd=work, setup=gerrit_emulator,
                   check=False)
        assert proc.returncode != 0 and "no new changes" in proc.stderr
    finally:
        reader.close()
    emu.approve(n)
    assert emu.submit(n) == (True, None)
    assert emu.git_log("org/project")[0] == "Add f"
