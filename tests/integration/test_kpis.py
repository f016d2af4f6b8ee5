"""compute_kpis on SQLite and PostgreSQL: a hand-built dataset whose every KPI is worked out below, edge cases
(window edges, non-UTC offsets, missing inputs), the LTV thresholds, and sanity on synthetic activity.

The hand-built window is [2026-03-01, 2026-03-16): 15 days, so "per 30 days" multiplies by 2.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from store.database import Database
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.kpis.compute import KPI_BUILDERS, compute_kpis
from tools.kpis.definitions import KPI_DEFINITIONS, KPIS_BY_NAME
from tools.kpis.model import KpiSnapshot, KpiValue
from tools.synthetic import SyntheticConfig, generate_events
from tools.window import Window

WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))
EARLY = "2026-01-01T00:00:00Z"  # identify calls: long before the window, so they never make anyone active
PERSONAS = {
    "a1": "agency", "a2": "agency", "a3": "agency", "a4": "agency",
    "n1": "podcast_network", "n2": "podcast_network", "n3": "podcast_network",
    "s1": "solo_podcaster", "s2": "solo_podcaster", "s3": "solo_podcaster",
    "b1": "brand_sponsor",
}  # fmt: skip
# u1 is never identified: persona "unassigned". b1 has no event after its identify call.

# (user, event, timestamp, properties); user None = a system event (anonymousId "system").
Row = tuple[str | None, str, str, dict[str, Any]]
DATASET: list[Row] = [
    # a1: signs up in the window, converts 3 days later, two tickets, a report 90 minutes after signup.
    ("a1", "user_signed_up", "2026-03-02T10:00:00Z", {}),
    ("a1", "user_signed_up", "2026-03-03T10:00:00Z", {}),  # a repeat: the first signup counts
    ("a1", "report_generated", "2026-03-02T11:30:00Z", {"report_id": "r-a1"}),
    ("a1", "subscription_started", "2026-03-05T09:00:00Z", {"plan": "agency", "mrr": 299}),
    ("a1", "payment_succeeded", "2026-03-05T09:00:05Z", {"amount": 299}),
    ("a1", "support_ticket_opened", "2026-03-03T09:00:00Z", {"ticket_id": "t1"}),
    ("a1", "support_ticket_opened", "2026-03-04T09:00:00Z", {"ticket_id": "t2"}),
    ("a1", "support_ticket_resolved", "2026-03-04T11:00:00Z", {"ticket_id": "t1", "resolution_hours": 2}),
    ("a1", "support_ticket_resolved", "2026-03-05T09:00:00Z", {"ticket_id": "t2", "resolution_hours": 10}),
    ("a1", "task_completed", "2026-03-03T09:00:00Z", {"task": "sync", "automated": "TRUE"}),
    ("a1", "task_completed", "2026-03-03T10:00:00Z", {"task": "sync"}),
    # Three feature uses on one UTC day; the last is 00:30 on 3 March at +02:00, still 2 March in UTC.
    ("a1", "feature_used", "2026-03-02T10:00:00Z", {"feature": "dashboard"}),
    ("a1", "feature_used", "2026-03-02T23:59:59Z", {"feature": "dashboard"}),
    ("a1", "feature_used", "2026-03-03T00:30:00+02:00", {"feature": "report_editor"}),
    # a2: paying since February (mrr 99), upgrades in the window (+200), first report exactly at window start.
    ("a2", "user_signed_up", "2026-02-01T09:00:00Z", {}),
    ("a2", "subscription_started", "2026-02-03T09:00:00Z", {"plan": "pro", "mrr": 99}),
    ("a2", "subscription_upgraded", "2026-03-04T09:00:00Z",
     {"from_plan": "pro", "to_plan": "agency", "mrr_delta": 200}),
    ("a2", "payment_succeeded", "2026-03-03T09:00:00Z", {"amount": 99}),
    ("a2", "report_generated", "2026-03-01T00:00:00Z", {"report_id": "r-a2"}),  # 27 days 15 hours
    ("a2", "support_ticket_opened", "2026-03-05T09:00:00Z", {"ticket_id": "t3"}),
    ("a2", "support_ticket_resolved", "2026-03-06T09:00:00Z", {"ticket_id": "t3", "resolution_hours": 4.5}),
    ("a2", "feature_used", "2026-03-04T09:00:00Z", {"feature": "dashboard"}),
    ("a2", "feature_used", "2026-03-05T09:00:00Z", {"feature": "dashboard"}),
    # a3: paying since February (mrr 299), pays exactly at window start, cancels in the window.
    ("a3", "subscription_started", "2026-02-10T09:00:00Z", {"plan": "agency", "mrr": 299}),
    ("a3", "payment_succeeded", "2026-03-01T00:00:00Z", {"amount": 299}),
    ("a3", "subscription_cancelled", "2026-03-10T09:00:00Z", {"reason": "too_expensive"}),
    # a4: signs up exactly at window end: outside the window, so never active.
    ("a4", "user_signed_up", "2026-03-16T00:00:00Z", {}),
    # n1: signs up exactly at window start (written at +01:00), subscribes exactly 30 days later.
    ("n1", "user_signed_up", "2026-03-01T01:00:00+01:00", {}),
    ("n1", "report_generated", "2026-03-01T04:00:00+02:00", {"report_id": "r-n1"}),  # 02:00 UTC
    ("n1", "subscription_started", "2026-03-31T00:00:00Z", {"plan": "pro", "mrr": 99}),
    # n2: signs up in the window, subscribes 30 days and 1 second later: not converted.
    ("n2", "user_signed_up", "2026-03-10T10:00:00Z", {}),
    ("n2", "feature_used", "2026-03-10T10:00:00Z", {"feature": "dashboard"}),
    ("n2", "subscription_started", "2026-04-09T10:00:01Z", {"plan": "pro", "mrr": 99}),
    # n3: paying since January (99, +20 in February), contracts in the window (a positive delta is subtracted).
    ("n3", "report_generated", "2026-02-10T09:00:00Z", {"report_id": "r-n3a"}),
    ("n3", "report_generated", "2026-03-05T09:00:00Z", {"report_id": "r-n3b"}),
    ("n3", "subscription_started", "2026-01-15T09:00:00Z", {"plan": "pro", "mrr": 99}),
    ("n3", "subscription_expanded", "2026-02-20T09:00:00Z", {"mrr_delta": 20}),
    ("n3", "subscription_contracted", "2026-03-08T09:00:00Z", {"mrr_delta": 10}),
    ("n3", "payment_succeeded", "2026-03-02T09:00:00Z", {"amount": 119}),
    ("n3", "support_ticket_opened", "2026-03-09T09:00:00Z", {"ticket_id": "t4"}),
    ("n3", "support_ticket_resolved", "2026-03-10T15:00:00Z", {"ticket_id": "t4", "resolution_hours": 30}),
    ("n3", "task_failed", "2026-03-09T10:00:00Z", {"task": "sync", "reason": "timeout"}),
    ("n3", "task_failed", "2026-03-09T11:00:00Z", {"task": "sync", "reason": "timeout"}),
    # s1: signed up in February, first report in the window; ticket opened before the window.
    ("s1", "user_signed_up", "2026-02-20T10:00:00Z", {}),
    ("s1", "report_generated", "2026-03-02T10:00:00Z", {"report_id": "r-s1"}),
    ("s1", "support_ticket_opened", "2026-02-28T23:00:00Z", {"ticket_id": "t5"}),
    ("s1", "support_ticket_resolved", "2026-03-01T05:00:00Z", {"ticket_id": "t5", "resolution_hours": 6}),
    ("s1", "support_ticket_resolved", "2026-03-11T05:00:00Z", {"ticket_id": "t6", "resolution_hours": 8}),
    ("s1", "task_completed", "2026-03-02T10:00:00Z", {"task": "build_report", "automated": 1}),
    ("s1", "task_completed", "2026-03-02T11:00:00Z", {"task": "build_report", "automated": 0}),
    # Two feature uses on one local day at −01:00 that fall on two UTC days (2 and 3 March).
    ("s1", "feature_used", "2026-03-02T12:00:00Z", {"feature": "dashboard"}),
    ("s1", "feature_used", "2026-03-02T23:30:00-01:00", {"feature": "dashboard"}),
    # s2: subscribes exactly at window start: new in the window, not paying at its start.
    ("s2", "user_signed_up", "2026-02-25T10:00:00Z", {}),
    ("s2", "subscription_started", "2026-03-01T00:00:00Z", {"plan": "starter", "mrr": 29}),
    ("s2", "payment_succeeded", "2026-03-01T00:00:05Z", {"amount": 29}),
    # s3: paying since February; its cancellation and a payment fall exactly at window end (excluded).
    ("s3", "user_signed_up", "2026-01-20T10:00:00Z", {}),
    ("s3", "user_signed_up", "2026-03-05T10:00:00Z", {}),  # a repeat: the first signup was before the window
    ("s3", "subscription_started", "2026-02-01T09:00:00Z", {"plan": "starter", "mrr": 29}),
    ("s3", "payment_succeeded", "2026-03-02T09:00:00Z", {"amount": 29}),
    ("s3", "payment_succeeded", "2026-03-16T00:00:00Z", {"amount": 29}),
    ("s3", "subscription_cancelled", "2026-03-16T00:00:00Z", {"reason": "switched_tool"}),
    # u1 (unassigned): tasks with every spelling of "automated", a free subscription, no signup.
    ("u1", "task_completed", "2026-03-03T09:00:00Z", {"task": "sync", "automated": True}),
    ("u1", "task_completed", "2026-03-03T10:00:00Z", {"task": "sync", "automated": "true"}),
    ("u1", "task_completed", "2026-03-03T11:00:00Z", {"task": "sync", "automated": False}),
    ("u1", "task_failed", "2026-03-03T12:00:00Z", {"task": "sync", "reason": "timeout"}),
    ("u1", "feature_used", "2026-02-28T12:00:00Z", {"feature": "dashboard"}),
    ("u1", "feature_used", "2026-03-01T12:00:00Z", {"feature": "dashboard"}),
    ("u1", "report_generated", "2026-03-04T09:00:00Z", {"report_id": "r-u1"}),  # no signup: no TTV
    ("u1", "support_ticket_resolved", "2026-03-04T10:00:00Z", {"ticket_id": "t7", "resolution_hours": "fast"}),
    ("u1", "subscription_started", "2026-03-12T09:00:00Z", {"plan": "free", "mrr": 0}),
    # Costs: acquisition by persona (one without), infra shared; the ones on or outside the edges are excluded.
    (None, "acquisition_cost", "2026-03-01T02:00:00Z", {"amount": 300, "persona": "agency"}),
    (None, "acquisition_cost", "2026-03-08T02:00:00Z", {"amount": 150.5, "persona": "solo_podcaster"}),
    (None, "acquisition_cost", "2026-03-08T03:00:00Z", {"amount": 100}),
    (None, "acquisition_cost", "2026-02-28T23:59:59Z", {"amount": 1000, "persona": "agency"}),
    (None, "acquisition_cost", "2026-03-16T00:00:00Z", {"amount": 1000, "persona": "agency"}),
    (None, "infra_cost", "2026-03-01T01:00:00Z", {"amount": 700}),
    (None, "infra_cost", "2026-03-15T23:00:00Z", {"amount": 50}),
    (None, "infra_cost", "2026-03-16T00:00:00Z", {"amount": 999}),
]  # fmt: skip

NO_PAYING_AT_START = "no paying accounts at window start"
# Expected values (floats) or reasons (strings) per segment; "overall" is everyone.
# Active users: agency a1 a2 a3 (a4 only at the end), network n1 n2 n3, solo s1 s2 s3, unassigned u1 → 10.
EXPECTED: dict[str, dict[str, float | str]] = {
    "overall": {
        "conversion_rate": 2 / 3,  # signups a1 n1 n2; converted a1 (3 days), n1 (exactly 30 days)
        # paying at start a2 a3 n3 s3 (n=4); churn a3 → 1/4 × 30/15 = 0.5; ARPA 874/6 payers × 2
        "ltv": "fewer than 20 paying accounts (n=4)",
        "cac": 550.5 / 3,  # (300 + 150.5 + 100) ÷ new accounts a1 s2 u1
        "ltv_cac_ratio": "ltv: fewer than 20 paying accounts (n=4)",
        "retention_rate": 3 / 4,  # a2 n3 s3 still paying at end (s3's cancellation is at the end: excluded)
        "upsell_rate": 1 / 7,  # a2 upgraded ÷ paying in window a1 a2 a3 n3 s2 s3 u1
        "expansion_rate": 200 / 546,  # a2's upgrade ÷ MRR at start 99 + 299 + (99 + 20) + 29
        "net_revenue_retention": 437 / 546,  # at end: a2 299, a3 0, n3 119 − 10, s3 29
        "support_case_frequency": 4
        / 10
        * 2,  # tickets t1 t2 t3 t4 (t5 before the window) ÷ 10 active × 30/15
        "support_resolution_time": 6.0,  # [2, 4.5, 6, 8, 10, 30]: nearest rank ⌈6/2⌉ = 3rd ("fast" skipped)
        "automation_coverage": 4 / 7,  # a1 "TRUE", s1 1, u1 true and "true" ÷ 7 completed
        "infra_cost_per_user": 750 / 10,  # 700 + 50 (999 at the end excluded) ÷ 10 active
        "task_completion_rate": 7 / 10,  # 7 completed ÷ (7 + 3 failed)
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": 2 / 5,  # a2 (4 and 5 March), s1 (2 and 3 March UTC) ÷ a1 a2 n2 s1 u1
        "time_to_value_minutes": 120.0,  # [a1 90, n1 120, s1 14400, a2 39780]: 2nd; n3 reported before, u1 no signup
    },
    "agency": {
        "conversion_rate": 1.0,  # a1 ÷ a1 (a4's signup is at the window end)
        "ltv": "fewer than 20 paying accounts (n=2)",  # churn a3: 1/2 × 2 = 1.0
        "cac": 300.0,  # 300 ÷ a1
        "ltv_cac_ratio": "ltv: fewer than 20 paying accounts (n=2)",
        "retention_rate": 1 / 2,  # a2 of a2 a3
        "upsell_rate": 1 / 3,  # a2 of a1 a2 a3
        "expansion_rate": 200 / 398,  # 200 ÷ (99 + 299)
        "net_revenue_retention": 299 / 398,
        "support_case_frequency": 3 / 3 * 2,  # t1 t2 t3 ÷ a1 a2 a3 × 2
        "support_resolution_time": 4.5,  # [2, 4.5, 10]: 2nd
        "automation_coverage": 1 / 2,  # a1: "TRUE" yes, missing no
        "infra_cost_per_user": 75.0,  # shared cost: the overall figure in every persona
        "task_completion_rate": 1.0,  # 2 ÷ 2
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": 1 / 2,  # a2 of a1 a2 (a1's three uses are all on 2 March UTC)
        "time_to_value_minutes": 90.0,  # [90, 39780]: 1st (nearest rank ⌈2/2⌉ = 1)
    },
    "podcast_network": {
        "conversion_rate": 1 / 2,  # n1 of n1 n2
        "ltv": "no churn in the window: LTV is unbounded",
        "cac": "no new paying accounts in the window",  # n1 and n2 start after the window end
        "ltv_cac_ratio": "ltv: no churn in the window: LTV is unbounded",
        "retention_rate": 1.0,  # n3
        "upsell_rate": 0.0,
        "expansion_rate": 0.0,  # contraction is not expansion: 0 ÷ 119
        "net_revenue_retention": 109 / 119,
        "support_case_frequency": 1 / 3 * 2,
        "support_resolution_time": 30.0,
        "automation_coverage": "no task_completed events in the window",
        "infra_cost_per_user": 75.0,
        "task_completion_rate": 0.0,  # 0 ÷ (0 + 2)
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": 0.0,  # n2 used one feature once
        "time_to_value_minutes": 120.0,  # n1: 00:00 → 02:00 UTC
    },
    "solo_podcaster": {
        "conversion_rate": "no signups in the window",  # s3's repeat signup is not a first signup
        "ltv": "no churn in the window: LTV is unbounded",
        "cac": 150.5,  # 150.5 ÷ s2
        "ltv_cac_ratio": "ltv: no churn in the window: LTV is unbounded",
        "retention_rate": 1.0,  # s3 (s2 started at the window start: not paying *at* the start)
        "upsell_rate": 0.0,  # of s2 s3
        "expansion_rate": 0.0,
        "net_revenue_retention": 1.0,  # 29 ÷ 29
        "support_case_frequency": 0.0,
        "support_resolution_time": 6.0,  # [6, 8]: 1st
        "automation_coverage": 1 / 2,  # automated 1 yes, 0 no
        "infra_cost_per_user": 75.0,
        "task_completion_rate": 1.0,
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": 1.0,
        "time_to_value_minutes": 14400.0,  # 20 Feb 10:00 → 2 Mar 10:00 = 10 days
    },
    "unassigned": {
        "conversion_rate": "no signups in the window",
        "ltv": NO_PAYING_AT_START,
        "cac": "no acquisition_cost events in the window",  # u1 is new, nobody paid to acquire unassigned users
        "ltv_cac_ratio": f"ltv: {NO_PAYING_AT_START}",
        "retention_rate": NO_PAYING_AT_START,
        "upsell_rate": 0.0,  # u1 pays (a free plan) but did not upgrade
        "expansion_rate": NO_PAYING_AT_START,
        "net_revenue_retention": NO_PAYING_AT_START,
        "support_case_frequency": 0.0,
        "support_resolution_time": "no support tickets resolved in the window (with resolution_hours)",
        "automation_coverage": 2 / 3,
        "infra_cost_per_user": 75.0,
        "task_completion_rate": 3 / 4,
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": 0.0,  # one use in the window (the other was on 28 February)
        "time_to_value_minutes": (
            "no user reached first value in the window (a first report_generated after a user_signed_up)"
        ),
    },
    "brand_sponsor": {  # users but no event in the window: everything is missing except the shared cost
        "conversion_rate": "no signups in the window",
        "ltv": NO_PAYING_AT_START,
        "cac": "no new paying accounts in the window",
        "ltv_cac_ratio": f"ltv: {NO_PAYING_AT_START}",
        "retention_rate": NO_PAYING_AT_START,
        "upsell_rate": "no paying accounts in the window",
        "expansion_rate": NO_PAYING_AT_START,
        "net_revenue_retention": NO_PAYING_AT_START,
        "support_case_frequency": "no active users in the window",
        "support_resolution_time": "no support tickets resolved in the window (with resolution_hours)",
        "automation_coverage": "no task_completed events in the window",
        "infra_cost_per_user": 75.0,
        "task_completion_rate": "no task_completed or task_failed events in the window",
        "nps": "no answered NPS questions in the window",
        "feature_reuse_rate": "no feature_used events in the window",
        "time_to_value_minutes": (
            "no user reached first value in the window (a first report_generated after a user_signed_up)"
        ),
    },
}


def canonical_event(
    number: int, user: str | None, name: str, when: str, properties: dict[str, Any]
) -> CanonicalEvent:
    timestamp = datetime.fromisoformat(when)
    return CanonicalEvent(
        message_id=f"kpi-{number}",
        type="identify" if name == "identify" else "track",
        name=name,
        timestamp=timestamp,
        received_at=timestamp + timedelta(seconds=1),
        user_id=user,
        anonymous_id=None if user else "system",
        properties=properties,
    )


def ingest(database: Database, rows: list[Row]) -> None:
    EventIngestor(database).ingest([canonical_event(i, *row) for i, row in enumerate(rows)])


def hand_built_rows() -> list[Row]:
    identifies: list[Row] = [
        (user, "identify", EARLY, {"persona": persona}) for user, persona in PERSONAS.items()
    ]
    return [*identifies, *DATASET]


def snapshot(database: Database, window: Window = WINDOW, **options: Any) -> KpiSnapshot:
    with database.read() as connection:
        return compute_kpis(connection, window, **options)


def assert_expected(segment: dict[str, KpiValue], expected: dict[str, float | str], label: str) -> None:
    for name, want in expected.items():
        got = segment[name]
        if isinstance(want, str):
            assert (got.value, got.reason) == (None, want), f"{label}.{name}"
        else:
            assert got.reason is None, f"{label}.{name}: {got.reason}"
            assert got.value == pytest.approx(want, rel=1e-9), f"{label}.{name}"


@pytest.fixture
def hand_built(database: Database) -> Database:
    ingest(database, hand_built_rows())
    return database


def test_every_kpi_of_the_definitions_has_a_builder() -> None:
    assert list(KPI_BUILDERS) == [definition.name for definition in KPI_DEFINITIONS]


def test_hand_built_dataset_overall_and_per_persona(hand_built: Database) -> None:
    result = snapshot(hand_built)
    assert set(result.personas) == set(EXPECTED) - {"overall"}
    assert list(result.overall) == list(KPIS_BY_NAME)
    assert_expected(result.overall, EXPECTED["overall"], "overall")
    for persona, values in result.personas.items():
        assert list(values) == list(KPIS_BY_NAME)
        assert_expected(values, EXPECTED[persona], persona)


def test_denominators_numerators_and_secondary_figures(hand_built: Database) -> None:
    overall = snapshot(hand_built).overall
    conversion = overall["conversion_rate"]
    assert (conversion.n, conversion.numerator, conversion.denominator) == (3, 2, 3)
    support = overall["support_case_frequency"]
    # 4 tickets over 10 active users; per-user counts a1 2, a2 1, n3 1 → Σ² = 4 + 1 + 1.
    assert (support.n, support.numerator, support.denominator, support.sum_squares) == (10, 4, 10, 6)
    resolution = overall["support_resolution_time"]
    assert resolution.n == 6
    assert resolution.extra["mean_hours"] == pytest.approx(60.5 / 6)  # 2 + 4.5 + 6 + 8 + 10 + 30
    assert resolution.sum_squares == pytest.approx(4 + 20.25 + 36 + 64 + 100 + 900)
    ttv = overall["time_to_value_minutes"]
    assert (ttv.n, ttv.extra["mean_minutes"]) == (4, pytest.approx((90 + 120 + 14400 + 39780) / 4))
    ltv = overall["ltv"]
    assert ltv.n == 4
    assert ltv.extra["arpa_usd"] == pytest.approx(874 / 6 * 2)  # 299 + 99 + 299 + 119 + 29 + 29 by 6 payers
    assert ltv.extra["monthly_churn_rate"] == pytest.approx(0.5)
    nrr = overall["net_revenue_retention"]
    assert (nrr.n, nrr.extra["mrr_at_start_usd"], nrr.extra["mrr_at_end_usd"]) == (4, 546, 437)
    cac = overall["cac"]
    assert (cac.n, cac.extra["acquisition_cost_usd"]) == (3, pytest.approx(550.5))
    assert overall["infra_cost_per_user"].n == 10
    assert overall["task_completion_rate"].n == 10
    assert overall["nps"].n == 0


def test_aggregation_stays_in_the_database(hand_built: Database) -> None:
    """A fixed handful of statements, each returning a row per persona, whatever the number of events."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(hand_built.engine, "before_cursor_execute", record)
    try:
        snapshot(hand_built)
    finally:
        event.remove(hand_built.engine, "before_cursor_execute", record)
    queries = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    # Eight over events, rollups and users, one over survey answers (NPS), one listing the sealed rollup days.
    assert len(queries) <= 10


