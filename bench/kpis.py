"""KPI and dashboard benchmark: the full dashboard at 100k, 1M and 5M synthetic events, SQLite and PostgreSQL.

Per size and database, medians of `--repeat` warm runs (one untimed run first) of:

1. `build_dashboard` — everything the dashboard needs: all KPIs for the window and the previous one, and the
   five metric reports (each with its previous window and daily series). Target: ≤ 1 s at 1M events.
2. Its parts on their own: `compute_kpis` for the window, and `metric_report` of each metric.
3. "Loading the events into Python": a fixed subset of the dashboard's numbers — error_rate and
   support_incidents (per active user), report_accuracy (7-day correction rule, decided when known),
   task_completion_rate and automation_coverage, overall and per persona — computed in plain Python from the
   raw events of the window (plain SELECTs, dicts and loops), next to our SQL path for the same numbers and
   nothing else (`window_summaries` for the three metrics, `compute_kpis(only=…)` for the two KPIs, sharing the
   window's per-user activity as the dashboard does). Target: SQL ≥ 10× faster. Measured in the same rounds, for
   context: the dashboard's own path to those numbers (`metric_reports`, which adds the previous window, daily
   series and p-values, and `compute_kpis` of every KPI). Every side's numbers must agree to 1e-9 first.

Before measuring, each database's closed days are rolled up (`refresh_rollups`, what the worker does in the
background and `events import` at its end); its time is recorded, not included.

Every figure is the median of `--repeat` timed runs, or of 3 when one run takes longer than 30 s (5M events),
so a full run stays within about an hour.

One extra dashboard run per size and database records where the time goes: every statement's execution time,
labelled by the repository function and the metric or KPI call that issued it (SQLAlchemy cursor events).

The SQLite databases are generated once (`tools.synthetic`, fixed seed and end, through
`EventIngestor.ingest_stream`) and cached in bench/.data/, keyed by size, seed and the generator's source;
PostgreSQL gets each size loaded into a fresh schema (then VACUUM ANALYZE, the state autovacuum reaches after a
bulk load), which is dropped after the size is measured.

Writes bench/results/kpis.json and the table between the kpis markers in bench/README.md.

    .venv/bin/python bench/kpis.py [--sizes 100k,1m,5m] [--skip-postgres | --postgres-sizes 100k,1m] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import math
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/kpis.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, Engine, event, select  # noqa: E402

from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from bench.ingest import postgres_base_url, postgres_schema, postgres_server_version  # noqa: E402
from feedbackloop.dashboard.build import build_dashboard  # noqa: E402
from feedbackloop.settings import Settings  # noqa: E402
from store.database import Database  # noqa: E402
from store.models import EventRow, MetricObservationRow, UserRow  # noqa: E402
from store.repositories.active_users import shared_activity  # noqa: E402
from store.repositories.activity_rollups import refresh_rollups  # noqa: E402
from tools.events.ingest import EventIngestor  # noqa: E402
from tools.kpis.compute import compute_kpis  # noqa: E402
from tools.metrics import compute as metrics_module  # noqa: E402
from tools.metrics.compute import METRIC_SPECS, metric_report, window_summaries  # noqa: E402
from tools.metrics.model import MetricReport  # noqa: E402
from tools.synthetic import SyntheticConfig, generate_events  # noqa: E402
from tools.window import Window  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "kpis.json"
DATA_DIR = ROOT / "bench" / ".data"
SYNTHETIC_SOURCE = ROOT / "tools" / "synthetic.py"

# Users per size: the default simulation yields ~87 events per user over 90 days.
SIZES: dict[str, int] = {"100k": 1_150, "1m": 11_500, "5m": 57_500}
SIZE_LABELS = {"100k": "100k", "1m": "1M", "5m": "5M"}
SEED = 404
DAYS = 90
WINDOW_DAYS = 30
SYNTHETIC_END = datetime(2026, 1, 1, tzinfo=UTC)  # fixed, so every run simulates the same events

TARGET_DASHBOARD_SECONDS = 1.0
TARGET_SIZE = "1m"
TARGET_RATIO = 10.0
TOLERANCE = 1e-9
POSTGRES_LOAD_LIMIT_SECONDS = 15 * 60
MIN_REPEAT = 3
SLOW_RUN_SECONDS = 30.0

BASELINE_METRICS = ("error_rate", "support_incidents", "report_accuracy")
BASELINE_KPIS = ("task_completion_rate", "automation_coverage")
CORRECTION_WINDOW = timedelta(days=7)
UNASSIGNED = "unassigned"

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def dashboard_window() -> Window:
    return Window.last_days(WINDOW_DAYS, end=SYNTHETIC_END)


def bench_settings(url: str) -> Settings:
    """Defaults only (gross margin, renewal wait): no developer .env or environment leaks into the figures."""
    return Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


def config_for(size: str) -> SyntheticConfig:
    return SyntheticConfig(users=SIZES[size], days=DAYS, seed=SEED, end=SYNTHETIC_END)


def code_state() -> dict[str, Any]:
    """The commit measured, and which product files differed from it (the figures describe the working tree)."""

    def git(*args: str) -> str:
        completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return completed.stdout

    status = [line[3:] for line in git("status", "--porcelain").splitlines() if len(line) > 3]
    changed = [path for path in status if not path.startswith("bench/")]
    return {"commit": git("rev-parse", "HEAD").strip() or None, "uncommitted_product_files": changed}


# --------------------------------------------------------------------------------------------------------------
# Data: cached SQLite files, fresh PostgreSQL schemas


def synthetic_fingerprint() -> str:
    """A change to the generator changes the events, so it must not reuse a cached database."""
    return hashlib.sha256(SYNTHETIC_SOURCE.read_bytes()).hexdigest()[:10]


def cache_path(size: str) -> Path:
    end = SYNTHETIC_END.strftime("%Y%m%d")
    return DATA_DIR / f"kpis-{size}-u{SIZES[size]}-d{DAYS}-s{SEED}-e{end}-{synthetic_fingerprint()}.db"


def load_events(database: Database, size: str) -> dict[str, Any]:
    """Generate and store the size's events through the product's bulk path; seconds include generation."""
    started = time.perf_counter()
    last_log = [started]

    def progress(_: int) -> None:
        if time.perf_counter() - last_log[0] > 30:
            last_log[0] = time.perf_counter()
            log(f"  … loading {size}: {time.perf_counter() - started:.0f}s")

    summary = EventIngestor(database).ingest_stream(generate_events(config_for(size)), on_progress=progress)
    seconds = time.perf_counter() - started
    return {"events": summary.accepted, "load_seconds": round(seconds, 1),
            "load_events_per_second": round(summary.accepted / seconds)}  # fmt: skip


def cached_sqlite(size: str) -> tuple[Path, dict[str, Any]]:
    """The size's SQLite file, generated on first use; metadata (count, load time) sits next to it as JSON."""
    path = cache_path(size)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        log(f"{size}: cached {path.name} ({meta['events']:,} events)")
        return path, {**meta, "cached": True}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    remove_sqlite_files(building)
    log(f"{size}: generating {SIZES[size]:,} users × {DAYS} days into {path.name}")
    database = Database(f"sqlite:///{building}")
    try:
        meta = load_events(database, size)
    finally:
        database.dispose()
    with contextlib.closing(sqlite3.connect(building)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    remove_sqlite_files(path)
    building.replace(path)
    remove_sqlite_files(building)
    meta.update(users=SIZES[size], seed=SEED, days=DAYS, end=SYNTHETIC_END.isoformat(),
                synthetic_fingerprint=synthetic_fingerprint())  # fmt: skip
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"{size}: stored {meta['events']:,} events in {meta['load_seconds']:.0f}s")
    return path, {**meta, "cached": False}


def remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".migrate.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def postgres_storage(database: Database) -> dict[str, Any]:
    with database.engine.connect() as connection:
        size = connection.exec_driver_sql("SELECT pg_total_relation_size('events')").scalar_one()
        count = connection.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
    return {"events_stored": int(count), "storage_bytes": int(size)}


def vacuum_analyze(database: Database) -> float:
    """What autovacuum does soon after a bulk load: statistics for the planner, visibility map for index-only
    scans. Done explicitly so the plan does not depend on whether autovacuum has run yet."""
    started = time.perf_counter()
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("VACUUM (ANALYZE) events, users, metric_observations")
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------------------------
# Timing


def timed_runs(action: Callable[[], object], repeat: int) -> list[float]:
    """One untimed warm-up run, then `repeat` timed ones (3 when the warm-up took over SLOW_RUN_SECONDS)."""
    started = time.perf_counter()
    action()
    if time.perf_counter() - started > SLOW_RUN_SECONDS:
        repeat = min(repeat, MIN_REPEAT)
    seconds = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary_of(seconds: list[float]) -> dict[str, Any]:
    return {
        "runs": len(seconds),
        "seconds": [round(s, 4) for s in seconds],
        "median_seconds": round(statistics.median(seconds), 4),
    }


def measure_dashboard(database: Database, repeat: int) -> dict[str, Any]:
    window = dashboard_window()
    settings = bench_settings(database.url)

    def dashboard() -> None:
        build_dashboard(database, settings, window, now=SYNTHETIC_END)

    def kpis() -> None:
        with database.read() as connection:
            compute_kpis(connection, window, gross_margin=settings.gross_margin)

    def metric(name: str) -> Callable[[], None]:
        def run() -> None:
            with database.read() as connection:
                metric_report(connection, name, window, renewal_window_days=settings.renewal_window_days)

        return run

    result: dict[str, Any] = {"dashboard": summary_of(timed_runs(dashboard, repeat))}
    log(f"  dashboard: median {result['dashboard']['median_seconds']:.3f}s")
    result["compute_kpis"] = summary_of(timed_runs(kpis, repeat))
    result["metric_report"] = {name: summary_of(timed_runs(metric(name), repeat)) for name in METRIC_SPECS}
    parts = ", ".join(f"{n} {m['median_seconds']:.3f}s" for n, m in result["metric_report"].items())
    log(f"  compute_kpis {result['compute_kpis']['median_seconds']:.3f}s; metric_report: {parts}")
    return result


