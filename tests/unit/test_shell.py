"""gatekeeper.shell: data stays data in every command line a shell reads."""

from __future__ import annotations

import shlex
import subprocess

from gatekeeper.shell import command_line, devkey_command, kill_argv

HOSTILE = ["$(touch /tmp/gk-pwned)", "`id`", "a'b", 'a"b', "a;b", "a\nb", "-oProxyCommand=x"]


def test_devkey_command_takes_the_directory_as_data(tmp_path):
    """A hostile workdir is a directory name to the remote shell, never code."""
    for bad in HOSTILE:
        words = shlex.split(devkey_command(str(tmp_path / bad)))
        assert words[:2] == ["sh", "-c"] and words[-1] == str(tmp_path / bad)
        assert bad not in words[2]  # the script is a constant
    target = tmp_path / "$(touch pwned)"
    target.mkdir()
    rc = subprocess.run(devkey_command(str(target)), shell=True, input=b"ssh-ed25519 AAAA k\n",  # noqa: S602 - what the node's sshd runs
                        cwd=tmp_path).returncode
    assert rc == 0 and not (tmp_path / "pwned").exists()
    assert (target / ".ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA k\n"


def test_kill_argv_and_command_line_keep_words():
    argv = kill_argv("/w ork;rm -rf /", 2.0)
    assert shlex.split(command_line(argv)) == argv
    assert argv[-2:] == ["/w ork;rm -rf /", "20"]
