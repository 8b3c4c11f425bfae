"""The speculative merger with real git repositories."""

from __future__ import annotations

import subprocess

import pytest

from gatekeeper.interfaces import MergeItem
from gatekeeper.merger.merger import Merger, check_project_name, project_url
from gatekeeper.merger.repo import git_env, scrub
from tests.fixtures.git_upstream import Upstream, change_ref, git, read_tree

pytestmark = pytest.mark.integration

BASE = {"a.txt": "one\ntwo\nthree\n", "README": "demo\n"}


@pytest.fixture
def upstream(tmp_path):
    up = Upstream(tmp_path / "upstream")
    up.create_project("org/demo", BASE, branches=("master", "stable"))
    up.create_project("org/lib", {"lib.py": "x = 1\n"})
    return up


@pytest.fixture
def merger(tmp_path, upstream):
    return Merger(tmp_path / "git", f"file://{upstream.root}", tmp_path / "publish",
                  "Gatekeeper", "gatekeeper@example.com", keep_refs=100)


def tip(project="org/demo", branch="master"):
    return MergeItem(project, branch)


def change(number, ps=1, project="org/demo", branch="master", mode="merge-resolve"):
    return MergeItem(project, branch, number, ps, change_ref(number, ps), merge_mode=mode)


def published(merger, project, ref):
    return read_tree(merger.publish_root / project, ref)


def test_three_changes_stacked_speculatively(upstream, merger):
    upstream.add_change("org/demo", 1, 1, {"one.txt": "1\n"})
    upstream.add_change("org/demo", 2, 1, {"two.txt": "2\n"})
    upstream.add_change("org/demo", 3, 1, {"a.txt": "one\ntwo\nthree\nfour\n"})
    master = git(upstream.bare("org/demo"), "rev-parse", "master")
    results = [
        merger.merge([tip(), change(1)], uuid="u1"),
        merger.merge([tip(), change(1), change(2)], uuid="u2"),
        merger.merge([tip(), change(1), change(2), change(3)], uuid="u3"),
    ]
    assert all(r.merged for r in results), results
    assert [r.ref for r in results] == [f"refs/gatekeeper/master/Zu{i}" for i in (1, 2, 3)]
    t1, t2, t3 = (published(merger, "org/demo", r.ref) for r in results)
    assert t1 == {**BASE, "one.txt": "1\n"}
    assert t2 == {**BASE, "one.txt": "1\n", "two.txt": "2\n"}
    assert t3 == {**BASE, "one.txt": "1\n", "two.txt": "2\n", "a.txt": "one\ntwo\nthree\nfour\n"}
    pub = merger.publish_root / "org/demo"
    for r in results:
        assert git(pub, "rev-parse", r.ref) == r.commits["org/demo"]
        # Built on the branch tip.
        git(pub, "merge-base", "--is-ancestor", master, r.ref)
    # The publish repository mirrors the branches too.
    assert git(pub, "rev-parse", "refs/heads/master") == master
    assert git(pub, "rev-parse", "refs/heads/stable") == master


def test_branch_tip_is_current_and_ref_name_is_respected(upstream, merger):
    upstream.add_change("org/demo", 5, 2, {"five.txt": "5\n"})
    first = merger.merge([tip(), change(5, 2)], ref_name="refs/gatekeeper/master/Zfirst")
    assert first.merged and first.ref == "refs/gatekeeper/master/Zfirst"
    new_tip = upstream.advance("org/demo", {"other.txt": "x\n"})
    again = merger.merge([tip(), change(5, 2)], uuid="later")
    assert again.merged
    pub = merger.publish_root / "org/demo"
    git(pub, "merge-base", "--is-ancestor", new_tip, again.ref)
    assert published(merger, "org/demo", again.ref)["other.txt"] == "x\n"


def test_cross_project_commits(upstream, merger):
    upstream.add_change("org/demo", 7, 1, {"seven.txt": "7\n"})
    upstream.add_change("org/lib", 8, 1, {"lib.py": "x = 2\n"})
    res = merger.merge([tip(), tip("org/lib"), change(7), change(8, project="org/lib")],
                       uuid="xp")
    assert res.merged
    assert set(res.commits) == {"org/demo", "org/lib"}
    assert published(merger, "org/lib", res.ref)["lib.py"] == "x = 2\n"
    assert "seven.txt" in published(merger, "org/demo", res.ref)


