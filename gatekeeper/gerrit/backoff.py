"""Capped exponential backoff with jitter for reconnects and report retries."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0  # seconds before the first retry
    factor: float = 2.0
    maximum: float = 60.0
    # Fraction of the delay taken off at random, so a fleet of clients that
    # lost Gerrit together does not reconnect in lockstep.
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff settings: {self}")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if attempt < 1:
            return 0.0
        base = min(self.maximum, self.initial * self.factor ** min(attempt - 1, 64))
        return base * (1.0 - self.jitter * rand())
