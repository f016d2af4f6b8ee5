"""Experiments, their phases and sticky assignments.

Assignment is idempotent under concurrency: rows are inserted with ON CONFLICT DO NOTHING on (experiment, user),
so two racing requests for one user store one row, and both read back the stored (winning) assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, insert, select, update

from store.models import (
    ExperimentAssignmentRow,
    ExperimentDirtyUserRow,
    ExperimentMetricStateRow,
    ExperimentPhaseRow,
    ExperimentRow,
    ExperimentUnitValueRow,
    ExperimentVariantSumsRow,
)
from store.sql import insert_for

# Keeps each statement's bound parameters under SQLite's limit (32,766) and PostgreSQL's (65,535).
ASSIGNMENT_CHUNK_ROWS = 2_000


@dataclass(frozen=True, slots=True)
class StoredAssignment:
    user_id: str
    phase: int
    variant: int
    persona: str
    assigned_at: datetime


def insert_experiment(connection: Connection, values: Mapping[str, Any]) -> int:
    return int(
        connection.execute(insert(ExperimentRow).values(**values).returning(ExperimentRow.id)).scalar_one()
    )


def experiment_by_key(connection: Connection, key: str, *, for_update: bool = False) -> RowMapping | None:
    statement = select(ExperimentRow.__table__).where(ExperimentRow.key == key)
    if for_update and connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    return connection.execute(statement).mappings().one_or_none()


def list_experiments(connection: Connection, status: str | None = None) -> list[RowMapping]:
    statement = select(ExperimentRow.__table__).order_by(ExperimentRow.created_at, ExperimentRow.id)
    if status is not None:
        statement = statement.where(ExperimentRow.status == status)
    return list(connection.execute(statement).mappings())


def update_experiment(connection: Connection, experiment_id: int, values: Mapping[str, Any]) -> None:
    connection.execute(update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(**values))


def insert_phase(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(ExperimentPhaseRow).values(**values))


def end_phase(connection: Connection, experiment_id: int, phase: int, ended_at: datetime) -> None:
    connection.execute(
        update(ExperimentPhaseRow)
        .where(ExperimentPhaseRow.experiment_id == experiment_id, ExperimentPhaseRow.phase == phase)
        .values(ended_at=ended_at)
    )


def phase_row(connection: Connection, experiment_id: int, phase: int) -> RowMapping | None:
    return (
        connection.execute(
            select(ExperimentPhaseRow.__table__).where(
                ExperimentPhaseRow.experiment_id == experiment_id, ExperimentPhaseRow.phase == phase
            )
        )
        .mappings()
        .one_or_none()
    )


def stored_assignments(
    connection: Connection, experiment_id: int, user_ids: Sequence[str]
) -> dict[str, StoredAssignment]:
    table = ExperimentAssignmentRow
    found: dict[str, StoredAssignment] = {}
    for start in range(0, len(user_ids), ASSIGNMENT_CHUNK_ROWS):
        chunk = user_ids[start : start + ASSIGNMENT_CHUNK_ROWS]
        rows = connection.execute(
            select(table.user_id, table.phase, table.variant, table.persona, table.assigned_at).where(
                table.experiment_id == experiment_id, table.user_id.in_(chunk)
            )
        )
        for row in rows:
            found[row.user_id] = StoredAssignment(*row)
    return found


def insert_assignments(
    connection: Connection, experiment_id: int, rows: Sequence[StoredAssignment]
) -> set[str]:
    """Store new assignments; users who already have one keep it. Returns the users stored by this call."""
    inserted: set[str] = set()
    ordered = sorted(rows, key=lambda r: r.user_id)  # one lock order for concurrent writers
    for start in range(0, len(ordered), ASSIGNMENT_CHUNK_ROWS):
        chunk = ordered[start : start + ASSIGNMENT_CHUNK_ROWS]
        statement = (
            insert_for(connection, ExperimentAssignmentRow)
            .values([{"experiment_id": experiment_id, "user_id": r.user_id, "phase": r.phase,
                      "variant": r.variant, "persona": r.persona, "assigned_at": r.assigned_at} for r in chunk])
            .on_conflict_do_nothing(index_elements=["experiment_id", "user_id"])
            .returning(ExperimentAssignmentRow.user_id)
        )  # fmt: skip
        inserted.update(connection.execute(statement).scalars())
    return inserted


def redraw_assignments(
    connection: Connection, experiment_id: int, rows: Sequence[StoredAssignment]
) -> set[str]:
    """Move users assigned in an earlier phase to their draw in `row.phase`; returns the users moved."""
    table = ExperimentAssignmentRow
    moved: set[str] = set()
    statement = (
        update(table)
        .where(
            table.experiment_id == experiment_id,
            table.user_id == bindparam("b_user_id"),
            table.phase < bindparam("b_phase"),
        )
        .values(phase=bindparam("b_phase"), variant=bindparam("b_variant"), assigned_at=bindparam("b_assigned_at"),
                persona=bindparam("b_persona"))
        .returning(table.user_id)
    )  # fmt: skip
    for row in sorted(rows, key=lambda r: r.user_id):
        params = {"b_user_id": row.user_id, "b_phase": row.phase, "b_variant": row.variant,
                  "b_assigned_at": row.assigned_at, "b_persona": row.persona}  # fmt: skip
        moved.update(connection.execute(statement, params).scalars())
    return moved


def assignment_counts(connection: Connection, experiment_id: int, phase: int) -> dict[int, int]:
    table = ExperimentAssignmentRow
    rows = connection.execute(
        select(table.variant, func.count())
        .where(table.experiment_id == experiment_id, table.phase == phase)
        .group_by(table.variant)
    )
    return {int(variant): int(count) for variant, count in rows}


def assignment_span(
    connection: Connection, experiment_id: int, phase: int
) -> tuple[datetime | None, datetime | None]:
    """First and last exposure of the phase (for traffic per day)."""
    table = ExperimentAssignmentRow
    scope = (table.experiment_id == experiment_id, table.phase == phase)
    # Two statements: each is one probe of the (experiment_id, phase, assigned_at) index; min and max together
    # would make SQLite scan the phase. min/max keep the column type (aware datetimes on both dialects).
    first = connection.execute(select(func.min(table.assigned_at)).where(*scope)).scalar_one()
    last = connection.execute(select(func.max(table.assigned_at)).where(*scope)).scalar_one()
    return first, last


def delete_experiment(connection: Connection, experiment_id: int) -> None:
    # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on, and being explicit
    # keeps the order of lock acquisition the same on both dialects.
    children = (
        ExperimentUnitValueRow,
        ExperimentVariantSumsRow,
        ExperimentMetricStateRow,
        ExperimentDirtyUserRow,
    )
    for child in children:
        connection.execute(delete(child).where(child.experiment_id == experiment_id))
    connection.execute(
        delete(ExperimentAssignmentRow).where(ExperimentAssignmentRow.experiment_id == experiment_id)
    )
    connection.execute(delete(ExperimentPhaseRow).where(ExperimentPhaseRow.experiment_id == experiment_id))
    connection.execute(delete(ExperimentRow).where(ExperimentRow.id == experiment_id))