# --------------------------------------------------------------------------------------------------------------
# Where the time goes: statement timings labelled by the code that issued them


class StatementProfile:
    """Adds up cursor execution time per label while active.

    A label names the call (compute_kpis or metric_report of one metric), the window it was computing (current
    or previous) and the outermost store/repositories function on the stack. On SQLite the figure is the time to
    the first row, which is where grouping and sorting happen; on PostgreSQL psycopg fetches the whole result in
    execute. Fetching the handful of result rows is not counted.
    """

    def __init__(self, engine: Engine, window: Window) -> None:
        self.engine, self.window = engine, window
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        self._starts: list[float] = []

    def __enter__(self) -> StatementProfile:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._starts.append(time.perf_counter())

    def _after(self, *_: Any) -> None:
        seconds = time.perf_counter() - self._starts.pop()
        total = self.totals[self._label()]
        total[0] += seconds
        total[1] += 1

    def _label(self) -> str:
        frame = sys._getframe(2)
        repository = scope = which = None
        in_metrics = False
        while frame is not None:  # innermost first
            code, local = frame.f_code, frame.f_locals
            path = code.co_filename
            if "/store/repositories/" in path:
                repository = code.co_qualname  # keeps the outermost
            elif path.endswith(("tools/metrics/compute.py", "tools/kpis/compute.py")):
                in_metrics = in_metrics or path.endswith("tools/metrics/compute.py")
                if scope is None and code.co_name == "compute_kpis":
                    scope = "compute_kpis"
                elif scope is None and isinstance(local.get("metric"), str):
                    scope = f"metric_report({local['metric']})"
                if which is None and isinstance(local.get("window"), Window):
                    which = "current" if local["window"] == self.window else "previous"
            frame = frame.f_back
        if scope is None:
            scope = "metric reports (shared)" if in_metrics else "other"
        part = "units into a temporary table" if repository == "materialized" else repository or "other"
        return f"{scope} [{which or '-'}] {part}"

    def report(self, wall_seconds: float) -> dict[str, Any]:
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][0])
        statement_seconds = sum(total[0] for _, total in ranked)
        return {
            "wall_seconds": round(wall_seconds, 4),
            "statement_seconds": round(statement_seconds, 4),
            "by_label": [
                {"label": label, "seconds": round(total[0], 4), "statements": total[1],
                 "share_of_wall": round(total[0] / wall_seconds, 3)}
                for label, total in ranked
            ],
            "by_call": _by_call(ranked, wall_seconds),
        }  # fmt: skip


def _by_call(ranked: list[tuple[str, list[float]]], wall_seconds: float) -> list[dict[str, Any]]:
    calls: dict[str, float] = defaultdict(float)
    for label, total in ranked:
        calls[label.split(" [", 1)[0]] += total[0]
    return [
        {"call": call, "seconds": round(seconds, 4), "share_of_wall": round(seconds / wall_seconds, 3)}
        for call, seconds in sorted(calls.items(), key=lambda item: -item[1])
    ]


def profile_dashboard(database: Database) -> dict[str, Any]:
    window = dashboard_window()
    settings = bench_settings(database.url)
    build_dashboard(database, settings, window, now=SYNTHETIC_END)
    gc.collect()
    with StatementProfile(database.engine, window) as profile:
        started = time.perf_counter()
        build_dashboard(database, settings, window, now=SYNTHETIC_END)
        wall = time.perf_counter() - started
    report = profile.report(wall)
    top = "; ".join(f"{row['label']} {row['seconds']:.3f}s" for row in report["by_label"][:3])
    log(f"  profile: {top}")
    return report


# --------------------------------------------------------------------------------------------------------------
# The baseline: the same numbers from the raw events, in Python


@dataclass
class PythonRun:
    numbers: dict[str, dict[str, Any]]
    fetch_seconds: float
    compute_seconds: float
    rows: int


