"""Concurrent writers on the same users (several API workers, several instances) lose nothing and fail nothing."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from store.database import Database
from store.models import EventRow, UserRow
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

T0 = datetime(2026, 2, 1, tzinfo=UTC)
WRITERS, BATCHES_PER_WRITER, EVENTS_PER_BATCH, USERS = 4, 8, 100, 60


def _batch(writer: int, batch: int) -> list[CanonicalEvent]:
    rng = random.Random(writer * 1000 + batch)
    users = [f"u{i}" for i in range(USERS)]
    rng.shuffle(users)  # every writer touches the same users in a different order: the deadlock recipe
    events = []
    for i in range(EVENTS_PER_BATCH):
        user = users[i % USERS]
        kind = "identify" if i % 10 == 0 else "track"
        moment = T0 + timedelta(seconds=writer * 10_000 + batch * 100 + i)
        events.append(CanonicalEvent(f"w{writer}-b{batch}-{i}", kind, "identify" if kind == "identify" else "x",
                                     moment, moment, user_id=user,
                                     properties={"persona": "agency"} if kind == "identify" else {}))  # fmt: skip
    return events


def test_concurrent_batches_over_the_same_users_all_succeed(database: Database) -> None:
    ingestor = EventIngestor(database)

    def write(writer: int) -> int:
        return sum(ingestor.ingest(_batch(writer, b)).accepted for b in range(BATCHES_PER_WRITER))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        accepted = sum(pool.map(write, range(WRITERS)))
    expected = WRITERS * BATCHES_PER_WRITER * EVENTS_PER_BATCH
    assert accepted == expected
    with database.read() as connection:
        assert connection.execute(select(func.count()).select_from(EventRow)).scalar_one() == expected
        assert connection.execute(select(func.count()).select_from(UserRow)).scalar_one() == USERS
