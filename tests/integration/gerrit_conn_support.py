"""Helpers for the Gerrit connection tests: an emulator with our CI account,
and an event collector that waits for conditions with a bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from gatekeeper.model.events import TriggerEvent
from gatekeeper.nodes.localsshd import generate_keypair
from gatekeeper.sim.gerrit import GerritEmulator

PROJECT = "org/project"


@dataclass
class Gerrit:
    emu: GerritEmulator
    key: Path  # the gatekeeper account's private key
    known_hosts: Path
    other_key: Path  # a key Gerrit does not know

    @property
    def port(self) -> int:
        return self.emu.port


def make_gerrit(tmp_path: Path, **emulator_options) -> Gerrit:
    keys = tmp_path / "keys"
    key = generate_keypair(keys / "gatekeeper", "gatekeeper")
    other = generate_keypair(keys / "stranger", "stranger")
    emu = GerritEmulator(tmp_path / "gerrit", **emulator_options)
    emu.add_user("gatekeeper", key.with_suffix(".pub").read_text(), email="ci@example.com",
                 capabilities=("stream-events",))
    emu.add_user("alice", None, email="alice@example.com")
    emu.add_user("bob", None, email="bob@example.com")
    emu.add_user("core", None, email="core@example.com")
    emu.create_project(PROJECT, files={"README": "hello\n"})
    emu.start()
    kh = tmp_path / "known_hosts"
    kh.write_text(emu.host_key_line + "\n")
    return Gerrit(emu, key, kh, other)


class Collector:
    def __init__(self) -> None:
        self.events: list[TriggerEvent] = []
        self._cond = threading.Condition()

    def __call__(self, ev: TriggerEvent) -> None:
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[TriggerEvent]], bool], timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: pred(self.events), timeout)

    def of(self, type_: str, change: int | None = None) -> list[TriggerEvent]:
        with self._cond:
            return [e for e in self.events
                    if e.type == type_ and (change is None or e.change_number == change)]


def client_transports() -> list[paramiko.Transport]:
    """Live client-side SSH transports in this process (the emulator's are server side)."""
    return [t for t in threading.enumerate()
            if isinstance(t, paramiko.Transport) and not t.server_mode and t.is_alive()]


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
