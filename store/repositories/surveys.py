"""Surveys, their displays to users, responses and flattened answers.

A display row is written for every survey put in front of (or queued for) a user, so every fatigue rule is a
question about that user's display rows, answered by one indexed query. A response is keyed by its display, so
a retried or concurrent submission of the same display stores one response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, case, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from store.models import EventRow, SurveyAnswerRow, SurveyDisplayRow, SurveyResponseRow, SurveyRow, UserRow


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


# Key class of the per-user trigger locks: the two-int4 advisory key space, apart from the migration's bigint key.
USER_TRIGGER_LOCK_CLASS = 0x5355


def lock_user_triggers(connection: Connection, user_id: str) -> None:
    """Serialise trigger evaluations of one user until the transaction ends, so two concurrent triggers cannot
    both read an empty history and both record a display (PostgreSQL; SQLite's write transaction already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(func.pg_advisory_xact_lock(USER_TRIGGER_LOCK_CLASS, func.hashtext(user_id)))
        )


def lock_users_triggers(connection: Connection, user_ids: Sequence[str]) -> None:
    """The same locks for every user of an ingested chunk, in one statement and in hash order (so two chunks
    always take them in the same order); a host app's trigger for one of these users waits for the chunk."""
    if connection.dialect.name == "postgresql" and user_ids:
        connection.execute(
            text(
                "SELECT pg_advisory_xact_lock(:lock_class, hashtext(u)) "
                "FROM (SELECT DISTINCT unnest(CAST(:users AS text[])) AS u) AS locked ORDER BY hashtext(u)"
            ),
            {"lock_class": USER_TRIGGER_LOCK_CLASS, "users": sorted(set(user_ids))},
        ).all()


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
    """Displays queued for the user that are due at `at` and became due at or after `not_before`.

    Expiry counts from the due time, not the trigger: a survey delayed longer than the expiry is still offered.
    """
    d = SurveyDisplayRow
    return list(
        connection.execute(
            select(d.__table__)
            .where(
                d.user_id == user_id, d.status == "pending", d.show_after <= at, d.show_after >= not_before
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


# ---- set-based reads and writes for trigger evaluation over a chunk of ingested events ----------------------

IN_LIST_CHUNK = 1_000  # ids per IN (...) list: keeps statements well under both databases' parameter limits


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + IN_LIST_CHUNK] for i in range(0, len(ids), IN_LIST_CHUNK)]


def display_ledger_rows(connection: Connection, user_ids: Sequence[str]) -> list[RowMapping]:
    """Every display of these users, with its "seen" time (shown, or due while pending)."""
    d = SurveyDisplayRow
    rows: list[RowMapping] = []
    for chunk in _chunks(sorted(set(user_ids))):
        rows.extend(
            connection.execute(
                select(
                    d.user_id,
                    d.id,
                    d.survey_id,
                    d.status,
                    func.coalesce(d.shown_at, d.show_after).label("seen_at"),
                ).where(d.user_id.in_(chunk))
            ).mappings()
        )
    return rows


def answered_counts(connection: Connection, survey_ids: Sequence[str]) -> dict[str, int]:
    if not survey_ids:
        return {}
    d = SurveyDisplayRow
    rows = connection.execute(
        select(d.survey_id, func.count())
        .where(d.survey_id.in_(list(survey_ids)), d.status == "answered")
        .group_by(d.survey_id)
    ).all()
    return {survey_id: int(n) for survey_id, n in rows}


def personas_of(connection: Connection, user_ids: Sequence[str]) -> dict[str, str]:
    personas: dict[str, str] = {}
    for chunk in _chunks(sorted(set(user_ids))):
        personas.update(
            connection.execute(select(UserRow.id, UserRow.persona).where(UserRow.id.in_(chunk))).all()
        )
    return personas


def first_event_times(connection: Connection, name: str, user_ids: Sequence[str]) -> dict[str, datetime]:
    """Each user's first stored event called `name` (uses the (user_id, timestamp) index per user)."""
    firsts: dict[str, datetime] = {}
    for chunk in _chunks(sorted(set(user_ids))):
        rows = connection.execute(
            select(EventRow.user_id, func.min(EventRow.timestamp))
            .where(EventRow.user_id.in_(chunk), EventRow.name == name)
            .group_by(EventRow.user_id)
        ).all()
        firsts.update({user_id: first for user_id, first in rows if user_id is not None})
    return firsts


def insert_displays(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert displays; an id already stored (a replayed trigger) is skipped, not an error."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(SurveyDisplayRow).on_conflict_do_nothing(), list(rows))
