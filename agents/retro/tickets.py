"""Filing one backlog item on every configured sink, exactly once per (fingerprint, sink).

The claim row in ticket_filings keeps two workers (or a resumed run and a stale one) from filing the same item
twice; a crash between the sink's answer and the record is covered by the sink's own fingerprint check, so the
resumed run finds the ticket instead of creating another.
"""

from __future__ import annotations

from typing import Any

from agents.retro.context import RetroContext
from store.repositories import retros as retro_sql
from tools.retro.model import BacklogItem, Priority
from tools.tickets.base import TicketSinkError


def backlog_item(data: dict[str, Any]) -> BacklogItem:
    """A BacklogItem from its state dict (the sinks take the typed item)."""
    return BacklogItem(
        id=data["id"],
        title=data["title"],
        problem=data["problem"],
        proposal=data["proposal"],
        acceptance_criteria=tuple(data["acceptance_criteria"]),
        labels=tuple(data["labels"]),
        priority=Priority(**data["priority"]),
        insight_ids=tuple(data["insight_ids"]),
        evidence_ids=tuple(data["evidence_ids"]),
        fingerprint=data["fingerprint"],
        body=data.get("body") or "",
        duplicate_of=data.get("duplicate_of"),
    )


def file_item(
    context: RetroContext, retro_id: str, data: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """File on each sink; returns the tickets (TicketRef dicts) and warnings for sinks that failed or were busy."""
    item = backlog_item(data)
    database = context.database
    with database.write() as connection:
        retro_sql.record_backlog_item(
            connection, item.fingerprint, item.title, retro_id, data, context.clock()
        )
    tickets: list[dict[str, Any]] = []
    warnings: list[str] = []
    for sink in context.sinks:
        with database.write() as connection:
            blocking = retro_sql.claim_filing(
                connection, item.fingerprint, sink.name, retro_id, context.clock(), context.filing_lease
            )
        if blocking is not None:
            if blocking["status"] == "filed":
                tickets.append(
                    {
                        "sink": sink.name,
                        "key": blocking["ticket_key"],
                        "url": blocking["url"],
                        "created": False,
                    }
                )
            else:
                warnings.append(f"{item.id} on {sink.name}: being filed by retro {blocking['retro_id']}")
            continue
        try:
            ref = sink.file(item)
        except TicketSinkError as exc:
            with database.write() as connection:
                retro_sql.record_filing(
                    connection,
                    item.fingerprint,
                    sink.name,
                    status="failed",
                    now=context.clock(),
                    error=str(exc),
                )
            warnings.append(f"{item.id} on {sink.name}: {exc}")
            continue
        with database.write() as connection:
            retro_sql.record_filing(
                connection, item.fingerprint, sink.name, status="filed", now=context.clock(),
                ticket_key=ref.key, url=ref.url,
            )  # fmt: skip
        tickets.append(ref.as_dict())
    return tickets, warnings