def test_window_given_at_another_offset_is_the_same_window(hand_built: Database) -> None:
    plus_five = timezone(timedelta(hours=5))
    shifted = Window(WINDOW.start.astimezone(plus_five), WINDOW.end.astimezone(plus_five))
    assert snapshot(hand_built, shifted).as_dict()["overall"] == snapshot(hand_built).as_dict()["overall"]


def test_moving_the_window_start_by_a_microsecond_drops_the_events_on_the_edge(hand_built: Database) -> None:
    later = Window(WINDOW.start + timedelta(microseconds=1), WINDOW.end)
    overall = snapshot(hand_built, later).overall
    # n1's signup and a2's first report were exactly on the start; s2's subscription now starts before it.
    assert overall["conversion_rate"].value == pytest.approx(1 / 2)  # a1 of a1 n2
    assert overall["time_to_value_minutes"].n == 3
    assert overall["retention_rate"].n == 5  # s2 is now paying at the start


def test_no_data_gives_reasons_not_zeros(database: Database) -> None:
    result = snapshot(database)
    assert result.personas == {}
    for name, value in result.overall.items():
        assert (value.value, value.n) == (None, 0), name
        assert value.reason, name


def test_users_without_subscriptions_have_no_ltv_cac_or_retention(database: Database) -> None:
    ingest(
        database,
        [
            ("u1", "identify", EARLY, {"persona": "agency"}),
            ("u1", "feature_used", "2026-03-02T10:00:00Z", {"feature": "dashboard"}),
            (None, "acquisition_cost", "2026-03-02T10:00:00Z", {"amount": 100, "persona": "agency"}),
        ],
    )
    result = snapshot(database)
    for segment in (result.overall, result.personas["agency"]):
        assert segment["ltv"].reason == NO_PAYING_AT_START
        assert segment["cac"].reason == "no new paying accounts in the window"
        assert segment["ltv_cac_ratio"].reason == f"ltv: {NO_PAYING_AT_START}"
        assert segment["retention_rate"].reason == NO_PAYING_AT_START
        assert segment["feature_reuse_rate"].value == 0.0