def _is_true(value: Any) -> bool:
    """The KPI's rule: JSON true or 1, or the text "true" or "1" in any case."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).lower() in ("1", "true")


def _put(numbers: dict[str, dict[str, Any]], name: str, persona: str | None, n: int, value: float) -> None:
    numbers[f"{name}|{persona or 'overall'}"] = {"n": n, "value": value}


def python_numbers(connection: Connection, window: Window) -> PythonRun:
    """Fetch the raw events with plain SELECTs, then compute the numbers with dicts and loops.

    Fetched: users' personas, every event of the window, the report_sent and report_corrected events of the
    7 days before it (a report's accuracy is decided up to 7 days after it is sent) and the explicit
    report-accuracy observations.
    """
    start, end = window.start, window.end
    started = time.perf_counter()
    persona_of = dict(connection.execute(select(UserRow.id, UserRow.persona)).all())
    columns = (EventRow.user_id, EventRow.name, EventRow.timestamp, EventRow.properties)
    events = connection.execute(
        select(*columns).where(EventRow.timestamp >= start, EventRow.timestamp < end)
    ).all()
    earlier_reports = connection.execute(
        select(*columns).where(
            EventRow.name.in_(("report_sent", "report_corrected")),
            EventRow.timestamp >= start - CORRECTION_WINDOW,
            EventRow.timestamp < start,
        )
    ).all()
    o = MetricObservationRow
    observations = connection.execute(
        select(o.id, o.persona, o.value, o.observed_at, o.dims).where(o.category == "report_accuracy")
    ).all()
    fetched = time.perf_counter()

    errors: dict[str, int] = defaultdict(int)  # every active user, with their errors
    tickets: dict[str, int] = defaultdict(int)
    tasks: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # persona → completed, automated, failed
    sent: dict[Any, list[Any]] = {}  # report_id → [first sent_at, smallest user_id]
    first_correction: dict[Any, datetime] = {}
    for user_id, name, _timestamp, properties in events:
        if user_id is not None:
            errors[user_id] += name == "error_occurred"
            tickets[user_id] += name == "support_ticket_opened"
        if name in ("task_completed", "task_failed") and user_id in persona_of:
            counts = tasks[persona_of[user_id]]
            if name == "task_failed":
                counts[2] += 1
            else:
                counts[0] += 1
                counts[1] += _is_true(properties.get("automated"))
    for user_id, name, timestamp, properties in (*earlier_reports, *events):
        if name == "report_sent":
            first = sent.setdefault(properties.get("report_id"), [timestamp, user_id])
            first[0] = min(first[0], timestamp)
            if user_id is not None and (first[1] is None or user_id < first[1]):
                first[1] = user_id
        elif name == "report_corrected":
            report_id = properties.get("report_id")
            first_correction[report_id] = min(first_correction.get(report_id, timestamp), timestamp)

    numbers: dict[str, dict[str, Any]] = {}
    active: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])  # persona → users, errors, tickets
    for user_id, error_count in errors.items():
        for key in (persona_of.get(user_id, UNASSIGNED), None):
            active[key][0] += 1
            active[key][1] += error_count
            active[key][2] += tickets[user_id]
    per_30_days = 30 / window.days
    for key, (users, error_count, ticket_count) in active.items():
        _put(numbers, "error_rate", key, users, error_count / users)
        _put(numbers, "support_incidents", key, users, ticket_count / users * per_30_days)

    overall_tasks = [sum(counts[i] for counts in tasks.values()) for i in range(3)]
    for key, (completed, automated, failed) in [*tasks.items(), (None, overall_tasks)]:
        if completed + failed:
            _put(numbers, "task_completion_rate", key, completed + failed, completed / (completed + failed))
        if completed:
            _put(numbers, "automation_coverage", key, completed, automated / completed)

    # Report accuracy: 0 at the first correction within 7 days of sending, 1 once 7 days pass without one;
    # counted in the window where that outcome is decided. An explicit observation replaces the report's
    # derived outcome; of several explicit values for one report in the window, the latest counts.
    explicit_reports = {row.dims.get("report_id") for row in observations} - {None}
    units: list[tuple[str, float]] = []
    for report_id, (sent_at, user_id) in sent.items():
        if report_id is None or report_id in explicit_reports:
            continue
        corrected_at = first_correction.get(report_id)
        if corrected_at is not None and sent_at <= corrected_at < sent_at + CORRECTION_WINDOW:
            if start <= corrected_at < end:
                units.append((persona_of.get(user_id, UNASSIGNED), 0.0))
        elif start - CORRECTION_WINDOW <= sent_at < end - CORRECTION_WINDOW:
            units.append((persona_of.get(user_id, UNASSIGNED), 1.0))
    latest: dict[Any, Any] = {}
    for row in observations:
        if start <= row.observed_at < end:
            key = row.dims.get("report_id")
            if key not in latest or (row.observed_at, row.id) > (latest[key].observed_at, latest[key].id):
                latest[key] = row
    units += [(row.persona, float(row.value)) for row in latest.values()]
    accuracy: dict[str | None, list[float]] = defaultdict(lambda: [0, 0.0])  # persona → reports, accurate
    for persona, value in units:
        for key in (persona, None):
            accuracy[key][0] += 1
            accuracy[key][1] += value
    for key, (reports, accurate) in accuracy.items():
        _put(numbers, "report_accuracy", key, int(reports), accurate / reports)
    computed = time.perf_counter()
    rows = len(events) + len(earlier_reports) + len(observations) + len(persona_of)
    return PythonRun(numbers, fetched - started, computed - fetched, rows)


def metric_reports_of(
    connection: Connection, names: tuple[str, ...], window: Window, settings: Settings
) -> list[MetricReport]:
    """Several metrics the way the dashboard asks for them: `metric_reports` (per-active-user metrics share one
    scan) where the product has it, else one `metric_report` per metric."""
    batched = getattr(metrics_module, "metric_reports", None)
    if batched is not None:
        return list(
            batched(connection, list(names), window, renewal_window_days=settings.renewal_window_days)
        )
    return [
        metric_report(connection, name, window, renewal_window_days=settings.renewal_window_days)
        for name in names
    ]


def sql_numbers(connection: Connection, window: Window, settings: Settings) -> dict[str, dict[str, Any]]:
    """The same numbers through our SQL path, and nothing else: the three metrics over the window alone
    (`window_summaries`) and the two KPIs (`compute_kpis(only=…)`), sharing the window's per-user activity."""
    numbers: dict[str, dict[str, Any]] = {}
    with shared_activity(connection):
        summaries = window_summaries(
            connection, list(BASELINE_METRICS), window, renewal_window_days=settings.renewal_window_days
        )
        snapshot = compute_kpis(connection, window, gross_margin=settings.gross_margin, only=BASELINE_KPIS)
    for name, by_persona in summaries.items():
        for persona, summary in by_persona.items():
            if summary.value is not None:
                _put(numbers, name, persona, summary.n, summary.value)
    for persona, values in [(None, snapshot.overall), *snapshot.personas.items()]:
        for name in BASELINE_KPIS:
            if values[name].value is not None:
                _put(numbers, name, persona, values[name].n, float(values[name].value))
    return numbers


def dashboard_path_numbers(
    connection: Connection, window: Window, settings: Settings
) -> dict[str, dict[str, Any]]:
    """The same numbers as the dashboard computes them, with much more besides: the three metric reports (each
    also over the previous window, with daily series and p-values) and every KPI."""
    numbers: dict[str, dict[str, Any]] = {}
    for report in metric_reports_of(connection, BASELINE_METRICS, window, settings):
        name = report.metric
        comparisons = [(None, report.overall), *report.personas.items()]
        for persona, comparison in comparisons:
            if comparison.current.value is not None:
                _put(numbers, name, persona, comparison.current.n, comparison.current.value)
    snapshot = compute_kpis(connection, window, gross_margin=settings.gross_margin)
    for persona, values in [(None, snapshot.overall), *snapshot.personas.items()]:
        for name in BASELINE_KPIS:
            if values[name].value is not None:
                _put(numbers, name, persona, values[name].n, float(values[name].value))
    return numbers


def compare_numbers(python: dict[str, dict[str, Any]], sql: dict[str, dict[str, Any]]) -> float:
    """Raise unless both sides have the same numbers (same keys, same n, values within TOLERANCE)."""
    if python.keys() != sql.keys():
        missing, extra = sorted(sql.keys() - python.keys()), sorted(python.keys() - sql.keys())
        raise AssertionError(f"different numbers: only in SQL {missing}, only in Python {extra}")
    largest = 0.0
    for key, ours in sql.items():
        theirs = python[key]
        difference = abs(ours["value"] - theirs["value"])
        if ours["n"] != theirs["n"] or not math.isclose(
            ours["value"], theirs["value"], rel_tol=TOLERANCE, abs_tol=TOLERANCE
        ):
            raise AssertionError(f"{key}: SQL {ours} vs Python {theirs}")
        largest = max(largest, difference)
    return largest


def measure_baseline(database: Database, repeat: int) -> dict[str, Any]:
    """Python vs SQL for the same numbers, checked equal first, then alternated (ABBA) so drift hits both."""
    window = dashboard_window()
    settings = bench_settings(database.url)
    with database.read() as connection:
        python_run = python_numbers(connection, window)  # also the warm-up of every side
        sql = sql_numbers(connection, window, settings)
        dashboard_path = dashboard_path_numbers(connection, window, settings)
    largest_difference = max(
        compare_numbers(python_run.numbers, sql), compare_numbers(python_run.numbers, dashboard_path)
    )
    log(f"  baseline: {len(sql)} numbers agree (largest difference {largest_difference:.1e})")
    if python_run.fetch_seconds + python_run.compute_seconds > SLOW_RUN_SECONDS:
        repeat = min(repeat, MIN_REPEAT)
    del python_run
    python_seconds: list[float] = []
    fetch_seconds: list[float] = []
    compute_seconds: list[float] = []
    sql_seconds: list[float] = []
    dashboard_seconds: list[float] = []
    rows = 0
    for round_number in range(repeat):
        sides = ("python", "sql", "dashboard")
        for side in sides if round_number % 2 == 0 else tuple(reversed(sides)):
            gc.collect()
            started = time.perf_counter()
            with database.read() as connection:
                if side == "python":
                    run = python_numbers(connection, window)
                elif side == "sql":
                    sql_numbers(connection, window, settings)
                else:
                    dashboard_path_numbers(connection, window, settings)
            seconds = time.perf_counter() - started
            if side == "python":
                python_seconds.append(seconds)
                fetch_seconds.append(run.fetch_seconds)
                compute_seconds.append(run.compute_seconds)
                rows = run.rows
                del run
            elif side == "sql":
                sql_seconds.append(seconds)
            else:
                dashboard_seconds.append(seconds)
    ratio = statistics.median(python_seconds) / statistics.median(sql_seconds)
    dashboard_ratio = statistics.median(python_seconds) / statistics.median(dashboard_seconds)
    log(f"  baseline: Python {statistics.median(python_seconds):.3f}s vs SQL "
        f"{statistics.median(sql_seconds):.3f}s = {ratio:.1f}× (dashboard path "
        f"{statistics.median(dashboard_seconds):.3f}s = {dashboard_ratio:.1f}×)")  # fmt: skip
    return {
        "sql_path": "window_summaries(error_rate, support_incidents, report_accuracy) + compute_kpis(only=the two "
        "KPIs), in one shared_activity block",
        "dashboard_path": "metric_reports(error_rate, support_incidents, report_accuracy) + compute_kpis (all KPIs)",
        "numbers_compared": len(sql),
        "largest_abs_difference": largest_difference,
        "tolerance": TOLERANCE,
        "rows_loaded_into_python": rows,
        "python": summary_of(python_seconds),
        "python_fetch_median_seconds": round(statistics.median(fetch_seconds), 4),
        "python_compute_median_seconds": round(statistics.median(compute_seconds), 4),
        "sql": summary_of(sql_seconds),
        "ratio": round(ratio, 2),
        "ratio_per_round": [round(p / s, 2) for p, s in zip(python_seconds, sql_seconds, strict=True)],
        "dashboard": summary_of(dashboard_seconds),
        "dashboard_ratio": round(dashboard_ratio, 2),
    }


# --------------------------------------------------------------------------------------------------------------
# Per size and database


def roll_up(database: Database) -> dict[str, Any]:
    """What the worker does in the background after events arrive (and `events import` at its end): roll up the
    closed days into daily_user_activity. Not part of the timed figures; its own time is recorded."""
    started = time.perf_counter()
    report = refresh_rollups(database, datetime.now(UTC))
    seconds = time.perf_counter() - started
    log(f"  rollups: {report.days} days, {report.users:,} day-user rows in {seconds:.1f}s")
    return {"days": report.days, "day_user_rows": report.users, "seconds": round(seconds, 2)}


def measure_database(database: Database, repeat: int) -> dict[str, Any]:
    rollups = roll_up(database)
    result = measure_dashboard(database, repeat)
    result["rollups"] = rollups
    result["profile"] = profile_dashboard(database)
    result["baseline"] = measure_baseline(database, repeat)
    return result


def run_sqlite(size: str, repeat: int) -> dict[str, Any]:
    path, meta = cached_sqlite(size)
    database = Database(f"sqlite:///{path}")
    try:
        log(f"{size} SQLite: measuring")
        result = {**meta, "file_bytes": path.stat().st_size, **measure_database(database, repeat)}
    finally:
        database.dispose()
    return result


def run_postgres(size: str, repeat: int, base_url: str, expected_events: int | None) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, schema):
        database = Database(url)
        try:
            log(f"{size} PostgreSQL: loading into schema {schema}")
            meta = load_events(database, size)
            meta["vacuum_analyze_seconds"] = round(vacuum_analyze(database), 1)
            meta.update(postgres_storage(database))
            if expected_events is not None and meta["events_stored"] != expected_events:
                raise RuntimeError(
                    f"PostgreSQL holds {meta['events_stored']:,} events, SQLite {expected_events:,}"
                )
            log(f"{size} PostgreSQL: {meta['events']:,} events in {meta['load_seconds']:.0f}s; measuring")
            result = {**meta, **measure_database(database, repeat)}
        finally:
            database.dispose()
    log(f"{size} PostgreSQL: schema {schema} dropped")
    return result


