"""The worker: a deployment's periodic jobs — the escalation check every N minutes, outbox delivery every few
seconds, and the scheduled retros (a deployment's, once its bake window has passed) every minute — until SIGTERM
or SIGINT (`feedbackloop worker`; `--once` runs each job once, for cron and tests).

Several workers may run, one per host or beside each API instance. Delivery is safe from any number of them: a
pass claims due messages with SKIP LOCKED (PostgreSQL) and a lease, so no message is sent twice. The escalation
check runs on one worker at a time: on PostgreSQL a worker takes a session-level advisory lock (scoped to the
schema) without waiting, and skips the run when another worker holds it; on SQLite a non-blocking `flock` on
`<database file>.worker.lock` does the same. The check itself also takes a transaction-level advisory lock (SQLite:
its write lock), so a check started over HTTP or from the CLI never interleaves with the worker's either.

Scheduled retros are safe from any number of workers too: each due retro is claimed (scheduled → running) in one
statement before it runs, so exactly one worker runs it; a pass starts a few at most, one after the other, and a
retro that fails is recorded as failed with its error.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from agents.retro.runner import DUE_RETROS_PER_PASS, RetroRunner
from feedbackloop.escalation_triage import run_triage_agent
from feedbackloop.notifications import notifiers_from_settings
from feedbackloop.notifications_policy import policy_from_settings
from feedbackloop.retro_agent import retro_runner
from feedbackloop.settings import Settings
from store.database import Database
from store.repositories.activity_rollups import RefreshReport, refresh_rollups
from tools.escalation.service import CheckResult, EscalationService
from tools.experiments.analysis import refresh_running
from tools.experiments.service import ExperimentService
from tools.notify.channels.base import Notifier
from tools.notify.delivery import REQUEST_TIMEOUT_SECONDS, DeliveryReport, deliver_due
from tools.notify.signing import secret_bytes

log = logging.getLogger("feedbackloop.worker")

DEFAULT_DELIVER_SECONDS = 10.0
SCHEDULED_RETRO_SECONDS = 60.0  # how often the loop looks for scheduled retros that are due
RETRO_STOP_WAIT_SECONDS = (
    30.0  # on SIGTERM, how long a running retro may take to finish before the worker exits
)
DELIVERY_BATCH = 100  # messages claimed per pass
MAX_PASSES_PER_DELIVERY = 10  # a backlog is worked off in passes, up to this many per job
ROLLUP_DAYS_PER_PASS = 31  # a long history is rolled up over several passes (each day is a short transaction)
# The worker's advisory lock on PostgreSQL: this class id ("fbwk") and a hash of the schema.
WORKER_LOCK_CLASS = 0x6662_776B
# The times the escalation doors accept for a check's `at` and a silence's start and end: the service subtracts
# periods of up to two years from them, and year 1 would overflow.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)
Result = TypeVar("Result")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def escalation_service(
    database: Database, settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> EscalationService:
    """The escalation service as every door builds it: notification policy and KPI inputs from the settings."""
    return EscalationService(
        database,
        policy=policy_from_settings(settings),
        renewal_window_days=settings.renewal_window_days,
        gross_margin=settings.gross_margin,
        **({"clock": clock} if clock is not None else {}),
    )


def webhook_secret(settings: Settings) -> str | None:
    """The signing secret of survey webhooks, checked; None when unset (survey webhooks then wait in the outbox)."""
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        return None
    secret = settings.webhook_secret.get_secret_value()
    secret_bytes(secret)  # ValueError with the reason, at start-up rather than at the first delivery
    return secret


# ---- one evaluator at a time ----------------------------------------------------------------------------------


def sqlite_lock_path(database_url: str) -> Path | None:
    """`<database file>.worker.lock`, or None for an in-memory database (one process only)."""
    name = make_url(database_url).database or ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).expanduser().with_name(Path(name).name + ".worker.lock")


@contextmanager
def check_lock(database: Database) -> Iterator[bool]:
    """Whether this worker may run the escalation check now; never waits for another worker."""
    if database.dialect == "postgresql":
        with _postgres_lock(database) as acquired:
            yield acquired
        return
    path = sqlite_lock_path(database.url)
    if path is None:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            acquired = True
        except BlockingIOError:
            acquired = False
        try:
            yield acquired
        finally:
            if acquired:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def _postgres_lock(database: Database) -> Iterator[bool]:
    """A session-level advisory lock on a connection of its own (autocommit: no transaction is held open while
    the check runs on another connection). The schema is part of the key, so deployments that share a database
    in different schemas do not keep each other's workers from checking. A lost connection releases the lock."""
    key = "(:lock_class, hashtext(coalesce(current_schema(), '')))"
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        params = {"lock_class": WORKER_LOCK_CLASS}
        acquired = bool(connection.execute(text(f"SELECT pg_try_advisory_lock{key}"), params).scalar())
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(text(f"SELECT pg_advisory_unlock{key}"), params)


