"""One check's verdict and the line that shows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    OK = "OK"
    WARN = "WARN"  # works, but not as it should (e.g. a host key not pinned)
    FAIL = "FAIL"  # the site will not work until this is fixed


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        return f"{self.verdict.value:<4} {self.name}: {' '.join(self.detail.split())}"


def ok(name: str, detail: str) -> Check:
    return Check(name, Verdict.OK, detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, Verdict.WARN, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, Verdict.FAIL, detail)
