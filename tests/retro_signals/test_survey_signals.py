"""The surveys family on hand-built answers (SQLite and PostgreSQL): agency respondents turn from promoters to
detractors between the baseline week and the sprint week and complain about the export, solo podcasters answer the
same in both weeks. Expected: an NPS (and CSAT) shift for agency only, and an "export" theme with redacted examples.

Baseline week [2026-02-23, 2026-03-02): 30 agency users (24 promoters, 4 passives, 2 detractors, CSAT 5) and 25 solo
users; sprint week [2026-03-02, 2026-03-09): 30 other agency users (6 promoters, 6 passives, 18 detractors, CSAT 2,
ten of them writing about the export) and 25 other solo users answering like the first ones.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from store.database import Database
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.retro.gather import GatherSettings, gather
from tools.retro.signals import detect_signals
from tools.retro.window import sprint_window
from tools.surveys.service import SurveyService

WINDOW = sprint_window(datetime(2026, 3, 2), datetime(2026, 3, 8))
SURVEY = {
    "survey_id": "pulse", "survey_type": "nps", "trigger": "feature_done",
    "questions": [
        {"question_id": "recommend", "type": "nps", "text": "Recommend us?", "required": True},
        {"question_id": "happy", "type": "csat", "text": "Satisfied?", "required": False},
        {"question_id": "why", "type": "open_text", "text": "Why?", "required": False},
    ],
}  # fmt: skip
HAPPY = [10] * 12 + [9] * 12 + [8] * 4 + [3] * 2
UNHAPPY = [10] * 3 + [9] * 3 + [7] * 6 + [2] * 9 + [5] * 9
COMPLAINTS = [
    "The export to PDF broke again, call me on +1 415 555 0100",
    "Export broke for every client report",
    "export is broken, write to jo@example.com",
]


def _answer(service: SurveyService, user: str, at: datetime, answers: dict[str, Any]) -> None:
    decision = service.trigger(user, "feature_done", at=at)
    assert decision.display_id is not None, decision
    service.respond(answers, display_id=decision.display_id, at=at + timedelta(minutes=2))


def _load(database: Database) -> None:
    people = [(f"{persona}-{week}-{i}", persona, week) for persona, count in (("agency", 30), ("solo_podcaster", 25))
              for week in ("before", "during") for i in range(count)]  # fmt: skip
    joined = WINDOW.baseline_start - timedelta(days=30)
    EventIngestor(database).ingest([
        CanonicalEvent(f"id-{user}", "identify", "identify", joined, joined, user_id=user,
                       properties={"persona": persona})
        for user, persona, _ in people
    ])  # fmt: skip
    service = SurveyService(database)
    service.create(SURVEY)
    for index, (user, persona, week) in enumerate(people):
        start = WINDOW.baseline_start if week == "before" else WINDOW.start
        at = start + timedelta(hours=3 + 2 * index % 150)
        number = index % 30 if persona == "agency" else index % 25
        if persona == "agency" and week == "during":
            answers: dict[str, Any] = {"recommend": UNHAPPY[number], "happy": 2}
            if number < 10:
                answers["why"] = COMPLAINTS[number % 3]
        else:
            answers = {"recommend": HAPPY[number], "happy": 5 if number % 3 else 4}
        _answer(service, user, at, answers)


def test_survey_shift_and_theme(database: Database) -> None:
    _load(database)
    settings = GatherSettings()
    with database.read() as connection:
        surveys = gather(connection, "surveys", WINDOW, settings)
    assert json.loads(json.dumps(surveys, allow_nan=False)) == surveys
    assert [item["name"] for item in surveys["items"]] == ["nps", "csat"]
    nps = surveys["items"][0]
    agency = next(s for s in nps["segments"] if s["persona"] == "agency")
    assert (agency["n"], agency["baseline_n"]) == (30, 30)
    assert agency["baseline"] == (24 - 2) / 30 * 100 and agency["value"] == (6 - 18) / 30 * 100
    assert agency["change"] == agency["value"] - agency["baseline"]

    signals = detect_signals({"surveys": surveys}, WINDOW, settings)
    shifts = {(s.metric, s.persona): s for s in signals if s.kind == "survey_shift"}
    assert ("nps", "agency") in shifts and ("csat", "agency") in shifts
    assert not [key for key in shifts if key[1] == "solo_podcaster"]
    shift = shifts[("nps", "agency")]
    assert shift.direction == "worsened" and shift.unit == "nps_points" and shift.quantitative
    assert shift.change == agency["change"] and shift.p_value is not None and shift.p_value < 0.05
    assert shift.facts["ci_high"] < 0  # type: ignore[operator]

    themes = [s for s in signals if s.kind == "survey_theme"]
    assert {s.persona for s in themes} == {"agency"} and len(themes) <= 3
    theme = themes[0]  # the most mentioned first
    assert (theme.facts["theme"], theme.facts["mentions"], theme.facts["comments"]) == ("export", 10, 10)
    assert len(theme.text) == 3 and not theme.quantitative
    assert all("555" not in t and "@" not in t for t in theme.text)
    assert any("[phone]" in t for t in theme.text) or any("[email]" in t for t in theme.text)


def test_no_survey_shift_below_the_survey_minimum(database: Database) -> None:
    _load(database)
    settings = GatherSettings(survey_min_sample=31)
    with database.read() as connection:
        surveys = gather(connection, "surveys", WINDOW, settings)
    assert not [s for s in detect_signals({"surveys": surveys}, WINDOW, settings) if s.kind == "survey_shift"
                and s.persona is not None]  # fmt: skip
