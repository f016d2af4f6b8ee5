"""The body of `feedbackloop events import`, kept apart from argument parsing."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from feedbackloop.importer import ImportFileError, ImportInterrupted, import_events
from feedbackloop.settings import Settings
from store.database import Database
from store.engine import DatabaseURLError
from store.repositories.activity_rollups import refresh_rollups
from tools.events.ingest import EventIngestor, IngestSummary
from tools.personas import PersonaConfigError, load_registry

MAX_REJECTIONS_SHOWN = 20


def run_import(file: str, *, strict: bool, settings: Settings, console: Console, errors: Console) -> int:
    try:
        stream = sys.stdin if file == "-" else open(Path(file), encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        errors.print(f"[red]error:[/] FILE {file}: {exc.strerror}")
        return 2
    try:
        ingestor = EventIngestor(Database(settings.database_url), load_registry(settings.personas_file))
        with (
            stream,
            Progress(
                SpinnerColumn(),
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=errors,
            ) as progress,
        ):
            task = progress.add_task("import", total=None)
            summary = import_events(
                stream, ingestor, strict=strict, on_progress=lambda n: progress.advance(task, n)
            )
    except (ImportFileError, UnicodeDecodeError) as exc:
        errors.print(f"[red]error:[/] FILE {file}: {exc}; nothing was stored")
        return 2
    except ImportInterrupted as exc:
        _print_summary(console, exc.summary, strict=strict)
        errors.print(f"[red]error:[/] {exc}; re-run the import to store the rest (stored events are skipped)")
        return 1
    except (DatabaseURLError, PersonaConfigError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        return 2
    _print_summary(console, summary, strict=strict)
    if summary.accepted:
        _roll_up(ingestor.database, errors)
    if summary.rejected:
        return 2 if strict else 1
    return 0


def _roll_up(database: Database, errors: Console) -> None:
    """Roll up the closed days the import wrote to, so the dashboard reads them from the rollup at once."""
    with Progress(
        TextColumn("rolling up days"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors
    ) as progress:
        task = progress.add_task("days", total=None)
        refresh_rollups(
            database,
            datetime.now(UTC),
            on_plan=lambda days: progress.update(task, total=days),
            on_day=lambda _: progress.advance(task),
        )


def _print_summary(console: Console, summary: IngestSummary, *, strict: bool) -> None:
    table = Table("accepted", "duplicates", "rejected", title="import summary")
    table.add_row(f"{summary.accepted:,}", f"{summary.duplicates:,}", f"{len(summary.rejected):,}")
    console.print(table)
    if strict and summary.rejected:
        console.print("[red]--strict: nothing was stored because of the rejected events below[/]")
    for rejection in summary.rejected[:MAX_REJECTIONS_SHOWN]:
        console.print(f"  rejected {rejection.reason}")
    if len(summary.rejected) > MAX_REJECTIONS_SHOWN:
        console.print(f"  … and {len(summary.rejected) - MAX_REJECTIONS_SHOWN:,} more")
