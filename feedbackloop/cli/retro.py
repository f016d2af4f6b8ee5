"""`feedbackloop retro …`: run a sprint or deployment retro, approve the backlog items it proposes, show, resume
and list retros.

The commands are doors onto the retro runner (feedbackloop.retro_agent), like POST /v1/retros: the runner
validates the request and records the retro, then the graph runs under a spinner, and the result prints as rich
tables, JSON or the markdown (or HTML) report. Bad input, an unknown id and approving a retro that is not waiting
for approval exit 2 with a message naming the option; a run that fails exits 1 and can be resumed.

The runner (LangGraph and friends) is imported inside the commands, so the rest of the CLI starts without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from feedbackloop.cli.root import DatabaseOption, console, errors, fail, load_settings, open_database

if TYPE_CHECKING:
    from agents.retro.runner import RetroRunner

retro_app: typer.Typer = typer.Typer(
    help="Retros: sprint and deployment retrospectives, their insights and backlog tickets.",
    no_args_is_help=True,
)

Result = TypeVar("Result")
EXIT_FAILED = 1
FORMATS = ("table", "json", "markdown")
OPTIONS = {
    "kind": "--kind", "start": "--start", "end": "--end", "sprint_id": "--sprint-id", "version": "--version",
    "bake_hours": "--bake-hours", "approve": "--approve", "items": "--items", "retro_id": "RETRO_ID",
}  # fmt: skip
IMPACT_STYLE = {"High": "bold red", "Medium": "yellow", "Low": "dim"}
STATUS_STYLE = {"running": "cyan", "awaiting_approval": "magenta", "completed": "green", "failed": "bold red"}

IdArgument = Annotated[str, typer.Argument(metavar="RETRO_ID", help="the retro's id (retro-…)")]
FormatOption = Annotated[str, typer.Option("--format", help="table, json or markdown")]


# ---- commands -----------------------------------------------------------------------------------------------


@retro_app.command("run")
def run(
    kind: Annotated[str, typer.Option("--kind", help="sprint or deployment")],
    start: Annotated[str | None, typer.Option("--start", help="sprint's first day, ISO 8601")] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="sprint's last day (included), ISO 8601; a time = exact end")
    ] = None,
    sprint_id: Annotated[str | None, typer.Option("--sprint-id", help="the sprint's name")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="the deployed version (deployment)")
    ] = None,
    bake_hours: Annotated[
        int | None,
        typer.Option(
            "--bake-hours",
            min=1,
            help="hours after the deployment compared with the hours before it "
            "(default FEEDBACKLOOP_RETRO_BAKE_HOURS)",
            show_default=False,
        ),
    ] = None,
    approve: Annotated[
        str, typer.Option("--approve", help="auto files the proposed tickets; ask waits for approval")
    ] = "auto",
    output_format: FormatOption = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Run a retro over a sprint (--start, --end) or after a deployment (--version): insights grounded in the
    product's numbers, and backlog items filed as tickets (or proposed, with --approve ask)."""
    from agents.retro.state import RetroRequest

    _check_format(output_format, FORMATS)
    if approve not in ("auto", "ask"):
        raise fail(f"--approve: {approve!r} is not one of auto, ask")
    settings = load_settings(database_url)
    request = RetroRequest(
        kind=kind, start=_iso(start, "--start"), end=_iso(end, "--end"), sprint_id=sprint_id, version=version,
        bake_hours=bake_hours if bake_hours is not None else settings.retro_bake_hours, approve=approve,
    )  # fmt: skip
    runner = _runner(database_url)
    retro_id = _on_runner(lambda: runner.start(request))
    result = _running(retro_id, "running the retro", lambda: runner.run(retro_id))
    if result["status"] == "awaiting_approval":
        if not interactive():
            _print_result(result, output_format)
            _approval_hint(retro_id, output_format)
            return
        result = _ask_and_approve(runner, result)
    _print_result(result, output_format)


