"""GearmanLauncher against real Gearman servers (gear.Server and gearmand)."""

from __future__ import annotations

import json
import threading
import time
import uuid as uuidlib

import gear
import pytest

from gatekeeper.gearman import admin
from gatekeeper.gearman.launcher import GearmanLauncher
from gatekeeper.gearman.nodelay import has_nodelay
from gatekeeper.gearman.server import EmbeddedGearmanServer
from gatekeeper.interfaces import BuildRequest
from gatekeeper.model.events import BuildCompleted, BuildProgress, BuildStarted
from tests.fixtures.gearman_workers import EventLog, ScriptedWorker

pytestmark = pytest.mark.integration

PARAMS = {"ZUUL_PROJECT": "org/demo", "ZUUL_PIPELINE": "gate", "ZUUL_BRANCH": "master",
          "ZUUL_REF": "refs/gatekeeper/master/Zabc", "ZUUL_CHANGE": "12", "ZUUL_PATCHSET": "3",
          "ZUUL_URL": "git://127.0.0.1:9418/", "LOG_PATH": "12/12/3/gate/unit/abc1234"}


def request(job: str = "unit", label: str | None = None, **kw: object) -> BuildRequest:
    uid = uuidlib.uuid4().hex
    params = dict(PARAMS, ZUUL_UUID=uid)
    return BuildRequest(uuid=uid, job=job, label=label, parameters=params, timeout=600,
                        run="tests/run.sh", artifacts=("/var/log/x",), projects=("org/lib",),
                        **kw)  # type: ignore[arg-type]


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def launcher(gearman_server, events):
    la = GearmanLauncher(gearman_server.host, gearman_server.port, events,
                         submit_timeout=10, admin_timeout=5, check_interval=0.3).start()
    assert la.wait_for_server(10)
    yield la
    la.stop()


@pytest.fixture
def workers(gearman_server):
    made: list[ScriptedWorker] = []

    def make(name, functions, handler):
        w = ScriptedWorker(gearman_server.host, gearman_server.port, name, functions, handler)
        made.append(w)
        w.wait_registered(gearman_server.host, gearman_server.port, functions)
        return w

    yield make
    for w in made:
        w.stop()


def started_data(name: str) -> str:
    return json.dumps({"worker": name, "node": "node-1", "provider": "local",
                       "url": "http://logs/x"})


def succeed(w: ScriptedWorker, job: gear.TextWorkerJob) -> None:
    job.sendWorkData(started_data(w.name))
    job.sendWorkStatus(1, 2)
    job.sendWorkComplete(json.dumps({"result": "SUCCESS", "url": "http://logs/x/done"}))


def test_build_runs_and_reports_started_progress_completed(launcher, workers, events):
    w = workers("w1", ["build:unit"], succeed)
    req = request(precedence="high")
    launcher.launch(req)
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "SUCCESS"
    assert done.url == "http://logs/x/done"
    assert done.worker == "w1" and done.node == "node-1" and done.provider == "local"
    started = events.of(BuildStarted, req.uuid)
    assert started == [BuildStarted(req.uuid, "w1", "node-1", "local", "http://logs/x")]
    assert events.of(BuildProgress, req.uuid) == [BuildProgress(req.uuid, 1, 2)]
    # Order: started, progress, completed.
    mine = [e for e in events.events if getattr(e, "build_uuid", None) == req.uuid]
    assert [type(e) for e in mine] == [BuildStarted, BuildProgress, BuildCompleted]
    # What the worker received: the Zuul parameters at the top level.
    job = w.jobs[0]
    assert job.name == "build:unit"
    assert job.unique == req.uuid
    args = json.loads(job.arguments)
    for key, value in req.parameters.items():
        assert args[key] == value
    assert args["ZUUL_UUID"] == req.uuid
    assert args["gatekeeper"] == {"job": "unit", "label": None, "timeout": 600,
                                  "run": "tests/run.sh", "artifacts": ["/var/log/x"],
                                  "projects": ["org/lib"], "hold_on_failure": True,
                                  "failure_output": []}
    assert launcher.in_flight() == []


