"""Filing one backlog item on every configured sink, exactly once per (fingerprint, sink).

The claim row in ticket_filings keeps two workers (or a resumed run and a stale one) from filing the same item
twice; a crash between the sink's answer and the record is covered by the sink's own fingerprint check, so the
resumed run finds the ticket instead of creating another.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Filing:
    """What filing one item did: its tickets (TicketRef dicts), and the sinks that failed (retried by
    `retro resume`) or were busy with another run's claim."""

    tickets: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    warnings: list[str]


def file_item(context: RetroContext, retro_id: str, data: dict[str, Any]) -> Filing:
    """File on each sink. The item joins the open backlog (what later retros dedupe against) only once a sink
    holds it, so a sink that is down loses nothing: the failure is recorded and `retro resume` files it later."""
    item = backlog_item(data)
    tickets: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    warnings: list[str] = []
    for sink in context.sinks:
        with context.database.write() as connection:
            blocking = retro_sql.claim_filing(
                connection, item.fingerprint, sink.name, retro_id, context.clock(), context.filing_lease
            )
        if blocking is not None:
            if blocking["status"] == "filed":
                tickets.append(_existing(sink.name, blocking))
            else:
                warnings.append(f"{item.id} on {sink.name}: being filed by retro {blocking['retro_id']}")
            continue
        try:
            ref = sink.file(item)
        except TicketSinkError as exc:
            _record(context, retro_id, item, sink.name, status="failed", error=str(exc))
            failures.append({"id": item.id, "sink": sink.name, "error": str(exc), "transient": exc.transient})
            warnings.append(
                f"{item.id} on {sink.name}: {exc}; `feedbackloop retro resume {retro_id}` retries"
            )
            continue
        _record(context, retro_id, item, sink.name, status="filed", key=ref.key, url=ref.url)
        tickets.append(ref.as_dict())
    if tickets:
        with context.database.write() as connection:
            retro_sql.record_backlog_item(
                connection, item.fingerprint, item.title, retro_id, data, context.clock()
            )
    return Filing(tickets, failures, warnings)


def _existing(sink: str, row: Any) -> dict[str, Any]:
    return {"sink": sink, "key": row["ticket_key"], "url": row["url"], "created": False}


def _record(
    context: RetroContext,
    retro_id: str,
    item: BacklogItem,
    sink: str,
    *,
    status: str,
    key: str | None = None,
    url: str | None = None,
    error: str | None = None,
) -> None:
    with context.database.write() as connection:
        retro_sql.record_filing(
            connection, item.fingerprint, sink, retro_id=retro_id, status=status, now=context.clock(),
            ticket_key=key, url=url, error=error,
        )  # fmt: skip
