"""Static / bare-metal hosts, reset after every use (seed 000: LVM + kexec).

The reset runs the configured commands over SSH, in order, each in its own
session so a failing step is named; the last one is expected to reboot the
host in the background (``nohup bash -c "sleep 2; kexec -e" &``). Then the
host must go away (SSH stops answering) and come back, and pass the ready
check, before it is handed out again — a ready check right after the
commands would still see the old system."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gatekeeper.nodes.sshrun import ReadyCheck, run, ssh_answers
from gatekeeper.ssh import SshError, SshTarget

log = logging.getLogger("gatekeeper.nodes.providers.static")


@dataclass(frozen=True)
class ResetCommand:
    command: str
    ignore_errors: bool = False


DEFAULT_RESET: tuple[ResetCommand, ...] = (
    # The first reset has no previous snapshot to remove.
    ResetCommand("lvremove -f /dev/main/last_root", ignore_errors=True),
    ResetCommand("lvrename /dev/main/root last_root"),
    ResetCommand("lvcreate -L20G -s -n root /dev/main/orig_root"),
    ResetCommand('kexec -l /vmlinuz --initrd=/initrd.img --append="$(cat /proc/cmdline)"'),
    ResetCommand('nohup bash -c "sleep 2; kexec -e" </dev/null >/dev/null 2>&1 &'),
)


@dataclass(frozen=True)
class StaticHost:
    name: str
    host: str
    label: str
    port: int = 22
    username: str = "root"
    private_key: str = field(default="", repr=False)  # path
    host_key: str | None = None
    workdir: str = ""


class ResetError(Exception):
    pass


@dataclass
class StaticProvider:
    name: str
    hosts: tuple[StaticHost, ...]
    reset_commands: tuple[ResetCommand, ...] = DEFAULT_RESET
    expect_reboot: bool = True
    command_timeout: float = 300.0
    down_timeout: float = 120.0  # the host must stop answering within this
    boot_timeout: float = 600.0  # ... and be ready again within this
    poll: float = 0.2
    ready_check: Callable[[SshTarget], str] = field(default_factory=ReadyCheck)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def host(self, name: str) -> StaticHost | None:
        return next((h for h in self.hosts if h.name == name), None)

    def target(self, h: StaticHost, host_key: str | None = None) -> SshTarget:
        return SshTarget(h.host, h.port, h.username, h.private_key, h.host_key or host_key)

    def reset(self, h: StaticHost, known_host_key: str | None = None) -> str:
        """Reset ``h``; return its host key once it passed the ready check."""
        t = self.target(h, known_host_key)
        boot_id = self._boot_id(t) if self.expect_reboot else None
        last = len(self.reset_commands) - 1
        for i, step in enumerate(self.reset_commands):
            log.info("%s: reset %s step %d/%d", self.name, h.name, i + 1, last + 1)
            try:
                rc, _out, err = run(t, step.command, timeout=self.command_timeout)
            except SshError as e:
                if i == last and self.expect_reboot:
                    break  # the reboot may cut the session: that is the point
                raise ResetError(f"{h.name}: step {i + 1}: {e}") from None
            if rc != 0 and not step.ignore_errors:
                raise ResetError(f"{h.name}: step {i + 1} exited {rc}: "
                                 f"{' '.join(err.split())[-200:]}")
        if self.expect_reboot:
            # Down (SSH stops answering), or already back with a new boot id
            # (a reboot faster than our polling).
            def rebooted() -> bool:
                if not ssh_answers(h.host, h.port, timeout=0.5):
                    return True
                return boot_id is not None and self._boot_id(t) not in (None, boot_id)

            self._wait(rebooted, self.down_timeout, f"{h.name}: did not go down for the reboot")
            log.info("%s: %s went down for the reboot", self.name, h.name)
        return self._wait_ready(t)

    def _boot_id(self, t: SshTarget) -> str | None:
        try:
            rc, out, _ = run(t, "cat /proc/sys/kernel/random/boot_id", timeout=10,
                             connect_timeout=2)
        except SshError:
            return None
        return out.strip() if rc == 0 and out.strip() else None

    def check(self, h: StaticHost, known_host_key: str | None = None) -> str:
        return self._wait_ready(self.target(h, known_host_key))

    def _wait_ready(self, t: SshTarget) -> str:
        deadline = self.clock() + self.boot_timeout
        last = ""
        while True:
            try:
                return self.ready_check(t)
            except SshError as e:
                last = str(e)
            if self.clock() >= deadline:
                raise ResetError(f"{t.host}:{t.port}: not ready after reset: {last}")
            self.sleep(self.poll)

    def _wait(self, cond: Callable[[], bool], timeout: float, message: str) -> None:
        deadline = self.clock() + timeout
        while not cond():
            if self.clock() >= deadline:
                raise ResetError(message)
            self.sleep(self.poll)