def postgres_skip_reason(size: str, results: dict[str, Any]) -> str | None:
    """Skip a size whose load, projected from the largest PostgreSQL load so far, would exceed the limit."""
    loaded = [
        r["postgresql"] for r in results.values() if "load_events_per_second" in r.get("postgresql", {})
    ]
    if not loaded:
        return None
    rate = loaded[-1]["load_events_per_second"]
    expected = results.get(size, {}).get("sqlite", {}).get("events") or SIZES[size] * 87
    projected = expected / rate
    if projected > POSTGRES_LOAD_LIMIT_SECONDS:
        return (f"skipped: loading {expected:,} events would take ~{projected / 60:.0f} min at "
                f"{rate:,} events/s (limit {POSTGRES_LOAD_LIMIT_SECONDS // 60} min)")  # fmt: skip
    return None


def guarded(label: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A failing part is recorded as an error instead of losing the other figures (an AssertionError too)."""
    try:
        return measure()
    except Exception as error:
        log(f"{label} failed: {error!r}")
        return {"error": f"{type(error).__name__}: {error}"[:500]}


def add_growth(results: dict[str, Any]) -> None:
    """Dashboard time ÷ the previous size's, next to the event ratio; exponent 1 = linear in the events."""
    for database in ("sqlite", "postgresql"):
        previous = None
        for size in results:
            current = results[size].get(database, {})
            if "dashboard" not in current:
                continue
            if previous is not None:
                seconds = current["dashboard"]["median_seconds"] / previous["dashboard"]["median_seconds"]
                events = current["events"] / previous["events"]
                current["growth_vs_previous_size"] = {
                    "dashboard_time_factor": round(seconds, 2),
                    "events_factor": round(events, 2),
                    "exponent": round(math.log(seconds) / math.log(events), 2),
                }
            previous = current


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, Any] = {
        "dashboard_seconds_at_1m_at_most": TARGET_DASHBOARD_SECONDS,
        "python_ratio_at_least": TARGET_RATIO,
    }
    for database in ("sqlite", "postgresql"):
        measured = results.get(TARGET_SIZE, {}).get(database, {})
        if "dashboard" in measured:
            met = measured["dashboard"]["median_seconds"] <= TARGET_DASHBOARD_SECONDS
            targets[f"dashboard_1m_{database}"] = "met" if met else "missed"
        for size, per_database in results.items():
            baseline = per_database.get(database, {}).get("baseline")
            if baseline:
                targets[f"ratio_{size}_{database}"] = "met" if baseline["ratio"] >= TARGET_RATIO else "missed"
    return targets


