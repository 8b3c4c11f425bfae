"""The scheduler's metrics: Prometheus ``gatekeeper_scheduler_*`` and statsd
with Zuul's names, for sites whose dashboards expect them.

Gathered beside the loop, never in it: every ``interval`` seconds a thread
reads the status (queue depths, windows, items entering and leaving, event
queue lengths), the Gerrit stream's state, the outbox backlog, and the
builds and buildsets the history got since the last look (results and
durations per job, results per pipeline). Trigger events are counted as
they arrive (``event``). The web serves the text at ``/metrics``.

statsd names (prefix ``zuul`` by default, as Zuul's):
``zuul.event.gerrit.<type>``, ``zuul.pipeline.<p>.current_changes`` (gauge),
``zuul.pipeline.<p>.total_changes``, ``zuul.pipeline.<p>.resident_time``
(timer), the same two under ``zuul.pipeline.<p>.<project with dots>``,
``zuul.pipeline.<p>.job.<job>.<result>`` (counter and timer)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gatekeeper.metrics.registry import DURATION_BUCKETS, Labels, Registry, statsd_key

log = logging.getLogger("gatekeeper.metrics.scheduler")

RESIDENT_BUCKETS = (60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, float("inf"))


class SchedulerMetrics:
    def __init__(self, status: Callable[[], dict[str, Any]], engine: Any = None,
                 gerrit_connected: Callable[[], bool] | None = None,
                 outbox_backlog: Callable[[], int] | None = None, statsd: Any = None,
                 interval: float = 5.0, clock: Callable[[], float] = time.time):
        self.registry = Registry("gatekeeper_scheduler_")
        self.status = status
        self.engine = engine  # the history's database (None: no build metrics)
        self.gerrit_connected = gerrit_connected
        self.outbox_backlog = outbox_backlog
        self.statsd = statsd
        self.interval = interval
        self.clock = clock
        self._items: dict[str, tuple[str, str, float]] = {}  # id -> pipeline, project, since
        self._since = clock()  # history rows after this are new
        self._seen_builds: dict[str, float] = {}  # uuid -> end time, counted already
        self._seen_sets: dict[str, float] = {}
        self._first = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- counted as they happen ---------------------------------------------------
    def event(self, type_: str, source: str = "gerrit") -> None:
        self.registry.inc("events_total", {"type": type_}, help_text="trigger events taken in")
        if self.statsd:
            self.statsd.incr(statsd_key("event", source, type_))

    # -- gathered -----------------------------------------------------------------
    def start(self) -> SchedulerMetrics:
        self._thread = threading.Thread(target=self._run, name="scheduler-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(0 if self._first else self.interval):
            try:
                self.update()
            except Exception:  # metrics never break the scheduler
                log.exception("gathering metrics failed")

    def render(self) -> str:
        """Prometheus text, gathered now (a scrape never sees a stale queue)."""
        self.update()
        return self.registry.render()

    def update(self) -> None:
        with self._lock:
            self._queues(self.status())
            if self.gerrit_connected is not None:
                self.registry.set("gerrit_connected", float(self.gerrit_connected()),
                                  help_text="1 while the Gerrit event stream is connected")
            if self.outbox_backlog is not None:
                self.registry.set("outbox_backlog", float(self.outbox_backlog()),
                                  help_text="reports written but not yet sent to Gerrit")
            if self.engine is not None:
                self._history()
            self._first = False

    def _queues(self, status: dict[str, Any]) -> None:
        now = self.clock()
        depth: dict[Labels, float] = {}
        window: dict[Labels, float] = {}
        oldest: dict[Labels, float] = {}
        current: dict[Labels, float] = {}
        seen: dict[str, tuple[str, str, float]] = {}
        for p in status.get("pipelines", []):
            name = str(p.get("name"))
            current[(("pipeline", name),)] = 0.0
            for q in p.get("queues", []):
                key: Labels = (("pipeline", name), ("queue", str(q.get("name") or "")))
                items = q.get("items", [])
                depth[key] = float(len(items))
                window[key] = float(q.get("window") or 0)
                current[(("pipeline", name),)] += len(items)
                for i in items:
                    since = float(i.get("enqueue_time") or now)
                    seen[str(i.get("id"))] = (name, str(i.get("project", "")), since)
                    pk: Labels = (("pipeline", name),)
                    oldest[pk] = max(oldest.get(pk, 0.0), now - since)
        r = self.registry
        r.set_gauges("queue_items", depth, "items in each queue", ("pipeline", "queue"))
        r.set_gauges("queue_window", window, "each queue's window", ("pipeline", "queue"))
        r.set_gauges("pipeline_items", current, "items in each pipeline", ("pipeline",))
        r.set_gauges("oldest_item_seconds", oldest, "how long the oldest item has been in "
                     "each pipeline", ("pipeline",))
        for qname in ("trigger", "result", "management"):
            r.set("event_queue", float(status.get(f"{qname}_event_queue") or 0),
                  {"queue": qname}, help_text="events waiting for the scheduler's loop")
        if not self._first:
            for uid, (pipeline, _project, _since) in seen.items():
                if uid not in self._items:
                    r.inc("items_enqueued_total", {"pipeline": pipeline},
                          help_text="items that entered a pipeline")
            for uid, (pipeline, project, since) in self._items.items():
                if uid not in seen:
                    resident = max(0.0, now - since)
                    r.inc("items_finished_total", {"pipeline": pipeline},
                          help_text="items that left a pipeline")
                    r.observe("item_resident_seconds", resident, {"pipeline": pipeline},
                              "time from enqueue to leaving the pipeline", RESIDENT_BUCKETS)
                    if self.statsd:
                        proj = project.replace("/", ".")
                        for base in (("pipeline", pipeline), ("pipeline", pipeline, proj)):
                            self.statsd.incr(statsd_key(*base, "total_changes"))
                            self.statsd.timing(statsd_key(*base, "resident_time"),
                                               int(resident * 1000))
        self._items = seen
        if self.statsd:
            for key, n in current.items():
                self.statsd.gauge(statsd_key("pipeline", key[0][1], "current_changes"), int(n))

    def _history(self) -> None:
        import sqlalchemy as sa

        from gatekeeper.store import schema

        b, s = schema.builds, schema.buildsets
        try:
            with self.engine.connect() as conn:
                builds = conn.execute(sa.select(b.c.uuid, b.c.pipeline, b.c.job, b.c.result,
                                                b.c.start_time, b.c.end_time)
                                      .where(b.c.end_time >= self._since,
                                             b.c.result.is_not(None))).all()
                sets = conn.execute(sa.select(s.c.uuid, s.c.pipeline, s.c.result, s.c.completed)
                                    .where(s.c.completed >= self._since,
                                           s.c.result.is_not(None))).all()
        except sa.exc.SQLAlchemyError as e:  # tables not there yet, database away
            log.debug("no build metrics this time: %s", type(e).__name__)
            return
        r = self.registry
        for row in builds:
            if row.uuid in self._seen_builds:
                continue
            self._seen_builds[row.uuid] = row.end_time
            result = str(row.result)
            r.inc("builds_total", {"pipeline": row.pipeline, "job": row.job, "result": result},
                  help_text="finished builds by result")
            seconds = None
            if row.start_time is not None and row.end_time is not None:
                seconds = max(0.0, row.end_time - row.start_time)
                r.observe("build_duration_seconds", seconds, {"job": row.job},
                          "run time of finished builds", DURATION_BUCKETS)
            if self.statsd:
                key = statsd_key("pipeline", row.pipeline, "job", row.job, result)
                self.statsd.incr(key)
                if seconds is not None:
                    self.statsd.timing(key, int(seconds * 1000))
        for row in sets:
            if row.uuid in self._seen_sets:
                continue
            self._seen_sets[row.uuid] = row.completed
            r.inc("buildsets_total", {"pipeline": row.pipeline, "result": str(row.result)},
                  help_text="finished buildsets by result (in a gate, SUCCESS is merged)")
        # Rows of the last hour may still arrive late; older ones never change again.
        horizon = self.clock() - 3600
        if horizon > self._since:
            self._since = horizon
            for seen in (self._seen_builds, self._seen_sets):
                for uuid in [u for u, t in seen.items() if t < horizon]:
                    del seen[uuid]
