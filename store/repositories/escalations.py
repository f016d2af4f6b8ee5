"""Escalation rules, alert instances, escalations with their history, silences and notification groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.models import (
    EscalationHistoryRow,
    EscalationInstanceRow,
    EscalationRow,
    EscalationRuleRow,
    EventRow,
    ExperimentRow,
    NotificationGroupRow,
    SilenceRow,
)

# ---- rules ---------------------------------------------------------------------------------------------------


def rule_rows(connection: Connection, *, enabled_only: bool = False) -> list[RowMapping]:
    statement = select(EscalationRuleRow.__table__).order_by(
        EscalationRuleRow.created_at, EscalationRuleRow.rule_id
    )
    if enabled_only:
        statement = statement.where(EscalationRuleRow.enabled.is_(True))
    return list(connection.execute(statement).mappings())


def rule_row(connection: Connection, rule_id: str) -> RowMapping | None:
    statement = select(EscalationRuleRow.__table__).where(EscalationRuleRow.rule_id == rule_id)
    return connection.execute(statement).mappings().one_or_none()


def insert_rule(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(EscalationRuleRow).values(**values))


def update_rule(connection: Connection, rule_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(EscalationRuleRow).where(EscalationRuleRow.rule_id == rule_id).values(**values))


def delete_rule(connection: Connection, rule_id: str) -> None:
    connection.execute(delete(EscalationRuleRow).where(EscalationRuleRow.rule_id == rule_id))


# ---- alert instances -------------------------------------------------------------------------------------------


def instance_rows(connection: Connection) -> dict[str, RowMapping]:
    rows = connection.execute(select(EscalationInstanceRow.__table__)).mappings()
    return {row["fingerprint"]: row for row in rows}


def save_instance(connection: Connection, values: Mapping[str, Any]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(EscalationInstanceRow).values(**values)
    changes = {k: statement.excluded[k] for k in values if k != "fingerprint"}
    connection.execute(statement.on_conflict_do_update(index_elements=["fingerprint"], set_=changes))


def delete_instances(connection: Connection, rule_id: str) -> None:
    connection.execute(delete(EscalationInstanceRow).where(EscalationInstanceRow.rule_id == rule_id))


def update_instance(connection: Connection, fingerprint: str, values: Mapping[str, Any]) -> None:
    connection.execute(
        update(EscalationInstanceRow).where(EscalationInstanceRow.fingerprint == fingerprint).values(**values)
    )


# ---- escalations and their history -----------------------------------------------------------------------------


def insert_escalation(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(EscalationRow).values(**values))


def update_escalation(connection: Connection, escalation_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(EscalationRow).where(EscalationRow.id == escalation_id).values(**values))


def delete_escalation(connection: Connection, escalation_id: str) -> None:
    connection.execute(
        delete(EscalationHistoryRow).where(EscalationHistoryRow.escalation_id == escalation_id)
    )
    connection.execute(delete(EscalationRow).where(EscalationRow.id == escalation_id))


def escalation_row(
    connection: Connection, escalation_id: str, *, for_update: bool = False
) -> RowMapping | None:
    statement = select(EscalationRow.__table__).where(EscalationRow.id == escalation_id)
    if for_update and connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    return connection.execute(statement).mappings().one_or_none()


def escalation_rows(
    connection: Connection, *, statuses: Sequence[str] | None = None, resolved_since: datetime | None = None
) -> list[RowMapping]:
    """Escalations with one of `statuses` (all when None), plus those resolved at or after `resolved_since`."""
    e = EscalationRow
    statement = select(e.__table__).order_by(e.opened_at, e.id)
    conditions: list[ColumnElement[bool]] = []
    if statuses is not None:
        conditions.append(e.status.in_(list(statuses)))
    if resolved_since is not None:
        conditions.append((e.status == "resolved") & (e.resolved_at >= resolved_since))
    if conditions:
        statement = statement.where(or_(*conditions))
    return list(connection.execute(statement).mappings())


def add_history(
    connection: Connection,
    escalation_id: str,
    at: datetime,
    kind: str,
    *,
    actor: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    connection.execute(
        insert(EscalationHistoryRow).values(
            escalation_id=escalation_id, at=at, kind=kind, actor=actor, details=dict(details or {})
        )
    )


def history_rows(connection: Connection, escalation_ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    if not escalation_ids:
        return {}
    h = EscalationHistoryRow
    rows = connection.execute(
        select(h.__table__).where(h.escalation_id.in_(list(escalation_ids))).order_by(h.at, h.id)
    ).mappings()
    history: dict[str, list[RowMapping]] = {}
    for row in rows:
        history.setdefault(row["escalation_id"], []).append(row)
    return history


# ---- silences ----------------------------------------------------------------------------------------------------


def insert_silence(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(SilenceRow).values(**values))


def silence_rows(connection: Connection, *, active_at: datetime | None = None) -> list[RowMapping]:
    statement = select(SilenceRow.__table__).order_by(SilenceRow.starts_at, SilenceRow.id)
    if active_at is not None:
        statement = statement.where(SilenceRow.starts_at <= active_at, SilenceRow.ends_at > active_at)
    return list(connection.execute(statement).mappings())


def silence_row(connection: Connection, silence_id: str) -> RowMapping | None:
    return (
        connection.execute(select(SilenceRow.__table__).where(SilenceRow.id == silence_id))
        .mappings()
        .one_or_none()
    )


def expire_silence(connection: Connection, silence_id: str, at: datetime) -> None:
    connection.execute(update(SilenceRow).where(SilenceRow.id == silence_id).values(ends_at=at))


# ---- notification groups -------------------------------------------------------------------------------------


def group_rows(connection: Connection) -> dict[tuple[str, str], RowMapping]:
    rows = connection.execute(select(NotificationGroupRow.__table__)).mappings()
    return {(row["channel"], row["group_key"]): row for row in rows}


def save_group(connection: Connection, values: Mapping[str, Any]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(NotificationGroupRow).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in ("channel", "group_key")}
    connection.execute(statement.on_conflict_do_update(index_elements=["channel", "group_key"], set_=changes))


# ---- context: deployments and experiments near a change ----------------------------------------------------


def deployments_between(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """`deployment` events in [start, end): version, service, environment and time, oldest first."""
    e = EventRow
    rows = connection.execute(
        select(e.timestamp, e.properties)
        .where(e.name == "deployment", e.timestamp >= start, e.timestamp < end)
        .order_by(e.timestamp)
        .limit(50)
    ).all()
    return [
        {"version": str((props or {}).get("version", "")), "service": (props or {}).get("service"),
         "environment": (props or {}).get("environment"), "deployed_at": at.isoformat()}
        for at, props in rows
    ]  # fmt: skip


def experiments_live_between(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Experiments that ran at some point in [start, end): key, status and start time."""
    x = ExperimentRow
    rows = connection.execute(
        select(x.key, x.status, x.started_at)
        .where(
            x.started_at.is_not(None), x.started_at < end, or_(x.stopped_at.is_(None), x.stopped_at >= start)
        )
        .order_by(x.started_at)
        .limit(50)
    ).all()
    return [
        {"key": key, "status": status, "started_at": started.isoformat() if started else None}
        for key, status, started in rows
    ]
