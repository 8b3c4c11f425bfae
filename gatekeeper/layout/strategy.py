"""Gate strategies of a dependent pipeline: named presets and their knobs
(``strategy:`` in a pipeline; doc/layout.md). The behaviour lives in
``gatekeeper.core.strategy``; this is only what the layout says."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import voluptuous as vol

CLASSIC = "zuul-classic"


@dataclass(frozen=True)
class StrategyConfig:
    name: str = CLASSIC
    # What the strategy does (set by the preset):
    judge: bool = False  # a failure that may be a flake is judged before anything resets
    evidence: bool = False  # ... also from the items behind that include the change
    move_on: bool = False  # ... and the queue goes on without it while a rerun confirms
    size_window: bool = False  # window sized to the learned failure rate, not AIMD
    keep_work: bool = False  # items pushed out of the window keep their builds
    # Knobs:
    reruns: int = 2  # reruns of a failed job on the same speculative state, at most
    confidence: float = 0.98  # P(broken) at which a failure is trusted without more reruns
    min_history: int = 20  # builds of a job seen before its failures are questioned
    history: int = 200  # recent builds per job the flake rate is learned from
    window_valid: float = 0.25  # sized window: P(no broken change in it) to aim for
    nodes: int = 0  # node budget (0: unknown); the sized window needs at most this many

    @property
    def classic(self) -> bool:
        return not (self.judge or self.size_window or self.keep_work)


PRESETS: dict[str, dict[str, bool]] = {
    CLASSIC: {},
    "rerun": {"judge": True},
    "evidence": {"judge": True, "evidence": True, "move_on": True},
    "sized": {"size_window": True, "keep_work": True},
    "evidence-sized": {"judge": True, "evidence": True, "move_on": True, "size_window": True,
                       "keep_work": True},
}

KNOBS = {
    "reruns": vol.All(int, vol.Range(min=0, max=10)),
    "confidence": vol.All(vol.Coerce(float), vol.Range(min=0.5, max=1.0, max_included=False),
                          msg="expected a probability in [0.5, 1)"),
    "min-history": vol.All(int, vol.Range(min=0)),
    "history": vol.All(int, vol.Range(min=10, max=100_000)),
    "window-valid": vol.All(vol.Coerce(float), vol.Range(min=0.01, max=0.99),
                            msg="expected a probability in [0.01, 0.99]"),
    "nodes": vol.All(int, vol.Range(min=0)),
}

_NAME = vol.Any(*PRESETS, msg="must be one of: " + ", ".join(PRESETS))

_KEYS: dict[Any, Any] = {vol.Required("name"): _NAME}
_KEYS.update({vol.Optional(k): v for k, v in KNOBS.items()})
_MAPPING = vol.Schema(_KEYS)


def SCHEMA(value: Any) -> Any:
    """``strategy: NAME`` or ``strategy: {name: NAME, KNOB: value, ...}``."""
    if isinstance(value, str):
        return _NAME(value)
    if isinstance(value, dict):
        return _MAPPING(value)
    raise vol.Invalid("expected a strategy name (" + ", ".join(PRESETS)
                      + ") or {name: NAME, KNOB: value}")


def build_strategy(raw: Any) -> StrategyConfig:
    """A schema-valid ``strategy:`` value as a StrategyConfig."""
    if raw is None:
        return StrategyConfig()
    if isinstance(raw, str):
        raw = {"name": raw}
    values: dict[str, Any] = dict(PRESETS[raw["name"]])
    values.update({k.replace("-", "_"): v for k, v in raw.items() if k != "name"})
    return dataclasses.replace(StrategyConfig(name=raw["name"]), **values)