@pytest.mark.parametrize("mode", ["merge-resolve", "merge", "cherry-pick"])
def test_merge_modes(upstream, merger, mode):
    upstream.add_change("org/demo", 10, 1, {"ten.txt": "10\n"})
    upstream.advance("org/demo", {"moved.txt": "m\n"})  # no fast-forward possible
    res = merger.merge([tip(), change(10, mode=mode)], uuid=f"m-{mode}")
    assert res.merged, res
    pub = merger.publish_root / "org/demo"
    assert published(merger, "org/demo", res.ref) == {**BASE, "ten.txt": "10\n", "moved.txt": "m\n"}
    parents = git(pub, "rev-list", "--parents", "-n1", res.ref).split()[1:]
    if mode == "cherry-pick":
        assert len(parents) == 1  # linear history, original author kept
        assert git(pub, "log", "-1", "--format=%an", res.ref) == "Dev"
        assert git(pub, "log", "-1", "--format=%cn", res.ref) == "Gatekeeper"
    else:
        assert len(parents) == 2
        assert git(pub, "log", "-1", "--format=%an", res.ref) == "Gatekeeper"


def test_merge_mode_override_for_all_items(upstream, merger):
    upstream.add_change("org/demo", 11, 1, {"eleven.txt": "11\n"})
    upstream.advance("org/demo", {"moved.txt": "m\n"})
    res = merger.merge([tip(), change(11)], uuid="ov", merge_mode="cherry-pick")
    pub = merger.publish_root / "org/demo"
    assert len(git(pub, "rev-list", "--parents", "-n1", res.ref).split()) == 2


@pytest.mark.parametrize("mode", ["merge-resolve", "merge", "cherry-pick"])
def test_conflict_names_files_and_change(upstream, merger, mode):
    upstream.add_change("org/demo", 20, 1, {"a.txt": "one\nTWO\nthree\n", "README": "mine\n", "ok.txt": "ok\n"})
    upstream.add_change("org/demo", 21, 3, {"a.txt": "one\n2\nthree\n", "README": "clash\n"})
    upstream.add_change("org/demo", 22, 1, {"late.txt": "l\n"})
    res = merger.merge([tip(), change(20, mode=mode), change(21, 3, mode=mode),
                        change(22, mode=mode)], uuid=f"c-{mode}")
    assert not res.merged
    assert res.conflict_change == "21,3"
    assert res.conflict_files == ("README", "a.txt")
    assert res.error is None and res.commits == {}
    # Nothing published, and the next merge starts clean.
    assert not (merger.publish_root / "org/demo").exists() or \
        git(merger.publish_root / "org/demo", "for-each-ref", "refs/gatekeeper/") == ""
    ok = merger.merge([tip(), change(20, mode=mode), change(22, mode=mode)], uuid=f"ok-{mode}")
    assert ok.merged
    assert "late.txt" in published(merger, "org/demo", ok.ref)


def test_ref_item_tests_newrev(upstream, merger):
    new = upstream.advance("org/demo", {"post.txt": "p\n"})
    res = merger.merge([MergeItem("org/demo", "master", ref="refs/heads/master", newrev=new)],
                       uuid="post")
    assert res.merged and res.commits["org/demo"] == new


@pytest.mark.parametrize("items,ref_name,expect", [
    ([MergeItem("../evil", "master")], "", "invalid project name"),
    ([MergeItem("org/demo", "-x")], "", "invalid branch name"),
    ([MergeItem("org/demo", "master")], "not-a-ref", "not a full ref name"),
    ([MergeItem("org/demo", "nope")], "", "has no branch"),
    ([MergeItem("org/demo", "master", 1, 1, "--upload-pack=touch /tmp/x")], "", "ref name"),
    ([MergeItem("org/demo", "master", 1, 1, change_ref(1, 1), merge_mode="octopus")], "",
     "unknown merge mode"),
    ([MergeItem("org/missing", "master")], "", "git clone failed"),
    ([], "", "no items"),
])
def test_bad_requests_are_errors_not_exceptions(merger, items, ref_name, expect):
    res = merger.merge(items, ref_name=ref_name, uuid="bad")
    assert not res.merged
    assert expect in (res.error or ""), res


