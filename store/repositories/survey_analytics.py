"""Survey analytics in SQL: display funnel per persona, answer sufficient statistics, distributions, free text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from store.models import SurveyAnswerRow, SurveyDisplayRow, SurveyResponseRow


@dataclass(frozen=True, slots=True)
class DisplayFunnel:
    triggered: int = 0
    shown: int = 0
    answered: int = 0
    dismissed: int = 0
    partial: int = 0


@dataclass(frozen=True, slots=True)
class AnswerSums:
    """n, Σx, Σx² of a numeric question, and NPS counts (promoters 9–10, detractors 0–6)."""

    n: int = 0
    total: float = 0.0
    sum_squares: float = 0.0
    promoters: int = 0
    detractors: int = 0


@dataclass(frozen=True, slots=True)
class FreeText:
    display_id: str
    survey_id: str
    question_id: str
    persona: str
    user_id: str
    text: str
    answered_at: datetime


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def display_funnel(
    connection: Connection, survey_id: str, start: datetime, end: datetime
) -> dict[str, DisplayFunnel]:
    """Displays triggered in [start, end) per persona: how many were shown, answered, dismissed, left partial."""
    d, r = SurveyDisplayRow, SurveyResponseRow
    rows = connection.execute(
        select(
            d.persona,
            func.count().label("triggered"),
            _count_where(d.status != "pending").label("shown"),
            _count_where(d.status == "answered").label("answered"),
            _count_where(d.status == "dismissed").label("dismissed"),
            _count_where(and_(r.partial.is_(True), d.status != "answered")).label("partial"),
        )
        .select_from(d)
        .outerjoin(r, r.display_id == d.id)
        .where(d.survey_id == survey_id, d.triggered_at >= start, d.triggered_at < end)
        .group_by(d.persona)
    ).mappings()
    return {
        row["persona"]: DisplayFunnel(
            *(int(row[k] or 0) for k in ("triggered", "shown", "answered", "dismissed", "partial"))
        )
        for row in rows
    }


def _answers_in(
    survey_id: str, start: datetime, end: datetime, persona: str | None
) -> list[ColumnElement[bool]]:
    a = SurveyAnswerRow
    conditions: list[ColumnElement[bool]] = [
        a.survey_id == survey_id,
        a.answered_at >= start,
        a.answered_at < end,
    ]
    if persona is not None:
        conditions.append(a.persona == persona)
    return conditions


def numeric_sums(
    connection: Connection, survey_id: str, start: datetime, end: datetime, persona: str | None = None
) -> dict[tuple[str, str], AnswerSums]:
    """(question_id, persona) → sums of the numeric answers given in [start, end)."""
    a = SurveyAnswerRow
    rows = connection.execute(
        select(
            a.question_id, a.persona,
            func.count().label("n"), func.sum(a.value_number).label("total"),
            func.sum(a.value_number * a.value_number).label("sum_squares"),
            _count_where(a.value_number >= 9).label("promoters"),
            _count_where(a.value_number <= 6).label("detractors"),
        )
        .where(a.value_number.is_not(None), *_answers_in(survey_id, start, end, persona))
        .group_by(a.question_id, a.persona)
    ).mappings()  # fmt: skip
    return {
        (row["question_id"], row["persona"]): AnswerSums(
            int(row["n"]), float(row["total"] or 0), float(row["sum_squares"] or 0),
            int(row["promoters"] or 0), int(row["detractors"] or 0),
        )
        for row in rows
    }  # fmt: skip


def respondents(
    connection: Connection, survey_id: str, start: datetime, end: datetime, persona: str | None = None
) -> dict[str, int]:
    """question_id → how many responses answered it in [start, end)."""
    a = SurveyAnswerRow
    rows = connection.execute(
        select(a.question_id, func.count(func.distinct(a.display_id)))
        .where(*_answers_in(survey_id, start, end, persona))
        .group_by(a.question_id)
    ).all()
    return {question_id: int(n) for question_id, n in rows}


def distributions(
    connection: Connection, survey_id: str, start: datetime, end: datetime, persona: str | None = None
) -> dict[str, dict[str, int]]:
    """question_id → answer value → count, for choice and numeric questions (free text excluded)."""
    a = SurveyAnswerRow
    rows = connection.execute(
        select(a.question_id, a.value_text, a.value_number, func.count().label("n"))
        .where(a.question_type != "open_text", *_answers_in(survey_id, start, end, persona))
        .group_by(a.question_id, a.value_text, a.value_number)
    ).mappings()
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        label = row["value_text"] if row["value_text"] is not None else f"{row['value_number']:g}"
        counts.setdefault(row["question_id"], {})[label] = int(row["n"])
    return counts


def free_texts(
    connection: Connection,
    start: datetime,
    end: datetime,
    *,
    survey_id: str | None = None,
    persona: str | None = None,
    question_id: str | None = None,
    contains: str | None = None,
    limit: int = 100,
) -> list[FreeText]:
    """Open-text answers in [start, end), newest first, filtered as asked."""
    a, r = SurveyAnswerRow, SurveyResponseRow
    statement = (
        select(a.display_id, a.survey_id, a.question_id, a.persona, r.user_id, a.value_text, a.answered_at)
        .join(r, r.display_id == a.display_id)
        .where(a.question_type == "open_text", a.answered_at >= start, a.answered_at < end)
        .order_by(a.answered_at.desc(), a.display_id)
        .limit(limit)
    )
    if survey_id is not None:
        statement = statement.where(a.survey_id == survey_id)
    if persona is not None:
        statement = statement.where(a.persona == persona)
    if question_id is not None:
        statement = statement.where(a.question_id == question_id)
    if contains:
        statement = statement.where(func.lower(a.value_text).contains(contains.lower(), autoescape=True))
    return [FreeText(*row) for row in connection.execute(statement).all()]  # type: ignore[arg-type]
