"""`feedbackloop demo`: a fresh database filled with 90 days of realistic activity, then what it shows.

The events go through the same EventIngestor as the HTTP API; the summary is computed by SQL in the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import inspect

from feedbackloop.cli.experiment_tables import results_view
from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.demo_chat import print_chat
from feedbackloop.demo_escalations import print_escalations, replay_checks
from feedbackloop.demo_retro import print_retro, run_demo_retro
from feedbackloop.demo_surveys import answer_surveys, print_surveys
from feedbackloop.settings import Settings
from prompts import render
from store.database import Database
from store.engine import make_engine, normalise_url
from store.models import Base
from store.repositories.summary import (
    event_overview,
    event_rate_by_persona,
    events_by_name,
    find_event,
    users_by_persona,
)
from tools.events.ingest import EventIngestor, IngestSummary
from tools.experiments.analysis import analyze
from tools.experiments.demo_traffic import (
    ONBOARDING_EXPERIMENT,
    PRICING_EXPERIMENT,
    TrafficPlan,
    run_experiments,
)
from tools.experiments.service import ExperimentService
from tools.personas import PersonaRegistry
from tools.surveys.demo_responses import Regression
from tools.surveys.service import SurveyService
from tools.synthetic import SyntheticConfig, count_hint, generate_events, period_end
from tools.window import Window

DEFAULT_DEMO_URL = "sqlite:///./.feedbackloop/demo.db"
COMPARISON_WINDOW_DAYS = 14
# The demo experiments run on days 45–59 of the 90, so their users' events end before the 14 days that precede the
# planted deployment (day 76) and leave the deployment comparison untouched.
EXPERIMENT_FIRST_DAY, EXPERIMENT_DAYS = 45, 14
DASHBOARD_DAYS = 30


class DemoDatabaseNotEmpty(RuntimeError):
    """Refuses to overwrite a database that already holds feedbackloop data unless asked to."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    summary: IngestSummary
    seconds: float
    database_url: str
    dashboard_path: Path


def reset_database(url: str, *, force: bool) -> None:
    """Start from an empty schema: delete the demo SQLite file, or drop our tables when `force` allows it."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite" and url == DEFAULT_DEMO_URL:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    engine = make_engine(url)
    try:
        existing = set(inspect(engine).get_table_names())
        ours = {table.name for table in Base.metadata.sorted_tables} | {"alembic_version"}
        if existing & ours and not force:
            raise DemoDatabaseNotEmpty(
                f"{parsed.render_as_string(hide_password=True)} already has feedbackloop tables; "
                "pass --reset to drop them and start the demo from scratch"
            )
        with engine.begin() as connection:
            Base.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


def run_demo(
    console: Console,
    *,
    database_url: str = DEFAULT_DEMO_URL,
    config: SyntheticConfig | None = None,
    personas: PersonaRegistry | None = None,
    reset: bool = False,
    retro: bool = True,
) -> DemoResult:
    config = config or SyntheticConfig(
        end=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    started = time.perf_counter()
    reset_database(database_url, force=reset)
    database = Database(database_url)
    SurveyService(database).ensure_defaults()  # before the events, so they trigger surveys as they arrive
    ingestor = EventIngestor(database, personas)
    console.print(
        f"[bold]feedbackloop demo[/]: {config.users:,} users, {config.days} days, seed {config.seed} → "
        f"{normalise_url(database_url).render_as_string(hide_password=True)}"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("generating + ingesting events", total=count_hint(config))
        summary = ingestor.ingest_stream(
            generate_events(config), on_progress=lambda n: progress.advance(task, n)
        )
        progress.update(task, total=progress.tasks[0].completed)
        summary.add(run_demo_experiments(database, ingestor, config, progress))
        regression = planted_regression(database, config)
        answer_surveys(database, progress, until=period_end(config), regression=regression, seed=config.seed)
        replay = (
            replay_checks(database, progress, deployed_at=regression.since, end=period_end(config),
                          notifications_file=_beside(database_url, "notifications.jsonl"))
            if regression is not None
            else None
        )  # fmt: skip
    seconds = time.perf_counter() - started
    print_summary(console, database, summary, seconds, config)
    print_experiments(console, database)
    start = period_end(config) - timedelta(days=config.days)
    print_surveys(console, database, start=start, end=period_end(config), regression=regression)
    if replay is not None:
        print_escalations(console, database, replay)
    if retro:
        backlog_file = _beside(database_url, "backlog.jsonl")
        with console.status("sprint retro: gathering evidence, detecting signals, synthesising"):
            result = run_demo_retro(
                database_url, database=database, end=period_end(config), backlog_file=backlog_file
            )
        print_retro(console, result, backlog_file)
    print_chat(console, database, database_url, now=period_end(config))
    dashboard_path = write_dashboard(console, database, database_url, config)
    console.print(
        render(
            "demo_next_steps.txt.j2", cli="feedbackloop", database_url=database_url, dashboard=dashboard_path
        ),
        soft_wrap=True,
    )
    database.dispose()
    return DemoResult(summary, seconds, database_url, dashboard_path)


def run_demo_experiments(
    database: Database, ingestor: EventIngestor, config: SyntheticConfig, progress: Progress
) -> IngestSummary:
    """An onboarding experiment with a planted effect and a pricing experiment with none, on new trial users."""
    offset_days = max(0, min(EXPERIMENT_FIRST_DAY, config.days - EXPERIMENT_DAYS))  # short demos: from day 0
    first_day = period_end(config) - timedelta(days=config.days - offset_days)
    first_day = first_day.replace(hour=0, minute=0, second=0, microsecond=0)
    clock = [first_day]
    service = ExperimentService(database, clock=lambda: clock[0])
    plan = TrafficPlan(first_day=first_day, days=min(EXPERIMENT_DAYS, config.days), seed=config.seed)
    task = progress.add_task("experiments: assigning + simulating users", total=plan.days)
    stored = run_experiments(service, ingestor, plan, clock, on_day=lambda: progress.advance(task))
    return IngestSummary(accepted=stored)


def planted_regression(database: Database, config: SyntheticConfig) -> Regression | None:
    """The planted deployment (when the config has one and it happened): respondents of its persona sour after it."""
    if not config.deployments:
        return None
    planted = config.deployments[0]
    with database.read() as connection:
        deployed_at = find_event(
            connection, name="deployment", property_name="version", value=planted.version
        )
    return Regression(deployed_at, planted.persona) if deployed_at is not None else None


def print_experiments(console: Console, database: Database) -> None:
    service = ExperimentService(database)
    for definition in (ONBOARDING_EXPERIMENT, PRICING_EXPERIMENT):
        console.print()
        console.print(results_view(analyze(service, definition["key"])))


def write_dashboard(console: Console, database: Database, database_url: str, config: SyntheticConfig) -> Path:
    """The KPI dashboard of the last 30 days of demo data, next to the demo database."""
    path = _beside(database_url, "dashboard.html")
    window = Window.last_days(min(DASHBOARD_DAYS, config.days), config.end)
    with console.status("computing KPIs and metrics for the dashboard"):
        page = render_dashboard(build_dashboard(database, Settings(database_url=database_url), window))
    path.write_text(page, encoding="utf-8")
    console.print(
        f"\nKPI dashboard of the last {window.days:.0f} days: [bold]{path.resolve()}[/] (open it in a browser)"
    )
    return path


def _beside(database_url: str, name: str) -> Path:
    """A file next to the demo's SQLite database (the current directory for PostgreSQL)."""
    parsed = normalise_url(database_url)
    sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database
    return (Path(parsed.database).parent if sqlite_file and parsed.database else Path(".")) / name


