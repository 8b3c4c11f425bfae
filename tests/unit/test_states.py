"""The one vocabulary of results and states: the words users already see."""

from gatekeeper.model.states import WORKER_RESULTS, BuildResult, NodeState


def test_result_words_are_the_ones_reports_show():
    assert [str(r) for r in BuildResult] == [
        "SUCCESS", "FAILURE", "TIMED_OUT", "CANCELED", "SKIPPED", "LOST", "NODE_FAILURE",
        "ERROR", "NOT_REGISTERED"]
    assert f"{BuildResult.CANCELED}" == "CANCELED" and NodeState.IN_USE == "in-use"


def test_worker_words_older_workers_included():
    assert BuildResult.from_worker("ABORTED") is BuildResult.CANCELED
    assert BuildResult.from_worker("SUCCESS") is BuildResult.SUCCESS
    assert BuildResult.from_worker("success") is None and BuildResult.from_worker("") is None
    assert BuildResult.LOST not in WORKER_RESULTS  # the launcher's verdict, never a worker's
