"""The dashboard's stored shortcuts agree with the raw events, on SQLite and PostgreSQL.

- daily_user_activity (rolled up by the worker): every KPI and metric report, for aligned and unaligned windows,
  equals the same figures computed from events alone (rollup days hidden in a rolled-back transaction), before
  and after rolling up, after late events made rolled-up days stale, and after rolling those up again.
- Milestones and per-entity first occurrences kept by ingestion (users.signed_up_at / first_report_at /
  subscribed_at, reports, campaigns): earliest wins whatever the arrival order, and migration 0014's backfill
  from events gives the same rows.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, delete, event, func, insert, select

from feedbackloop.cli import app
from feedbackloop.settings import Settings
from feedbackloop.worker import ROLLUP_DAYS_PER_PASS, Worker
from store.database import Database
from store.migrate import alembic_config
from store.models import (
    ActivityRollupDayRow,
    ActivityStaleDayRow,
    CampaignRow,
    DailyUserActivityRow,
    EventRow,
    ReportRow,
    UserRow,
)
from store.repositories.active_users import shared_activity
from store.repositories.activity_rollups import mark_stale_days, refresh_rollups, roll_up_day, sealed_days
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.kpis.compute import compute_kpis
from tools.metrics.compute import METRIC_SPECS, metric_reports
from tools.synthetic import SyntheticConfig, generate_events
from tools.window import Window

END = datetime(2026, 3, 1, tzinfo=UTC)
ALIGNED = Window(END - timedelta(days=14), END)
UNALIGNED = Window(datetime(2026, 2, 10, 13, 37, tzinfo=UTC), datetime(2026, 2, 25, 6, 5, 30, tzinfo=UTC))
NOW = datetime.now(UTC)  # the rollup closes days by the real clock; every simulated day is long closed


def late(user: str, name: str, when: datetime, number: int, **properties: Any) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=f"late-{number}",
        type="track",
        name=name,
        user_id=user,
        anonymous_id=None,
        timestamp=when,
        received_at=NOW,
        properties=properties,
        context={},
    )


@pytest.fixture
def simulated(database: Database) -> Database:
    config = SyntheticConfig(users=60, days=40, seed=11, end=END)
    EventIngestor(database).ingest_stream(generate_events(config))
    return database


def figures(connection: Connection, window: Window) -> dict[str, Any]:
    """What the dashboard shows for the window: every KPI now and before, every metric report."""
    with shared_activity(connection):
        return {
            "kpis": compute_kpis(connection, window).as_dict(),
            "previous": compute_kpis(connection, window.previous()).as_dict(),
            "metrics": [r.as_dict() for r in metric_reports(connection, list(METRIC_SPECS), window)],
        }


def stored_figures(database: Database, window: Window) -> dict[str, Any]:
    with database.read() as connection:
        return figures(connection, window)


def raw_figures(database: Database, window: Window) -> dict[str, Any]:
    """The same figures with no day sealed: everything read from events (the change is rolled back)."""
    with database.engine.connect() as connection, connection.begin() as transaction:
        connection.execute(delete(ActivityRollupDayRow))
        assert sealed_days(connection, window.start, window.end) == []
        result = figures(connection, window)
        transaction.rollback()
    return result


def assert_same(left: Any, right: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (sums taken in another order)."""
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            assert_same(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    elif isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(left) and math.isnan(right)
        ), f"{path}: {left} != {right}"
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def count(database: Database, row: Any) -> int:
    with database.read() as connection:
        return int(connection.execute(select(func.count()).select_from(row)).scalar_one())


@pytest.mark.parametrize("window", [ALIGNED, UNALIGNED], ids=["aligned", "unaligned"])
def test_rolled_up_figures_equal_the_raw_ones(simulated: Database, window: Window) -> None:
    before = stored_figures(simulated, window)
    assert count(simulated, DailyUserActivityRow) == 0  # nothing rolled up yet: all from events
    report = refresh_rollups(simulated, NOW)
    assert report.days >= 40 and report.remaining == 0 and report.users > 0
    with simulated.read() as connection:
        sealed = sealed_days(connection, window.start, window.end)
    assert sealed and sealed[0] >= window.start.date() and sealed[-1] < window.end.date()
    rolled = stored_figures(simulated, window)
    assert_same(rolled, before)
    assert_same(rolled, raw_figures(simulated, window))
    assert rolled["kpis"]["overall"]["support_case_frequency"]["n"] > 0  # the figures are not all empty


