"""The scheduler loop: the one thread that owns all queue state.

Adapters (Gerrit watcher, Gearman launcher, merger client, SIGHUP handler,
CLI via RPC) put events on three thread-safe queues. Each turn drains
management events, then results, then trigger events (as Zuul does), fires
due timers, and lets the pure core (``gatekeeper.core``) process every
pipeline until nothing changes. The core acts on the world only through
``AdapterEffects`` and changes state only through ``Door``."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, assert_never

from croniter import croniter

from gatekeeper.core.context import Context
from gatekeeper.core.door import Door
from gatekeeper.core.engine import Engine
from gatekeeper.core.explain import explain_change
from gatekeeper.core.reconcile import reconcile
from gatekeeper.core.status import status as core_status
from gatekeeper.interfaces import (
    BuildRequest,
    EventSink,
    Launcher,
    Mailer,
    MailReport,
    MergeClient,
    MergeRequest,
    Reporter,
    ReportResult,
    Source,
    SourceUnavailable,
)
from gatekeeper.layout.model import Layout
from gatekeeper.mail.outbox import MailEntry
from gatekeeper.model.change import Change, Ref
from gatekeeper.model.events import (
    Answered,
    BuildCompleted,
    Dequeue,
    Enqueue,
    EventApproval,
    ManagementEvent,
    MergeCompleted,
    Promote,
    Reconfigure,
    Request,
    ResultEvent,
    SubmitCompleted,
    TriggerEvent,
)
from gatekeeper.model.runtime import QueueItem
from gatekeeper.model.states import BuildResult, SubmitState
from gatekeeper.store.journal import Restored, StateJournal
from gatekeeper.store.learned import seed_learned
from gatekeeper.store.outbox import Outbox, OutboxEntry, ReportSender
from gatekeeper.store.snapshot import SnapshotWriter

log = logging.getLogger("gatekeeper.scheduler")

MAX_TIMER_SLEEP = 10.0  # seconds the loop sleeps at most without events
# A trigger event whose source lookup failed (Gerrit unreachable) is tried
# again after RETRY_BASE * 2**n seconds (capped), at most RETRY_ATTEMPTS times:
# an approval made during a Gerrit hiccup must not be lost.
RETRY_BASE = 5.0
RETRY_CAP = 300.0
RETRY_ATTEMPTS = 10
EVENTS_KEPT = 600.0  # seconds of handled Gerrit events persisted, against catch-up repeats
ALIVE_EVERY = 30.0  # seconds between writes of "events seen up to now" when idle


def event_to_dict(ev: TriggerEvent) -> dict[str, Any]:
    """The fields that differ from their defaults (``event_from_dict`` restores the rest)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(TriggerEvent):
        v = getattr(ev, f.name)
        if v != f.default or f.name == "type":
            out[f.name] = [dataclasses.asdict(a) for a in v] if f.name == "approvals" else v
    return out


def event_from_dict(d: dict[str, Any]) -> TriggerEvent:
    names = {f.name for f in dataclasses.fields(TriggerEvent)}
    values = {k: v for k, v in d.items() if k in names and k != "approvals"}
    approvals = tuple(EventApproval(**a) for a in d.get("approvals") or ())
    return TriggerEvent(approvals=approvals, **values)

E = TypeVar("E", ResultEvent, ManagementEvent)


