"""The worker clones projects over ssh:// from a Gerrit (the emulator's real
git-over-ssh) with the key and known_hosts of worker.git_private_key /
worker.git_known_hosts -- not the worker user's ~/.ssh."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.worker.buildargs import parse_build_args
from gatekeeper.worker.workspace import WorkspaceBuilder, WorkspaceError
from tests.fixtures.gerrit_emulator import EmulatorSetup

pytestmark = pytest.mark.integration


def spec(base: str):  # a ref item of org/project: its branch, cloned from the base URL
    return parse_build_args("build:unit", {
        "ZUUL_UUID": "gitssh0001", "ZUUL_PROJECT": "org/project", "ZUUL_PIPELINE": "post",
        "ZUUL_BRANCH": "master", "ZUUL_URL": base,
        "gatekeeper": {"job": "unit", "label": "small", "run": "org/project/run.sh"}})


def test_clone_over_ssh_with_the_configured_key_and_host_key(
        gerrit_emulator: EmulatorSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = gerrit_emulator.emu
    base = f"ssh://gatekeeper@127.0.0.1:{emu.port}/"
    # The worker user's own ssh setup must play no part.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/config").write_text("Host *\n  Port 1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    builder = WorkspaceBuilder(git_base_url=base, private_key=str(gerrit_emulator.key),
                               known_hosts=str(gerrit_emulator.known_hosts))
    heads = builder.prepare(tmp_path / "ws", spec(base), lambda _: None)
    assert [(h.project, h.checkout) for h in heads] == [("org/project", "master")]
    assert (tmp_path / "ws/org/project/README").read_text() == "hello\n"

    # An unknown host key is refused, not trusted.
    stranger = tmp_path / "known_hosts"
    stranger.write_text("")
    bad = WorkspaceBuilder(git_base_url=base, private_key=str(gerrit_emulator.key),
                           known_hosts=str(stranger))
    with pytest.raises(WorkspaceError, match="Host key verification failed"):
        bad.prepare(tmp_path / "ws2", spec(base), lambda _: None)
