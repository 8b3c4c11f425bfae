"""What the source (Gerrit) tells us about changes and refs.

These are plain values produced by the Gerrit adapter and consumed by the
pure core. A queue item holds either a ``Change`` or a ``Ref``. What both
answer is the ``Subject`` protocol; where they differ (approvals, patchsets,
reporting to Gerrit) the core tells them apart with ``isinstance``, never by
probing attributes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from gatekeeper.model.buildparams import Joined, zuul_change_ids, zuul_changes

if TYPE_CHECKING:
    from gatekeeper.model.runtime import SpeculativeChange


class Subject(Protocol):
    """What a queue item tests, change or ref alike."""

    @property
    def project(self) -> str: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def ref(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def number(self) -> int | None: ...
    @property
    def patchset(self) -> int | None: ...
    @property
    def files(self) -> list[str] | None: ...

    @property
    def key(self) -> str:
        """Identity across patchsets: items of the same key supersede each other."""
        ...

    @property
    def display_name(self) -> str:
        """How people name it: ``N,PS`` or ``project ref@rev``."""
        ...

    def log_path(self, pipeline: str, job: str, uuid: str) -> str:
        """Where a build's logs go under the log root (Zuul's layout)."""
        ...

    def build_parameters(self, changes: Sequence[SpeculativeChange]) -> dict[str, str | Joined]:
        """The ZUUL_* parameters that describe it (``changes``: the speculative state;
        a ``Joined`` value is computed from it when read, see model/buildparams.py)."""
        ...


@dataclass(frozen=True)
class Approval:
    """One vote on the current patchset (Gerrit's ``approvals`` entry)."""

    label: str  # Gerrit label name as Gerrit spells it: "Verified", "Code-Review", "Workflow"
    value: int
    username: str | None = None
    email: str | None = None
    granted_on: int | None = None  # epoch seconds


@dataclass(frozen=True)
class Change:
    """A Gerrit change at one patchset.

    Frozen: the source shares one object among the scheduler, the queues and
    its cache instead of copying it (make a new one with dataclasses.replace).
    Its lists are not to be modified either."""

    project: str
    branch: str
    number: int
    patchset: int
    change_id: str = ""  # the "I..." Change-Id
    ref: str = ""  # refs/changes/NN/N/PS
    revision: str = ""  # commit sha of this patchset
    parents: list[str] = field(default_factory=list)  # parent commit shas
    subject: str = ""
    commit_message: str = ""
    owner_username: str | None = None
    owner_email: str | None = None
    owner_name: str | None = None
    url: str = ""
    topic: str | None = None
    status: str = "NEW"  # NEW | MERGED | ABANDONED (DRAFT on old Gerrit)
    is_current_patchset: bool = True
    approvals: list[Approval] = field(default_factory=list)  # on the current patchset
    files: list[str] | None = None  # None = unknown (file matchers then match)
    depends_on: list[str] = field(default_factory=list)  # Change-Ids from Depends-On footers
    # Open changes this one needs because its patchset's parent commit is theirs
    # (Gerrit's "dependsOn" with isCurrentPatchSet). Filled by the source.
    needed_by_parent: list[int] = field(default_factory=list)
    last_updated: int | None = None  # epoch seconds
    mergeable: bool | None = None

    @property
    def key(self) -> str:
        """Identity of this change (all patchsets)."""
        return f"{self.number}"

    @property
    def id_string(self) -> str:
        """The ``N,PS`` form Gerrit's review command and people use."""
        return f"{self.number},{self.patchset}"

    @property
    def display_name(self) -> str:
        return self.id_string

    def log_path(self, pipeline: str, job: str, uuid: str) -> str:
        n = str(self.number)
        return f"{n[-2:]}/{n}/{self.patchset}/{pipeline}/{job}/{uuid[:7]}"

    def build_parameters(self, changes: Sequence[SpeculativeChange]) -> dict[str, str | Joined]:
        return {
            "ZUUL_BRANCH": self.branch,
            "ZUUL_CHANGE": str(self.number),
            "ZUUL_PATCHSET": str(self.patchset),
            # Name every change of the speculative state: joined when read.
            "ZUUL_CHANGES": zuul_changes,
            "ZUUL_CHANGE_IDS": zuul_change_ids,
        }

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "DRAFT")

    @property
    def is_merged(self) -> bool:
        return self.status == "MERGED"

    def approval_values(self, label: str) -> list[int]:
        wanted = label.lower()
        return [a.value for a in self.approvals if a.label.lower() == wanted]


@dataclass
class Ref:
    """A branch or tag update (ref-updated) or a periodic run on a branch."""

    project: str
    ref: str  # full ref name, e.g. refs/heads/master or refs/tags/1.0
    oldrev: str = ""
    newrev: str = ""
    url: str = ""

    @property
    def branch(self) -> str | None:
        if self.ref.startswith("refs/heads/"):
            return self.ref[len("refs/heads/"):]
        if not self.ref.startswith("refs/"):
            return self.ref  # Gerrit 2.x sent bare branch names
        return None

    @property
    def key(self) -> str:
        return f"{self.project}:{self.ref}"

    @property
    def id_string(self) -> str:
        return f"{self.ref}@{self.newrev[:7]}" if self.newrev else self.ref

    @property
    def number(self) -> None:
        return None

    @property
    def patchset(self) -> None:
        return None

    @property
    def files(self) -> None:
        return None  # unknown: file matchers match

    @property
    def display_name(self) -> str:
        return f"{self.project} {self.id_string}"

    def log_path(self, pipeline: str, job: str, uuid: str) -> str:
        if self.newrev:
            return f"{self.newrev[:2]}/{self.newrev}/{pipeline}/{job}/{uuid[:7]}"
        return f"{pipeline}/{self.project}/{self.branch or self.ref}/{job}/{uuid[:7]}"

    def build_parameters(self, changes: Sequence[SpeculativeChange]) -> dict[str, str | Joined]:
        return {
            "ZUUL_BRANCH": self.branch or "",
            "ZUUL_REFNAME": self.ref,
            "ZUUL_OLDREV": self.oldrev,
            "ZUUL_NEWREV": self.newrev,
            "ZUUL_SHORT_OLDREV": self.oldrev[:7],
            "ZUUL_SHORT_NEWREV": self.newrev[:7],
            # A ref is tested as it is: no speculative ref or commit of its own.
            "ZUUL_REF": self.ref,
            "ZUUL_COMMIT": self.newrev,
        }