def test_pruning_keeps_a_bounded_number_and_age(upstream, merger):
    upstream.add_change("org/demo", 30, 1, {"p.txt": "p\n"})
    refs = [merger.merge([tip(), change(30)], uuid=f"p{i}").ref for i in range(5)]
    pub = merger.publish_root / "org/demo"
    journal = (pub / "gatekeeper-refs.log").read_text().splitlines()
    assert [line.split()[1] for line in journal] == refs
    # Age the first two by rewriting their journal stamps.
    base = int(journal[0].split()[0])
    lines = [f"{base - 10_000 if i < 2 else base} {r}\n" for i, r in enumerate(refs)]
    (pub / "gatekeeper-refs.log").write_text("".join(lines))
    merger.max_ref_age = 5_000
    merger.keep_refs = 2
    assert merger.prune(now=base + 1) == 3
    left = git(pub, "for-each-ref", "--format=%(refname)", "refs/gatekeeper/").splitlines()
    assert sorted(left) == sorted(refs[3:])
    # Branch mirrors are never pruned.
    assert git(pub, "rev-parse", "refs/heads/master")
    assert merger.prune(now=base + 1) == 0


def test_update_fetches_and_mirrors(upstream, merger):
    new = upstream.advance("org/lib", {"lib.py": "x = 3\n"})
    branches = merger.update(["org/lib"])
    assert branches == {"org/lib": {"master": new}}
    pub = merger.publish_root / "org/lib"
    assert git(pub, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/") == \
        f"refs/heads/master {new}"  # no "HEAD" branch from origin/HEAD
    assert git(pub, "symbolic-ref", "HEAD") == "refs/heads/master"


def test_names_and_urls():
    assert project_url("ssh://gk@127.0.0.1:29418/", "org/x") == "ssh://gk@127.0.0.1:29418/org/x"
    assert project_url("/srv/git", "org/x") == "/srv/git/org/x"
    for bad in ("", "/abs", "a/../b", "a//b", "x.git", "-rf", "a/./b"):
        with pytest.raises(ValueError):
            check_project_name(bad)
    assert scrub("fatal: https://bob:s3cret@host/x") == "fatal: https://bob:***@host/x"
    env = git_env("/keys/id ed25519", "/k/known_hosts")
    assert "'/keys/id ed25519'" in env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]


def test_one_fetch_leaves_no_temporary_refs_and_survives_moved_tags(upstream, merger, tmp_path):
    work = upstream.work / "org/demo"
    git(work, "tag", "-f", "v1")
    git(work, "push", "--quiet", "origin", "refs/tags/v1")
    upstream.add_change("org/demo", 40, 1, {"forty.txt": "40\n"})
    assert merger.merge([tip(), change(40)], uuid="t1").merged
    # Upstream moves the tag (force push): the next fetch must not fail.
    upstream.advance("org/demo", {"x.txt": "x\n"})
    git(work, "tag", "-f", "v1")
    git(work, "push", "--quiet", "--force", "origin", "refs/tags/v1")
    assert merger.merge([tip(), change(40)], uuid="t2").merged
    clone = tmp_path / "git" / "org/demo"
    assert git(clone, "for-each-ref", "refs/gatekeeper-fetched/") == ""
    assert git(clone, "rev-parse", "refs/tags/v1") == git(work, "rev-parse", "HEAD")


def _count_git(monkeypatch):
    """Every git process of the merger (all of them go through run_git)."""
    import gatekeeper.merger.merger as merger_mod
    import gatekeeper.merger.publish as publish_mod
    import gatekeeper.merger.repo as repo_mod
    calls: list[list[str]] = []
    real = repo_mod.run_git

    def counting(args, *a, **kw):
        calls.append(list(args))
        return real(args, *a, **kw)
    for mod in (repo_mod, publish_mod, merger_mod):
        monkeypatch.setattr(mod, "run_git", counting)
    return calls