def test_label_function_preferred_and_plain_fallback(launcher, workers, events):
    labelled = workers("wl", ["build:unit:debian"], succeed)
    plain = workers("wp", ["build:unit"], succeed)
    r1 = request(label="debian")
    launcher.launch(r1)
    assert events.wait_for(BuildCompleted, r1.uuid)[0].result == "SUCCESS"
    assert [j.name for j in labelled.jobs] == ["build:unit:debian"]
    # No worker for the "fedora" label: the plain build:unit worker takes it.
    r2 = request(label="fedora")
    launcher.launch(r2)
    assert events.wait_for(BuildCompleted, r2.uuid)[0].result == "SUCCESS"
    assert [j.name for j in plain.jobs] == ["build:unit"]
    assert json.loads(plain.jobs[0].arguments)["gatekeeper"]["label"] == "fedora"


def test_not_registered(launcher, events):
    launcher.not_registered_grace = 0.5
    req = request(job="nobody-runs-this")
    launcher.launch(req)
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "NOT_REGISTERED"
    assert "build:nobody-runs-this" in done.message
    assert events.of(BuildStarted, req.uuid) == []


def test_build_waits_for_a_worker_that_registers_late(launcher, events, workers):
    """A worker restarting must not turn builds into NOT_REGISTERED."""
    launcher.not_registered_grace = 120.0
    req = request(job="late")
    launcher.launch(req)
    # The launcher looked and found no worker: it waits instead of failing.
    deadline = time.monotonic() + 30
    while not launcher._builds[req.uuid].waiting:
        assert time.monotonic() < deadline, "the launcher never looked for a worker"
        time.sleep(0.01)
    assert events.of(BuildCompleted, req.uuid) == []
    workers("late-worker", ["build:late"], succeed)
    assert events.wait_for(BuildCompleted, req.uuid)[0].result == "SUCCESS"


def test_work_fail_and_exception_are_lost(gearman_server, launcher, workers, events):
    def fail(w, job):
        job.sendWorkData(started_data(w.name))
        if json.loads(job.arguments)["ZUUL_PIPELINE"] == "fail":
            job.sendWorkFail()
        else:
            job.sendWorkException("boom")

    workers("wf", ["build:unit"], fail)
    r1 = request()
    r1.parameters["ZUUL_PIPELINE"] = "fail"
    r2 = request()
    launcher.launch(r1)
    launcher.launch(r2)
    assert events.wait_for(BuildCompleted, r1.uuid)[0].result == "LOST"
    lost = events.wait_for(BuildCompleted, r2.uuid)[0]
    assert lost.result == "LOST"
    if gearman_server.kind == "gear":  # gearmand turns WORK_EXCEPTION into WORK_FAIL
        assert "boom" in lost.message


def test_bad_or_unknown_result_is_error_not_crash(launcher, workers, events):
    def weird(w, job):
        job.sendWorkData("not json")  # ignored
        job.sendWorkComplete(json.dumps({"result": "GREAT", "message": "m"}))  # a newer word

    workers("ww", ["build:unit"], weird)
    req = request()
    launcher.launch(req)
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "ERROR" and done.retry
    assert done.message == "worker returned an unknown result 'GREAT': m"


def test_a_build_the_worker_stopped_on_its_own_is_lost_and_retried(launcher, workers, events):
    # A worker shutting down aborts its builds (CANCELED): not the change's doing.
    def shutting_down(w, job):
        job.sendWorkData(started_data(w.name))
        job.sendWorkComplete(json.dumps({"result": "CANCELED", "message": "stopped"}))

    workers("leaving", ["build:unit"], shutting_down)
    req = request()
    launcher.launch(req)
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert (done.result, done.retry) == ("LOST", True)
    assert done.message == "the worker stopped the build (stopped)"


