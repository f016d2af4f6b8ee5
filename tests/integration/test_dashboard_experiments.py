"""The dashboard lists running experiments with their split and current verdict (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.settings import Settings
from store.database import Database
from tools.events.ingest import EventIngestor
from tools.experiments.demo_traffic import TrafficPlan, run_experiments
from tools.experiments.service import ExperimentService
from tools.window import Window

FIRST_DAY = datetime(2026, 9, 1, tzinfo=UTC)


def test_running_experiments_panel_shows_split_and_verdict(database: Database) -> None:
    clock = [FIRST_DAY]
    service = ExperimentService(database, clock=lambda: clock[0])
    run_experiments(service, EventIngestor(database), TrafficPlan(first_day=FIRST_DAY, days=10), clock)
    service.stop("pricing-annual-first", "keep_control", "no lift")  # stopped experiments leave the panel
    end = FIRST_DAY + timedelta(days=14)
    data = build_dashboard(database, Settings(database_url=database.url), Window.last_days(14, end), now=end)
    [panel] = data.panels
    assert panel.title == "Running experiments"
    [row] = panel.rows
    cells = dict(zip(panel.columns, row, strict=True))
    counts = service.assign_many("onboarding-flow", [f"trial-7-0-{i}" for i in range(100)])
    assert {a.first_exposure for a in counts} == {False}  # the panel's analysis assigned no one
    assert cells["Experiment"] == "Guided onboarding (onboarding-flow)"
    assert cells["Status"] == "running"
    assert cells["Primary metric"] == "completion_rate"
    assert cells["Best variant vs control"].startswith("guided: +")
    assert cells["Verdict"] == "Winner: guided"
    standard, guided = (
        int(part.split()[-1].replace(",", "")) for part in cells["Users per variant"].split(" · ")
    )
    assert standard + guided == 1_000
    assert "Running experiments" in render_dashboard(data)


def test_no_panel_without_live_experiments(database: Database) -> None:
    data = build_dashboard(database, Settings(database_url=database.url), Window.last_days(7, FIRST_DAY))
    assert data.panels == []
