"""The demo's survey part: simulated respondents, then results, NPS around the planted deployment, comments."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from store.database import Database
from store.repositories.kpis import NpsCounts, nps_answers
from store.repositories.survey_analytics import AnswerSums
from tools.surveys.analytics import ScoreSummary, free_text_answers, score, survey_results
from tools.surveys.demo_responses import Regression, RespondentSummary, pending_count, simulate_respondents
from tools.surveys.service import SurveyService

NPS_WINDOW_DAYS = 14


def answer_surveys(
    database: Database, progress: Progress, *, until: datetime, regression: Regression | None, seed: int
) -> RespondentSummary:
    service = SurveyService(database)
    task = progress.add_task("surveys: users answering", total=pending_count(service, until))
    return simulate_respondents(
        service, until=until, regression=regression, seed=seed, on_display=lambda: progress.advance(task)
    )


def print_surveys(
    console: Console, database: Database, *, start: datetime, end: datetime, regression: Regression | None
) -> None:
    service = SurveyService(database)
    table = Table(
        "survey", "trigger", "displays", "shown", "answered", "response rate (95 % CI)", "NPS (n)",
        title=f"Surveys, {start:%Y-%m-%d} → {end:%Y-%m-%d}",
    )  # fmt: skip
    for survey in service.surveys():
        results = survey_results(database, survey, start, end)
        rate = results.response_rate
        interval = f" ({rate.interval[0]:.0%}–{rate.interval[1]:.0%})" if rate.interval else ""
        nps = next((q.score for q in results.questions if q.type == "nps" and q.score), None)
        table.add_row(
            survey.survey_id, str(survey.trigger), f"{results.displays['triggered']:,}", f"{rate.shown:,}",
            f"{rate.answered:,}", f"{rate.rate:.0%}{interval}" if rate.rate is not None else "n/a",
            _nps_text(nps),
        )  # fmt: skip
    console.print()
    console.print(table)
    if regression is not None:
        console.print(_nps_around(database, regression))
        _print_comments(console, database, regression, end)


def _nps_around(database: Database, regression: Regression) -> Table:
    window = timedelta(days=NPS_WINDOW_DAYS)
    with database.read() as connection:
        before = nps_answers(connection, regression.since - window, regression.since)
        after = nps_answers(connection, regression.since, regression.since + window)
    table = Table(
        "persona", f"NPS {NPS_WINDOW_DAYS} d before (n)", f"{NPS_WINDOW_DAYS} d after (n)", "change",
        title=f"NPS by persona around the deployment at {regression.since:%Y-%m-%d %H:%M} UTC (all surveys)",
    )  # fmt: skip
    for persona in sorted(set(before.personas) | set(after.personas)):
        old, new = (_score(part.personas.get(persona)) for part in (before, after))
        change = f"{new.value - old.value:+.0f}" if old.value is not None and new.value is not None else "n/a"
        table.add_row(persona, _nps_text(old), _nps_text(new), change)
    return table


def _score(counts: NpsCounts | None) -> ScoreSummary:
    if counts is None:
        return score("nps", AnswerSums())
    return score(
        "nps", AnswerSums(n=counts.answered, promoters=counts.promoters, detractors=counts.detractors)
    )


def _nps_text(summary: ScoreSummary | None) -> str:
    if summary is None or summary.value is None:
        return "n/a"
    interval = f" [{summary.interval[0]:+.0f}, {summary.interval[1]:+.0f}]" if summary.interval else ""
    return f"{summary.value:+.0f}{interval} ({summary.n})"


def _print_comments(console: Console, database: Database, regression: Regression, end: datetime) -> None:
    comments = free_text_answers(
        database, regression.since, end, persona=regression.persona, limit=4, redact=True
    )
    if not comments:
        return
    console.print(
        f"\nLatest {regression.persona} comments since then (as the agents see them, PII redacted):"
    )
    for comment in comments:
        console.print(
            f"  {comment['answered_at'][:10]}  [italic]{comment['text']}[/]  ({comment['survey_id']})"
        )