def test_complete_without_data_is_not_read_from_work_data(launcher, workers, events):
    # gear keeps WORK_DATA chunks and the result in one list (job.data):
    # an empty WORK_COMPLETE must not be mistaken for the last WORK_DATA.
    def empty(w, job):
        job.sendWorkData(json.dumps({"worker": w.name, "result": "SUCCESS"}))
        job.sendWorkComplete("")

    workers("we", ["build:unit"], empty)
    req = request()
    launcher.launch(req)
    assert events.wait_for(BuildCompleted, req.uuid)[0].result == "ERROR"


def test_worker_dies_mid_job_exactly_one_result(gearman_server, launcher, workers, events):
    """gearmand re-queues to another worker; gear.Server fails the job."""
    gate = threading.Event()

    def die(w, job):
        job.sendWorkData(started_data(w.name))
        gate.wait(10)
        w.crash()

    dying = workers("dying", ["build:unit"], die)
    req = request()
    launcher.launch(req)
    events.wait_for(BuildStarted, req.uuid)
    workers("healthy", ["build:unit"], succeed)
    gate.set()
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    if gearman_server.kind == "gearmand":
        assert done.result == "SUCCESS" and done.worker == "healthy"
    else:
        assert done.result == "LOST"
    assert len(dying.jobs) == 1
    # A later build through the same connection completes; by then any
    # stray packet for the first build would have arrived.
    marker = request()
    launcher.launch(marker)
    events.wait_for(BuildCompleted, marker.uuid)
    assert len(events.of(BuildCompleted, req.uuid)) == 1
    assert len(events.of(BuildStarted, req.uuid)) == 1


def test_only_worker_dies_build_is_lost_on_both_servers(launcher, workers, events):
    # gearmand would keep the re-queued job forever: the orphan check
    # notices that no worker is left for the function.
    def die(w, job):
        job.sendWorkData(started_data(w.name))
        w.crash()

    workers("lonely", ["build:unit"], die)
    req = request()
    launcher.launch(req)
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "LOST"
    assert launcher.in_flight() == []


def test_cancel_queued_build(gearman_server, launcher, workers, events):
    release = threading.Event()

    def slow(w, job):
        job.sendWorkData(started_data(w.name))
        release.wait(10)
        job.sendWorkComplete(json.dumps({"result": "SUCCESS"}))

    w = workers("busy", ["build:unit"], slow)
    first, queued = request(), request()
    launcher.launch(first)
    events.wait_for(BuildStarted, first.uuid)
    launcher.launch(queued)
    target = admin.AdminTarget(gearman_server.host, gearman_server.port)
    _wait(lambda: admin.status(target)["build:unit"].queued == 2)
    assert launcher.cancel(queued.uuid) is False  # submitted: CANCELED follows
    done = events.wait_for(BuildCompleted, queued.uuid)[0]
    assert done.result == "CANCELED"
    if gearman_server.kind == "gear":
        # gearmand keeps counting a cancelled job until a worker grabs (and
        # drops) it; it is never delivered, as asserted below.
        _wait(lambda: admin.status(target)["build:unit"].queued == 1)
    release.set()
    events.wait_for(BuildCompleted, first.uuid)
    marker = request()
    launcher.launch(marker)
    events.wait_for(BuildCompleted, marker.uuid)
    # The worker never saw the cancelled build, and it completed once.
    assert [j.unique for j in w.jobs] == [first.uuid, marker.uuid]
    assert len(events.of(BuildCompleted, queued.uuid)) == 1


# What workers before the one vocabulary sent, this one's word, a newer worker's:
# a build we asked to stop is CANCELED whatever the word.
@pytest.mark.parametrize("word", ["ABORTED", "CANCELED", "STOPPED_SOMEHOW"])
def test_cancel_running_build_sends_stop_to_its_worker(launcher, workers, events, word):
    stop_requests: list[str] = []
    stopped = threading.Event()

    def run_until_stopped(w, job):
        job.sendWorkData(started_data("runner"))
        stopped.wait(15)
        job.sendWorkComplete(json.dumps({"result": word, "message": "stopped"}))

    def on_stop(w, job):
        stop_requests.append(json.loads(job.arguments)["uuid"])
        stopped.set()
        job.sendWorkComplete("{}")

    workers("runner", ["build:unit"], run_until_stopped)
    workers("runner-stop", ["stop:runner"], on_stop)
    req = request()
    launcher.launch(req)
    events.wait_for(BuildStarted, req.uuid)
    assert launcher.cancel(req.uuid) is False
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "CANCELED"
    assert stop_requests == [req.uuid]


