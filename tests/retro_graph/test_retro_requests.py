"""How a retro request becomes its window: date-only ends (also ISO basic format) name the last day, a datetime
end is exclusive, a future end is refused, and deployment inputs are checked, each error naming its field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.retro.windows import window_of_request
from store.database import Database
from tools.retro.window import RetroInputError

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    return Database(f"sqlite:///{Path(tmp_path_factory.mktemp('requests')) / 'retro.db'}")


@pytest.mark.parametrize("end", ["2026-11-27", "20261127", "2026-11-28T00:00:00Z", "2026-11-28T00:00:00"])
def test_the_same_sprint_spelled_four_ways(database: Database, end: str) -> None:
    window = window_of_request(database, {"kind": "sprint", "start": "2026-11-14", "end": end}, now=NOW)
    assert (window.start, window.end) == (
        datetime(2026, 11, 14, tzinfo=UTC),
        datetime(2026, 11, 28, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        ({"kind": "sprint", "start": "2026-11-20", "end": "2026-11-28"}, "end", "in the future"),
        ({"kind": "sprint", "start": "2026-11-20", "end": "next friday"}, "end", "not an ISO 8601"),
        ({"kind": "sprint", "start": "2026-11-20"}, "end", "needs start and end"),
        ({"kind": "weekly"}, "kind", "sprint or deployment"),
        ({"kind": "deployment", "version": "v1.4.0", "bake_hours": 0}, "bake_hours", "above 0"),
        ({"kind": "deployment", "version": "v1.4.0", "deployed_at": "yesterday"}, "deployed_at", "ISO 8601"),
        ({"kind": "deployment", "version": "v9.9.9"}, "version", "v9.9.9"),
    ],
)
def test_bad_requests_name_the_field(
    database: Database, request_: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(RetroInputError) as caught:
        window_of_request(database, request_, now=NOW)
    assert caught.value.field == field and words in str(caught.value)
