"""Compile a schema-valid pipeline entry into a :class:`Pipeline`."""

from __future__ import annotations

import re
from typing import Any

from gatekeeper.layout.model import (
    DEFAULT_SUBJECT,
    ApprovalMatch,
    GerritTrigger,
    MailAction,
    Pipeline,
    PipelineRequire,
    ReporterAction,
    TimerTrigger,
    WindowConfig,
)
from gatekeeper.layout.schema import parse_duration
from gatekeeper.layout.strategy import build_strategy

APPROVAL_META = ("username", "email", "newer-than", "older-than")

def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(v) for v in as_list(value))


def approvals(value: Any) -> tuple[ApprovalMatch, ...]:
    """``[{Verified: [1, 2], username: jenkins}]`` -> one match per label."""
    out = []
    for entry in as_list(value):
        username = re.compile(entry["username"]) if "username" in entry else None
        email = re.compile(entry["email"]) if "email" in entry else None
        newer = parse_duration(entry["newer-than"]) if "newer-than" in entry else None
        older = parse_duration(entry["older-than"]) if "older-than" in entry else None
        for label, values in entry.items():
            if label in APPROVAL_META:
                continue
            out.append(
                ApprovalMatch(
                    label=str(label),
                    values=tuple(as_list(values)),
                    username=username,
                    email=email,
                    newer_than=newer,
                    older_than=older,
                )
            )
    return tuple(out)


def gerrit_trigger(raw: dict[str, Any]) -> GerritTrigger:
    return GerritTrigger(
        events=tuple(as_list(raw["event"])),
        branches=patterns(raw.get("branch")),
        refs=patterns(raw.get("ref")),
        approvals=approvals(raw.get("approval")),
        comments=patterns(raw.get("comment")),
        usernames=patterns(raw.get("username")),
        emails=patterns(raw.get("email")),
        require_approvals=approvals(raw.get("require-approval")),
        reject_approvals=approvals(raw.get("reject-approval")),
        ignore_deletes=raw.get("ignore-deletes", True),
    )


def require(raw: dict[str, Any] | None) -> PipelineRequire:
    if not raw:
        return PipelineRequire()
    return PipelineRequire(
        open=raw.get("open"),
        current_patchset=raw.get("current-patchset"),
        status=tuple(as_list(raw.get("status"))),
        approvals=approvals(raw.get("approval")),
    )


def reporter(raw: dict[str, Any], key: str) -> ReporterAction | None:
    """Absent key: None (nothing reported). ``key: null``: an action that
    sends nothing (so merge-failure does not fall back to failure)."""
    if key not in raw:
        return None
    value = raw[key]
    if value is None:
        return ReporterAction(send=False)
    return ReporterAction(
        labels={str(k): int(v) for k, v in (value.get("labels") or {}).items()},
        submit=value.get("submit", False),
        message=value.get("message"),  # None: the core's default text for this point
        send=value.get("send", True),
        smtp=_mail(value.get("smtp")),
    )


def _mail(value: dict[str, Any] | None) -> MailAction | None:
    if value is None:
        return None
    to = value["to"]
    return MailAction(to=tuple(to if isinstance(to, list) else [to]), sender=value.get("from"),
                      subject=value.get("subject", DEFAULT_SUBJECT))


def build_pipeline(raw: dict[str, Any]) -> Pipeline:
    trigger = raw["trigger"]
    defaults = WindowConfig()
    return Pipeline(
        name=raw["name"],
        manager=raw["manager"],
        description=raw.get("description", ""),
        source=raw.get("source", "gerrit"),
        precedence=raw.get("precedence", "normal"),
        gerrit_triggers=tuple(gerrit_trigger(t) for t in as_list(trigger.get("gerrit"))),
        timer_triggers=tuple(TimerTrigger(cron=t["time"]) for t in as_list(trigger.get("timer"))),
        require=require(raw.get("require")),
        reject=require(raw.get("reject")),
        start=reporter(raw, "start"),
        success=reporter(raw, "success"),
        failure=reporter(raw, "failure"),
        merge_failure=reporter(raw, "merge-failure"),
        dequeue_on_new_patchset=raw.get("dequeue-on-new-patchset", True),
        fail_fast=raw.get("fail-fast", False),
        window=WindowConfig(
            window=raw.get("window", defaults.window),
            floor=raw.get("window-floor", defaults.floor),
            increase_type=raw.get("window-increase-type", defaults.increase_type),
            increase_factor=raw.get("window-increase-factor", defaults.increase_factor),
            decrease_type=raw.get("window-decrease-type", defaults.decrease_type),
            decrease_factor=raw.get("window-decrease-factor", defaults.decrease_factor),
            ceiling=raw.get("window-ceiling", defaults.ceiling),
        ),
        strategy=build_strategy(raw.get("strategy")),
        header=raw.get("header"),
        footer=raw.get("footer"),
    )
