"""`feedbackloop rollups refresh`: roll up the closed days the dashboard reads from daily_user_activity now.

The worker does this every few minutes; run it by hand after a large import, or when no worker runs, so the
dashboard reads whole days from the rollup instead of their events. The figures are the same either way (days not
rolled up are read from events); only the time to compute them changes.

Exit codes: 0 done, 2 bad options (named).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from feedbackloop.cli.root import DatabaseOption, console, errors, fail, load_settings, open_database
from store.repositories.activity_rollups import refresh_rollups

rollups_app: typer.Typer = typer.Typer(
    help="Daily activity rollups behind the dashboard.", no_args_is_help=True
)


@rollups_app.command("refresh")
def refresh(
    max_days: Annotated[
        int | None, typer.Option("--max-days", help="roll up at most this many days (most recent first)")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Roll up every closed day that was never rolled up or has received events since."""
    if max_days is not None and max_days < 1:
        raise fail(f"--max-days must be at least 1, got {max_days}")
    database = open_database(load_settings(database_url).database_url)
    with Progress(
        TextColumn("rolling up days"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors
    ) as progress:
        task = progress.add_task("days", total=None)
        report = refresh_rollups(
            database,
            datetime.now(UTC),
            max_days=max_days,
            on_plan=lambda days: progress.update(task, total=days),
            on_day=lambda _: progress.advance(task),
        )
    console.print(
        f"rolled up {report.days:,} days ({report.stale:,} made stale by late events) into {report.users:,} "
        f"day-user rows; {report.remaining:,} days left"
    )