# ---- the worker -----------------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What `run_once` did: the check's result (None when skipped or failed), the delivery, and any errors."""

    check: CheckResult | None = None
    check_skipped: bool = False
    delivery: DeliveryReport | None = None
    experiments: dict[str, int] | None = None  # users whose experiment values were refreshed, per experiment
    rollups: RefreshReport | None = None  # closed days rolled up for the dashboard
    retros_run: int | None = None  # scheduled retros that came due and ran (completed, waiting or failed)
    errors: list[str] = field(default_factory=list)


class Worker:
    """The periodic jobs over one database. `run_once(now)` runs each job once; `run(stop)` repeats them on their
    intervals until `stop` is set, finishing the job in progress first. `clock` is the time the jobs see."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        check_minutes: int | None = None,
        deliver_seconds: float = DEFAULT_DELIVER_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
        notifiers: dict[str, Notifier] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.check_minutes = check_minutes or settings.escalation_check_minutes
        self.refresh_minutes = settings.experiment_refresh_minutes
        self.experiments = ExperimentService(database, clock=clock)
        self.deliver_seconds = deliver_seconds
        self.clock = clock
        self.service = escalation_service(database, settings, clock=clock)
        self.secret = webhook_secret(settings)
        self.client = client
        self._retros: RetroRunner | None = None  # built on first use: it builds the ticket sinks
        self.notifiers = (
            notifiers if notifiers is not None else notifiers_from_settings(settings, client=client)
        )

    def check(self, now: datetime | None = None) -> CheckResult | None:
        """The escalation check at `now` (default the clock); None when another worker is running it."""
        moment = now or self.clock()
        started = time.monotonic()
        with check_lock(self.database) as acquired:
            if not acquired:
                log.info("escalation check skipped: another worker is running it")
                return None
            result = self.service.check(at=moment)
        log.info(
            "escalation check at %s: %d label sets evaluated (%d without enough data); opened %d, fired %d, "
            "resolved %d; %d notifications queued; %d active (%.2f s)",
            result.at.isoformat(timespec="seconds"), result.evaluated, result.no_data, len(result.opened),
            len(result.fired), len(result.resolved), result.notifications, len(result.active),
            time.monotonic() - started,
        )  # fmt: skip
        self.triage(result)
        return result

    def triage(self, result: CheckResult) -> dict[str, Any] | None:
        """The escalation agent over what the check opened, fired or resolved (grouping, probable cause, owner,
        tickets, resolution summaries). A failed triage is logged; the check's result stands."""
        changed = list(dict.fromkeys([*result.opened, *result.fired, *result.resolved]))
        if not changed:
            return None
        try:
            outcome = run_triage_agent(self.database, self.settings, changed, clock=lambda: result.at)
        except Exception:
            log.exception(
                "escalation triage of %d escalations failed; the check's result stands", len(changed)
            )
            return None
        log.info("escalation triage: %d incidents, %d tickets, %d resolved incidents summarised",
                 len(outcome["incidents"]), len(outcome["tickets"]), len(outcome["resolved_incidents"]))  # fmt: skip
        for warning in outcome["warnings"]:
            log.warning("escalation triage: %s", warning)
        return outcome

    def refresh_experiments(self) -> dict[str, int]:
        """Keep running experiments' per-user values current, so an analysis reads ready sums."""
        started = time.monotonic()
        refreshed = refresh_running(self.experiments)
        level = logging.INFO if any(refreshed.values()) else logging.DEBUG
        log.log(level, "experiments: %s (%.2f s)",
                ", ".join(f"{key} {users:,} users refreshed" for key, users in refreshed.items()) or "none running",
                time.monotonic() - started)  # fmt: skip
        return refreshed

    def refresh_rollups(self) -> RefreshReport:
        """Roll up closed days that need it (never rolled up, or stale after late events), a bounded number per
        pass so a first run over a long history does not hold the worker up."""
        started = time.monotonic()
        report = refresh_rollups(self.database, datetime.now(UTC), max_days=ROLLUP_DAYS_PER_PASS)
        level = logging.INFO if report.days else logging.DEBUG
        log.log(level, "activity rollups: %d days rolled up (%d stale), %d left (%.2f s)",
                report.days, report.stale, report.remaining, time.monotonic() - started)  # fmt: skip
        return report

    def retros(self) -> RetroRunner:
        """The retro runner on this worker's database and clock (ticket sinks from the settings)."""
        if self._retros is None:
            self._retros = retro_runner(database=self.database, settings=self.settings, clock=self.clock)
        return self._retros

    def resume_orphaned_retros(self, limit: int = DUE_RETROS_PER_PASS) -> int:
        """Resume retros left running by a process that is gone (an API instance restarted before its background
        run started, a crashed run whose claim has expired); each from its checkpoint. Returns how many."""
        outcomes = self.retros().resume_orphaned(limit)
        for outcome in outcomes:
            log.info("orphaned retro %s resumed: %s", outcome["retro_id"], outcome["status"])
        return len(outcomes)

    def run_due_retros(self, limit: int = DUE_RETROS_PER_PASS) -> int:
        """Run the scheduled retros that are due (up to `limit`), each claimed first so no other worker runs it;
        a failed one is recorded on the retro and logged. Returns how many ran."""
        outcomes = self.retros().run_due(limit)
        for outcome in outcomes:
            if outcome["status"] == "failed":
                log.warning("scheduled retro %s failed: %s", outcome["retro_id"], outcome["error"])
            else:
                log.info("scheduled retro %s: %s", outcome["retro_id"], outcome["status"])
        return len(outcomes)

    def deliver(self, now: datetime | None = None, stop: threading.Event | None = None) -> DeliveryReport:
        """Send the due outbox messages (escalation notifications; survey webhooks when a secret is set)."""
        clock = (lambda: now) if now is not None else self.clock
        total = DeliveryReport()
        for _ in range(MAX_PASSES_PER_DELIVERY):
            report = deliver_due(
                self.database, secret=self.secret, notifiers=self.notifiers, client=self.client, clock=clock,
                limit=DELIVERY_BATCH,
            )  # fmt: skip
            total.delivered += report.delivered
            total.retrying += report.retrying
            total.failed += report.failed
            total.errors.extend(report.errors)
            if report.delivered + report.retrying + report.failed < DELIVERY_BATCH or (
                stop and stop.is_set()
            ):
                break
        level = logging.INFO if total.delivered + total.retrying + total.failed else logging.DEBUG
        log.log(level, "delivery: %d delivered, %d retrying later, %d failed",
                total.delivered, total.retrying, total.failed)  # fmt: skip
        for problem in total.errors:
            log.warning("delivery: %s", problem)
        return total

    def run_once(self, now: datetime | None = None) -> RunReport:
        """The check, then delivery (so what the check queued goes out at once), the experiment refresh and the
        due scheduled retros. Errors are logged and reported, not raised: one failing job does not stop another."""
        moment = now or self.clock()
        report = RunReport()
        outcome = self._guarded("escalation check", lambda: self.check(moment), report.errors)
        report.check = outcome
        report.check_skipped = outcome is None and not report.errors
        report.delivery = self._guarded("delivery", lambda: self.deliver(now), report.errors)
        report.experiments = self._guarded("experiment refresh", self.refresh_experiments, report.errors)
        report.rollups = self._guarded("activity rollups", self.refresh_rollups, report.errors)
        report.retros_run = self._guarded("scheduled retros", self.run_due_retros, report.errors)
        return report

    def run(self, stop: threading.Event) -> None:
        """Repeat the jobs on their intervals until `stop` is set; the job in progress finishes first."""
        log.info("worker started: escalation check every %d min, delivery every %g s, experiment refresh and "
                 "activity rollups every %d min, scheduled retros every %g s",
                 self.check_minutes, self.deliver_seconds, self.refresh_minutes, SCHEDULED_RETRO_SECONDS)  # fmt: skip
        next_check = next_delivery = next_refresh = time.monotonic()
        # Retros take minutes (an LLM, ticket sinks): they run on their own thread, so checks and delivery keep
        # their intervals meanwhile.
        retros = threading.Thread(target=self._retro_loop, args=(stop,), name="scheduled-retros", daemon=True)
        retros.start()
        while not stop.is_set():
            if time.monotonic() >= next_refresh:
                self._guarded("experiment refresh", self.refresh_experiments, [])
                self._guarded("activity rollups", self.refresh_rollups, [])
                next_refresh = max(next_refresh + 60 * self.refresh_minutes, time.monotonic())
            if time.monotonic() >= next_check:
                result = self._guarded("escalation check", self.check, [])
                next_check = max(next_check + 60 * self.check_minutes, time.monotonic())
                if result is not None and result.notifications:
                    next_delivery = time.monotonic()  # what the check queued goes out now
            if not stop.is_set() and time.monotonic() >= next_delivery:
                self._guarded("delivery", lambda: self.deliver(stop=stop), [])
                next_delivery = max(next_delivery + self.deliver_seconds, time.monotonic())
            wake = min(next_check, next_delivery, next_refresh)
            stop.wait(max(0.0, wake - time.monotonic()))
        retros.join(RETRO_STOP_WAIT_SECONDS)
        if retros.is_alive():  # its claim is taken over by the next worker (checkpointed: nothing is lost)
            log.warning(
                "worker stopped with a retro still running; the next worker resumes it from its checkpoint"
            )
        log.info("worker stopped")

    def _retro_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._guarded("scheduled retros", self.run_due_retros, [])
            if not stop.is_set():
                self._guarded("orphaned retros", self.resume_orphaned_retros, [])
            stop.wait(SCHEDULED_RETRO_SECONDS)

    @staticmethod
    def _guarded(name: str, job: Callable[[], Result], errors: list[str]) -> Result | None:
        try:
            return job()
        except Exception as error:  # a job's failure (database away, a bad rule) must not end the worker
            log.exception("%s failed", name)
            errors.append(f"{name}: {type(error).__name__}: {error}")
            return None


