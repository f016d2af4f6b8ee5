"""The surveys family: NPS, CSAT, CES and rating answers per persona in the window vs its baseline (sums in SQL,
scores by tools.surveys.analytics, tests by tools.stats), and the newest free-text answers, PII-redacted.

Shape (see tools.retro.gathered for a comparison record):

    {"items": [{"name": "nps" | "csat" | "ces" | <rating metric>, "question_type": str, "unit": str,
                "higher_is_better": True, "segments": [comparison, …]  (everyone first)}],
     "comments": [{"persona": str, "texts": [{"text": redacted str, "answered_at": iso, "survey_id": str}]}]}

NPS, CSAT and CES pool every question of that type across surveys; a rating question is its own measure, named
by its `metric` (or "<survey_id>.<question_id>"). NPS is tested as the mean of a per-answer score (+1 promoter,
0 passive, −1 detractor; NPS = 100 × that mean): Welch's t-test on that score compares the two windows with the
trinomial variance of NPS, and its difference × 100 is the change in NPS points (an "absolute" comparison). The
other measures are means on their scale, compared relatively. CES is asked as "how easy was it", so higher is
better for every measure here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from store.repositories import survey_analytics as survey_sql
from store.repositories.kpis import personas_with_users
from store.repositories.surveys import survey_rows
from tools.retro.gathered import Comparison, current_window, iso, side, statistic, wanted
from tools.retro.model import RetroWindow
from tools.stats import AnalysisSettings, compare
from tools.surveys.analytics import score
from tools.surveys.model import SCALES, QuestionType, survey_from_stored
from tools.surveys.redaction import redact_pii

if TYPE_CHECKING:
    from tools.retro.gather import GatherSettings

POOLED_TYPES = (QuestionType.NPS.value, QuestionType.CSAT.value, QuestionType.CES.value)
NPS_POINTS_PER_SCORE = 100.0


@dataclass
class _Measure:
    name: str
    question_type: str
    questions: set[tuple[str, str]] = field(default_factory=set)  # (survey_id, question_id)


def surveys(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    span = current_window(window)
    measures = _measures(connection)
    survey_ids = sorted({survey_id for m in measures for survey_id, _ in m.questions})
    now = {s: survey_sql.numeric_sums(connection, s, span.start, span.end) for s in survey_ids}
    before = {
        s: survey_sql.numeric_sums(connection, s, window.baseline_start, window.baseline_end)
        for s in survey_ids
    }
    items = []
    for measure in measures:
        current, previous = _pooled(measure, now), _pooled(measure, before)
        personas = sorted({p for p in (*current, *previous) if p is not None})
        segments = [
            _record(
                measure.question_type, persona, current.get(persona), previous.get(persona), settings.alpha
            )
            for persona in [None, *personas]
            if wanted(persona, settings.personas)
        ]
        items.append({
            "name": measure.name, "question_type": measure.question_type, "unit": _unit(measure.question_type),
            "higher_is_better": True, "segments": segments,
        })  # fmt: skip
    return {"items": items, "comments": _comments(connection, span.start, span.end, settings)}


def _unit(question_type: str) -> str:
    """ "nps" (−100…100), else the type and its scale: "csat_1_5", "ces_1_7", "rating_1_5"."""
    if question_type == QuestionType.NPS:
        return "nps"
    low, high = SCALES[question_type]
    return f"{question_type}_{low}_{high}"


def _measures(connection: Connection) -> list[_Measure]:
    """Numeric questions of every survey, grouped into measures, in a stable order (pooled types first)."""
    found: dict[str, _Measure] = {}
    for row in survey_rows(connection):
        survey = survey_from_stored(dict(row["definition"]))
        for question in survey.questions:
            if question.type not in SCALES:
                continue
            pooled = question.type in POOLED_TYPES
            name = (
                question.type if pooled else (question.metric or f"{survey.survey_id}.{question.question_id}")
            )
            measure = found.setdefault(name, _Measure(name, question.type))
            measure.questions.add((survey.survey_id, question.question_id))
    order = {kind: i for i, kind in enumerate(POOLED_TYPES)}
    return sorted(found.values(), key=lambda m: (order.get(m.name, len(order)), m.name))


def _pooled(
    measure: _Measure, sums: dict[str, dict[tuple[str, str], survey_sql.AnswerSums]]
) -> dict[str | None, survey_sql.AnswerSums]:
    """Per persona (and None: everyone) the answer sums of the measure's questions, added up."""
    totals: dict[str | None, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0])
    for survey_id, question_id in measure.questions:
        for (found_question, persona), part in sums.get(survey_id, {}).items():
            if found_question != question_id:
                continue
            for key in (persona, None):
                total = totals[key]
                total[0] += part.n
                total[1] += part.total
                total[2] += part.sum_squares
                total[3] += part.promoters
                total[4] += part.detractors
    return {
        key: survey_sql.AnswerSums(int(t[0]), t[1], t[2], int(t[3]), int(t[4])) for key, t in totals.items()
    }


def _record(
    question_type: str,
    persona: str | None,
    now: survey_sql.AnswerSums | None,
    before: survey_sql.AnswerSums | None,
    alpha: float,
) -> dict[str, Any]:
    now, before = now or survey_sql.AnswerSums(), before or survey_sql.AnswerSums()
    current, previous = score(question_type, now), score(question_type, before)
    nps = question_type == QuestionType.NPS
    sides = [_side(sums, nps) for sums in (now, before)]
    change = p_value = None
    if current.value is not None and previous.value is not None:
        change = current.value - previous.value if nps else _relative(current.value, previous.value)
    statistics = [statistic(s) for s in sides]
    if statistics[0] is not None and statistics[1] is not None and now.n > 1 and before.n > 1:
        settings = AnalysisSettings(alpha=alpha, difference="absolute" if nps else "relative")
        p_value = compare(statistics[1], [statistics[0]], settings)[0].p_value
    return Comparison(
        persona=persona, value=current.value, baseline=previous.value, n=now.n, baseline_n=before.n,
        change=change, p_value=p_value, current=sides[0], previous=sides[1], value_ci=current.interval,
        difference="absolute" if nps else "relative", scale=NPS_POINTS_PER_SCORE if nps else 1.0,
    ).record()  # fmt: skip


def _side(sums: survey_sql.AnswerSums, nps: bool) -> dict[str, Any] | None:
    if nps:  # the per-answer score s ∈ {−1, 0, +1}: Σs = promoters − detractors, Σs² = promoters + detractors
        return side(
            sums.n, sums.promoters - sums.detractors, sums.promoters + sums.detractors, binomial=False
        )
    return side(sums.n, sums.total, sums.sum_squares, binomial=False)


def _relative(value: float, baseline: float) -> float | None:
    return value / baseline - 1 if baseline else None


def _comments(
    connection: Connection, start: datetime, end: datetime, settings: GatherSettings
) -> list[dict[str, Any]]:
    """The newest free-text answers per persona, redacted of e-mail addresses and phone numbers (untrusted text)."""
    comments = []
    for persona in personas_with_users(connection):
        if not wanted(persona, settings.personas):
            continue
        rows = survey_sql.free_texts(
            connection, start, end, persona=persona, limit=settings.comments_per_persona
        )
        if rows:
            texts = [
                {
                    "text": redact_pii(row.text),
                    "answered_at": iso(row.answered_at),
                    "survey_id": row.survey_id,
                }
                for row in rows
            ]
            comments.append({"persona": persona, "texts": texts})
    return comments
