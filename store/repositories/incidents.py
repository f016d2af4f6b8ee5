"""Incidents (the escalation agent's triage of grouped escalations) and which incident each escalation is in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from store.models import IncidentEscalationRow, IncidentRow
from store.sql import insert_for


def incident(connection: Connection, incident_id: str) -> RowMapping | None:
    statement = select(IncidentRow.__table__).where(IncidentRow.id == incident_id)
    return connection.execute(statement).mappings().one_or_none()


def incident_of(connection: Connection, escalation_id: str) -> RowMapping | None:
    """The incident an escalation is in, if it was triaged."""
    link = IncidentEscalationRow
    statement = (
        select(IncidentRow.__table__)
        .join(link, link.incident_id == IncidentRow.id)
        .where(link.escalation_id == escalation_id)
    )
    return connection.execute(statement).mappings().one_or_none()


def incidents_of(connection: Connection, escalation_ids: Sequence[str]) -> list[RowMapping]:
    """The incidents holding any of `escalation_ids`, oldest first (each once)."""
    if not escalation_ids:
        return []
    link = IncidentEscalationRow
    holding = select(link.incident_id).where(link.escalation_id.in_(list(escalation_ids)))
    statement = (
        select(IncidentRow.__table__)
        .where(IncidentRow.id.in_(holding))
        .order_by(IncidentRow.created_at, IncidentRow.id)
    )
    return list(connection.execute(statement).mappings())


def existing_incident_id(connection: Connection, escalation_ids: Sequence[str]) -> str | None:
    """The oldest incident already holding one of `escalation_ids` (a grown group keeps its incident)."""
    if not escalation_ids:
        return None
    link = IncidentEscalationRow
    statement = (
        select(IncidentRow.id)
        .join(link, link.incident_id == IncidentRow.id)
        .where(link.escalation_id.in_(list(escalation_ids)))
        .order_by(IncidentRow.created_at, IncidentRow.id)
        .limit(1)
    )
    return connection.execute(statement).scalar_one_or_none()


def save_incident(
    connection: Connection,
    incident_id: str,
    escalation_ids: Sequence[str],
    triage: Mapping[str, Any],
    source: str,
    now: datetime,
) -> None:
    """Insert or replace the incident's triage, and point each of its escalations at it."""
    statement = insert_for(connection, IncidentRow).values(
        id=incident_id, escalation_ids=list(escalation_ids), triage=dict(triage), source=source,
        resolution_summary=None, created_at=now, updated_at=now,
    )  # fmt: skip
    changes = {"escalation_ids": statement.excluded.escalation_ids, "triage": statement.excluded.triage,
               "source": statement.excluded.source, "updated_at": statement.excluded.updated_at}  # fmt: skip
    connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))
    for escalation_id in escalation_ids:
        link = insert_for(connection, IncidentEscalationRow).values(
            escalation_id=escalation_id, incident_id=incident_id
        )
        connection.execute(
            link.on_conflict_do_update(index_elements=["escalation_id"], set_={"incident_id": incident_id})
        )


def set_resolution(connection: Connection, incident_id: str, summary: str, now: datetime) -> None:
    connection.execute(
        update(IncidentRow)
        .where(IncidentRow.id == incident_id)
        .values(resolution_summary=summary, updated_at=now)
    )


def recent_incidents(connection: Connection, limit: int = 20) -> list[RowMapping]:
    statement = (
        select(IncidentRow.__table__).order_by(IncidentRow.updated_at.desc(), IncidentRow.id).limit(limit)
    )
    return list(connection.execute(statement).mappings())