def test_late_events_make_their_day_stale_until_rolled_up_again(simulated: Database) -> None:
    refresh_rollups(simulated, NOW)
    with simulated.read() as connection:
        some_user = connection.execute(select(UserRow.id).order_by(UserRow.id).limit(1)).scalar_one()
    day = datetime(2026, 2, 20, 9, tzinfo=UTC)
    EventIngestor(simulated).ingest(
        [
            late(some_user, "error_occurred", day, 1, error_type="timeout"),
            late(some_user, "support_ticket_opened", day + timedelta(hours=1), 2, ticket_id="late"),
            late(some_user, "feature_used", day + timedelta(days=1), 3, feature="dashboard"),
            late(some_user, "payment_succeeded", day + timedelta(days=1), 4, amount=12.5),
        ]
    )
    with simulated.read() as connection:
        stale = set(connection.execute(select(ActivityStaleDayRow.day)).scalars())
        sealed = sealed_days(connection, ALIGNED.start, ALIGNED.end)
    assert stale == {"2026-02-20", "2026-02-21"}
    assert day.date() not in sealed and (day + timedelta(days=1)).date() not in sealed
    stale_view = stored_figures(simulated, ALIGNED)
    assert_same(stale_view, raw_figures(simulated, ALIGNED))

    report = refresh_rollups(simulated, NOW)
    assert (report.days, report.stale) == (2, 2)
    assert count(simulated, ActivityStaleDayRow) == 0
    assert_same(stored_figures(simulated, ALIGNED), stale_view)


def test_a_persona_change_follows_into_rollups_and_reports(simulated: Database) -> None:
    refresh_rollups(simulated, NOW)
    with simulated.read() as connection:
        user, persona = connection.execute(
            select(ReportRow.user_id, UserRow.persona)
            .join(UserRow, UserRow.id == ReportRow.user_id)
            .where(ReportRow.decided_at >= ALIGNED.start, ReportRow.decided_at < ALIGNED.end)
            .order_by(ReportRow.user_id)
            .limit(1)
        ).one()
    new_persona = "agency" if persona != "agency" else "brand_sponsor"
    identify = CanonicalEvent(
        message_id="late-identify", type="identify", name="identify", user_id=user, anonymous_id=None,
        timestamp=NOW, received_at=NOW, properties={"persona": new_persona}, context={},
    )  # fmt: skip
    EventIngestor(simulated).ingest([identify])
    with simulated.read() as connection:
        assert (
            connection.execute(select(UserRow.persona).where(UserRow.id == user)).scalar_one() == new_persona
        )
        rolled = set(
            connection.execute(
                select(DailyUserActivityRow.persona).where(DailyUserActivityRow.user_id == user)
            ).scalars()
        )
        reported = set(
            connection.execute(select(ReportRow.persona).where(ReportRow.user_id == user)).scalars()
        )
    assert rolled == reported == {new_persona}
    assert count(simulated, ActivityStaleDayRow) == 0  # the identify is today's: nothing to re-roll
    assert_same(stored_figures(simulated, ALIGNED), raw_figures(simulated, ALIGNED))


def test_an_identify_that_keeps_the_persona_updates_no_carried_rows(simulated: Database) -> None:
    """Only a persona that changes is copied onto rollup rows and reports: repeated identifies (every login, in
    many products) cost no UPDATE of them."""
    refresh_rollups(simulated, NOW)
    with simulated.read() as connection:
        user, persona = connection.execute(
            select(ReportRow.user_id, UserRow.persona)
            .join(UserRow, UserRow.id == ReportRow.user_id)
            .order_by(ReportRow.user_id)
            .limit(1)
        ).one()
    updates: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    def identify(message_id: str, new_persona: str) -> None:
        EventIngestor(simulated).ingest([CanonicalEvent(
            message_id=message_id, type="identify", name="identify", user_id=user, anonymous_id=None,
            timestamp=NOW, received_at=NOW, properties={"persona": new_persona}, context={},
        )])  # fmt: skip

    event.listen(simulated.engine, "before_cursor_execute", record)
    try:
        identify("same-persona", persona)
        touched = [u for u in updates if "daily_user_activity" in u or "reports" in u]
        assert touched == []
        identify("other-persona", "agency" if persona != "agency" else "brand_sponsor")
        touched = [u for u in updates if "daily_user_activity" in u or "reports" in u]
        assert len(touched) == 2  # the persona follows onto both
    finally:
        event.remove(simulated.engine, "before_cursor_execute", record)


