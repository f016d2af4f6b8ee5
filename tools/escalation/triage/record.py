"""Storing triages: an incident keeps its id while its group grows (the oldest incident holding one of its
escalations), each escalation points at its incident, and an escalation's first triage goes into its history.
When every escalation of an incident has resolved, a resolution summary is written to the
incident and into each escalation's history, once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from store.database import Database
from store.repositories import escalations as escalation_sql
from store.repositories import incidents as incident_sql
from tools.escalation.triage.model import Triage
from tools.retro.numbers import format_number


def record_triage(database: Database, triage: Triage, now: datetime) -> Triage:
    incident = triage.incident
    with database.write() as connection:
        existing = incident_sql.existing_incident_id(connection, incident.escalation_ids)
        if existing is not None and existing != incident.incident_id:
            triage = replace(triage, incident=replace(incident, incident_id=existing))
        new_members = [i for i in incident.escalation_ids if incident_sql.incident_of(connection, i) is None]
        incident_sql.save_incident(
            connection,
            triage.incident.incident_id,
            incident.escalation_ids,
            triage.as_dict(),
            triage.source,
            now,
        )
        for escalation_id in new_members:  # an escalation's first triage goes into its history
            escalation_sql.add_history(
                connection, escalation_id, now, "triaged", actor=f"triage: {triage.source}",
                details={"incident_id": triage.incident.incident_id, "summary": triage.draft.summary},
            )  # fmt: skip
    return triage


def stored_triage(database: Database, escalation_id: str) -> dict[str, Any] | None:
    """The triage of the incident an escalation is in (with its resolution summary), or None."""
    with database.read() as connection:
        row = incident_sql.incident_of(connection, escalation_id)
    return None if row is None else _stored(row)


def _stored(row: Any) -> dict[str, Any]:
    return {**row["triage"], "incident_id": row["id"], "resolution_summary": row["resolution_summary"],
            "updated_at": row["updated_at"].isoformat()}  # fmt: skip


def summarise_resolutions(database: Database, now: datetime) -> list[str]:
    """Write the resolution summary of every incident whose escalations have all resolved; returns their ids."""
    done: list[str] = []
    with database.write() as connection:
        for row in incident_sql.recent_incidents(connection, limit=200):
            if row["resolution_summary"] is not None:
                continue
            escalations = [escalation_sql.escalation_row(connection, i) for i in row["escalation_ids"]]
            present = [e for e in escalations if e is not None]
            if not present or any(e["status"] != "resolved" for e in present):
                continue
            summary = resolution_summary(row["triage"], present)
            incident_sql.set_resolution(connection, row["id"], summary, now)
            for escalation in present:
                escalation_sql.add_history(
                    connection, escalation["id"], now, "resolution_summary", actor="triage",
                    details={"incident_id": row["id"], "summary": summary},
                )  # fmt: skip
            done.append(row["id"])
    return done


def resolution_summary(triage: dict[str, Any], escalations: list[Any]) -> str:
    opened = min(e["opened_at"] for e in escalations)
    resolved = max(e["resolved_at"] for e in escalations)
    hours = format_number(round((resolved - opened).total_seconds() / 3600, 1))
    causes = triage.get("probable_causes") or []
    cause = f" Probable cause at triage: {causes[0]['title']}." if causes else ""
    notes = sorted({e["resolution_notes"] for e in escalations if e["resolution_notes"]})
    how = f" Resolution notes: {' / '.join(notes)}." if notes else ""
    return (
        f"Incident resolved after {hours} h: every escalation ({', '.join(e['title'] for e in escalations)}) "
        f"has recovered or was resolved.{cause}{how}"
    )


def recent_triages(database: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The latest triage of the most recently updated incidents, newest first."""
    with database.read() as connection:
        rows = incident_sql.recent_incidents(connection, limit)
    return [_stored(row) for row in rows]