class AdapterEffects:
    """Binds the core's effects to the adapters. An adapter that raises turns
    into a result event, so no build or merge is ever waited for forever."""

    def __init__(self, reporter: Reporter, launcher: Launcher, merger: MergeClient,
                 results: EventSink, clock: Callable[[], float] = lambda: 0.0):
        self.reporter = reporter
        self.launcher = launcher
        self.merger = merger
        self.results = results
        self.clock = clock
        self.mailer: Mailer | None = None  # smtp: in the config
        # With a store: reports go through the durable outbox (see store/outbox.py).
        self.journal: StateJournal | None = None
        self.outbox: Outbox | None = None

    def launch(self, request: BuildRequest) -> None:
        try:
            self.launcher.launch(request)
        except Exception as e:
            log.exception("launching %s (%s) failed", request.job, request.uuid)
            self.results(BuildCompleted(request.uuid, BuildResult.LOST, message=f"launch failed: {e}"))

    def cancel(self, build_uuid: str) -> None:
        try:
            self.launcher.cancel(build_uuid)
        except Exception:
            log.exception("cancelling build %s failed", build_uuid)

    def abandon(self, build_uuid: str, worker: str | None) -> None:
        try:
            self.launcher.abandon(build_uuid, worker)
        except Exception:
            log.exception("stopping abandoned build %s failed", build_uuid)

    def merge(self, request: MergeRequest) -> None:
        try:
            self.merger.merge(request)
        except Exception as e:
            log.exception("merge request %s failed", request.uuid)
            self.results(MergeCompleted(request.uuid, False, error=f"merger unavailable: {e}"))

    def mail(self, mail: MailReport) -> None:
        if self.mailer is None:
            log.warning("mail to %s not sent: the config has no smtp section",
                        ", ".join(mail.to))
            return
        if self.mailer.durable and self.journal is not None:
            # A row committed with this turn; the mailer's thread sends it after.
            key = mail.key or f"once/{uuidlib.uuid4().hex}"
            self.journal.queue_mail(MailEntry(key, mail, self.clock()))
            return
        self.mailer.send(mail)  # queued: sent on the mailer's thread

    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool) -> ReportResult:
        if self.journal is None or self.outbox is None:
            return self.reporter.report(change, message, labels, submit=submit)
        key = self.journal.report_key or f"once/{uuidlib.uuid4().hex}"
        self.journal.report_key = None
        entry = OutboxEntry(key, change, message, dict(labels), submit, self.clock())
        self.journal.queue_report(entry)  # sent once this turn is committed
        return ReportResult(True)

    def submit(self, key: str, change: Change, message: str, labels: dict[str, int]) -> None:
        """Report and submit; the answer comes back as ``SubmitCompleted(key)``.
        With a store: a row committed with this turn, sent by the sender thread
        (whose answer the outbox hands to ``on_submit``). In memory: at once."""
        if self.journal is not None and self.outbox is not None:
            self.journal.report_key = None
            self.journal.queue_report(OutboxEntry(key, change, message, dict(labels), True,
                                                  self.clock()))
            return
        try:
            result = self.reporter.report(change, message, labels, submit=True)
        except Exception as e:  # a reporter must not take the scheduler down
            log.exception("submitting %s failed", change.id_string)
            result = ReportResult(False, f"{type(e).__name__}: {e}")
        self.results(SubmitCompleted(key, result.ok, result.error))