def test_cancel_before_submission_returns_true_and_no_event(gear_server):
    events = EventLog()
    la = GearmanLauncher(gear_server.host, gear_server.port, events, submit_timeout=5,
                         not_registered_grace=0)
    la.start()
    try:
        # Hold the submitter thread on the first build so the second stays pending.
        blocker = threading.Event()
        orig = la._submit

        def held_submit(uuid):
            blocker.wait(10)
            orig(uuid)

        la._submit = held_submit  # type: ignore[method-assign]
        first = request()
        la.launch(first)
        second = request()
        la.launch(second)
        assert la.cancel(second.uuid) is True
        assert la.cancel(second.uuid) is False
        blocker.set()
        events.wait_for(BuildCompleted, first.uuid)  # NOT_REGISTERED: no worker
        assert events.of(BuildCompleted, second.uuid) == []
    finally:
        la.stop()


def test_cancel_while_submitting_aborts_the_build_once(gearman_server, launcher, workers,
                                                      events):
    # The server may hold the job before submitJob returns: a cancel in that moment must
    # not be taken for "never submitted" (the job would run anyway, unseen).
    release = threading.Event()

    def slow(w, job):
        job.sendWorkData(started_data(w.name))
        release.wait(10)
        job.sendWorkComplete(json.dumps({"result": "SUCCESS"}))

    w = workers("busy", ["build:unit"], slow)
    first = request()
    launcher.launch(first)
    events.wait_for(BuildStarted, first.uuid)
    submitted, go_on = threading.Event(), threading.Event()
    client = launcher._client
    orig = client.submitJob

    def slow_submit(job, *a, **kw):
        orig(job, *a, **kw)
        submitted.set()
        go_on.wait(10)

    client.submitJob = slow_submit  # type: ignore[method-assign]
    req = request()
    launcher.launch(req)
    assert submitted.wait(10)
    assert launcher.cancel(req.uuid) is False  # the server has it: CANCELED follows
    client.submitJob = orig  # type: ignore[method-assign]
    go_on.set()
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    assert done.result == "CANCELED"
    release.set()
    events.wait_for(BuildCompleted, first.uuid)
    marker = request()
    launcher.launch(marker)
    events.wait_for(BuildCompleted, marker.uuid)
    assert [j.unique for j in w.jobs] == [first.uuid, marker.uuid]
    assert len(events.of(BuildCompleted, req.uuid)) == 1


def test_server_loss_makes_running_builds_lost_and_reconnects(tmp_path):
    events = EventLog()
    server = EmbeddedGearmanServer().start()
    port = server.port
    la = GearmanLauncher("127.0.0.1", port, events, submit_timeout=10).start()
    holder = []
    try:
        assert la.wait_for_server(10)
        gate = threading.Event()

        def hang(w, job):
            job.sendWorkData(started_data(w.name))
            gate.wait(15)

        w = ScriptedWorker("127.0.0.1", port, "hang", ["build:unit"], hang)
        holder.append(w)
        w.wait_registered("127.0.0.1", port, ["build:unit"])
        req = request()
        la.launch(req)
        events.wait_for(BuildStarted, req.uuid)
        server.stop()
        assert events.wait_for(BuildCompleted, req.uuid)[0].result == "LOST"
        gate.set()
        w.stop()  # or it reconnects too and takes the next build
        # Back on the same port: the launcher reconnects by itself.
        server = EmbeddedGearmanServer(port=port).start()
        w2 = ScriptedWorker("127.0.0.1", port, "w2", ["build:unit"], succeed)
        holder.append(w2)
        w2.wait_registered("127.0.0.1", port, ["build:unit"])
        assert la.wait_for_server(15)
        again = request()
        la.launch(again)
        assert events.wait_for(BuildCompleted, again.uuid)[0].result == "SUCCESS"
    finally:
        la.stop()
        for w in holder:
            w.stop()
        server.stop()


