"""Building ssh/rsync argv for a node: quoting, host key pinning, the job wrapper."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import pytest

from gatekeeper.interfaces import NodeLease
from gatekeeper.shell import command_line, env_argv, job_argv
from gatekeeper.worker.ssh import SshNode, host_key_from_known_hosts, known_hosts_line

HOSTILE = ["$(touch /tmp/x)", "`id`", "a'b", 'a"b', "a;b", "a\nb", "-oProxyCommand=x", "~", "*"]


def lease(**over: object) -> NodeLease:
    base = {"node_id": "n1", "label": "small", "host": "127.0.0.1", "port": 2222,
            "username": "ci", "private_key": "/keys/id_ed25519", "provider": "p",
            "host_key": "ssh-ed25519 AAAAC3Nza", "extra": {"workdir": "/w"}}
    base.update(over)
    return NodeLease(**base)  # type: ignore[arg-type]


def test_remote_command_round_trips_hostile_words() -> None:
    cmd = command_line(["echo", *HOSTILE])
    assert shlex.split(cmd) == ["echo", *HOSTILE]
    with pytest.raises(ValueError):
        command_line([])


def test_env_argv_checks_names_only() -> None:
    assert env_argv({"A": "$(x)", "B_2": ""}) == ["env", "A=$(x)", "B_2="]
    for bad in ("A-B", "1A", "A B", "A=B", ""):
        with pytest.raises(ValueError):
            env_argv({bad: "x"})


def test_job_argv_passes_data_as_positional_words() -> None:
    argv = job_argv("/w ork", {"V": "$(touch /tmp/x)"}, ["./run.sh"])
    assert argv[:4] == ["setsid", "-w", "sh", "-c"]
    wrapper = argv[4]
    assert "$(touch" not in wrapper and "/w ork" not in wrapper
    assert argv[5:] == ["gatekeeper-job", "/w ork", "env", "V=$(touch /tmp/x)", "./run.sh"]


def test_known_hosts_line_formats() -> None:
    assert known_hosts_line("h", 22, "ssh-ed25519 AAA c") == "h ssh-ed25519 AAA\n"
    assert known_hosts_line("h", 2222, "ssh-ed25519 AAA") == "[h]:2222 ssh-ed25519 AAA\n"
    with pytest.raises(ValueError):
        known_hosts_line("h", 22, "garbage")


def test_host_key_from_known_hosts() -> None:
    text = ("# comment\n|1|hashed= ssh-rsa X\nother ssh-rsa Y\n"
            "[127.0.0.1]:2222,[::1]:2222 ssh-ed25519 KEY1 c\n127.0.0.1 ssh-ed25519 KEY22\n")
    assert host_key_from_known_hosts(text, "127.0.0.1", 2222) == "ssh-ed25519 KEY1"
    assert host_key_from_known_hosts(text, "127.0.0.1") == "ssh-ed25519 KEY22"
    assert host_key_from_known_hosts(text, "10.0.0.1") is None


def test_ssh_options_pin_the_host_key(tmp_path: Path) -> None:
    node = SshNode(lease(), tmp_path, multiplex=False)
    assert node.known_hosts.read_text() == "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nza\n"
    argv = node.ssh_argv(["echo", "$(x)"])
    assert argv[0] == "ssh"
    opts = " ".join(argv)
    assert "StrictHostKeyChecking=yes" in opts and "IdentitiesOnly=yes" in opts
    assert f"UserKnownHostsFile={node.known_hosts}" in opts and "BatchMode=yes" in opts
    assert argv[argv.index("-i") + 1] == "/keys/id_ed25519"
    assert argv[-4:] == ["-l", "ci", "127.0.0.1", "echo '$(x)'"]
    assert node.workdir == "/w"


def test_unknown_host_key_warns_and_does_not_verify(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "gatekeeper.worker.ssh"):
        node = SshNode(lease(host_key=None, extra={}), tmp_path, multiplex=False)
    assert "NOT verified" in caplog.text
    assert "StrictHostKeyChecking=no" in node.ssh_argv(["true"])
    assert node.workdir == "workspace"  # the remote user's ~/workspace


@pytest.mark.parametrize("over", [{"host": "-oProxyCommand=x"}, {"username": "-l"},
                                  {"host": "a b"}, {"username": "x;y"}])
def test_option_looking_host_or_user_rejected(tmp_path: Path, over: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        SshNode(lease(**over), tmp_path, multiplex=False)


def test_rsync_argv_quotes_the_rsh_and_ends_options(tmp_path: Path) -> None:
    node = SshNode(lease(private_key="/keys/my key"), tmp_path, multiplex=False)
    argv = node.rsync_argv("/src/", "ci@127.0.0.1:/w/", delete=True)
    assert argv[:3] == ["rsync", "-az", "-s"] and "--delete" in argv
    assert argv[-3:] == ["--", "/src/", "ci@127.0.0.1:/w/"]
    rsh = argv[argv.index("-e") + 1]
    assert "'/keys/my key'" in rsh and shlex.split(rsh)[0] == "ssh"


def test_multiplexing_uses_a_short_private_control_dir(tmp_path: Path) -> None:
    node = SshNode(lease(), tmp_path / ("deep" * 30))
    control = node._control_dir
    assert control is not None and control.is_dir() and len(str(control)) < 60
    assert f"ControlPath={control}/%C" in node.ssh_argv(["true"])
    assert "ControlMaster=auto" in node.rsync_rsh()
    node.close()  # no master running: harmless
    node.close()
    assert not control.exists()
    assert not any("ControlPath" in a for a in node.ssh_argv(["true"]))