class Scheduler:
    def __init__(self, layout: Layout, source: Source, reporter: Reporter, launcher: Launcher,
                 merger: MergeClient, clock: Callable[[], float], status_url: str = "",
                 git_url: str = "", layout_loader: Callable[[tuple[str, ...]], Layout] | None = None,
                 new_uuid: Callable[[], str] | None = None):
        self.clock = clock
        self.source = source
        self.layout_loader = layout_loader
        self.trigger_events: queue.Queue[TriggerEvent] = queue.Queue()
        self.result_events: queue.Queue[ResultEvent] = queue.Queue()
        self.management_events: queue.Queue[ManagementEvent] = queue.Queue()
        self.door = Door(clock)
        self.effects = AdapterEffects(reporter, launcher, merger, self.add_result_event, clock)
        ctx = Context(layout, self.door, self.effects, source, clock,
                      new_uuid or (lambda: uuidlib.uuid4().hex), status_url, git_url)
        self.engine = Engine(ctx)
        self.errors: deque[str] = deque(maxlen=100)  # management problems, newest last
        self._timers: dict[tuple[str, str], float] = {}
        # (due time, attempts so far, event) of trigger events waiting for the source
        self._deferred: list[tuple[float, int, TriggerEvent]] = []
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset_timers()
        # Persistence (attach_store): None runs in memory only.
        self.journal: StateJournal | None = None
        self.sender: ReportSender | None = None
        self.snapshots: SnapshotWriter | None = None
        self.status_every = 1.0  # seconds between status snapshots written
        self._status_at = float("-inf")
        self._status_count = -1
        self._last_status: dict[str, Any] | None = None
        self.event_time: float | None = None  # newest Gerrit event handled
        self._recent_events: deque[TriggerEvent] = deque()
        self._events_changed = False
        self._lost: list[tuple[QueueItem, str]] = []  # builds given up at a restart
        self._resume_time: float | None = None
        self._alive_at = float("-inf")

    def attach_store(self, journal: StateJournal, outbox: Outbox | None = None,
                     sender: ReportSender | None = None,
                     snapshots: SnapshotWriter | None = None) -> None:
        """Persist every turn through ``journal``; report through ``outbox``;
        status snapshots through ``snapshots`` (None: in the turn's transaction)."""
        self.journal = journal
        self.snapshots = snapshots
        journal.attach(self.door)
        self.effects.journal = journal
        self.effects.outbox = outbox
        if outbox is not None:  # Gerrit's answer to a submit: a result event
            outbox.on_submit = lambda key, r: self.add_result_event(
                SubmitCompleted(key, r.ok, r.error))
        self.sender = sender

    @property
    def layout(self) -> Layout:
        return self.engine.ctx.layout

    # --- inputs (any thread) ---------------------------------------------

    def add_trigger_event(self, event: TriggerEvent) -> None:
        self.trigger_events.put(event)
        self._wake.set()

    def add_result_event(self, event: ResultEvent) -> None:
        self.result_events.put(event)
        self._wake.set()

    def add_management_event(self, event: ManagementEvent) -> None:
        self.management_events.put(event)
        self._wake.set()

    def reconfigure(self, layout: Layout) -> None:
        """Switch to ``layout`` on the loop thread (queued like SIGHUP)."""
        self.add_management_event(Reconfigure(loader=lambda: layout))

    # --- restart ------------------------------------------------------------

    def restore(self) -> Restored:
        """Before ``start``: the last committed state back in the queues, then
        reconciled with Gerrit; what was in flight is launched again."""
        journal = self.journal
        assert journal is not None, "attach_store() first"
        with self._lock:
            restored = journal.restore(self.engine)
            journal.forget_dropped(restored)
            seed_learned(journal.engine, self.engine)  # flake rates survive a restart
            events = restored.meta.get("events") or {}
            self.event_time = events.get("time")
            self._resume_time = events.get("alive", self.event_time)
            # rows of their own; "recent" in the meta value: written by an older release
            self._recent_events = deque(event_from_dict(e) for e in
                                        [*(events.get("recent") or ()), *restored.events])
            self._relaunch_in_flight()
            journal.flush(self.engine, self.clock())  # the lost builds' history first
            self._forget_lost()
            self._reconcile()
            self.engine.process()
            self._persist()
            if self._resume_submits():
                self.engine.process()
                self._persist()
        return restored

    def _resume_submits(self) -> bool:
        """Submits the last process decided (restored items still submitting):
        an answered row answers again now (its event may have been lost with
        the process); an unsent or begun row is the sender's (Gerrit is asked
        before a begun one is repeated). An item whose row is missing was never
        sent: it decides again. True if an item was set to decide again."""
        outbox = self.effects.outbox
        ctx = self.engine.ctx
        if outbox is None or not ctx.submits:
            return False
        known = outbox.answers(ctx.submits)
        again = False
        for key, item in list(ctx.submits.items()):
            if key not in known:
                ctx.submits.pop(key)
                self.door.set(item, submit_state=SubmitState.NONE, submit_key=None)
                self.door.note(item, "restart", "its submit was not recorded: deciding again")
                again = True
                continue
            answer = known[key]
            if answer is not None:
                self.door.note(item, "restart", "its submit was answered before the scheduler "
                               "stopped: using that answer")
                self.add_result_event(SubmitCompleted(key, answer.ok, answer.error))
            else:
                self.door.note(item, "restart", "its submit was in flight when the scheduler "
                               "stopped: sent once (Gerrit is asked first if it may have been)")
        return again

    def _relaunch_in_flight(self) -> None:
        """Builds and merges in flight when the last process stopped cannot
        report here (Gearman foreground jobs die with their client): stop the
        builds on their workers (freeing their nodes), mark them LOST, and
        let the managers launch them again; merges are requested again."""
        ctx = self.engine.ctx
        now = self.clock()
        for uuid, (item, bs) in sorted(ctx.builds.items()):
            build = next((b for b in bs.builds.values() if b.uuid == uuid), None)
            if build is None:
                continue
            self.effects.abandon(uuid, build.worker)
            self.door.set(build, result="LOST", end_time=now,
                          message="the scheduler restarted while it ran")
            self.door.note(item, "restart", f"{build.job} build {uuid[:7]} was in flight when "
                           "the scheduler stopped: stopped and launched again")
            self._lost.append((item, build.job))
        for _uuid, (item, bs) in sorted(ctx.merges.items()):
            self.door.set(bs, merge_state="new", merge_request=None)
            self.door.note(item, "restart", "the speculative merge was in flight when the "
                           "scheduler stopped: requested again")
        ctx.builds.clear()
        ctx.merges.clear()

    def _forget_lost(self) -> None:
        for item, job in self._lost:
            self.door.drop_build(item.build_set, job)
        self._lost = []

    def _reconcile(self) -> None:
        """Ask Gerrit about every restored change (see core/reconcile.py)."""
        fresh: dict[int, Change] = {}
        for state in self.engine.states.values():
            for item in state.items():
                c = item.change
                if not isinstance(c, Change) or c.number in fresh:
                    continue
                try:
                    self.source.invalidate(c.number)
                    now = self.source.get_change(c.number, refresh=True)
                except SourceUnavailable as e:
                    log.warning("restart: cannot ask Gerrit about %s (%s); kept as it was",
                                c.id_string, e)
                    continue
                if now is not None:
                    fresh[c.number] = now
        submitted = self.effects.outbox.submitted() if self.effects.outbox else set()
        for item, why in reconcile(self.engine, fresh, submitted):
            log.info("restart: %s dequeued from %s: %s", item.display_name, item.pipeline, why)

    # --- the loop -----------------------------------------------------------

    def pending(self) -> bool:
        return not (self.trigger_events.empty() and self.result_events.empty()
                    and self.management_events.empty())

    def run_once(self) -> bool:
        """One turn; True if any event was handled."""
        with self._lock:
            handled = self._drain(self.management_events, self._management)
            handled = self._drain(self.result_events, self.engine.on_result) or handled
            for ev in self._due_timers():
                self.trigger_events.put(ev)
            retries = self._due_deferred()
            while True:
                try:
                    tev = self.trigger_events.get_nowait()
                except queue.Empty:
                    break
                handled = True
                self._note_event(tev)
                try:
                    self._trigger(tev)
                except SourceUnavailable as e:
                    self._defer(tev, retries.get(id(tev), 0) + 1, e)
                except Exception:
                    log.exception("trigger event %s could not be handled; skipped",
                                  tev.describe())
            try:
                self.engine.process()
            except Exception:
                log.exception("processing the queues failed")
            self._persist()
            return handled

    def _note_event(self, ev: TriggerEvent) -> None:
        """Remember Gerrit events handled, for catch-up after a restart."""
        if ev.source != "gerrit" or ev.timestamp is None or self.journal is None:
            return
        self._events_changed = True
        if self.event_time is None or ev.timestamp > self.event_time:
            self.event_time = ev.timestamp
        if ev.is_change_event:
            self._recent_events.append(ev)
            self.journal.add_event(ev.timestamp, event_to_dict(ev))
        cutoff = self.event_time - EVENTS_KEPT
        if self._recent_events and (self._recent_events[0].timestamp or 0) < cutoff:
            while self._recent_events and (self._recent_events[0].timestamp or 0) < cutoff:
                self._recent_events.popleft()
            self.journal.forget_events(cutoff)

    @property
    def resume_time(self) -> float | None:
        """Up to when the restored state had seen Gerrit's events (None: fresh)."""
        return self._resume_time

    def handled_events(self) -> list[TriggerEvent]:
        return list(self._recent_events)

    def _snapshot_status(self, now: float) -> None:
        """Take the status of this turn for readers that must never wait for the loop
        (the web's RPC, the stored snapshot): at most every ``status_every`` seconds,
        and a change left untaken is taken once that time has passed (``_run`` wakes for it)."""
        if self.door.count == self._status_count or now - self._status_at < self.status_every:
            return
        self._status_count = self.door.count
        self._status_at = now
        self._last_status = self._status_doc()
        journal = self.journal
        if journal is None:
            return
        if self.snapshots is not None:
            self.snapshots.put(now, self._last_status)
        else:
            journal.set_status(now, self._last_status)

    def _status_due(self) -> float | None:
        """When a status change not yet taken is due to be taken."""
        if self.door.count == self._status_count:
            return None
        return self._status_at + self.status_every

    def _persist(self) -> None:
        now = self.clock()
        self._snapshot_status(now)
        journal = self.journal
        if journal is None:
            return
        if self._events_changed or now - self._alive_at >= ALIVE_EVERY:
            # "alive": the stream was being read up to here (a restart catches up
            # from it, minus the catch-up margin); "recent": what was acted on.
            # (the events acted on are rows of their own, added as they are handled)
            journal.set_meta("events", {"time": self.event_time, "alive": now})
            self._events_changed = False
            self._alive_at = now
        try:
            wrote = journal.flush(self.engine, now)
        except Exception:  # the database is away: keep the changes, write them next turn
            log.exception("writing the scheduler state failed; trying again next turn")
            return
        if wrote and self.sender is not None:
            self.sender.poke()
        if wrote and self.effects.mailer is not None:
            self.effects.mailer.poke()

    @staticmethod
    def _drain(q: queue.Queue[E], handler: Callable[[E], None]) -> bool:
        """Handle every event on ``q``; True if there was one."""
        handled = False
        while True:
            try:
                ev = q.get_nowait()
            except queue.Empty:
                return handled
            handled = True
            try:
                handler(ev)
            except Exception:
                log.exception("event %r could not be handled; skipped", ev)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gatekeeper-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            self.run_once()
            if self.pending():
                continue
            due = [t for t in (self.next_wakeup(), self._status_due()) if t is not None]
            wait = min(MAX_TIMER_SLEEP, max(0.0, min(due) - self.clock())) if due \
                else MAX_TIMER_SLEEP
            self._wake.wait(wait)

    # --- timers ---------------------------------------------------------------

    def _reset_timers(self) -> None:
        now = self.clock()
        timers = {}
        for name, p in self.layout.pipelines.items():
            for t in p.timer_triggers:
                key = (name, t.cron)
                timers[key] = self._timers.get(key) or self._next_fire(t.cron, now)
        self._timers = timers

    @staticmethod
    def _next_fire(cron: str, after: float) -> float:
        return float(croniter(cron, datetime.fromtimestamp(after, UTC)).get_next(float))

    def next_wakeup(self) -> float | None:
        """When the next timer trigger or deferred event is due (epoch seconds)."""
        times = list(self._timers.values()) + [due for due, _, _ in self._deferred]
        return min(times) if times else None

    # --- events waiting for the source --------------------------------------

    def _defer(self, ev: TriggerEvent, attempts: int, err: Exception) -> None:
        if attempts > RETRY_ATTEMPTS:
            msg = f"event {ev.describe()} dropped after {RETRY_ATTEMPTS} attempts: {err}"
            log.error("%s", msg)
            self.errors.append(msg)
            return
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (attempts - 1))
        log.warning("event %s: source unavailable (%s); trying again in %.0fs",
                    ev.describe(), err, delay)
        self._deferred.append((self.clock() + delay, attempts, ev))

    def _due_deferred(self) -> dict[int, int]:
        """Put due deferred events back on the trigger queue; id(event) -> attempts."""
        now = self.clock()
        due = [d for d in self._deferred if d[0] <= now]
        if not due:
            return {}
        self._deferred = [d for d in self._deferred if d[0] > now]
        for _, _, ev in due:
            self.trigger_events.put(ev)
        return {id(ev): attempts for _, attempts, ev in due}

    def _due_timers(self) -> list[TriggerEvent]:
        now = self.clock()
        out = []
        for (name, cron), when in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if when <= now:
                out.append(TriggerEvent("timer", pipeline=name, timespec=cron, timestamp=when,
                                        source="timer"))
                self._timers[(name, cron)] = self._next_fire(cron, now)
        return out

    # --- handlers (loop thread) -----------------------------------------

    def _trigger(self, ev: TriggerEvent) -> None:
        if ev.type == "timer":
            name = ev.pipeline or ""
            for project in self.layout.projects.values():
                if name not in project.pipelines:
                    continue
                for branch in self.source.get_project_branches(project.name):
                    ref = Ref(project.name, f"refs/heads/{branch}")
                    self.engine.on_trigger(ev, ref)
            return
        subject: Change | Ref | None
        if ev.is_change_event:
            assert ev.change_number is not None
            if ev.type in ("change-abandoned", "change-merged", "patchset-created"):
                self.source.invalidate(ev.change_number)
            subject = self.source.get_change(ev.change_number, ev.patchset, refresh=True)
        elif ev.type == "ref-updated" and ev.project and ev.ref:
            subject = self.source.get_ref(ev.project, ev.ref, ev.oldrev or "", ev.newrev or "")
        else:
            log.debug("event %s concerns no change or ref; ignored", ev.describe())
            return
        if subject is None:
            log.warning("event %s: the source does not know the change; ignored",
                        ev.describe())
            return
        self.engine.on_trigger(ev, subject)

    def _management(self, ev: ManagementEvent) -> None:
        match ev:
            case Answered():
                try:
                    err = self._manage(ev.event)
                except Exception as e:
                    err = f"internal error: {e}"
                    log.exception("management event %r failed", ev.event)
                ev.reply(err)
            case _:
                self._manage(ev)

    def _manage(self, ev: Request) -> str | None:
        """Handle one management event; its error (also noted), or None."""
        err: str | None
        match ev:
            case Reconfigure():
                return self._reconfigure(ev)
            case Enqueue():
                subject = self._subject(ev.project, ev.change_number, ev.patchset, ev.ref,
                                        ev.oldrev, ev.newrev)
                err = "the change or ref is unknown" if subject is None else \
                    self.engine.enqueue(ev.pipeline, subject)
                return self._note_error("enqueue", err)
            case Dequeue():
                key = (str(ev.change_number) if ev.change_number is not None
                       else f"{ev.project}:{ev.ref}")
                return self._note_error("dequeue", self.engine.dequeue(ev.pipeline, key))
            case Promote():
                return self._note_error("promote", self.engine.promote(
                    ev.pipeline, [str(n) for n in ev.change_numbers]))
            case _:
                assert_never(ev)

    def _subject(self, project: str, number: int | None, patchset: int | None,
                 ref: str | None, oldrev: str | None, newrev: str | None) -> Change | Ref | None:
        if number is not None:
            return self.source.get_change(number, patchset, refresh=True)
        if ref:
            return self.source.get_ref(project, ref, oldrev or "", newrev or "")
        return None

    def _note_error(self, what: str, err: str | None) -> str | None:
        if err:
            log.warning("%s: %s", what, err)
            self.errors.append(f"{what}: {err}")
        return err

    def _reconfigure(self, ev: Reconfigure) -> str | None:
        try:
            if ev.loader is not None:
                layout = ev.loader()
            elif self.layout_loader is not None:
                layout = self.layout_loader(ev.paths or self.layout.files)
            else:
                raise RuntimeError("no layout loader configured")
            if not isinstance(layout, Layout):
                raise TypeError(f"the loader returned {type(layout).__name__}, not a Layout")
        except Exception as e:
            text = getattr(e, "messages", None) or [str(e)]
            msg = "new layout rejected; keeping the old one: " + "; ".join(text)
            log.error("%s", msg)
            self.errors.append(msg)
            return msg
        self.engine.reconfigure(layout)
        self._reset_timers()
        log.info("layout reloaded from %s", ", ".join(layout.files) or "memory")
        return None

    # --- queries (any thread) ---------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status_doc()

    def last_status(self) -> dict[str, Any]:
        """The status of the last turn (never waits for the loop); the current
        one when no turn wrote a snapshot yet."""
        snap = self._last_status
        return snap if snap is not None else self.status()

    def _status_doc(self) -> dict[str, Any]:
        data = core_status(self.engine)
        data["trigger_event_queue"] = self.trigger_events.qsize()
        data["result_event_queue"] = self.result_events.qsize()
        data["management_event_queue"] = self.management_events.qsize()
        data["errors"] = list(self.errors)
        return data

    def explain(self, change: int | str) -> str:
        with self._lock:
            return explain_change(self.engine, str(change))
