"""The merger fetches over ssh:// (as from Gerrit) with our key and known_hosts."""

from __future__ import annotations

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
    assert done.merged, done
    assert read_tree(tmp_path / "pub" / "org/demo", done.ref) == {"a.txt": "a\n", "b.txt": "b\n"}

    # A host key we do not know: refused (no prompt, no hang), clear error.
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd_node.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIB6sF1Qz7m3y5yJQv0Yc2s9m1bWQ1k3O6o6mF2xJ8kq5\n")
    strict = Merger(tmp_path / "git2", base, tmp_path / "pub2", private_key=str(client_key),
                    known_hosts=str(other))
    refused = strict.merge(items, uuid="mitm")
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
    # The host key changes (or someone is in the middle): refused.
    pinned.write_text(f"[127.0.0.1]:{sshd_node.port} ssh-ed25519 "
                      "AAAAC3NzaC1lZDI1NTE5AAAAIB6sF1Qz7m3y5yJQv0Yc2s9m1bWQ1k3O6o6mF2xJ8kq5\n")
    refused = merger.merge([MergeItem("org/demo", "master")], uuid="second")
    assert not refused.merged and "git fetch failed" in refused.error
