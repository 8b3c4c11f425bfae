"""The words for states and results, one vocabulary for every process.

StrEnums: a member *is* its string, so JSON payloads, status.json, Gerrit
comments and database rows keep the words they always showed, while the
code gets a closed set that mypy checks (``assert_never`` on a ``match``)."""

from __future__ import annotations

from enum import StrEnum


class BuildResult(StrEnum):
    """How a build ended: the worker's answer, or the scheduler's own verdict."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"  # the job's script failed: the change's fault, never retried
    TIMED_OUT = "TIMED_OUT"
    # Stopped before it finished because we asked (dequeue, gate reset,
    # fail-fast). Older workers said ABORTED. A worker stopping with abort
    # says it too; the launcher, which did not ask, reports that as LOST.
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"  # never launched (a parent job failed, or fail-fast)
    # Infrastructure, not the change (retried within the job's attempts):
    LOST = "LOST"  # the worker or its connection went away
    NODE_FAILURE = "NODE_FAILURE"  # no node could be had or reached
    ERROR = "ERROR"  # the workspace could not be prepared, or the worker erred
    NOT_REGISTERED = "NOT_REGISTERED"  # no worker can run the job

    @classmethod
    def from_worker(cls, word: str) -> BuildResult | None:
        """A result word from a worker's WORK_COMPLETE; None if it is not one
        (a newer worker's word: the launcher makes it a retried ERROR)."""
        if word == "ABORTED":  # what workers before the one vocabulary sent
            return cls.CANCELED
        try:
            return cls(word)
        except ValueError:
            return None


# Results that are not failures of the change under test.
PASSING_RESULTS = frozenset({BuildResult.SUCCESS, BuildResult.SKIPPED})
# Results after which a build may be launched again (within the job's attempts).
RETRYABLE_RESULTS = frozenset({BuildResult.LOST, BuildResult.NODE_FAILURE, BuildResult.ERROR})
# Results that are the site's doing, not the change's: the job line says why.
INFRA_RESULTS = RETRYABLE_RESULTS | {BuildResult.NOT_REGISTERED}
# Results a worker may send in WORK_COMPLETE (the others are the scheduler's or launcher's).
WORKER_RESULTS = frozenset({BuildResult.SUCCESS, BuildResult.FAILURE, BuildResult.TIMED_OUT,
                            BuildResult.CANCELED, BuildResult.NODE_FAILURE, BuildResult.ERROR})


class BuildSetResult(StrEnum):
    """The verdict on one item's build set."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    MERGER_FAILURE = "MERGER_FAILURE"  # the speculative state could not be built


class MergeState(StrEnum):
    """Where a build set's speculative merge is."""

    NEW = "new"  # nothing asked yet
    PENDING = "pending"  # asked the merger, no answer yet
    COMPLETE = "complete"  # answered (merged or not)


class SubmitState(StrEnum):
    """Where an item's submit is (a gate's success action submits)."""

    NONE = ""  # not asked
    SUBMITTING = "submitting"  # decided and in the outbox; Gerrit has not answered yet
    SUBMITTED = "submitted"  # Gerrit merged it
    FAILED = "failed"  # Gerrit refused it


class NodeState(StrEnum):
    """A pool node's life: building -> ready -> in-use -> used/hold -> deleting -> deleted."""

    BUILDING = "building"
    READY = "ready"
    IN_USE = "in-use"
    USED = "used"
    HOLD = "hold"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


class ImageState(StrEnum):
    """A pool image build: building -> ready (or failed) -> deleting -> deleted."""

    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class MergeMode(StrEnum):
    """How a project's changes are put on the branch (layout ``merge-mode``)."""

    MERGE_RESOLVE = "merge-resolve"
    MERGE = "merge"
    CHERRY_PICK = "cherry-pick"
