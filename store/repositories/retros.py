"""Retro runs, the backlog items they proposed (by fingerprint) and exactly-once ticket filings per sink."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, or_, select, update

from store.models import BacklogItemRow, RetroRow, TicketFilingRow
from store.sql import insert_for


def create_retro(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert_for(connection, RetroRow).values(**values))


def retro(connection: Connection, retro_id: str) -> RowMapping | None:
    return (
        connection.execute(select(RetroRow.__table__).where(RetroRow.id == retro_id)).mappings().one_or_none()
    )


def update_retro(connection: Connection, retro_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(RetroRow).where(RetroRow.id == retro_id).values(**values))


def claim_status(connection: Connection, retro_id: str, expected: str, new: str, now: datetime) -> bool:
    """Move a retro from `expected` to `new` status; False when it was not in `expected` (someone else moved it)."""
    moved = connection.execute(
        update(RetroRow)
        .where(RetroRow.id == retro_id, RetroRow.status == expected)
        .values(status=new, updated_at=now)
    )
    return moved.rowcount == 1


def create_retro_once(connection: Connection, values: Mapping[str, Any]) -> bool:
    """Insert the retro unless one with its id exists; True when this call recorded it."""
    inserted = connection.execute(
        insert_for(connection, RetroRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(RetroRow.id)  # psycopg reports rowcount -1 for these inserts
    )
    return inserted.first() is not None


def due_scheduled_retros(connection: Connection, now: datetime, limit: int) -> list[str]:
    """Ids of scheduled retros whose run_after has passed, the longest waiting first."""
    r = RetroRow
    statement = (
        select(r.id)
        .where(r.status == "scheduled", r.run_after <= now)
        .order_by(r.run_after, r.id)
        .limit(limit)
    )
    return list(connection.execute(statement).scalars())


def orphaned_running_retros(
    connection: Connection, untouched_since: datetime, claimed_before: datetime, limit: int
) -> list[str]:
    """Ids of retros `running` that nobody runs: no run claim, or a claim older than the lease, and not updated
    since `untouched_since`; the oldest first."""
    r = RetroRow
    statement = (
        select(r.id)
        .where(
            r.status == "running",
            r.updated_at < untouched_since,
            or_(r.run_owner.is_(None), r.run_claimed_at < claimed_before),
        )
        .order_by(r.updated_at, r.id)
        .limit(limit)
    )
    return list(connection.execute(statement).scalars())


def claim_scheduled(connection: Connection, retro_id: str, now: datetime) -> bool:
    """Move a due scheduled retro to running in one statement; of two workers racing, exactly one gets True."""
    r = RetroRow
    claimed = connection.execute(
        update(r)
        .where(r.id == retro_id, r.status == "scheduled", r.run_after <= now)
        .values(status="running", updated_at=now)
    )
    return claimed.rowcount == 1


def claim_run(connection: Connection, retro_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take the retro's run for `owner`: free, or held by a process whose claim is older than `lease` (it died)."""
    r = RetroRow
    claimed = connection.execute(
        update(r)
        .where(r.id == retro_id, or_(r.run_owner.is_(None), r.run_claimed_at < now - lease))
        .values(run_owner=owner, run_claimed_at=now)
    )
    return claimed.rowcount == 1


def take_over_run(connection: Connection, retro_id: str, stale_owner: str, owner: str, now: datetime) -> bool:
    """Take the run from an owner known to be dead (its process is gone), if it still holds it."""
    r = RetroRow
    taken = connection.execute(
        update(r)
        .where(r.id == retro_id, r.run_owner == stale_owner)
        .values(run_owner=owner, run_claimed_at=now)
    )
    return taken.rowcount == 1


def release_run(connection: Connection, retro_id: str, owner: str) -> None:
    r = RetroRow
    connection.execute(
        update(r).where(r.id == retro_id, r.run_owner == owner).values(run_owner=None, run_claimed_at=None)
    )


def recent_retros(connection: Connection, limit: int = 20) -> list[RowMapping]:
    table = RetroRow.__table__
    columns = [c for c in table.c if c.name != "result"]  # the list view does not need the reports
    statement = select(*columns).order_by(RetroRow.created_at.desc(), RetroRow.id).limit(limit)
    return list(connection.execute(statement).mappings())


def open_backlog_items(connection: Connection, fingerprints: Sequence[str]) -> dict[str, RowMapping]:
    if not fingerprints:
        return {}
    statement = select(BacklogItemRow.__table__).where(
        BacklogItemRow.fingerprint.in_(list(fingerprints)), BacklogItemRow.status == "open"
    )
    return {row["fingerprint"]: row for row in connection.execute(statement).mappings()}


def record_backlog_item(
    connection: Connection,
    fingerprint: str,
    title: str,
    retro_id: str,
    item: Mapping[str, Any],
    now: datetime,
) -> None:
    """Insert the item, or (same fingerprint proposed again) note the latest retro and keep the first one."""
    statement = insert_for(connection, BacklogItemRow).values(
        fingerprint=fingerprint, title=title, status="open", first_retro_id=retro_id, last_retro_id=retro_id,
        item=dict(item), created_at=now, updated_at=now,
    )  # fmt: skip
    statement = statement.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={"last_retro_id": retro_id, "item": dict(item), "updated_at": now, "status": "open"},
    )
    connection.execute(statement)


def claim_filing(
    connection: Connection, fingerprint: str, sink: str, retro_id: str, now: datetime, lease: timedelta
) -> RowMapping | None:
    """Claim (fingerprint, sink) for filing. Returns None when the caller may file; otherwise the row that stands
    in its way (already filed, or being filed by someone else within the lease).

    A claim by the same retro (a resumed run) or an expired one (a crashed filer) is taken over.
    """
    inserted = connection.execute(
        insert_for(connection, TicketFilingRow)
        .values(fingerprint=fingerprint, sink=sink, status="filing", retro_id=retro_id, claimed_at=now)
        .on_conflict_do_nothing(index_elements=["fingerprint", "sink"])
        .returning(TicketFilingRow.fingerprint)  # psycopg reports rowcount -1 for these inserts
    )
    if inserted.first() is not None:
        return None
    f = TicketFilingRow
    taken = connection.execute(
        update(f)
        .where(
            f.fingerprint == fingerprint,
            f.sink == sink,
            f.status != "filed",
            or_(f.retro_id == retro_id, f.claimed_at < now - lease, f.status == "failed"),
        )
        .values(status="filing", retro_id=retro_id, claimed_at=now)
    )
    if taken.rowcount == 1:
        return None
    return (
        connection.execute(select(f.__table__).where(and_(f.fingerprint == fingerprint, f.sink == sink)))
        .mappings()
        .one()
    )


def record_filing(
    connection: Connection,
    fingerprint: str,
    sink: str,
    *,
    retro_id: str,
    status: str,
    now: datetime,
    ticket_key: str | None = None,
    url: str | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome of a filing this retro claimed; False (nothing written) when the claim is no longer
    this retro's (it expired and another run took it over)."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == "filed":
        values |= {"ticket_key": ticket_key, "url": url, "filed_at": now}
    f = TicketFilingRow
    recorded = connection.execute(
        update(f)
        .where(f.fingerprint == fingerprint, f.sink == sink, f.retro_id == retro_id, f.status == "filing")
        .values(**values)
    )
    return recorded.rowcount == 1


def filings(connection: Connection, fingerprint: str) -> list[RowMapping]:
    f = TicketFilingRow
    return list(
        connection.execute(
            select(f.__table__).where(f.fingerprint == fingerprint).order_by(f.sink)
        ).mappings()
    )