@retro_app.command("show")
def show(
    retro_id: IdArgument,
    output_format: Annotated[str, typer.Option("--format", help="table, json, markdown or html")] = "table",
    database_url: DatabaseOption = None,
) -> None:
    """A retro's result: status, insights, backlog items and their tickets (or its report)."""
    _check_format(output_format, (*FORMATS, "html"))
    runner = _runner(database_url)
    result = _on_runner(lambda: runner.result(retro_id))
    if output_format in ("markdown", "html") and "insights" not in result:
        raise fail(f"RETRO_ID: {no_report(retro_id, result['status'])}")
    _print_result(result, output_format)


@retro_app.command("approve")
def approve(
    retro_id: IdArgument,
    items: Annotated[
        str | None, typer.Option("--items", help="comma-separated item ids to file (B1,B2)")
    ] = None,
    file_all: Annotated[bool, typer.Option("--all", help="file every proposed item")] = False,
    file_none: Annotated[bool, typer.Option("--none", help="file nothing")] = False,
    output_format: FormatOption = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Answer a retro waiting for approval (run with --approve ask): file the chosen items, then finish."""
    _check_format(output_format, FORMATS)
    if sum((items is not None, file_all, file_none)) != 1:
        raise fail("--items, --all or --none: give exactly one of them")
    runner = _runner(database_url)
    current = _on_runner(lambda: runner.result(retro_id))
    if current["status"] != "awaiting_approval":
        raise fail(f"RETRO_ID: retro {retro_id} is {current['status']}, not awaiting approval")
    answer: str | list[str] = "all" if file_all else "none"
    if items is not None:
        try:
            answer = parse_items(items, proposed_ids(current))
        except ValueError as error:
            raise fail(f"--items: {error}") from None
    result = _running(retro_id, "filing the approved items", lambda: runner.approve(retro_id, answer))
    _print_result(result, output_format)


@retro_app.command("resume")
def resume(
    retro_id: IdArgument, output_format: FormatOption = "table", database_url: DatabaseOption = None
) -> None:
    """Continue a retro that stopped (a crash, a kill, a failed step) from its last checkpoint."""
    _check_format(output_format, FORMATS)
    runner = _runner(database_url)
    result = _running(retro_id, "resuming the retro", lambda: runner.resume(retro_id))
    _print_result(result, output_format)
    if result.get("status") == "awaiting_approval":
        _approval_hint(retro_id, output_format)


@retro_app.command("list")
def list_retros(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="how many, newest first")] = 20,
    output_format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Recent retros, newest first: id, kind, sprint or version, status, window, started."""
    from store.repositories.retros import recent_retros

    _check_format(output_format, ("table", "json"))
    database = open_database(load_settings(database_url).database_url)
    try:
        with database.read() as connection:
            rows = [_plain(dict(row)) for row in recent_retros(connection, limit)]
    finally:
        database.dispose()
    if output_format == "json":
        _print_json(rows)
        return
    table = Table(
        "id", "kind", "sprint / version", "status", "window", "started", title=_count(len(rows), "retro")
    )
    for row in rows:
        table.add_row(
            Text(row["id"]), row["kind"], Text(row.get("sprint_id") or row.get("version") or "—"),
            Text(row["status"], style=STATUS_STYLE.get(row["status"], "")),
            f"{_minute(row['window_start'])} → {_minute(row['window_end'])}", _minute(row["created_at"]),
        )  # fmt: skip
    console.print(table)


# ---- the runner and its errors ------------------------------------------------------------------------------


def _runner(database_url: str | None) -> RetroRunner:
    """The retro runner on the configured (or given) database; bad configuration is a usage error."""
    from feedbackloop.retro_agent import retro_runner
    from store.engine import DatabaseURLError
    from tools.tickets.registry import TicketSinkConfigError

    settings = load_settings(database_url)
    try:
        return retro_runner(settings.database_url, settings=settings)
    except DatabaseURLError as error:
        raise fail(str(error)) from None
    except TicketSinkConfigError as error:
        raise fail(f"invalid configuration: {error.setting}: {error}") from None


def _on_runner(action: Callable[[], Result]) -> Result:
    """`action`, with the runner's errors as exit 2 naming the option (a state error is said as it is)."""
    from feedbackloop.retro_agent import RetroInputError, RetroNotFoundError, RetroStateError

    try:
        return action()
    except RetroNotFoundError as error:
        raise fail(f"RETRO_ID: {error}; `feedbackloop retro list` shows the ids") from None
    except RetroStateError as error:
        raise fail(f"RETRO_ID: {error.message}") from None
    except RetroInputError as error:
        option = OPTIONS.get(error.field)
        raise fail(f"{option}: {error.message}" if option else str(error)) from None


def _running(retro_id: str, what: str, action: Callable[[], Result]) -> Result:
    """`action` under a spinner (on stderr, so JSON on stdout stays clean); a failed run exits 1."""
    with errors.status(f"{what} ({retro_id}) …"):
        try:
            return _on_runner(action)
        except typer.Exit:
            raise
        except Exception as error:  # the runner recorded the failure; the checkpoint keeps the progress
            errors.print(
                Text.assemble(
                    ("error: ", "red"), f"retro {retro_id} failed: {type(error).__name__}: {error}\n",
                    f"fix the cause, then `feedbackloop retro resume {retro_id}` continues from the last step",
                )
            )  # fmt: skip
            raise typer.Exit(EXIT_FAILED) from None


def interactive() -> bool:
    """Whether someone can answer a prompt (a terminal on stdin); pipelines and CI get the approve command."""
    return sys.stdin.isatty()


def _ask_and_approve(runner: RetroRunner, result: dict[str, Any]) -> dict[str, Any]:
    """On a terminal: ask which proposed items to file, then resume the run with the answer."""
    proposed = proposed_ids(result)
    errors.print(_backlog_table(result))  # stderr, like the prompt: stdout keeps only the result
    while True:
        answer = typer.prompt(f"File which items? all, none or ids ({', '.join(proposed)})", err=True)
        try:
            chosen = parse_items(answer, proposed)
            break
        except ValueError as error:
            errors.print(Text.assemble(("error: ", "red"), str(error)))
    retro_id = result["retro_id"]
    return _running(retro_id, "filing the approved items", lambda: runner.approve(retro_id, chosen))


def no_report(retro_id: str, status: str) -> str:
    """Why a retro without a result has no report, and what to do."""
    if status == "failed":
        return f"retro {retro_id} failed before it had a result; `feedbackloop retro resume {retro_id}` continues it"
    return f"retro {retro_id} is {status} and has no report yet; it has one once the run stops"


def proposed_ids(result: Mapping[str, Any]) -> list[str]:
    """The items an approval chooses from: the backlog items that are not duplicates of open ones."""
    return [item["id"] for item in result.get("backlog_items") or [] if not item.get("duplicate_of")]


def parse_items(answer: str, proposed: Sequence[str]) -> str | list[str]:
    """ "all", "none" or comma-separated ids of proposed items (ValueError says what is wrong)."""
    text = answer.strip()
    if text.lower() in ("all", "none"):
        return text.lower()
    chosen = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not chosen:
        raise ValueError("give all, none or item ids such as B1,B2")
    unknown = [item_id for item_id in chosen if item_id not in proposed]
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not proposed; "
            f"proposed: {', '.join(proposed) or '(none)'}"
        )
    return chosen