def paying_accounts(count: int, cancelled: int, new_accounts: int) -> list[Row]:
    """`count` accounts paying 100 a month since February, each paying 100 in March; `cancelled` of them
    cancel in March; `new_accounts` more start in March (without paying yet); 500 of acquisition cost."""
    rows: list[Row] = []
    for i in range(count):
        rows += [
            (f"p{i}", "identify", EARLY, {"persona": "agency"}),
            (f"p{i}", "subscription_started", "2026-02-01T09:00:00Z", {"plan": "pro", "mrr": 100}),
            (f"p{i}", "payment_succeeded", "2026-03-02T09:00:00Z", {"amount": 100}),
        ]
    rows += [(f"p{i}", "subscription_cancelled", "2026-03-20T09:00:00Z", {}) for i in range(cancelled)]
    rows += [
        (f"q{i}", "subscription_started", "2026-03-05T09:00:00Z", {"mrr": 100}) for i in range(new_accounts)
    ]
    rows.append((None, "acquisition_cost", "2026-03-01T09:00:00Z", {"amount": 500, "persona": "agency"}))
    return rows


MARCH = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))  # 30 days: no scaling


def test_ltv_with_enough_paying_accounts_and_churn(database: Database) -> None:
    ingest(database, paying_accounts(24, cancelled=2, new_accounts=2))
    overall = snapshot(database, MARCH, gross_margin=0.5).overall
    # ARPA 2400 / 24 = 100; monthly churn 2/24; LTV = 100 × 0.5 ÷ (1/12) = 600.
    assert overall["ltv"].value == pytest.approx(600.0)
    assert overall["ltv"].n == 24
    assert overall["cac"].value == pytest.approx(250.0)  # 500 ÷ 2 new accounts
    assert overall["ltv_cac_ratio"].value == pytest.approx(2.4)
    assert overall["retention_rate"].value == pytest.approx(22 / 24)
    assert snapshot(database, MARCH).overall["ltv"].value == pytest.approx(960.0)  # default margin 0.8


