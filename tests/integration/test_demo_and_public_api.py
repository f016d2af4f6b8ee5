"""`feedbackloop demo` end to end (small), and the public Python API's construction rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import feedbackloop
from feedbackloop.cli import app
from store.database import Database
from store.models import EventRow, UserRow
from store.repositories.summary import event_rate_by_persona, find_event

runner = CliRunner()


def test_demo_command_fills_a_database_and_prints_the_summary(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # on PostgreSQL the demo writes its files into the current directory
    result = runner.invoke(
        app,
        ["demo", "--users", "150", "--days", "30", "--database-url", database_url],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "Users by persona" in result.output and "Most frequent events" in result.output
    assert "deployment v1.4.0" in result.output
    # The two demo experiments: the planted onboarding effect wins, the null pricing test does not.
    assert "Guided onboarding (onboarding-flow) — running" in result.output
    assert "winner: guided" in result.output
    assert "Annual plan shown first" in result.output and "winner: none" in result.output
    database = Database(database_url)
    with database.read() as connection:
        events = connection.execute(select(func.count()).select_from(EventRow)).scalar_one()
        personas = set(connection.execute(select(UserRow.persona).distinct()).scalars())
        deployed_at = find_event(connection, name="deployment", property_name="version", value="v1.4.0")
    assert events > 5_000
    assert personas == {"solo_podcaster", "podcast_network", "agency", "brand_sponsor"}
    assert deployed_at is not None
    assert f"Stored {events:,} events" in result.output
    assert "Sprint retro retro-" in result.output and "Backlog items filed to" in result.output
    database.dispose()


def test_demo_refuses_a_non_empty_database_without_reset(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = ["demo", "--users", "50", "--days", "14", "--database-url", database_url]
    assert runner.invoke(app, arguments).exit_code == 0
    refused = runner.invoke(app, arguments)
    assert refused.exit_code == 2 and "--reset" in refused.output
    again = runner.invoke(app, [*arguments, "--reset"])
    assert again.exit_code == 0, again.output


def test_demo_data_shows_the_planted_deployment_effect(database: Database) -> None:
    from tools.events.ingest import EventIngestor
    from tools.synthetic import SyntheticConfig, generate_events

    config = SyntheticConfig(users=600, days=90, seed=11, end=datetime(2026, 6, 1, tzinfo=UTC))
    EventIngestor(database).ingest_stream(generate_events(config))
    with database.read() as connection:
        deployed_at = find_event(connection, name="deployment", property_name="version", value="v1.4.0")
        assert deployed_at is not None
        window = timedelta(days=14)
        arguments = {"event_name": "error_occurred", "feature": "report_generation"}
        before = event_rate_by_persona(connection, start=deployed_at - window, end=deployed_at, **arguments)
        after = event_rate_by_persona(connection, start=deployed_at, end=deployed_at + window, **arguments)

    def ratio(persona: str) -> float:
        return (after[persona][0] / after[persona][1]) / (before[persona][0] / before[persona][1])

    assert ratio("podcast_network") > 2.0
    assert 0.5 < ratio("solo_podcaster") < 1.6


def test_public_api_exports_and_connect_upgrades_a_fresh_url(database_url: str) -> None:
    assert {"User", "EventIngestor", "connect"} <= set(feedbackloop.__all__)
    database = feedbackloop.connect(database_url)
    try:
        user = feedbackloop.User(user_id="u1", persona_segment="agency")
        summary = feedbackloop.EventIngestor(database).ingest(
            [
                feedbackloop.CanonicalEvent(
                    message_id="api-1",
                    type="identify",
                    name="identify",
                    timestamp=datetime(2026, 1, 1, tzinfo=UTC),
                    received_at=datetime(2026, 1, 1, tzinfo=UTC),
                    user_id=user.user_id,
                    properties={"persona": user.persona_segment},
                )
            ]
        )
        assert summary.accepted == 1
        with database.read() as connection:
            assert connection.execute(select(UserRow.persona)).scalar_one() == "agency"
    finally:
        database.dispose()