def test_queue_builds_each_state_on_the_one_ahead(upstream, merger, monkeypatch):
    for n in range(1, 5):
        upstream.add_change("org/demo", n, 1, {f"f{n}.txt": f"{n}\n"})
    first = merger.merge([change(1), change(2), change(3)], uuid="q3")
    calls = _count_git(monkeypatch)
    nxt = merger.merge([change(1), change(2), change(3), change(4)], uuid="q4")
    assert nxt.merged
    verbs = [c[0] for c in calls]
    # One fetch (only the new ref), one merge on top of the state for q3, one push.
    assert verbs.count("merge") == 1 and verbs.count("fetch") == 1, verbs
    assert "clean" not in verbs and "checkout" not in verbs and len(calls) <= 4, calls
    pub = merger.publish_root / "org/demo"
    assert git(pub, "rev-parse", f"{nxt.ref}^1") == first.commits["org/demo"]
    assert published(merger, "org/demo", nxt.ref) == {
        **BASE, **{f"f{n}.txt": f"{n}\n" for n in range(1, 5)}}
    # A moved tip is a different state: everything is merged again on it.
    calls.clear()
    upstream.advance("org/demo", {"tip.txt": "t\n"})
    again = merger.merge([change(1), change(2), change(3), change(4)], uuid="q4b")
    assert [c[0] for c in calls].count("merge") == 4
    assert published(merger, "org/demo", again.ref)["tip.txt"] == "t\n"
    # A reset chain (change 2 left) reuses only the common prefix.
    calls.clear()
    merger.merge([change(1), change(3)], uuid="q13")
    assert [c[0] for c in calls].count("merge") == 1


def test_trees_match_the_git_cli(upstream, merger, tmp_path):
    """The reused states are the trees plain git merges give, change by change."""
    upstream.add_change("org/demo", 1, 1, {"a.txt": "zero\none\ntwo\nthree\n"})
    upstream.add_change("org/demo", 2, 1, {"a.txt": "one\ntwo\nthree\nfour\n"})
    upstream.add_change("org/demo", 3, 1, {"b.txt": "b\n"})
    results = [merger.merge([change(n) for n in range(1, k + 1)], uuid=f"t{k}")
               for k in (1, 2, 3)]
    cli = tmp_path / "cli"
    git(tmp_path, "clone", "--quiet", str(upstream.bare("org/demo")), str(cli))
    git(cli, "checkout", "--quiet", "--detach", "origin/master")
    pub = merger.publish_root / "org/demo"
    for k, res in zip((1, 2, 3), results, strict=True):
        git(cli, "fetch", "--quiet", "origin", change_ref(k, 1))
        git(cli, "-c", "user.name=x", "-c", "user.email=x@example.com", "merge", "-s",
            "resolve", "--no-edit", "--quiet", "FETCH_HEAD")
        assert git(pub, "rev-parse", f"{res.ref}^{{tree}}") == git(cli, "rev-parse", "HEAD^{tree}")


def test_ref_format_rules_are_gits():
    from gatekeeper.merger.repo import valid_ref_format
    names = ["refs/heads/master", "refs/changes/34/1234/2", "refs/heads/a.b", "refs/heads/.a",
             "refs/heads/a.lock", "refs/heads/a..b", "refs/heads//a", "refs/heads/a/",
             "refs/heads/a.", "refs/heads/a@{b", "@", "refs/heads/@", "refs/heads/a b",
             "refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a?",
             "refs/heads/a*", "refs/heads/a[b", "refs/heads/a\\b", "refs/heads/a\x01",
             "refs/heads/a\x7f", "refs/heads/é", "refs/heads/a'b", "master", "refs/x/-y",
             "refs/heads/a.lock/b", "refs/heads/-", "refs/heads/a@b", "refs/.heads/x"]
    for name in names:
        want = subprocess.run(["git", "check-ref-format", name], capture_output=True,
                              check=False).returncode == 0
        assert valid_ref_format(name) == want, name


