"""A Gerrit emulator that speaks Gerrit's SSH protocol (stream-events, query,
review, git over SSH) on loopback, for the quickstart and the tests.

See doc/gerrit-emulator.md for what it covers and where it differs."""

from gatekeeper.sim.gerrit.api import GerritEmulator
from gatekeeper.sim.gerrit.model import DEFAULT_LABELS, Label
from gatekeeper.sim.gerrit.state import ReviewError

__all__ = ["DEFAULT_LABELS", "GerritEmulator", "Label", "ReviewError"]
