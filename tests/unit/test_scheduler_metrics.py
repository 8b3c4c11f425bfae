"""Scheduler metrics: Prometheus names and Zuul's statsd names, from status
snapshots and the history tables (real SQLite, real UDP)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gatekeeper.metrics.registry import statsd_client
from gatekeeper.metrics.scheduler import SchedulerMetrics
from gatekeeper.store import schema
from gatekeeper.store.migrate import open_store


def status(*items: tuple[str, str, float]) -> dict[str, Any]:
    return {"trigger_event_queue": 2, "result_event_queue": 0, "management_event_queue": 0,
            "pipelines": [{"name": "gate", "queues": [{"name": "integrated", "window": 20, "items": [
                {"id": i, "project": p, "enqueue_time": t} for i, p, t in items]}]}]}


def test_queues_items_builds_events_and_statsd(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    recv.settimeout(5)
    now = [1000.0]
    snaps = [status(("a", "demo/nova", 900.0)),
             status(("a", "demo/nova", 900.0), ("b", "demo/nova", 990.0)),
             status(("b", "demo/nova", 990.0))]
    m = SchedulerMetrics(lambda: snaps.pop(0) if len(snaps) > 1 else snaps[0], engine, gerrit_connected=lambda: True,
                         outbox_backlog=lambda: 3,
                         statsd=statsd_client(("127.0.0.1", recv.getsockname()[1]), "zuul"),
                         clock=lambda: now[0])
    m.event("comment-added")
    m.update()  # first look: what is there is not "enqueued" now
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.builds).values(
            uuid="b1", buildset="s1", pipeline="gate", project="demo/nova", job="tox",
            result="FAILURE", launch_time=1001.0, start_time=1001.0, end_time=1061.0))
        conn.execute(sa.insert(schema.buildsets).values(
            uuid="s1", item="a", pipeline="gate", project="demo/nova", result="FAILURE",
            created=1000.0, completed=1062.0))
    now[0] = 1100.0
    m.update()  # b entered
    now[0] = 1200.0
    m.update()  # a left after 300 s
    text = m.render()  # a second look counts nothing twice
    for line in ('gatekeeper_scheduler_events_total{type="comment-added"} 1.0',
                 'gatekeeper_scheduler_queue_items{pipeline="gate",queue="integrated"} 1.0',
                 'gatekeeper_scheduler_pipeline_items{pipeline="gate"} 1.0',
                 'gatekeeper_scheduler_items_enqueued_total{pipeline="gate"} 1.0',
                 'gatekeeper_scheduler_items_finished_total{pipeline="gate"} 1.0',
                 'gatekeeper_scheduler_item_resident_seconds_sum{pipeline="gate"} 300.0',
                 'gatekeeper_scheduler_builds_total{job="tox",pipeline="gate",result="FAILURE"} 1.0',
                 'gatekeeper_scheduler_build_duration_seconds_sum{job="tox"} 60.0',
                 'gatekeeper_scheduler_buildsets_total{pipeline="gate",result="FAILURE"} 1.0',
                 'gatekeeper_scheduler_gerrit_connected 1.0',
                 'gatekeeper_scheduler_outbox_backlog 3.0',
                 'gatekeeper_scheduler_event_queue{queue="trigger"} 2.0'):
        assert line in text, line
    got = set()
    recv.settimeout(0.5)  # loopback UDP: what was sent is there already
    try:
        while True:
            got.add(recv.recv(500).decode())
    except TimeoutError:
        pass
    recv.close()
    for packet in ("zuul.event.gerrit.comment-added:1|c",
                   "zuul.pipeline.gate.current_changes:1|g",
                   "zuul.pipeline.gate.total_changes:1|c",
                   "zuul.pipeline.gate.resident_time:300000.000000|ms",
                   "zuul.pipeline.gate.demo.nova.total_changes:1|c",
                   "zuul.pipeline.gate.job.tox.FAILURE:1|c",
                   "zuul.pipeline.gate.job.tox.FAILURE:60000.000000|ms"):
        assert packet in got, (packet, sorted(got))