# --------------------------------------------------------------------------------------------------------------
# README table


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value >= 10 else f"{value:.3f}"


DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _timing(summary: dict[str, Any], repeat: int, unit: str = "") -> str:
    """The median, and how many runs it is of when that is fewer than --repeat (slow 5M figures)."""
    text = _seconds(summary["median_seconds"]) + unit
    return text if summary["runs"] == repeat else f"{text} (of {summary['runs']})"


def markdown_table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    label, date = machine_label(machine), machine["date_utc"][:10]
    if results.get("postgres_server_version"):
        label += f", PostgreSQL {results['postgres_server_version']}"
    repeat = results["parameters"]["repeat"]
    lines = [
        "| Events | Database | Dashboard, s | `compute_kpis`, s | Slowest metric report, s "
        "| Growth vs previous size | Machine | Date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    figures = [
        "| Figure | Result | Target | Status | Machine | Date |",
        "|---|---|---|---|---|---|",
    ]
    targets = results["targets"]
    for size, per_database in results["sizes"].items():
        for database, measured in per_database.items():
            name = DATABASE_NAMES[database]
            if "dashboard" not in measured:
                note = measured.get("skipped") or measured.get("error", "not measured")
                lines.append(f"| {SIZE_LABELS[size]} | {name} | {note} | — | — | — | {label} | {date} |")
                continue
            metrics = measured["metric_report"]
            slowest = max(metrics, key=lambda m: metrics[m]["median_seconds"])
            growth = measured.get("growth_vs_previous_size")
            growth_text = (
                f"×{growth['dashboard_time_factor']:.1f} for ×{growth['events_factor']:.1f} events "
                f"(exponent {growth['exponent']:.2f})" if growth else "—"
            )  # fmt: skip
            lines.append(
                f"| {measured['events']:,} | {name} | {_timing(measured['dashboard'], repeat)} "
                f"| {_timing(measured['compute_kpis'], repeat)} "
                f"| {slowest} {_timing(metrics[slowest], repeat)} | {growth_text} | {label} | {date} |"
            )
            if size == TARGET_SIZE:
                figures.append(
                    f"| Dashboard at {measured['events']:,} events, {name} "
                    f"| {_timing(measured['dashboard'], repeat, ' s')} "
                    f"| ≤ {TARGET_DASHBOARD_SECONDS:.0f} s on 2 cores | {targets[f'dashboard_1m_{database}']} "
                    f"| {label} | {date} |"
                )
            baseline = measured["baseline"]
            figures.append(
                f"| Same numbers by loading the events into Python vs our SQL, {SIZE_LABELS[size]} {name} "
                f"({baseline['numbers_compared']} numbers, equal to 1e-9) "
                f"| Python {_timing(baseline['python'], repeat, ' s')} "
                f"(fetch {_seconds(baseline['python_fetch_median_seconds'])} + compute "
                f"{_seconds(baseline['python_compute_median_seconds'])}) vs SQL "
                f"{_timing(baseline['sql'], repeat, ' s')} = **{baseline['ratio']:.1f}×**; the dashboard's path "
                f"(also previous window, daily series, every KPI) {_timing(baseline['dashboard'], repeat, ' s')} = "
                f"{baseline['dashboard_ratio']:.1f}× "
                f"| ≥ {TARGET_RATIO:.0f}× | {targets[f'ratio_{size}_{database}']} | {label} | {date} |"
            )
    return "\n".join([*lines, "", *figures, "", *notes(results)])