def test_ltv_without_churn_is_unbounded_even_with_enough_accounts(database: Database) -> None:
    ingest(database, paying_accounts(24, cancelled=0, new_accounts=1))
    overall = snapshot(database, MARCH).overall
    assert overall["ltv"].reason == "no churn in the window: LTV is unbounded"
    assert overall["ltv"].extra["arpa_usd"] == pytest.approx(100.0)
    assert overall["ltv_cac_ratio"].reason == "ltv: no churn in the window: LTV is unbounded"
    assert overall["retention_rate"].value == 1.0


SYNTHETIC_END = datetime(2026, 1, 1, tzinfo=UTC)
PROPORTIONS = {d.name for d in KPI_DEFINITIONS if d.kind == "proportion"}


SYNTHETIC = SyntheticConfig(users=300, days=60, end=SYNTHETIC_END)


@pytest.fixture
def synthetic(database: Database) -> Database:
    EventIngestor(database).ingest_stream(generate_events(SYNTHETIC))
    return database


def test_synthetic_activity_gives_finite_values_or_reasons(synthetic: Database) -> None:
    result = snapshot(synthetic, Window.last_days(30, SYNTHETIC_END))
    assert set(result.personas) == {"solo_podcaster", "podcast_network", "agency", "brand_sponsor"}
    for segment in (result.overall, *result.personas.values()):
        for name, kpi in segment.items():
            assert (kpi.value is None) == (kpi.reason is not None), name
            assert kpi.n >= 0
            if kpi.value is not None:
                assert math.isfinite(kpi.value), name
            if name in PROPORTIONS and kpi.value is not None:
                assert 0.0 <= kpi.value <= 1.0, name
                assert kpi.numerator is not None and kpi.denominator == kpi.n
    overall = result.overall
    assert overall["support_case_frequency"].n > 100  # most of the 300 users are active in the window
    assert overall["nps"].reason == "no answered NPS questions in the window"


