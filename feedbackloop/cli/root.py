"""Command tree. Exit codes: 0 success, 1 finished with rejected input, 2 bad usage or unusable input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feedbackloop.logs import configure_logging
from feedbackloop.settings import Settings, get_settings

app = typer.Typer(
    help="feedbackloop: close the product feedback loop.", no_args_is_help=True, add_completion=False
)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
events_app = typer.Typer(help="Event ingestion.", no_args_is_help=True)
stats_app = typer.Typer(
    help="Experiment statistics on sufficient statistics (JSON in, JSON out).", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(stats_app, name="stats")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_REJECTED = 1
EXIT_USAGE = 2


def fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/] {message}")
    return typer.Exit(EXIT_USAGE)


def load_settings(database_url: str | None = None) -> Settings:
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: name the variable, not a traceback
        raise fail(f"invalid configuration: {exc}") from None
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="override FEEDBACKLOOP_DATABASE_URL", show_default=False)
]


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked)."""
    table = Table("setting", "value", "environment variable")
    for name, value in load_settings().masked().items():
        table.add_row(name, value, f"FEEDBACKLOOP_{name.upper()}")
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Bring the database schema to the newest revision (safe to run any time)."""
    from store.database import Database
    from store.engine import DatabaseURLError
    from store.migrate import current_revision

    settings = load_settings(database_url)
    try:
        database = Database(settings.database_url)
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    console.print(f"schema at revision {current_revision(database.engine)} ({database.dialect})")


@events_app.command("import")
def events_import(
    file: Annotated[str, typer.Argument(help="JSON lines or Segment batch JSON; '-' reads standard input")],
    strict: Annotated[bool, typer.Option(help="store nothing if any event is invalid")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Import events through the same path as POST /v1/batch; prints accepted, duplicates, rejected."""
    from feedbackloop.cli.importing import run_import

    code = run_import(
        file, strict=strict, settings=load_settings(database_url), console=console, errors=errors
    )
    raise typer.Exit(code)


@events_app.command("stats")
def events_stats(database_url: DatabaseOption = None) -> None:
    """What is stored: event and user counts, period, users by persona, most frequent events."""
    from feedbackloop.demo import print_overview
    from store.database import Database
    from store.engine import DatabaseURLError

    settings = load_settings(database_url)
    try:
        database = Database(settings.database_url)
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    print_overview(console, database)
    database.dispose()


@stats_app.command("analyze")
def stats_analyze(
    file: Annotated[
        str, typer.Argument(help="JSON document (see docs/statistics.md); '-' reads standard input")
    ],
    output_format: Annotated[str, typer.Option("--format", help="json or table")] = "json",
) -> None:
    """Analyse one metric or several (with Holm/BH correction) from sufficient statistics."""
    from feedbackloop.cli.stats import run_stats_analyze

    if output_format not in ("json", "table"):
        raise fail(f"--format: {output_format!r} is not one of json, table")
    raise typer.Exit(run_stats_analyze(file, output_format, console=console, errors=errors))


OutputFormat = Annotated[str, typer.Option("--format", help="table or json")]


def read_command_setup(
    days: int, end: str | None, database_url: str | None, output_format: str | None = None
) -> tuple[Settings, Any, Any]:
    """What every read command starts with: the format checked, settings, the window and the database."""
    from feedbackloop.cli.reading import ReadInputError, window_option

    if output_format is not None and output_format not in ("table", "json"):
        raise fail(f"--format: {output_format!r} is not one of table, json")
    settings = load_settings(database_url)
    try:
        window = window_option(days, end)
    except ReadInputError as exc:
        raise fail(str(exc)) from None
    return settings, window, open_database(settings.database_url)


def open_database(url: str) -> Any:
    """The Database for a read command; a bad URL is a usage error (exit 2), not a traceback."""
    from store.database import Database
    from store.engine import DatabaseURLError

    try:
        return Database(url)
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None


EndOption = Annotated[
    str | None, typer.Option("--end", help="window end, ISO 8601 with offset (default now)")
]


