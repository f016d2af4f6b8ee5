"""The dashboard's "Open escalations" panel shows each open escalation with the escalation agent's probable cause
and owner, filtered by persona; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.escalation_triage import run_triage_agent
from feedbackloop.settings import Settings
from store.database import Database
from tests.escalation_triage.planted import CHECK_AT, plant_incident
from tools.window import Window


def _panel_rows(database: Database, settings: Settings, persona: str | None) -> list[dict[str, str]]:
    data = build_dashboard(database, settings, Window.last_days(14, CHECK_AT), persona=persona, now=CHECK_AT)
    panels = [panel for panel in data.panels if panel.title == "Open escalations"]
    return [dict(zip(panel.columns, row, strict=True)) for panel in panels for row in panel.rows]


def test_open_escalations_panel_shows_the_probable_cause_and_owner(
    database: Database, tmp_path: Path
) -> None:
    opened = plant_incident(database)
    route = {"team": "podcasts", "channel": "#podcasts", "persona": "podcast_network"}
    settings = Settings(
        database_url=database.url, tickets_jsonl_path=tmp_path / "backlog.jsonl", escalation_routes=[route]
    )
    before = _panel_rows(database, settings, None)
    assert len(before) == 2 and all(row["Probable cause"] == "not triaged yet" for row in before)
    assert before[0]["Severity"] == "critical"  # most severe first

    run_triage_agent(database, settings, opened, clock=lambda: CHECK_AT + timedelta(minutes=1))
    rows = _panel_rows(database, settings, None)
    assert len(rows) == 2
    for row in rows:
        assert (
            row["Probable cause"].startswith("deployment v1.4.0 (")
            and "triage: rules" in row["Probable cause"]
        )
        assert row["Owner"] == "podcasts (#podcasts)" and row["Personas"] == "podcast_network"
    assert _panel_rows(database, settings, "podcast_network") == rows
    assert _panel_rows(database, settings, "agency") == []  # another persona's dashboard has no such panel

    html = render_dashboard(build_dashboard(database, settings, Window.last_days(14, CHECK_AT), now=CHECK_AT))
    assert "Open escalations" in html and "deployment v1.4.0" in html and "podcasts (#podcasts)" in html
