"""RequestLoop: the JSON request/answer loop the scheduler's RPC and the
pool's node functions share, and what each does when an answer fails."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gatekeeper.gearman.rpclistener import RPCListener
from gatekeeper.nodes.gearsvc import PoolGearmanWorker


class Job:
    def __init__(self, name: str, arguments: bytes, fails: bool = False):
        self.name, self.arguments, self.fails = name.encode(), arguments, fails
        self.answers: list[dict] = []

    def sendWorkComplete(self, data: bytes) -> None:  # gear.WorkerJob's method
        if self.fails:
            raise OSError("client went away")
        self.answers.append(json.loads(data))


class Scheduler:
    def last_status(self):
        return {"pipelines": []}

    def explain(self, change):
        if change == "boom":
            raise RuntimeError("bug")
        return f"about {change}"

    def add_management_event(self, event):
        event.answer(None)


def test_the_rpc_answers_and_survives_bad_requests_and_lost_clients():
    rpc = RPCListener(Scheduler(), "127.0.0.1", 0)
    job = Job("gatekeeper:explain", b'{"change": "1,1"}')
    rpc._take(job)
    assert job.answers == [{"text": "about 1,1"}]
    job = Job("gatekeeper:explain", b"not json")
    rpc._take(job)
    assert job.answers[0]["error"].startswith("bad request: ")
    job = Job("gatekeeper:explain", b'{"change": "boom"}')
    rpc._take(job)
    assert job.answers == [{"error": "internal error in the scheduler"}]
    rpc._take(Job("gatekeeper:status", b"{}", fails=True))  # logged, nothing raised
    job = Job("gatekeeper:manage", b'{"action": "reconfigure"}', fails=True)
    rpc._take(job)  # handled though nobody hears the answer


def test_a_lease_that_does_not_reach_the_build_raises_to_the_pool():
    calls = []

    def claim(label, build, timeout, reply, project, job):
        try:
            reply({"node_id": "7"}, "")
            calls.append("handed")
        except ConnectionError:
            calls.append("taken back")  # what PoolService._handed does

    service = SimpleNamespace(config=SimpleNamespace(labels={"deb": None}), claim=claim,
                              release=lambda *a: None)
    pool = PoolGearmanWorker(service, "127.0.0.1", 0)
    ok = Job("node:claim:deb", b'{"build": "b1"}')
    pool._take(ok)
    pool._take(Job("node:claim:deb", b'{"build": "b2"}', fails=True))
    assert ok.answers == [{"node_id": "7"}] and calls == ["handed", "taken back"]
    released = Job("node:release", b'{"node_id": "7"}', fails=True)
    pool._take(released)  # a lost release answer is only logged
    bad = Job("node:release", b"[")
    pool._take(bad)
    assert bad.answers[0]["error"].startswith("bad request")


@pytest.mark.parametrize("cls", [RPCListener, PoolGearmanWorker])
def test_an_unknown_function_is_an_error_answer(cls):
    owner = Scheduler() if cls is RPCListener else SimpleNamespace()
    loop = cls(owner, "127.0.0.1", 0)
    job = Job("what:ever", b"{}")
    loop._take(job)
    assert job.answers == [{"error": "unknown function what:ever"}]