def print_summary(
    console: Console, database: Database, summary: IngestSummary, seconds: float, config: SyntheticConfig
) -> None:
    with database.read() as connection:
        deploy_version = config.deployments[0].version if config.deployments else None
        deployed_at = (
            find_event(connection, name="deployment", property_name="version", value=deploy_version)
            if deploy_version
            else None
        )
        before = after = None
        if deployed_at is not None:
            window = timedelta(days=COMPARISON_WINDOW_DAYS)
            kwargs = {"event_name": "error_occurred", "feature": "report_generation"}
            before = event_rate_by_persona(connection, start=deployed_at - window, end=deployed_at, **kwargs)
            after = event_rate_by_persona(connection, start=deployed_at, end=deployed_at + window, **kwargs)
    rate = summary.accepted / seconds if seconds else 0.0
    console.print(
        f"\nStored [bold]{summary.accepted:,}[/] events ({summary.duplicates:,} duplicates, "
        f"{len(summary.rejected)} rejected) in {seconds:.1f} s ({rate:,.0f} events/s)."
    )
    print_overview(console, database)
    if before is not None and after is not None and deployed_at is not None:
        console.print(_deployment_table(before, after, deploy_version or "", deployed_at))


def print_overview(console: Console, database: Database) -> None:
    """Counts, period, users by persona and the most frequent events of a database."""
    with database.read() as connection:
        overview = event_overview(connection)
        personas = users_by_persona(connection)
        top_events = events_by_name(connection, limit=10)
    console.print(f"{overview.events:,} events from {overview.users:,} users.")
    if overview.first_timestamp and overview.last_timestamp:
        console.print(
            f"Period: {overview.first_timestamp:%Y-%m-%d} → {overview.last_timestamp:%Y-%m-%d} (UTC)"
        )
    people = Table("persona", "users", title="Users by persona")
    for persona, count in personas.items():
        people.add_row(persona, f"{count:,}")
    names = Table("event", "count", title="Most frequent events")
    for name, count in top_events:
        names.add_row(name, f"{count:,}")
    console.print(people, names)


def _deployment_table(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], version: str, deployed_at: datetime
) -> Table:
    table = Table(
        "persona",
        "errors / active user, 14 d before",
        "14 d after",
        "change",
        title=f"Report-generation errors around deployment {version} ({deployed_at:%Y-%m-%d %H:%M} UTC)",
    )
    for persona in sorted(set(before) | set(after)):
        rate_before = _per_user(before.get(persona))
        rate_after = _per_user(after.get(persona))
        change = f"×{rate_after / rate_before:.1f}" if rate_before and rate_after is not None else "n/a"
        table.add_row(persona, _fmt(rate_before), _fmt(rate_after), change)
    return table


def _per_user(pair: tuple[int, int] | None) -> float | None:
    if pair is None or pair[1] == 0:
        return None
    return pair[0] / pair[1]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
