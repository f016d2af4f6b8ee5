"""What the retro door tests share: a small synthetic product (500 users, 30 days, a deployment on day 22 after
which podcast_network's report errors are ten times as frequent: the sprint over the last two weeks finds two
error-rate insights, each proposing a backlog item), and store counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import text

from store.database import Database
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events

END = datetime(2026, 6, 1, tzinfo=UTC)
CONFIG = SyntheticConfig(
    users=500, days=30, seed=5, end=END, deployments=(PlantedDeployment(day=22, error_multiplier=10),)
)
SPRINT_START, SPRINT_END = "2026-05-18", "2026-05-31"  # the last two weeks, the 31st included
WIDE = {"COLUMNS": "240"}


@cache
def synthetic_events() -> tuple[CanonicalEvent, ...]:
    return tuple(generate_events(CONFIG))


def load_product(database: Database) -> None:
    EventIngestor(database).ingest_stream(iter(synthetic_events()))


def row_count(database: Database, table: str) -> int:
    with database.read() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def filed_tickets(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