def notes(results: dict[str, Any]) -> list[str]:
    """Where the dashboard's time goes at the larger sizes, and which code was measured."""
    lines = []
    for size, per_database in results["sizes"].items():
        if size == "100k":
            continue
        for database, measured in per_database.items():
            profile = measured.get("profile")
            if not profile:
                continue
            calls = ", ".join(
                f"{row['call']} {row['share_of_wall']:.0%}"
                for row in profile["by_call"][:4]
                if row["seconds"]
            )
            top = profile["by_label"][0]
            lines.append(
                f"- {SIZE_LABELS[size]} {DATABASE_NAMES[database]}: {calls}; largest single part: "
                f"{top['label']} {top['seconds']:.2f} s."
            )
    code = results["code"]
    changed = len(code["uncommitted_product_files"])
    state = f"commit {(code['commit'] or 'unknown')[:7]}" + (
        f" with uncommitted changes in {changed} product files" if changed else ""
    )
    repeat = results["parameters"]["repeat"]
    method = (
        f'Seconds are medians of {repeat} warm runs after an untimed one ("of 3": 3 runs, where one run took '
        f"over {SLOW_RUN_SECONDS:.0f} s). Measured: {state}."
    )
    if not lines:
        return [method]
    head = (
        "Where the dashboard's time goes (statement time in one profiled run, share of its wall time; "
        "metric_report(error_rate) includes the per-user activity table that support_incidents reuses):"
    )
    return [method, "", head, "", *lines]