def test_tcp_nodelay_on_every_socket(gearman_server, launcher, workers):
    w = workers("nd", ["build:unit"], succeed)
    socks = [c.conn for c in launcher.client.active_connections]
    socks += [c.conn for c in w.worker.active_connections]
    assert socks and all(has_nodelay(s) for s in socks)
    # The trap: gear's own classes do not set it.
    plain = gear.Client("plain")
    try:
        plain.addServer(gearman_server.host, gearman_server.port)
        plain.waitForServer(10)
        assert not has_nodelay(plain.active_connections[0].conn)
    finally:
        plain.shutdown()


def test_embedded_server_sets_nodelay_on_accepted_connections():
    server = EmbeddedGearmanServer().start()
    client = gear.Client("probe")
    try:
        client.addServer("127.0.0.1", server.port)
        client.waitForServer(10)
        conns = server._server.active_connections
        _wait(lambda: len(conns) >= 1)
        assert all(has_nodelay(c.conn) for c in conns)
    finally:
        client.shutdown()
        server.stop()


def _wait(predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_unanswered_admin_request_costs_one_timeout_not_the_connection(gearman_server):
    """gear.Server never answers ``version``; an unanswered admin request
    would block every later reply on a shared connection. Ours are
    short-lived: the next query works at once."""
    target = admin.AdminTarget(gearman_server.host, gearman_server.port)
    if gearman_server.kind == "gear":
        with pytest.raises(admin.AdminError):
            admin.command(target, "version", multiline=False, timeout=0.3)
    else:
        assert admin.command(target, "version", multiline=False)[0]
    assert isinstance(admin.status(target), dict)
    assert admin.registered(target, "build:nothing") is False


def test_admin_errors_when_server_is_down():
    from gatekeeper.netutil import free_port

    with pytest.raises(admin.AdminError):
        admin.status(admin.AdminTarget("127.0.0.1", free_port()), timeout=1)


def test_precedence_orders_queued_builds(launcher, workers, events):
    release = threading.Event()
    order: list[str] = []

    def record(w, job):
        order.append(job.unique)
        job.sendWorkData(started_data(w.name))
        if len(order) == 1:
            release.wait(10)
        job.sendWorkComplete(json.dumps({"result": "SUCCESS"}))

    workers("prio", ["build:unit"], record)
    first = request()
    launcher.launch(first)
    events.wait_for(BuildStarted, first.uuid)
    low, normal, high = request(precedence="low"), request(), request(precedence="high")
    for r in (low, normal, high):
        launcher.launch(r)
    target = admin.AdminTarget(launcher.host, launcher.port)
    _wait(lambda: admin.status(target)["build:unit"].queued == 4)
    release.set()
    for r in (low, normal, high):
        events.wait_for(BuildCompleted, r.uuid)
    assert order == [first.uuid, high.uuid, normal.uuid, low.uuid]


def test_server_gone_mid_build_is_lost_on_both_servers(gearman_server, launcher, workers,
                                                       events):
    gate = threading.Event()

    def hang(w, job):
        job.sendWorkData(started_data(w.name))
        gate.wait(10)

    workers("hang2", ["build:unit"], hang)
    req = request()
    launcher.launch(req)
    events.wait_for(BuildStarted, req.uuid)
    gearman_server.stop()
    done = events.wait_for(BuildCompleted, req.uuid)[0]
    gate.set()
    assert done.result == "LOST" and "connection" in done.message
    assert launcher.in_flight() == []


def test_no_server_at_all_is_lost_after_submit_timeout():
    from gatekeeper.netutil import free_port

    events = EventLog()
    la = GearmanLauncher("127.0.0.1", free_port(), events, submit_timeout=0.5).start()
    try:
        req = request()
        la.launch(req)
        done = events.wait_for(BuildCompleted, req.uuid)[0]
        assert done.result == "LOST" and "unavailable" in done.message
    finally:
        la.stop()