# ---- input and output ---------------------------------------------------------------------------------------


def _check_format(output_format: str, allowed: Sequence[str]) -> None:
    if output_format not in allowed:
        raise fail(f"--format: {output_format!r} is not one of {', '.join(allowed)}")


def _iso(value: str | None, option: str) -> str | None:
    """The text as given once it reads as ISO 8601 (the runner interprets it: naive = UTC, a date = whole day)."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO 8601 date or date-time, e.g. 2026-05-01") from None
    return value


def _approval_hint(retro_id: str, output_format: str) -> None:
    out = console if output_format == "table" else errors  # keep JSON and markdown on stdout clean
    out.print(
        Text(f"retro {retro_id} is awaiting approval: `feedbackloop retro approve {retro_id} --all` files every "
             f"proposed item (or --items B1,B2, or --none)")
    )  # fmt: skip


def _print_result(result: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        _print_json(result)
    elif output_format in ("markdown", "html"):
        from tools.retro.report import render_html, render_markdown

        typer.echo((render_markdown if output_format == "markdown" else render_html)(result))
    else:
        _print_tables(result)


def _print_json(body: Any) -> None:
    console.print_json(json.dumps(body, default=str))


def _print_tables(result: Mapping[str, Any]) -> None:
    console.print(_headline(result))
    if "insights" not in result:  # no result yet: running, or failed before any
        if result.get("error"):
            console.print(Text(f"error: {result['error']}", style="red"))
        return
    console.print(_insight_table(result.get("insights") or []))
    console.print(_backlog_table(result))
    for warning in result.get("warnings") or []:
        console.print(Text.assemble(("warning: ", "yellow"), str(warning)))


def _insight_table(insights: Sequence[Mapping[str, Any]]) -> Table:
    table = Table("impact", "insight", "stage", "evidence", title=_count(len(insights), "insight"))
    for insight in insights:
        impact = str(insight.get("impact"))
        table.add_row(
            Text(impact, style=IMPACT_STYLE.get(impact, "")), Text(str(insight.get("title"))),
            Text(str(insight.get("journey_stage") or "—")), Text(", ".join(insight.get("evidence_ids") or []) or "—"),
        )  # fmt: skip
    return table


def _backlog_table(result: Mapping[str, Any]) -> Table:
    items = result.get("backlog_items") or []
    table = Table("id", "backlog item", "RICE", "ticket", title=_count(len(items), "backlog item"))
    for item in items:
        table.add_row(
            Text(str(item.get("id"))), Text(str(item.get("title"))), _score(item.get("priority")),
            _ticket(item, str(result.get("status"))),
        )  # fmt: skip
    return table


def _headline(result: Mapping[str, Any]) -> Text:
    status = str(result.get("status"))
    subject = result.get("sprint_id") or result.get("version") or ""
    window = result.get("window") or {}
    parts = [f"retro {result.get('retro_id')}", f"{result.get('kind')} {subject}".strip()]
    if window.get("start"):
        parts.append(f"{_minute(window['start'])} → {_minute(window['end'])}")
    if "synthesis" in result:
        model = result.get("model")
        parts.append(f"synthesis: {result['synthesis']}{f' ({model})' if model else ''}")
    return Text.assemble(" · ".join(parts) + " · ", (status, STATUS_STYLE.get(status, "")))


def _score(priority: Any) -> str:
    score = priority.get("score") if isinstance(priority, Mapping) else None
    return f"{score:,.1f}" if isinstance(score, int | float) and not isinstance(score, bool) else "—"


def _ticket(item: Mapping[str, Any], status: str) -> Text:
    if item.get("duplicate_of"):
        return Text(f"duplicate of {item['duplicate_of']}", style="dim")
    ticket = item.get("ticket")
    if isinstance(ticket, Mapping):
        label = ticket.get("url") or ticket.get("key") or "filed"
        existing = "" if ticket.get("created", True) else " (existing)"
        return Text(f"{ticket.get('sink')}: {label}{existing}")
    return Text("awaiting approval" if status == "awaiting_approval" else "not filed", style="dim")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _minute(value: Any) -> str:
    """An ISO moment as `2026-05-01 00:00` (UTC as stored)."""
    return str(value or "—")[:16].replace("T", " ")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
