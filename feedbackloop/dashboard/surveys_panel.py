"""The dashboard's "Surveys" panel: each active survey's response rate and scores over the dashboard window."""

from __future__ import annotations

from feedbackloop.dashboard.data import Panel
from store.database import Database
from tools.surveys.analytics import ScoreSummary, SurveyResults, survey_results
from tools.surveys.service import SurveyService
from tools.window import Window

COLUMNS = ("Survey", "Trigger", "Shown", "Answered", "Response rate (95 % CI)", "Scores (95 % CI, n)")


def surveys_panel(database: Database, window: Window, persona: str | None = None) -> Panel | None:
    """None when no survey was shown in the window (the panel would be empty)."""
    rows = []
    for survey in SurveyService(database).surveys(active_only=True):
        results = survey_results(database, survey, window.start, window.end, persona=persona)
        if results.response_rate.shown:
            rows.append(_row(survey.name, str(survey.trigger), results))
    return Panel("Surveys", COLUMNS, tuple(rows)) if rows else None


def _row(name: str, trigger: str, results: SurveyResults) -> tuple[str, ...]:
    rate = results.response_rate
    interval = f" ({rate.interval[0]:.0%}–{rate.interval[1]:.0%})" if rate.interval else ""
    shown_rate = f"{rate.rate:.0%}{interval}" if rate.rate is not None else "—"
    scores = [
        _score(question.question_id, question.score)
        for question in results.questions
        if question.score is not None and question.score.value is not None
    ]
    return (name, trigger, f"{rate.shown:,}", f"{rate.answered:,}", shown_rate, " · ".join(scores) or "—")


def _score(question_id: str, score: ScoreSummary) -> str:
    assert score.value is not None
    value = f"{score.value:+.0f}" if score.kind == "nps" else f"{score.value:.2f}"
    if score.interval is None:
        return f"{question_id} {value} (n={score.n})"
    low, high = score.interval
    bounds = f"{low:+.0f}…{high:+.0f}" if score.kind == "nps" else f"{low:.2f}…{high:.2f}"
    return f"{question_id} {value} ({bounds}, n={score.n})"