def test_synthetic_numbers_are_the_same_on_sqlite(database: Database, tmp_path: Path) -> None:
    """On the PostgreSQL half, the same events in a SQLite file must give the same KPIs."""
    if database.dialect == "sqlite":
        pytest.skip("compares PostgreSQL with SQLite; runs on the PostgreSQL half")
    reference = Database(f"sqlite:///{tmp_path}/reference.db")
    window = Window.last_days(30, SYNTHETIC_END)
    try:
        for store in (database, reference):
            EventIngestor(store).ingest_stream(generate_events(SYNTHETIC))
        expected, got = snapshot(reference, window), snapshot(database, window)
    finally:
        reference.dispose()
    assert set(got.personas) == set(expected.personas)
    pairs = [(expected.overall, got.overall)]
    pairs += [(expected.personas[persona], got.personas[persona]) for persona in expected.personas]
    for want, have in pairs:
        for name, kpi in want.items():
            assert (have[name].n, have[name].reason) == (kpi.n, kpi.reason), name
            if kpi.value is None:
                assert have[name].value is None, name
            else:
                assert have[name].value == pytest.approx(kpi.value, rel=1e-9), name


@pytest.mark.parametrize(
    "names", [("ltv",), ("retention_rate", "nps"), ("ltv_cac_ratio", "support_case_frequency")]
)
def test_computing_only_some_kpis_gives_the_same_values(hand_built: Database, names: tuple[str, ...]) -> None:
    """Escalation checks ask for a few KPIs (`only=`): the figures must be those of the full computation."""
    with hand_built.read() as connection:
        full = compute_kpis(connection, WINDOW)
        some = compute_kpis(connection, WINDOW, only=list(names))
    for name in names:
        assert some.overall[name].as_dict() == full.overall[name].as_dict(), name
        for persona, values in full.personas.items():
            assert some.personas[persona][name].as_dict() == values[name].as_dict(), (persona, name)
