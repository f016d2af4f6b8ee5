"""The demo's retro part: a sprint retro over the last 14 days of the data, as a team would run after a sprint,
with its insights, the evidence they cite and the backlog items filed to a JSON lines file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from feedbackloop.retro_agent import retro_runner
from feedbackloop.settings import Settings
from store.database import Database
from tools.retro.model import Signal
from tools.retro.numbers import change_is_relative, format_change, format_number
from tools.tickets.jsonl import JsonlTicketSink

SPRINT_DAYS = 14
IMPACT_STYLE = {"High": "bold red", "Medium": "yellow", "Low": "dim"}


def run_demo_retro(
    database_url: str, *, database: Database, end: datetime, backlog_file: Path
) -> dict[str, Any]:
    """The last sprint's retro, rules synthesis unless an LLM is configured, filing to `backlog_file` (fresh)."""
    backlog_file.unlink(missing_ok=True)
    settings = Settings(database_url=database_url)
    runner = retro_runner(database=database, settings=settings, sinks=[JsonlTicketSink(backlog_file)])
    start = end - timedelta(days=SPRINT_DAYS)
    retro_id = runner.start(
        {"kind": "sprint", "start": start.isoformat(), "end": end.isoformat(), "sprint_id": "demo-sprint",
         "approve": "auto"}
    )  # fmt: skip
    return runner.run(retro_id)


def print_retro(console: Console, result: Mapping[str, Any], backlog_file: Path) -> None:
    window = result["window"]
    console.print(
        f"\n[bold]Sprint retro[/] {result['retro_id']} over {window['start'][:10]} → {window['end'][:10]} "
        f"(baseline: the 14 days before; synthesis: {result['synthesis']}); "
        f"{len(result['signals'])} signals, {len(result['insights'])} insights"
    )
    signals = {signal["id"]: signal for signal in result["signals"]}
    insights = Table(
        "impact", "insight", "journey stage", "evidence", title="Insights (every number from a tool)"
    )
    for insight in result["insights"]:
        style = IMPACT_STYLE.get(insight["impact"], "")
        evidence = ", ".join(_evidence(signals.get(i), i) for i in insight["evidence_ids"])
        insights.add_row(
            f"[{style}]{insight['impact']}[/]", insight["title"], insight["journey_stage"], evidence
        )
    console.print(insights)
    backlog = Table("id", "backlog item", "RICE", "ticket", title=f"Backlog items filed to {backlog_file}")
    for item in result["backlog_items"]:
        ticket = item.get("ticket")
        where = f"{ticket['sink']} #{ticket['key']}" if ticket else f"duplicate of {item.get('duplicate_of')}"
        backlog.add_row(item["id"], item["title"], format_number(item["priority"]["score"]), where)
    console.print(backlog)
    for warning in result.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {warning}")


def _evidence(signal: Mapping[str, Any] | None, signal_id: str) -> str:
    if signal is None:
        return signal_id
    subject = signal.get("metric") or signal.get("subject") or signal["kind"]
    persona = f"/{signal['persona']}" if signal.get("persona") else ""
    relative = change_is_relative(Signal.from_dict(dict(signal)))  # NPS moves in points, not percent
    change = format_change(signal.get("change"), relative=relative)
    if change is not None and not relative:
        change += f" {signal.get('unit') or ''}".rstrip()
    return f"{signal_id} {subject}{persona}" + (f" {change}" if change else "")
