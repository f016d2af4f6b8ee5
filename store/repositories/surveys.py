"""Surveys, their displays to users, responses and flattened answers.

A display row is written for every survey put in front of (or queued for) a user, so every fatigue rule is a
question about that user's display rows, answered by one indexed query. A response is keyed by its display, so
a retried or concurrent submission of the same display stores one response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, case, delete, func, insert, select, update

from store.models import SurveyAnswerRow, SurveyDisplayRow, SurveyResponseRow, SurveyRow


def insert_survey(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(SurveyRow).values(**values))


def update_survey(connection: Connection, survey_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(SurveyRow).where(SurveyRow.id == survey_id).values(**values))


def delete_survey(connection: Connection, survey_id: str) -> None:
    # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with PRAGMA foreign_keys on.
    displays = select(SurveyDisplayRow.id).where(SurveyDisplayRow.survey_id == survey_id)
    connection.execute(delete(SurveyAnswerRow).where(SurveyAnswerRow.display_id.in_(displays)))
    connection.execute(delete(SurveyResponseRow).where(SurveyResponseRow.display_id.in_(displays)))
    connection.execute(delete(SurveyDisplayRow).where(SurveyDisplayRow.survey_id == survey_id))
    connection.execute(delete(SurveyRow).where(SurveyRow.id == survey_id))


def survey_row(connection: Connection, survey_id: str) -> RowMapping | None:
    return (
        connection.execute(select(SurveyRow.__table__).where(SurveyRow.id == survey_id))
        .mappings()
        .one_or_none()
    )


def survey_rows(connection: Connection, *, active_only: bool = False) -> list[RowMapping]:
    statement = select(SurveyRow.__table__).order_by(SurveyRow.created_at, SurveyRow.id)
    if active_only:
        statement = statement.where(SurveyRow.active.is_(True))
    return list(connection.execute(statement).mappings())


def survey_count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(SurveyRow)).scalar_one())


def history_rows(connection: Connection, user_id: str, survey_id: str) -> dict[bool, RowMapping]:
    """The user's displays summarised in two rows: this survey (True) and every other survey (False).

    A display's "seen" time is when it was shown, or, while pending, when it becomes due: a queued survey
    blocks other surveys as if it had been shown, so two never queue up for one user.
    """
    d = SurveyDisplayRow
    is_this = (d.survey_id == survey_id).label("is_this")
    rows = connection.execute(
        select(
            is_this,
            func.count().label("displays"),
            func.max(func.coalesce(d.shown_at, d.show_after)).label("last_seen"),
            func.sum(case((d.status == "answered", 1), else_=0)).label("answered"),
        )
        .where(d.user_id == user_id)
        .group_by(is_this)
    ).mappings()
    return {bool(row["is_this"]): row for row in rows}


def pending_display_id(connection: Connection, user_id: str, survey_id: str) -> str | None:
    d = SurveyDisplayRow
    return connection.execute(
        select(d.id)
        .where(d.user_id == user_id, d.survey_id == survey_id, d.status == "pending")
        .order_by(d.show_after.desc())
        .limit(1)
    ).scalar_one_or_none()


def answered_count(connection: Connection, survey_id: str) -> int:
    d = SurveyDisplayRow
    statement = select(func.count()).where(d.survey_id == survey_id, d.status == "answered")
    return int(connection.execute(statement).scalar_one())


def insert_display(connection: Connection, values: Mapping[str, Any]) -> bool:
    """Insert unless a display with this id exists (a replayed trigger); True when a row was written."""
    if display_row(connection, str(values["id"])) is not None:
        return False
    connection.execute(insert(SurveyDisplayRow).values(**values))
    return True


def display_row(connection: Connection, display_id: str, *, for_update: bool = False) -> RowMapping | None:
    statement = select(SurveyDisplayRow.__table__).where(SurveyDisplayRow.id == display_id)
    if for_update and connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    return connection.execute(statement).mappings().one_or_none()


def latest_display_id(connection: Connection, user_id: str, survey_id: str) -> str | None:
    """The user's most recent display of the survey that is still open, else the most recent of any status."""
    d = SurveyDisplayRow
    open_first = case((d.status.in_(("pending", "shown")), 0), else_=1)
    return connection.execute(
        select(d.id)
        .where(d.user_id == user_id, d.survey_id == survey_id)
        .order_by(open_first, d.triggered_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def update_display(connection: Connection, display_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(SurveyDisplayRow).where(SurveyDisplayRow.id == display_id).values(**values))


def due_displays(
    connection: Connection, user_id: str, at: datetime, not_before: datetime
) -> list[RowMapping]:
    """Displays queued for the user that are due at `at` and were triggered after `not_before`."""
    d = SurveyDisplayRow
    return list(
        connection.execute(
            select(d.__table__)
            .where(
                d.user_id == user_id, d.status == "pending", d.show_after <= at, d.triggered_at >= not_before
            )
            .order_by(d.show_after, d.id)
        ).mappings()
    )


def response_row(connection: Connection, display_id: str) -> RowMapping | None:
    statement = select(SurveyResponseRow.__table__).where(SurveyResponseRow.display_id == display_id)
    return connection.execute(statement).mappings().one_or_none()


def save_response(connection: Connection, values: Mapping[str, Any], *, exists: bool) -> None:
    if exists:
        changes = {k: v for k, v in values.items() if k not in {"display_id", "submitted_at"}}
        connection.execute(
            update(SurveyResponseRow)
            .where(SurveyResponseRow.display_id == values["display_id"])
            .values(**changes)
        )
    else:
        connection.execute(insert(SurveyResponseRow).values(**values))


def insert_answers(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        connection.execute(insert(SurveyAnswerRow), list(rows))
