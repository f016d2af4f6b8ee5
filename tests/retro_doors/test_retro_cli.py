"""`feedbackloop retro …` on SQLite and PostgreSQL: a sprint retro over the synthetic product, its formats, the
approval round trip with `--approve ask` outside a terminal, and refusals that name the option and store nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from feedbackloop.cli import app as cli
from feedbackloop.cli import retro as retro_cli
from store.database import Database
from tests.retro_doors.support import SPRINT_END, SPRINT_START, WIDE, filed_tickets, row_count
from tools.retro.report import markdown_escape

runner = CliRunner()
SPRINT = ["--kind", "sprint", "--start", SPRINT_START, "--end", SPRINT_END, "--sprint-id", "sprint-22"]


def retro(database: Database, *arguments: str) -> Result:
    return runner.invoke(cli, ["retro", *arguments, "--database-url", database.url], env=WIDE)


def as_json(outcome: Result) -> Any:
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout)


def test_sprint_retro_runs_then_shows_in_every_format(product: Database, backlog_file: Path) -> None:
    result = as_json(retro(product, "run", *SPRINT, "--format", "json"))
    assert (
        result["status"] == "completed" and result["kind"] == "sprint" and result["sprint_id"] == "sprint-22"
    )
    assert result["window"]["start"].startswith("2026-05-18") and result["window"]["end"].startswith(
        "2026-06-01"
    )
    assert result["insights"], "the planted error rise should make at least one insight"
    for insight in result["insights"]:
        assert insight["impact"] in ("High", "Medium", "Low") and insight["evidence_ids"]
    retro_id = result["retro_id"]
    filed = [item for item in result["backlog_items"] if item["ticket"]]
    assert len(filed_tickets(backlog_file)) == len(filed)  # approve=auto filed every non-duplicate item

    table = retro(product, "show", retro_id)
    assert table.exit_code == 0, table.output
    assert retro_id in table.output and "completed" in table.output
    for insight in result["insights"]:
        assert insight["title"][:40] in table.output
    for item in filed:
        assert f"jsonl: {item['ticket']['key']}" in table.output

    assert as_json(retro(product, "show", retro_id, "--format", "json")) == result
    markdown = retro(product, "show", retro_id, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    for insight in result["insights"]:
        assert markdown_escape(insight["title"]) in markdown.stdout
    html = retro(product, "show", retro_id, "--format", "html")
    assert html.exit_code == 0 and html.stdout.lstrip().lower().startswith("<!doctype html")

    listed = as_json(retro(product, "list", "--format", "json"))
    assert [(row["id"], row["status"]) for row in listed] == [(retro_id, "completed")]
    assert retro_id in retro(product, "list").output


def test_table_format_prints_insights_backlog_and_status(product: Database) -> None:
    outcome = retro(product, "run", *SPRINT, "--sprint-id", "sprint-table")
    assert outcome.exit_code == 0, outcome.output
    assert "insight" in outcome.output and "backlog item" in outcome.output and "completed" in outcome.output
    markdown = retro(product, "run", *SPRINT, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.lstrip().startswith("#")


def test_approve_ask_outside_a_terminal_waits_then_approve_files(
    product: Database, backlog_file: Path
) -> None:
    waiting = retro(product, "run", *SPRINT, "--approve", "ask", "--format", "json")
    result = as_json(waiting)
    retro_id = result["retro_id"]
    assert result["status"] == "awaiting_approval"
    assert f"feedbackloop retro approve {retro_id}" in waiting.output
    proposed = [item["id"] for item in result["backlog_items"] if not item["duplicate_of"]]
    assert proposed, "the planted error rise should propose a backlog item"
    assert filed_tickets(backlog_file) == []

    unknown = retro(product, "approve", retro_id, "--items", f"{proposed[0]},B999")
    assert unknown.exit_code == 2 and "--items: B999 is not proposed" in unknown.output, unknown.output
    both = retro(product, "approve", retro_id, "--all", "--none")
    assert both.exit_code == 2 and "give exactly one" in both.output
    assert as_json(retro(product, "show", retro_id, "--format", "json"))["status"] == "awaiting_approval"

    approved = as_json(retro(product, "approve", retro_id, "--all", "--format", "json"))
    assert approved["status"] == "completed"
    assert {item["id"] for item in approved["backlog_items"] if item["ticket"]} == set(proposed)
    assert len(filed_tickets(backlog_file)) == len(proposed)

    again = retro(product, "approve", retro_id, "--all")
    assert again.exit_code == 2 and "not awaiting approval" in again.output, again.output
    assert len(filed_tickets(backlog_file)) == len(proposed)


def test_approve_items_files_only_those(product: Database, backlog_file: Path) -> None:
    result = as_json(retro(product, "run", *SPRINT, "--approve", "ask", "--format", "json"))
    first = next(item["id"] for item in result["backlog_items"] if not item["duplicate_of"])
    approved = as_json(retro(product, "approve", result["retro_id"], "--items", first, "--format", "json"))
    assert [item["id"] for item in approved["backlog_items"] if item["ticket"]] == [first]
    assert [ticket["id"] for ticket in filed_tickets(backlog_file)] == [first]


REFUSED: list[tuple[list[str], str]] = [
    (["run", "--kind", "sprint", "--end", SPRINT_END], "--start:"),
    (["run", "--kind", "sprint", "--start", SPRINT_START], "--end:"),
    (["run", "--kind", "sprint", "--start", "2026-05-18", "--end", "2026-05-01"], "--end:"),
    (["run", "--kind", "weekly", "--start", SPRINT_START, "--end", SPRINT_END], "--kind:"),
    (["run", "--kind", "sprint", "--start", "18 May 2026", "--end", SPRINT_END], "--start:"),
    (["run", "--kind", "sprint", "--start", SPRINT_START, "--end", "2026-13-01"], "--end:"),
    (["run", *SPRINT, "--format", "yaml"], "--format:"),
    (["run", *SPRINT, "--approve", "maybe"], "--approve:"),
    (["run", *SPRINT, "--sprint-id", " "], "--sprint-id:"),
    (["run", "--kind", "deployment", "--version", "v9.9.9"], "--version:"),
    (
        ["run", "--kind", "sprint", "--start", SPRINT_START, "--end", SPRINT_END, "--bake-hours", "0"],
        "--bake-hours",
    ),
    (["show", "retro-000000000000"], "does not exist"),
    (["approve", "retro-000000000000", "--all"], "does not exist"),
    (["resume", "retro-000000000000"], "does not exist"),
    (["show", "retro-000000000000", "--format", "pdf"], "--format:"),
]


def test_refusals_exit_2_naming_the_option_and_store_nothing(
    retro_database: Database, backlog_file: Path
) -> None:
    assert row_count(retro_database, "retros") == 0
    for arguments, fragment in REFUSED:
        outcome = retro(retro_database, *arguments)
        assert outcome.exit_code == 2, (arguments, outcome.output)
        assert fragment in outcome.output, (arguments, outcome.output)
    assert row_count(retro_database, "retros") == 0
    assert filed_tickets(backlog_file) == []


def test_show_of_a_retro_without_result_and_list_when_empty(retro_database: Database) -> None:
    from feedbackloop.retro_agent import retro_runner
    from feedbackloop.settings import get_settings

    assert as_json(retro(retro_database, "list", "--format", "json")) == []
    started = retro_runner(retro_database.url, settings=get_settings()).start(
        {"kind": "sprint", "start": SPRINT_START, "end": SPRINT_END, "approve": "auto"}
    )
    assert as_json(retro(retro_database, "show", started, "--format", "json"))["status"] == "running"
    report = retro(retro_database, "show", started, "--format", "markdown")
    assert report.exit_code == 2 and "is running" in report.output
    approve = retro(retro_database, "approve", started, "--all")
    assert approve.exit_code == 2 and "not awaiting approval" in approve.output


def test_approve_ask_on_a_terminal_asks_which_items_to_file(
    product: Database, backlog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retro_cli, "interactive", lambda: True)
    outcome = runner.invoke(
        cli,
        ["retro", "run", *SPRINT, "--approve", "ask", "--database-url", product.url],
        env=WIDE,
        input="B9\nB1\n",
    )
    assert outcome.exit_code == 0, outcome.output
    assert "File which items?" in outcome.output and "B9 is not proposed" in outcome.output
    assert "completed" in outcome.output
    assert [ticket["id"] for ticket in filed_tickets(backlog_file)] == ["B1"]


def test_a_deployment_retro_compares_the_bake_hours_around_the_release(product: Database) -> None:
    arguments = [
        "run",
        "--kind",
        "deployment",
        "--version",
        "v1.4.0",
        "--bake-hours",
        "72",
        "--format",
        "json",
    ]
    result = as_json(retro(product, *arguments))
    assert (result["status"], result["kind"], result["version"]) == ("completed", "deployment", "v1.4.0")
    assert result["window"]["start"].startswith("2026-05-24T10:00") and result["window"]["end"].startswith(
        "2026-05-27T10:00"
    )
    assert any(signal["kind"] == "deployment" for signal in result["signals"])
