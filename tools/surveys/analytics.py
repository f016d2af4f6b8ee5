"""Survey results: response rates per persona, NPS/CSAT/CES and ratings with intervals, answer distributions,
and free text (redacted of PII when it is exported to an LLM). Sums come from SQL, intervals from tools.stats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from store.database import Database
from store.repositories import survey_analytics as sql
from tools.stats.intervals import mean_interval, proportion_interval
from tools.surveys.model import SCALES, QuestionType, Survey
from tools.surveys.redaction import redact_pii


@dataclass(frozen=True, slots=True)
class RateSummary:
    shown: int
    answered: int
    rate: float | None
    interval: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """A numeric question: mean (or NPS for nps questions, −100…100) with a 95 % interval and n."""

    n: int
    value: float | None
    interval: tuple[float, float] | None
    kind: str  # mean | nps
    promoters: int = 0
    detractors: int = 0


@dataclass(frozen=True, slots=True)
class QuestionResults:
    question_id: str
    text: str
    type: str
    answered: int
    distribution: dict[str, int]
    score: ScoreSummary | None = None
    score_by_persona: dict[str, ScoreSummary] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SurveyResults:
    survey_id: str
    start: datetime
    end: datetime
    persona: str | None
    displays: dict[str, int]
    response_rate: RateSummary
    response_rate_by_persona: dict[str, RateSummary]
    questions: list[QuestionResults]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data


def _rate(funnel: sql.DisplayFunnel) -> RateSummary:
    rate = funnel.answered / funnel.shown if funnel.shown else None
    return RateSummary(
        funnel.shown, funnel.answered, rate, proportion_interval(funnel.answered, funnel.shown)
    )


def score(question_type: str, sums: sql.AnswerSums) -> ScoreSummary:
    """NPS as 100 × mean of +1 (promoter) / 0 / −1 (detractor), whose t-interval is the NPS interval.

    Intervals are clipped to what the scale can hold (−100…100 for NPS, the question's scale otherwise): with a
    handful of answers a t-interval reaches past it, and a score of 320 means nothing to anyone.
    """
    if question_type == QuestionType.NPS:
        net = sums.promoters - sums.detractors
        interval = mean_interval(sums.n, net, sums.promoters + sums.detractors)
        value = 100.0 * net / sums.n if sums.n else None
        scaled = _clip((100.0 * interval[0], 100.0 * interval[1]), (-100, 100)) if interval else None
        return ScoreSummary(sums.n, value, scaled, "nps", sums.promoters, sums.detractors)
    mean = sums.total / sums.n if sums.n else None
    interval = mean_interval(sums.n, sums.total, sums.sum_squares)
    bounds = SCALES.get(question_type)
    return ScoreSummary(sums.n, mean, _clip(interval, bounds) if interval and bounds else interval, "mean")


def _clip(interval: tuple[float, float], bounds: tuple[int, int]) -> tuple[float, float]:
    low, high = bounds
    return max(float(low), interval[0]), min(float(high), interval[1])


def _total(parts: list[sql.AnswerSums]) -> sql.AnswerSums:
    return sql.AnswerSums(
        sum(p.n for p in parts), sum(p.total for p in parts), sum(p.sum_squares for p in parts),
        sum(p.promoters for p in parts), sum(p.detractors for p in parts),
    )  # fmt: skip


def _funnel_total(parts: list[sql.DisplayFunnel]) -> sql.DisplayFunnel:
    return sql.DisplayFunnel(*(sum(getattr(p, name) for p in parts) for name in sql.DisplayFunnel.__slots__))


def survey_results(
    database: Database, survey: Survey, start: datetime, end: datetime, *, persona: str | None = None
) -> SurveyResults:
    with database.read() as connection:
        funnels = sql.display_funnel(connection, survey.survey_id, start, end)
        sums = sql.numeric_sums(connection, survey.survey_id, start, end, persona)
        counts = sql.distributions(connection, survey.survey_id, start, end, persona)
        answering = sql.respondents(connection, survey.survey_id, start, end, persona)
    if persona is not None:
        funnels = {persona: funnels.get(persona, sql.DisplayFunnel())}
    overall = _funnel_total(list(funnels.values()))
    questions = []
    for question in survey.questions:
        per_persona = {p: s for (qid, p), s in sums.items() if qid == question.question_id}
        summary = score(question.type, _total(list(per_persona.values()))) if question.scale else None
        distribution = _ordered(question.options, counts.get(question.question_id, {}), question.scale)
        answered = answering.get(question.question_id, 0)
        questions.append(QuestionResults(
            question.question_id, question.text, question.type, answered, distribution, summary,
            {p: score(question.type, s) for p, s in sorted(per_persona.items())},
        ))  # fmt: skip
    return SurveyResults(
        survey.survey_id, start, end, persona, asdict(overall), _rate(overall),
        {p: _rate(f) for p, f in sorted(funnels.items())}, questions,
    )  # fmt: skip


def _ordered(options: list[str], counts: Mapping[str, int], scale: tuple[int, int] | None) -> dict[str, int]:
    """Every option (or scale point) in definition order, zeros included, so charts do not hide empty answers."""
    if options:
        return {option: counts.get(option, 0) for option in options}
    if scale is not None:
        return {str(v): counts.get(str(v), 0) for v in range(scale[0], scale[1] + 1)}
    return dict(counts)


def free_text_answers(
    database: Database,
    start: datetime,
    end: datetime,
    *,
    survey_id: str | None = None,
    persona: str | None = None,
    question_id: str | None = None,
    contains: str | None = None,
    limit: int = 100,
    redact: bool = False,
) -> list[dict[str, Any]]:
    """Open-text answers, newest first; `redact=True` for anything that leaves for an LLM."""
    with database.read() as connection:
        rows = sql.free_texts(
            connection, start, end, survey_id=survey_id, persona=persona, question_id=question_id,
            contains=contains, limit=limit,
        )  # fmt: skip
    return [
        asdict(row)
        | {"text": redact_pii(row.text) if redact else row.text, "answered_at": row.answered_at.isoformat()}
        for row in rows
    ]
