"""The dashboard's "Open escalations" panel: what fires now, and what the escalation agent made of it (the
incident's probable cause and owner), most severe first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping

from feedbackloop.dashboard.data import Panel
from store.database import Database
from store.repositories import escalations as escalation_sql
from store.repositories import incidents as incident_sql

COLUMNS = ("Escalation", "Severity", "Status", "Personas", "Open since", "Probable cause", "Owner")
OPEN_STATUSES = ("pending", "firing", "acknowledged")
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
MAX_ROWS = 20  # the panel is a glance; the API and CLI list everything


def escalations_panel(database: Database, persona: str | None) -> Panel | None:
    with database.read() as connection:
        rows = [
            row
            for row in escalation_sql.escalation_rows(connection, statuses=OPEN_STATUSES)
            if persona is None or persona in (row["affected_personas"] or [])
        ]
        rows.sort(key=lambda row: (SEVERITY_ORDER.get(row["severity"], 9), row["opened_at"]))
        shown = rows[:MAX_ROWS]
        incidents = incident_sql.incidents_of(connection, [row["id"] for row in shown])
    if not shown:
        return None
    incident_of = {i: incident for incident in incidents for i in incident["escalation_ids"]}
    return Panel("Open escalations", COLUMNS, tuple(_row(row, incident_of.get(row["id"])) for row in shown))


def _row(row: RowMapping, incident: RowMapping | None) -> tuple[str, ...]:
    cause, owner = "not triaged yet", "—"
    if incident is not None:
        triage = incident["triage"]
        causes = triage.get("probable_causes") or []
        cause = (
            f"{causes[0]['title']} ({causes[0]['confidence']}; {', '.join(causes[0]['evidence_ids'])})"
            if causes
            else "no probable cause found"
        ) + f" · triage: {incident['source']}"
        team, channel = triage.get("owner", {}).get("team"), triage.get("owner", {}).get("channel")
        owner = f"{team} ({channel})" if team else "—"
    since: datetime = row["firing_at"] or row["opened_at"]
    personas = ", ".join(row["affected_personas"] or []) or "all"
    return (
        row["title"],
        row["severity"],
        row["status"],
        personas,
        f"{since:%Y-%m-%d %H:%M} UTC",
        cause,
        owner,
    )