def _errors_rolled_up(database: Database, day: str, user: str) -> int:
    with database.read() as connection:
        found = connection.execute(
            select(DailyUserActivityRow.errors).where(
                DailyUserActivityRow.day == day, DailyUserActivityRow.user_id == user
            )
        ).scalar_one_or_none()
    return int(found or 0)


@pytest.mark.parametrize("first", ["ingestion", "roll-up"])
def test_an_ingestion_and_a_roll_up_of_the_same_day_never_lose_its_events(
    simulated: Database, first: str
) -> None:
    """PostgreSQL, two transactions at once: an ingestion of a late event of a rolled-up day, and a roll-up of
    that day. Whichever takes the day's lock first, the other waits; afterwards the day either holds the event
    in its rollup or is stale (read from events), so the figures count it either way. Two ingestions of a day
    already marked stale do not wait for each other. SQLite serialises writers, so there the two simply run one
    after the other."""
    refresh_rollups(simulated, NOW)
    with simulated.read() as connection:
        user = connection.execute(select(UserRow.id).order_by(UserRow.id).limit(1)).scalar_one()
    moment = datetime(2026, 2, 20, 9, tzinfo=UTC)
    day = moment.date()
    ingestor = EventIngestor(simulated)
    ingestor.ingest([late(user, "error_occurred", moment, 900)])  # the day is stale, its marker committed
    before = _errors_rolled_up(simulated, "2026-02-20", user)
    roll_up = threading.Thread(target=lambda: _roll_up(simulated, day))
    if simulated.dialect != "postgresql":
        ingestor.ingest([late(user, "error_occurred", moment, 901)])
        _roll_up(simulated, day)
    elif first == "ingestion":
        with simulated.write() as connection:  # an ingest transaction, held open after marking the day
            mark_stale_days(connection, [moment], NOW)
            with simulated.write() as other:  # a second ingestion of the day shares the lock: no wait
                mark_stale_days(other, [moment], NOW)
            connection.execute(insert(EventRow).values(
                message_id="late-901", type="track", name="error_occurred", user_id=user,
                timestamp=moment, received_at=NOW, properties={}, context={},
            ))  # fmt: skip
            roll_up.start()
            roll_up.join(timeout=1.0)
            assert roll_up.is_alive(), "the roll-up must wait for the ingestion holding the day"
        roll_up.join(timeout=30)
        assert not roll_up.is_alive()
    else:
        locked, release = threading.Event(), threading.Event()

        def held_roll_up() -> None:
            with simulated.write() as connection:
                roll_up_day(connection, day, NOW)
                locked.set()
                release.wait(timeout=30)

        holder = threading.Thread(target=held_roll_up)
        holder.start()
        assert locked.wait(timeout=30)
        ingesting = threading.Thread(
            target=lambda: ingestor.ingest([late(user, "error_occurred", moment, 901)])
        )
        ingesting.start()
        ingesting.join(timeout=1.0)
        assert ingesting.is_alive(), "the ingestion must wait for the roll-up holding the day"
        release.set()
        holder.join(timeout=30)
        ingesting.join(timeout=30)
        assert not ingesting.is_alive()
    with simulated.read() as connection:
        stale = set(connection.execute(select(ActivityStaleDayRow.day)).scalars())
    rolled_up = _errors_rolled_up(simulated, "2026-02-20", user)
    # Either the roll-up saw both late events, or the day is stale again; never a rollup without them and no
    # marker.
    assert rolled_up == before + 2 or "2026-02-20" in stale, (rolled_up, before, stale)
    assert_same(stored_figures(simulated, ALIGNED), raw_figures(simulated, ALIGNED))


def _roll_up(database: Database, day: date) -> None:
    with database.write() as connection:
        roll_up_day(connection, day, NOW)


def test_events_of_a_day_not_closed_yet_mark_nothing(database: Database) -> None:
    EventIngestor(database).ingest([late("u1", "error_occurred", NOW - timedelta(minutes=1), 1)])
    assert count(database, ActivityStaleDayRow) == 0
    report = refresh_rollups(database, NOW)
    # Only closed days are rolled up: today (and, within the grace after midnight, yesterday) stay open.
    with database.read() as connection:
        days = set(connection.execute(select(ActivityRollupDayRow.day)).scalars())
    assert NOW.date().isoformat() not in days
    assert report.users == 0


