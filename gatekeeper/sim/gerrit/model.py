"""The emulator's state: accounts, labels, changes, patch sets, votes, messages.

Rendering to JSON follows Gerrit's documented attribute shapes (json.html):
account, change, patchSet, approval, message, dependency. ``number`` is an
int as in Gerrit 3; ``number_as_string`` renders 2.x-style strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUS_NEW = "NEW"
STATUS_MERGED = "MERGED"
STATUS_ABANDONED = "ABANDONED"


@dataclass
class Account:
    username: str
    full_name: str
    email: str
    public_keys: list[str] = field(default_factory=list)  # "ssh-ed25519 AAAA..." (no comment)
    capabilities: frozenset[str] = frozenset({"stream-events"})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.full_name, "email": self.email, "username": self.username}


@dataclass(frozen=True)
class Label:
    name: str
    min: int
    max: int
    # MaxWithBlock: submit needs the max value (if required) and no min vote.
    blocking: bool = True
    # Who may vote (None = every user), like a label permission for a group.
    voters: frozenset[str] | None = None

    def describe_value(self, value: int) -> str:
        return f"{self.name}{value:+d}" if value else f"-{self.name}"


DEFAULT_LABELS: tuple[Label, ...] = (
    Label("Code-Review", -2, 2),
    Label("Verified", -2, 2),
    Label("Workflow", -1, 1),
    Label("Approved", 0, 1, blocking=False),
)


@dataclass
class Vote:
    label: str
    value: int
    user: str
    granted_on: int


@dataclass
class FileStat:
    path: str
    type: str  # ADDED, MODIFIED, DELETED (Gerrit's patch.ChangeType names)
    insertions: int
    deletions: int


@dataclass
class PatchSet:
    number: int
    revision: str
    parents: list[str]
    ref: str
    uploader: str
    author: str
    created_on: int
    kind: str
    size_insertions: int
    size_deletions: int
    files: list[FileStat]
    commit_message: str
    # Votes on this patch set: label -> user -> Vote
    votes: dict[str, dict[str, Vote]] = field(default_factory=dict)


@dataclass
class Message:
    timestamp: int
    author: str
    text: str
    patchset: int


@dataclass
class Change:
    number: int
    project: str
    branch: str
    change_id: str
    owner: str
    subject: str
    topic: str | None
    status: str
    created_on: int
    last_updated: int
    patchsets: list[PatchSet] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)  # Depends-On footers (Change-Ids)
    # Current content of the change relative to its parent (path -> content or None=delete)
    files: dict[str, str | None] = field(default_factory=dict)
    merged_revision: str | None = None

    @property
    def current(self) -> PatchSet:
        return self.patchsets[-1]

    @property
    def is_open(self) -> bool:
        return self.status == STATUS_NEW

    def patchset(self, number: int) -> PatchSet | None:
        for ps in self.patchsets:
            if ps.number == number:
                return ps
        return None


def change_ref(number: int, patchset: int) -> str:
    return f"refs/changes/{number % 100:02d}/{number}/{patchset}"


@dataclass
class Renderer:
    """Turns model objects into Gerrit JSON; needs the accounts and options."""

    accounts: dict[str, Account]
    baseurl: str
    number_as_string: bool = False
    labels: dict[str, Label] = field(default_factory=dict)

    def num(self, n: int) -> int | str:
        return str(n) if self.number_as_string else n

    def account(self, username: str) -> dict[str, Any]:
        acct = self.accounts.get(username)
        if acct is None:
            return {"username": username}
        return acct.to_json()

    def url(self, change: Change) -> str:
        return f"{self.baseurl.rstrip('/')}/c/{change.project}/+/{change.number}"

    def change(self, change: Change, *, commit_message: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "project": change.project,
            "branch": change.branch,
            "id": change.change_id,
            "number": self.num(change.number),
            "subject": change.subject,
            "owner": self.account(change.owner),
            "url": self.url(change),
        }
        if change.topic:
            out["topic"] = change.topic
        if commit_message:
            out["commitMessage"] = change.current.commit_message
        out["createdOn"] = change.created_on
        out["lastUpdated"] = change.last_updated
        out["status"] = change.status
        return out

    def patchset(self, ps: PatchSet, *, approvals: bool = False,
                 files: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.num(ps.number),
            "revision": ps.revision,
            "parents": list(ps.parents),
            "ref": ps.ref,
            "uploader": self.account(ps.uploader),
            "createdOn": ps.created_on,
            "author": self.account(ps.author),
            "kind": ps.kind,
            "sizeInsertions": ps.size_insertions,
            "sizeDeletions": ps.size_deletions,
        }
        if approvals:
            rows = [self.query_approval(v) for by_user in ps.votes.values()
                    for v in by_user.values() if v.value != 0]
            if rows:
                out["approvals"] = rows
        if files:
            out["files"] = [{"file": "/COMMIT_MSG", "type": "ADDED",
                             "insertions": len(ps.commit_message.splitlines()),
                             "deletions": 0}]
            out["files"] += [{"file": f.path, "type": f.type, "insertions": f.insertions,
                              "deletions": -f.deletions} for f in ps.files]
        return out

    def description(self, label: str) -> str:
        return label

    def query_approval(self, vote: Vote) -> dict[str, Any]:
        return {"type": vote.label, "description": self.description(vote.label),
                "value": str(vote.value), "grantedOn": vote.granted_on,
                "by": self.account(vote.user)}

    def message(self, msg: Message) -> dict[str, Any]:
        return {"timestamp": msg.timestamp, "reviewer": self.account(msg.author),
                "message": msg.text}

    def dependency(self, change: Change, ps: PatchSet) -> dict[str, Any]:
        return {"id": change.change_id, "number": self.num(change.number),
                "revision": ps.revision, "ref": ps.ref,
                "isCurrentPatchSet": ps is change.current}
