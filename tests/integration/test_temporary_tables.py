"""store.sql.create_temporary_table: values bound (not inlined), one name per query shape, statements cached."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select
from sqlalchemy.engine.default import DefaultExecutionContext

from store.database import Database
from store.models import UserRow
from store.sql import create_temporary_table, drop_temporary_table


def _identify(database: Database, traits: dict[str, str]) -> None:
    moment = datetime(2026, 1, 5, 10, tzinfo=UTC)
    with database.write() as connection:
        connection.execute(
            insert(UserRow),
            [{"id": user_id, "persona": persona, "traits": {}, "first_seen": moment, "last_seen": moment}
             for user_id, persona in traits.items()],
        )  # fmt: skip


def _users_of(persona: str) -> Any:
    """A query whose values are parameters: the persona, and a literal in the select list (a string with a
    quote, which an inlined rendering would have to escape)."""
    return select(UserRow.id.label("user_id"), literal("it's").label("note")).where(
        UserRow.persona == persona
    )


def test_values_are_bound_and_each_table_holds_its_own_rows(database: Database) -> None:
    _identify(database, {"u1": "agency", "u2": "agency", "u3": "podcast_network"})
    with database.read() as connection:
        agencies = create_temporary_table(connection, _users_of("agency"), "fl_test")
        networks = create_temporary_table(connection, _users_of("podcast_network"), "fl_test")
        # Same shape, both alive: two names; each read back with its own rows and the literal intact.
        assert agencies.name != networks.name
        assert sorted(connection.execute(select(agencies.c.user_id, agencies.c.note)).all()) == [
            ("u1", "it's"),
            ("u2", "it's"),
        ]
        assert connection.execute(select(networks.c.user_id)).scalars().all() == ["u3"]
        drop_temporary_table(connection, networks)
        drop_temporary_table(connection, agencies)
        # Dropped: the same shape gets the first name again (what keeps the reading statements cached).
        again = create_temporary_table(connection, _users_of("podcast_network"), "fl_test")
        assert again.name == agencies.name
        assert connection.execute(select(func.count()).select_from(again)).scalar_one() == 1
        drop_temporary_table(connection, again)


def test_a_second_round_compiles_nothing(database: Database) -> None:
    """Creating, reading and dropping the same shape again hits SQLAlchemy's compiled cache every time."""
    _identify(database, {"u1": "agency"})
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if isinstance(context, DefaultExecutionContext) and context.compiled is not None:
            seen.append(str(context.cache_hit))

    def one_round(persona: str) -> int:
        with database.read() as connection:
            temporary = create_temporary_table(connection, _users_of(persona), "fl_test")
            count = connection.execute(select(func.count()).select_from(temporary)).scalar_one()
            drop_temporary_table(connection, temporary)
            return int(count)

    assert one_round("agency") == 1
    event.listen(database.engine, "before_cursor_execute", record)
    try:
        assert one_round("nobody") == 0  # other values, same shape
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert len(seen) == 2, seen  # the CREATE … AS and the count (the DROP is a plain driver statement)
    assert all(hit == "CacheStats.CACHE_HIT" for hit in seen), seen


def test_a_rolled_back_table_leaves_no_collision(database: Database) -> None:
    _identify(database, {"u1": "agency"})
    with pytest.raises(RuntimeError), database.read() as connection:
        create_temporary_table(connection, _users_of("agency"), "fl_test")
        raise RuntimeError("the caller failed before dropping it")
    with database.read() as connection:
        temporary = create_temporary_table(connection, _users_of("agency"), "fl_test")
        assert connection.execute(select(temporary.c.user_id)).scalars().all() == ["u1"]
        drop_temporary_table(connection, temporary)
