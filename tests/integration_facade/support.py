"""What the facade tests share: an integration on the test database with a settable clock, host modules that
record what they are asked and told, and reads of the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from feedbackloop.integration import FeedbackLoopIntegration
from feedbackloop.settings import Settings
from store.database import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIBRARY = {"library": {"name": "feedbackloop.FeedbackLoopIntegration"}}


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Host:
    """The host app's modules in one object; `persona` etc. are what its lookups answer."""

    persona: str | None = "podcast_network"
    plan: str | None = "pro"
    sponsor: str | None = "acme"
    template: str | None = "sponsor-summary"
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def persona_of(self, user_id: str) -> str | None:
        self.calls.append(("persona_of", (user_id,)))
        return self.persona

    def plan_of(self, user_id: str) -> str | None:
        self.calls.append(("plan_of", (user_id,)))
        return self.plan

    async def sponsor_of(self, campaign_id: str) -> str | None:  # an asyncio host module
        self.calls.append(("sponsor_of", (campaign_id,)))
        return self.sponsor

    def template_of(self, report_id: str) -> str | None:
        self.calls.append(("template_of", (report_id,)))
        return self.template

    def log_event(self, name: str, user_id: str, properties: Mapping[str, Any]) -> None:
        self.calls.append(("log_event", (name, user_id, dict(properties))))

    async def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.calls.append(("observe", (name, value, dict(labels))))

    def record_task(self, user_id: str, task: str, succeeded: bool) -> None:
        self.calls.append(("record_task", (user_id, task, succeeded)))

    def told(self, method: str) -> list[tuple[Any, ...]]:
        return [arguments for name, arguments in self.calls if name == method]


def integration(
    database: Database, clock: Clock, host: Host | None = None, **settings: Any
) -> FeedbackLoopIntegration:
    """The facade on `database`; with `host`, every collaborator is that host."""
    modules = dict.fromkeys(
        ("metrics_collector", "event_logger", "user_manager", "campaign_manager", "report_generator",
         "measurement", "pricing_manager"), host,
    ) if host is not None else {}  # fmt: skip
    return FeedbackLoopIntegration(
        **modules, database=database, settings=Settings(database_url=database.url, **settings), clock=clock
    )


def events(database: Database, user_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(name, properties) of the stored events, in time order (identify before track at one moment)."""
    where = "WHERE user_id = :user" if user_id else ""
    with database.read() as connection:
        rows = connection.execute(
            text(f"SELECT name, properties, type FROM events {where} ORDER BY timestamp, type, name"),
            {"user": user_id},
        ).all()
    return [(name, _json(properties)) for name, properties, _ in rows]


def contexts(database: Database) -> list[dict[str, Any]]:
    with database.read() as connection:
        return [_json(c) for (c,) in connection.execute(text("SELECT context FROM events")).all()]


def displays(database: Database) -> list[tuple[str, str, str]]:
    with database.read() as connection:
        rows = connection.execute(
            text("SELECT user_id, survey_id, status FROM survey_displays ORDER BY triggered_at, survey_id")
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def count(database: Database, table: str) -> int:
    with database.read() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _json(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)