def test_publishing_is_one_update_ref_into_a_repo_borrowing_the_clones_objects(
        upstream, merger, tmp_path, monkeypatch):
    upstream.add_change("org/demo", 1, 1, {"one.txt": "1\n"})
    upstream.add_change("org/demo", 2, 1, {"two.txt": "2\n"})
    assert merger.merge([change(1)], uuid="p1").merged
    calls = _count_git(monkeypatch)
    done = merger.merge([change(1), change(2)], uuid="p2")
    assert done.merged
    # fetch, merge, publish: no push (receive-pack, pack-objects, ...) behind it
    assert [c[0] for c in calls] == ["fetch", "merge", "update-ref"], calls
    pub = merger.publish_root / "org/demo"
    clone_objects = (tmp_path / "git" / "org/demo" / ".git" / "objects").resolve()
    assert (pub / "objects/info/alternates").read_text() == f"{clone_objects}\n"
    assert git(pub, "count-objects") == "0 objects, 0 kilobytes"
    # the branches are mirrored in the same transaction
    assert git(pub, "rev-parse", "refs/heads/stable") == git(upstream.bare("org/demo"),
                                                             "rev-parse", "stable")
    assert git(pub, "symbolic-ref", "HEAD") == "refs/heads/master"
    # what a worker fetches from the publish repository is the whole state
    work = tmp_path / "worker"
    git(tmp_path, "init", "--quiet", str(work))
    git(work, "fetch", "--quiet", str(pub), done.ref)
    assert git(work, "rev-parse", "FETCH_HEAD") == done.commits["org/demo"]
    assert git(work, "fsck", "--connectivity-only", "--no-dangling", "FETCH_HEAD") == ""


def test_gc_of_the_clone_keeps_what_is_published(upstream, tmp_path):
    merger = Merger(tmp_path / "git", f"file://{upstream.root}", tmp_path / "publish",
                    keep_refs=1)
    upstream.add_change("org/demo", 1, 1, {"one.txt": "1\n"})
    upstream.add_change("org/demo", 2, 1, {"two.txt": "2\n"})
    old = merger.merge([change(1)], uuid="g1")
    new = merger.merge([change(2)], uuid="g2")
    assert merger.prune() == 1  # keep_refs=1: g1 goes
    clone = tmp_path / "git" / "org/demo"
    # The merge commits are reachable in the clone only through the refs
    # copied from the publish repository: the harshest gc keeps exactly those.
    assert git(clone, "for-each-ref", "--format=%(refname)", "refs/gatekeeper/") == new.ref
    git(clone, "-c", "gc.reflogExpire=now", "-c", "gc.reflogExpireUnreachable=now",
        "gc", "--quiet", "--prune=now")
    assert published(merger, "org/demo", new.ref) == {**BASE, "two.txt": "2\n"}
    assert git(clone, "cat-file", "-t", new.commits["org/demo"]) == "commit"
    missing = subprocess.run(["git", "cat-file", "-e", old.commits["org/demo"]], cwd=clone,
                             capture_output=True, check=False)
    assert missing.returncode != 0  # the pruned state is really gone


def test_locks_left_by_a_killed_git_are_cleared_at_first_use(upstream, tmp_path):
    upstream.add_change("org/demo", 1, 1, {"one.txt": "1\n"})
    first = Merger(tmp_path / "git", f"file://{upstream.root}", tmp_path / "publish")
    assert first.merge([change(1)], uuid="k1").merged
    # kill -9 in the middle of update-ref / fetch / checkout leaves these behind
    pub = tmp_path / "publish" / "org/demo"
    clone = tmp_path / "git" / "org/demo" / ".git"
    stale = [pub / "refs/heads/master.lock", pub / "packed-refs.lock",
             clone / "index.lock", clone / "refs/remotes/origin/master.lock"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    upstream.advance("org/demo", {"moved.txt": "m\n"})
    again = Merger(tmp_path / "git", f"file://{upstream.root}", tmp_path / "publish")
    done = again.merge([change(1)], uuid="k2")
    assert done.merged, done
    assert not any(p.exists() for p in stale)
    assert published(again, "org/demo", done.ref)["moved.txt"] == "m\n"
    assert git(pub, "rev-parse", "refs/heads/master") == git(upstream.bare("org/demo"),
                                                             "rev-parse", "master")
