"""The dashboard's Surveys panel: response rate and scores with intervals per active survey (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.settings import Settings
from store.database import Database
from tools.surveys.service import SurveyService
from tools.users import User
from tools.window import Window

START = datetime(2026, 10, 1, tzinfo=UTC)
NPS_SCORES = [10, 9, 9, 10, 9, 7, 8, 8, 3, 6]  # 5 promoters, 3 passives, 2 detractors → NPS +30


def _answer_time_to_value(service: SurveyService) -> None:
    for index, score in enumerate(NPS_SCORES):
        persona = "agency" if index % 2 else "podcast_network"
        at = START + timedelta(hours=index)
        decision = service.trigger(User(f"u{index}", persona_segment=persona), "value_delivered", at=at)
        assert decision.status == "shown"
        answers = {
            "time_to_value": "<15 minutes",
            "ease_of_setup": "Easy",
            "value_perceived": "Yes, some value",
        }
        service.respond(
            answers | {"nps": score}, display_id=decision.display_id, at=at + timedelta(minutes=1)
        )
    ignored = service.trigger(User("u-ignores", persona_segment="agency"), "value_delivered", at=START)
    service.dismiss(str(ignored.display_id), at=START + timedelta(minutes=1))


def test_surveys_panel_shows_rates_and_scores(database: Database) -> None:
    service = SurveyService(database)
    service.ensure_defaults()
    _answer_time_to_value(service)
    window = Window(START, START + timedelta(days=7))
    data = build_dashboard(database, Settings(database_url=database.url), window, now=window.end)
    [panel] = [p for p in data.panels if p.title == "Surveys"]
    [row] = panel.rows  # only the survey shown in the window
    cells = dict(zip(panel.columns, row, strict=True))
    assert (cells["Survey"], cells["Trigger"], cells["Shown"], cells["Answered"]) == (
        "Time to value", "value_delivered", "11", "10",
    )  # fmt: skip
    assert cells["Response rate (95 % CI)"].startswith("91% (")
    assert cells["Scores (95 % CI, n)"].startswith("nps +30 (") and cells["Scores (95 % CI, n)"].endswith(
        "n=10)"
    )
    assert "Surveys" in render_dashboard(data)

    networks = build_dashboard(
        database, Settings(database_url=database.url), window, persona="podcast_network"
    )
    [row] = next(p for p in networks.panels if p.title == "Surveys").rows
    # podcast_network answered the even-indexed scores: 10, 9, 9, 3, 8 → 3 promoters, 1 detractor of 5 → +40
    assert row[2:4] == ("5", "5") and row[5].startswith("nps +40 (")


def test_no_surveys_panel_without_displays(database: Database) -> None:
    SurveyService(database).ensure_defaults()
    data = build_dashboard(
        database, Settings(database_url=database.url), Window(START, START + timedelta(days=7))
    )
    assert [p.title for p in data.panels] == []
