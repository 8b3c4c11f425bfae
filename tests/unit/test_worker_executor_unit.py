"""Executor decisions that need no node: claim failures, missing label, early stop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from gatekeeper.interfaces import NodeLease
from gatekeeper.worker.buildargs import parse_build_args
from gatekeeper.worker.executor import BuildExecutor, ExecutorSettings
from gatekeeper.worker.workspace import WorkspaceBuilder


class Claimer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.released: list[tuple[str, str]] = []

    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> NodeLease:
        if self.fail:
            raise TimeoutError("pool empty")
        return NodeLease("n1", label, "127.0.0.1", 22, "ci", provider="rax")

    def release(self, lease: NodeLease, state: str, hold_for: float | None = None,
                reason: str = "", build: str = "", result: str = "") -> None:
        self.released.append((lease.node_id, state))


class Reporter:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def data(self, payload: dict[str, object]) -> None:
        self.seen.append(payload)

    def status(self, n: int, d: int) -> None:
        self.seen.append((n, d))


def make(tmp_path: Path, claimer: Claimer) -> BuildExecutor:
    s = ExecutorSettings("w", tmp_path / "jobs", tmp_path / "logs", "http://logs/")
    return BuildExecutor(s, claimer, WorkspaceBuilder())


def spec(label: str | None = "small") -> Any:
    return parse_build_args("build:j", {
        "ZUUL_UUID": "uuid0001", "ZUUL_PROJECT": "p", "ZUUL_PIPELINE": "check",
        "ZUUL_CHANGE": "5", "ZUUL_PATCHSET": "1",
        "gatekeeper": {"job": "j", "label": label, "run": "run.sh"}})


def test_claim_failure_is_node_failure(tmp_path: Path) -> None:
    out = make(tmp_path, Claimer(fail=True)).run(spec(), Reporter(), threading.Event())
    assert out.result == "NODE_FAILURE" and "pool empty" in out.message
    assert out.log_url is None and out.node is None


def test_job_without_label_is_error(tmp_path: Path) -> None:
    c = Claimer()
    out = make(tmp_path, c).run(spec(label=None), Reporter(), threading.Event())
    assert out.result == "ERROR" and c.released == []


def test_stop_before_start_aborts_releases_and_publishes(tmp_path: Path) -> None:
    c, r, stop = Claimer(), Reporter(), threading.Event()
    stop.set()
    out = make(tmp_path, c).run(spec(), r, stop)
    assert out.result == "CANCELED"
    assert c.released == [("n1", "used")]
    assert r.seen[0] == {"worker": "w", "node": "n1", "provider": "rax",
                         "url": "http://logs/5/5/1/check/j/uuid000/"}
    console = (tmp_path / "logs" / out.log_path / "console.txt").read_text()
    assert console.splitlines()[0] == "NODE_PROVIDER=rax"
    assert "aborted before it started" in console
    assert not (tmp_path / "jobs" / "uuid0001").exists()


class BlockingClaimer(Claimer):
    """Hands out a node only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.grant = threading.Event()

    def claim(self, label: str, build_uuid: str, timeout: float, project: str = "",
              job: str = "") -> NodeLease:
        self.waiting.set()
        assert self.grant.wait(30)
        return super().claim(label, build_uuid, timeout)


def test_stop_while_waiting_for_a_node_aborts_and_releases_the_late_lease(
        tmp_path: Path) -> None:
    c, stop = BlockingClaimer(), threading.Event()
    ex = make(tmp_path, c)
    ex.settings.poll_interval = 0.01
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(ex.run(spec(), Reporter(), stop)))
    t.start()
    assert c.waiting.wait(30)
    stop.set()
    t.join(30)
    assert result[0].result == "CANCELED" and result[0].node is None
    assert c.released == []
    c.grant.set()  # the pool answers after all: the node goes straight back
    deadline = threading.Event()
    for _ in range(3000):
        if c.released:
            break
        deadline.wait(0.01)
    assert c.released == [("n1", "used")]


class BrokenWorkspace(WorkspaceBuilder):
    def prepare(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("bug")


def test_internal_error_is_error_with_logs_and_release(tmp_path: Path) -> None:
    c = Claimer()
    s = ExecutorSettings("w", tmp_path / "jobs", tmp_path / "logs", "http://logs/")
    out = BuildExecutor(s, c, BrokenWorkspace()).run(spec(), Reporter(), threading.Event())
    assert out.result == "ERROR" and out.message == "internal error: KeyError"
    assert c.released == [("n1", "used")]
    console = (tmp_path / "logs" / out.log_path / "console.txt").read_text()
    assert "internal error of the worker: KeyError" in console


class FailingExecutor(BuildExecutor):
    def _on_node(self, *args: Any) -> str:  # the script failed
        return "FAILURE"


def test_failed_build_holds_unless_hold_hours_is_0(tmp_path: Path, caplog: Any) -> None:
    from gatekeeper.worker.nodes import StaticNode, StaticNodeClaimer

    for hours, held in ((0.0, None), (1.0, 4600.0)):
        clock = lambda: 1000.0  # noqa: E731
        nodes = [StaticNode(f"n{i}", "127.0.0.1", ("small",)) for i in range(2)]
        claimer = StaticNodeClaimer(nodes, clock=clock)
        s = ExecutorSettings("w", tmp_path / "jobs", tmp_path / "logs", "http://logs/",
                             hold_for=hours * 3600)
        caplog.clear()
        with caplog.at_level("INFO", logger="gatekeeper.worker.nodes"):
            out = FailingExecutor(s, claimer, WorkspaceBuilder()).run(
                spec(), Reporter(), threading.Event())
        assert out.result == "FAILURE"
        assert claimer.state()[0]["held_until"] == held
        text = caplog.text
        assert ("held for" in text) == (held is not None)
        assert "(hold)" not in text and "not held" not in text