def test_worker_rolls_up_and_the_cli_too(simulated: Database) -> None:
    from typer.testing import CliRunner

    settings = Settings(database_url=simulated.url, _env_file=None)
    worker_report = Worker(simulated, settings).refresh_rollups()
    assert worker_report.days == ROLLUP_DAYS_PER_PASS and worker_report.remaining > 0  # most recent first
    assert worker_report.users > 0
    EventIngestor(simulated).ingest([late("late-user", "error_occurred", END - timedelta(days=3), 9)])

    runner = CliRunner()
    result = runner.invoke(app, ["rollups", "refresh", "--database-url", simulated.url])
    assert result.exit_code == 0, result.output
    # The ten days the worker left, and the one the late event made stale.
    expected = f"rolled up {worker_report.remaining + 1} days (1 made stale by late events)"
    assert expected in result.output and "0 days left" in result.output
    bad = runner.invoke(app, ["rollups", "refresh", "--max-days", "0", "--database-url", simulated.url])
    assert bad.exit_code == 2 and "--max-days" in bad.output


def test_first_occurrences_keep_the_earliest_whatever_the_order(database: Database) -> None:
    t = datetime(2026, 2, 1, 9, tzinfo=UTC)
    ingestor = EventIngestor(database)
    ingestor.ingest(
        [
            late("u1", "report_generated", t + timedelta(hours=5), 1, report_id="r1"),
            late("u1", "report_sent", t + timedelta(days=2), 2, report_id="r1"),
            late("u2", "report_corrected", t + timedelta(days=3), 3, report_id="r1"),
            late("u1", "campaign_ended", t + timedelta(days=5), 4, campaign_id=7),
        ]
    )
    ingestor.ingest(  # earlier, arriving later: they win
        [
            late("u1", "user_signed_up", t, 5),
            late("u1", "report_generated", t + timedelta(hours=2), 6, report_id="r0"),
            late("u3", "report_sent", t + timedelta(days=1), 7, report_id="r1"),
            late("u1", "subscription_started", t + timedelta(days=4), 8),
            late("u4", "campaign_ended", t + timedelta(days=4), 9, campaign_id=7),
            late("u4", "sponsor_renewed", t + timedelta(days=30), 10, campaign_id=7),
            late("u1", "report_sent", t + timedelta(days=9), 11, report_id="r1"),  # later again: ignored
        ]
    )
    with database.read() as connection:
        user = connection.execute(select(UserRow.__table__).where(UserRow.id == "u1")).one()
        report = connection.execute(select(ReportRow.__table__).where(ReportRow.report_id == "r1")).one()
        campaign = connection.execute(
            select(CampaignRow.__table__).where(CampaignRow.campaign_id == "7")
        ).one()
    assert (user.signed_up_at, user.first_report_at, user.subscribed_at) == (
        t,
        t + timedelta(hours=2),
        t + timedelta(days=4),
    )
    assert (report.user_id, report.sent_at, report.corrected_at) == (
        "u3",
        t + timedelta(days=1),
        t + timedelta(days=3),
    )
    assert (report.accurate, report.decided_at) == (
        0,
        t + timedelta(days=3),
    )  # corrected 2 days after the send
    assert (campaign.ended_user_id, campaign.ended_at) == ("u4", t + timedelta(days=4))
    assert (campaign.renewed_user_id, campaign.renewed_at) == ("u4", t + timedelta(days=30))


def test_migration_backfill_matches_what_ingestion_keeps(simulated: Database) -> None:
    def kept() -> dict[str, Any]:
        with simulated.read() as connection:
            return {
                "users": connection.execute(
                    select(
                        UserRow.id, UserRow.signed_up_at, UserRow.first_report_at, UserRow.subscribed_at
                    ).order_by(UserRow.id)
                ).all(),
                "reports": connection.execute(
                    select(ReportRow.__table__).order_by(ReportRow.report_id)
                ).all(),
                "campaigns": connection.execute(
                    select(CampaignRow.__table__).order_by(CampaignRow.campaign_id)
                ).all(),
            }

    by_ingestion = kept()
    assert by_ingestion["reports"] and by_ingestion["campaigns"]
    with simulated.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0013")
        command.upgrade(alembic_config(connection), "head")
    assert kept() == by_ingestion