def write_results(results: dict[str, Any]) -> None:
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    temporary = RESULTS_PATH.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(RESULTS_PATH)


# --------------------------------------------------------------------------------------------------------------
# Main


def parse_sizes(text: str) -> list[str]:
    sizes = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [size for size in sizes if size not in SIZES]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(f"sizes must be among {', '.join(SIZES)}; got {text!r}")
    return [size for size in SIZES if size in sizes]  # always smallest first, for the growth factors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(SIZES), help="comma-separated: 100k,1m,5m")
    parser.add_argument(
        "--skip-postgres", action="store_true", help="skip PostgreSQL even if a server answers"
    )
    parser.add_argument(
        "--postgres-sizes", type=parse_sizes, default=None,
        help="measure PostgreSQL only at these sizes (default: every size of --sizes)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median quoted; ≥ 3)")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3")
    return args


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    window = dashboard_window()
    postgres_url = None if args.skip_postgres else postgres_base_url()
    results: dict[str, Any] = {
        "benchmark": "kpis",
        "machine": machine_facts(),
        "code": code_state(),
        "parameters": {
            "sizes": {size: {"users": SIZES[size]} for size in args.sizes},
            "seed": SEED,
            "days": DAYS,
            "synthetic_end": SYNTHETIC_END.isoformat(),
            "window": window.as_dict(),
            "repeat": args.repeat,
            "baseline_metrics": list(BASELINE_METRICS),
            "baseline_kpis": list(BASELINE_KPIS),
            "postgres_load_limit_seconds": POSTGRES_LOAD_LIMIT_SECONDS,
        },
        "postgres": "skipped (--skip-postgres)" if args.skip_postgres else "not available",
    }
    if postgres_url is not None:
        results["postgres"] = "used"
        results["postgres_server_version"] = postgres_server_version(postgres_url)
    sizes: dict[str, dict[str, Any]] = {}
    results["sizes"] = sizes
    for size in args.sizes:
        sizes[size] = {"sqlite": guarded(f"{size} SQLite", lambda size=size: run_sqlite(size, args.repeat))}
        if postgres_url is None:
            continue
        reason = postgres_skip_reason(size, sizes)
        if args.postgres_sizes is not None and size not in args.postgres_sizes:
            reason = "not measured in this run (--postgres-sizes)"
        if reason:
            log(f"{size} PostgreSQL: {reason}")
            sizes[size]["postgresql"] = {"skipped": reason}
            continue
        expected = sizes[size]["sqlite"].get("events")
        sizes[size]["postgresql"] = guarded(
            f"{size} PostgreSQL",
            lambda size=size, expected=expected: run_postgres(size, args.repeat, postgres_url, expected),
        )
    add_growth(sizes)
    results["targets"] = evaluate_targets(sizes)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the PostgreSQL schema of the size being measured is still dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run_all(args)
    results["total_seconds"] = round(time.perf_counter() - _STARTED, 1)
    write_results(results)
    table = markdown_table(results)
    replace_readme_block("kpis", table, heading="KPIs and dashboard")
    print(table)
    log(f"wrote {RESULTS_PATH.relative_to(ROOT)} and the table in bench/README.md")
    log(f"done in {results['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
