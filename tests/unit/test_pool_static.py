"""The static provider's reset procedure, with SSH replaced by a script of
what the host answers (the real-sshd version is in tests/integration)."""

from __future__ import annotations

import pytest

from gatekeeper.nodes.providers import static as st
from gatekeeper.nodes.providers.static import (
    DEFAULT_RESET,
    ResetCommand,
    ResetError,
    StaticHost,
    StaticProvider,
)
from gatekeeper.ssh import SshError

HOST = StaticHost("m1", "127.0.0.1", "metal", 2201, "root", "/k", "ssh-ed25519 AAAA")


class FakeHost:
    def __init__(self, fail_step: int | None = None, answers_after_reset: bool = False,
                 new_boot_id: bool = False, drop_last: bool = False):
        self.commands: list[str] = []
        self.fail_step = fail_step
        self.rebooting = False
        self.answers_after_reset = answers_after_reset
        self.new_boot_id = new_boot_id
        self.drop_last = drop_last
        self.boot = "boot-1"

    def run(self, t, command, timeout=60.0, stdin=None, connect_timeout=10.0):
        if command.startswith("cat /proc/sys/kernel/random/boot_id"):
            return 0, self.boot + "\n", ""
        self.commands.append(command)
        if self.fail_step is not None and len(self.commands) == self.fail_step:
            return 5, "", "Logical volume main/root not found\n"
        if command == DEFAULT_RESET[-1].command:
            self.rebooting = True
            if self.new_boot_id:
                self.boot = "boot-2"
            if self.drop_last:
                raise SshError("connection reset")
        if command.startswith("lvremove"):
            return 5, "", "Failed to find logical volume main/last_root"
        return 0, "", ""

    def answers(self, host, port, timeout=1.0):
        return not self.rebooting or self.answers_after_reset


@pytest.fixture
def host(monkeypatch):
    def make(**kw):
        h = FakeHost(**kw)
        monkeypatch.setattr(st, "run", h.run)
        monkeypatch.setattr(st, "ssh_answers", h.answers)
        return h
    return make


def provider(**kw) -> StaticProvider:
    clock = [0.0]

    def sleep(s):
        clock[0] += s

    checks = kw.pop("checks", [])
    return StaticProvider("rack", (HOST,), clock=lambda: clock[0], sleep=sleep,
                          ready_check=lambda t: (checks.append(t), "ssh-ed25519 AAAA")[1],
                          down_timeout=5, boot_timeout=5, poll=0.5, **kw)


def test_default_sequence_is_the_seeds(host):
    h = host(drop_last=True)
    checks: list = []
    assert provider(checks=checks).reset(HOST) == "ssh-ed25519 AAAA"
    assert h.commands == [
        "lvremove -f /dev/main/last_root",  # fails on the first reset: ignored
        "lvrename /dev/main/root last_root",
        "lvcreate -L20G -s -n root /dev/main/orig_root",
        'kexec -l /vmlinuz --initrd=/initrd.img --append="$(cat /proc/cmdline)"',
        'nohup bash -c "sleep 2; kexec -e" </dev/null >/dev/null 2>&1 &',
    ]
    assert checks and checks[0].host_key == "ssh-ed25519 AAAA"


def test_failing_step_is_named_and_stops(host):
    h = host(fail_step=2)
    with pytest.raises(ResetError, match="step 2 exited 5: Logical volume main/root"):
        provider().reset(HOST)
    assert len(h.commands) == 2


def test_host_that_never_goes_down_fails(host):
    host(answers_after_reset=True)
    with pytest.raises(ResetError, match="did not go down"):
        provider().reset(HOST)


def test_fast_reboot_seen_by_its_new_boot_id(host):
    host(answers_after_reset=True, new_boot_id=True)
    assert provider().reset(HOST) == "ssh-ed25519 AAAA"


def test_not_ready_after_reboot_fails():
    p = StaticProvider("rack", (HOST,), (ResetCommand("true"),), expect_reboot=False,
                       ready_check=lambda t: (_ for _ in ()).throw(SshError("refused")),
                       clock=iter(range(100)).__next__, sleep=lambda s: None, boot_timeout=3)
    with pytest.raises(ResetError, match="not ready after reset"):
        p.check(HOST)