@app.command()
def metrics(
    category: Annotated[
        str,
        typer.Argument(
            help="time_to_value, report_accuracy, renewal_success, error_rate, "
            "support_incidents, or a custom metric name"
        ),
    ],
    days: Annotated[int, typer.Option(help="window length in days")] = 30,
    end: EndOption = None,
    persona: Annotated[str | None, typer.Option(help="only this persona")] = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """A metric by persona vs the previous window (n, mean, p50, p90, change, p-value)."""
    from feedbackloop.cli.reading import metric_table, print_json
    from store.repositories.metrics import known_personas
    from tools.metrics.compute import metric_report

    settings, window, database = read_command_setup(days, end, database_url, output_format)
    with database.read() as connection:
        personas = known_personas(connection)
        if persona is not None and persona not in personas:
            database.dispose()
            raise fail(f"--persona: {persona!r} has no users; known: {', '.join(personas) or '(none)'}")
        report = metric_report(
            connection, category, window, persona=persona, renewal_window_days=settings.renewal_window_days
        )
    database.dispose()
    if output_format == "json":
        print_json(console, report.as_dict())
    else:
        console.print(metric_table(report))


@app.command()
def kpis(
    days: Annotated[int, typer.Option(help="window length in days")] = 30,
    end: EndOption = None,
    persona: Annotated[str | None, typer.Option(help="only this persona")] = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Every KPI overall and per persona, with n; missing inputs show the reason, never 0."""
    from feedbackloop.cli.reading import kpi_table, print_json
    from tools.kpis.compute import compute_kpis

    settings, window, database = read_command_setup(days, end, database_url, output_format)
    with database.read() as connection:
        snapshot = compute_kpis(connection, window, gross_margin=settings.gross_margin)
    database.dispose()
    if persona is not None and persona not in snapshot.personas:
        raise fail(f"--persona: {persona!r} has no users; known: {', '.join(sorted(snapshot.personas))}")
    if output_format == "json":
        body = snapshot.as_dict()
        if persona is not None:
            body["personas"] = {persona: body["personas"][persona]}
        print_json(console, body)
    else:
        console.print(kpi_table(snapshot, persona))


@app.command()
def dashboard(
    out: Annotated[Path, typer.Option("--out", help="where to write the HTML page")] = Path("dashboard.html"),
    days: Annotated[int, typer.Option(help="window length in days")] = 30,
    end: EndOption = None,
    persona: Annotated[str | None, typer.Option(help="only this persona")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the KPI dashboard (one self-contained HTML file) — the same page as GET /dashboard."""
    from feedbackloop.dashboard.build import build_dashboard
    from feedbackloop.dashboard.render import render_dashboard

    settings, window, database = read_command_setup(days, end, database_url)
    page = render_dashboard(build_dashboard(database, settings, window, persona=persona))
    database.dispose()
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--out {out}: {exc.strerror}") from None
    console.print(f"dashboard written to {out.resolve()}")


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=10, max=200_000, help="synthetic users")] = 2000,
    days: Annotated[int, typer.Option(min=14, max=730, help="days of activity")] = 90,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="demo database (default .feedbackloop/demo.db)")
    ] = None,
    reset: Annotated[bool, typer.Option(help="drop feedbackloop tables in --database-url first")] = False,
) -> None:
    """Create a fresh demo database with realistic activity and show what feedbackloop sees in it."""
    from datetime import UTC, datetime

    from feedbackloop.demo import DEFAULT_DEMO_URL, DemoDatabaseNotEmpty, run_demo
    from store.engine import DatabaseURLError
    from tools.personas import PersonaConfigError, load_registry
    from tools.synthetic import PlantedDeployment, SyntheticConfig, SyntheticConfigError

    settings = load_settings()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    deploy_day = max(1, round(days * 76 / 90))
    config = SyntheticConfig(
        users=users, days=days, seed=seed, end=end, deployments=(PlantedDeployment(day=deploy_day),)
    )
    try:
        personas = load_registry(settings.personas_file)
        run_demo(
            console,
            database_url=database_url or DEFAULT_DEMO_URL,
            config=config,
            personas=personas,
            reset=reset,
        )
    except (DemoDatabaseNotEmpty, DatabaseURLError, PersonaConfigError, SyntheticConfigError) as exc:
        raise fail(str(exc)) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    database_url: DatabaseOption = None,
) -> None:
    """Run the HTTP API (OpenAPI at /docs). The schema is upgraded before workers start."""
    import os

    from feedbackloop.serving import run_server
    from store.database import Database
    from store.engine import DatabaseURLError

    settings = load_settings(database_url)
    try:
        Database(settings.database_url).dispose()
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    if database_url:
        os.environ["FEEDBACKLOOP_DATABASE_URL"] = database_url  # workers are new processes: pass it on
    run_server(host=host, port=port, workers=workers)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="run each job once and exit (cron, tests)")] = False,
    check_minutes: Annotated[
        int | None,
        typer.Option(
            "--check-minutes",
            min=1,
            max=1440,
            help="minutes between escalation checks (default FEEDBACKLOOP_ESCALATION_CHECK_MINUTES)",
            show_default=False,
        ),
    ] = None,
    deliver_seconds: Annotated[
        float, typer.Option("--deliver-seconds", min=0.1, max=3600, help="seconds between outbox deliveries")
    ] = 10.0,
    database_url: DatabaseOption = None,
) -> None:
    """Run the periodic jobs (escalation checks, notification and webhook delivery) until SIGTERM or SIGINT.
    Several workers may run: one evaluates at a time (PostgreSQL advisory lock, SQLite file lock)."""

    from feedbackloop.worker import run_worker

    settings = load_settings(database_url)
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        raise fail(f"FEEDBACKLOOP_LOG_LEVEL: {exc}") from None
    database = open_database(settings.database_url)
    try:
        code = run_worker(database, settings, once=once, check_minutes=check_minutes,
                          deliver_seconds=deliver_seconds)  # fmt: skip
    except ValueError as exc:  # a notification channel or the webhook secret is set but unusable
        raise fail(f"invalid configuration: {exc}") from None
    finally:
        database.dispose()
    raise typer.Exit(code)


# Last, because these command groups use the helpers above (the package imports this module first).
from feedbackloop.cli.escalations import escalations_app  # noqa: E402
from feedbackloop.cli.experiments import experiments_app  # noqa: E402
from feedbackloop.cli.hooks import hook_app  # noqa: E402
from feedbackloop.cli.keys import keys_app  # noqa: E402
from feedbackloop.cli.retro import retro_app  # noqa: E402
from feedbackloop.cli.rollups import rollups_app  # noqa: E402
from feedbackloop.cli.surveys import surveys_app  # noqa: E402
from feedbackloop.cli.webhooks import webhooks_app  # noqa: E402

app.add_typer(escalations_app, name="escalations")
app.add_typer(keys_app, name="keys")
app.add_typer(experiments_app, name="experiments")
app.add_typer(hook_app, name="hook")
app.add_typer(retro_app, name="retro")
app.add_typer(rollups_app, name="rollups")
app.add_typer(surveys_app, name="surveys")
app.add_typer(webhooks_app, name="webhooks")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