# ---- `feedbackloop worker` -----------------------------------------------------------------------------------


def run_worker(
    database: Database,
    settings: Settings,
    *,
    once: bool,
    check_minutes: int | None,
    deliver_seconds: float,
) -> int:
    """The command: exit code 0 when stopped by a signal (or `--once` succeeded), 1 when a `--once` job failed.

    Raises ValueError for a notification channel or webhook secret that is set but unusable."""
    with httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS) as client:
        worker = Worker(database, settings, check_minutes=check_minutes, deliver_seconds=deliver_seconds,
                        client=client)  # fmt: skip
        if worker.service.ensure_default_rules():
            log.info("stored the five default escalation rules (first start on this database)")
        channels = ", ".join(worker.notifiers) or "none configured"
        log.info("notification channels: %s", channels)
        if once:
            return 1 if worker.run_once().errors else 0
        stop = threading.Event()
        previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}

        def request_stop(number: int, _frame: FrameType | None) -> None:
            log.info("%s received: finishing the current job, then stopping", signal.Signals(number).name)
            stop.set()

        for number in previous:
            signal.signal(number, request_stop)
        try:
            worker.run(stop)
        finally:
            for number, handler in previous.items():
                signal.signal(number, _restorable(handler))
    return 0


def _restorable(handler: Any) -> Any:
    """signal.getsignal gives None for handlers not installed from Python; restore the default then."""
    return signal.SIG_DFL if handler is None else handler
