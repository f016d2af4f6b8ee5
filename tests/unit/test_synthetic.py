"""The synthetic generator is what the demo, tests and benchmarks stand on: it must be deterministic, follow the
tracking plan, and carry the planted deployment effect clearly enough for the retro to find it."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from tools.events.model import CanonicalEvent
from tools.synthetic import (
    PlantedDeployment,
    SyntheticConfig,
    SyntheticConfigError,
    count_hint,
    generate_events,
)

END = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = SyntheticConfig(users=150, end=END)
MEDIUM = SyntheticConfig(users=800, end=END)
REQUIRED_PROPERTIES = {
    "user_signed_up": {"persona", "plan", "source"},
    "onboarding_step_completed": {"step", "step_index", "total_steps"},
    "onboarding_completed": {"duration_seconds"},
    "campaign_created": {"campaign_id", "sponsor_id", "budget"},
    "report_generated": {"report_id", "campaign_id", "duration_seconds", "template"},
    "report_sent": {"report_id", "campaign_id", "recipient_role"},
    "report_corrected": {"report_id", "fields_changed"},
    "campaign_ended": {"campaign_id", "sponsor_id", "outcome"},
    "sponsor_renewed": {"campaign_id", "sponsor_id", "amount"},
    "subscription_started": {"plan", "mrr"},
    "subscription_upgraded": {"from_plan", "to_plan", "mrr_delta"},
    "subscription_expanded": {"mrr_delta"},
    "subscription_contracted": {"mrr_delta"},
    "subscription_cancelled": {"reason", "mrr"},
    "payment_succeeded": {"amount", "currency"},
    "acquisition_cost": {"amount", "channel", "persona"},
    "infra_cost": {"amount", "period_start", "period_end"},
    "support_ticket_opened": {"ticket_id", "category", "severity"},
    "support_ticket_resolved": {"ticket_id", "resolution_hours"},
    "error_occurred": {"feature", "code", "message"},
    "task_completed": {"task", "automated", "duration_seconds"},
    "task_failed": {"task", "reason"},
    "feature_used": {"feature"},
    "deployment": {"version", "service", "environment", "commit"},
    "identify": {"persona", "plan", "email", "company", "created_at"},
}


@pytest.fixture(scope="module")
def medium_events() -> list[CanonicalEvent]:
    return list(generate_events(MEDIUM))


def _by_user(events: list[CanonicalEvent]) -> dict[str, list[CanonicalEvent]]:
    users: dict[str, list[CanonicalEvent]] = defaultdict(list)
    for event in events:
        if event.user_id is not None:
            users[event.user_id].append(event)
    return users


def _personas(events: list[CanonicalEvent]) -> dict[str, str]:
    return {e.user_id: e.properties["persona"] for e in events if e.name == "identify" and e.user_id}


def _report_errors_per_active_user(
    events: list[CanonicalEvent], persona: str, start: datetime, end: datetime
) -> float:
    """The metric definition: events in [start, end) ÷ users with any event in that window."""
    personas = _personas(events)
    active: set[str] = set()
    errors = 0
    for event in events:
        if event.user_id is None or personas[event.user_id] != persona or not start <= event.timestamp < end:
            continue
        active.add(event.user_id)
        errors += event.name == "error_occurred" and event.properties["feature"] == "report_generation"
    return errors / len(active)


def test_same_config_gives_identical_events_and_another_seed_differs() -> None:
    first, second = list(generate_events(SMALL)), list(generate_events(SMALL))
    assert first == second
    other_seed = list(generate_events(SyntheticConfig(users=150, end=END, seed=8)))
    assert [(e.name, e.timestamp, e.properties) for e in other_seed] != [
        (e.name, e.timestamp, e.properties) for e in first
    ]


def test_message_ids_are_unique_and_short(medium_events: list[CanonicalEvent]) -> None:
    ids = [event.message_id for event in medium_events]
    assert len(set(ids)) == len(ids)
    assert max(len(message_id) for message_id in ids) <= 100


def test_timestamps_are_utc_and_inside_the_period(medium_events: list[CanonicalEvent]) -> None:
    start = END - timedelta(days=MEDIUM.days)
    for event in medium_events:
        assert event.timestamp.utcoffset() == timedelta(0) and event.timestamp.tzinfo is not None
        assert start <= event.timestamp < END
        assert timedelta(0) < event.received_at - event.timestamp <= timedelta(seconds=10)
        assert event.context == {"library": {"name": "feedbackloop-synthetic", "version": "1"}}


def test_every_user_starts_with_identify_then_signup_and_stays_in_time_order(
    medium_events: list[CanonicalEvent],
) -> None:
    users = _by_user(medium_events)
    assert len(users) == MEDIUM.users
    for user_id, events in users.items():
        assert [e.name for e in events[:2]] == ["identify", "user_signed_up"]
        assert events[0].type == "identify" and all(e.type == "track" for e in events[1:])
        assert user_id.startswith("u") and len(user_id) == 7
        assert events[0].properties["email"].endswith("@example.test")
        assert all(a.timestamp <= b.timestamp for a, b in pairwise(events))
        names = [e.name for e in events]
        if "report_generated" in names:
            assert names.index("onboarding_step_completed") < names.index("report_generated")


def test_events_carry_the_tracking_plan_properties(medium_events: list[CanonicalEvent]) -> None:
    seen = Counter(event.name for event in medium_events)
    assert set(REQUIRED_PROPERTIES) | {"podcast_connected"} == set(seen)
    for event in medium_events:
        assert REQUIRED_PROPERTIES.get(event.name, set()) <= set(event.properties), event


def test_corrections_and_renewals_fall_inside_their_windows(medium_events: list[CanonicalEvent]) -> None:
    sent = {e.properties["report_id"]: e.timestamp for e in medium_events if e.name == "report_sent"}
    ended = {e.properties["campaign_id"]: e.timestamp for e in medium_events if e.name == "campaign_ended"}
    for event in medium_events:
        if event.name == "report_corrected":
            assert timedelta(0) < event.timestamp - sent[event.properties["report_id"]] < timedelta(days=7)
        if event.name == "sponsor_renewed":
            assert (
                timedelta(0) < event.timestamp - ended[event.properties["campaign_id"]] < timedelta(days=14)
            )
    assert 0 < sum(e.name == "sponsor_renewed" for e in medium_events) < len(ended)


def test_every_persona_is_present(medium_events: list[CanonicalEvent]) -> None:
    counts = Counter(_personas(medium_events).values())
    assert set(counts) == set(MEDIUM.personas)
    assert counts["solo_podcaster"] > counts["brand_sponsor"]


def test_time_to_value_differs_by_persona_in_the_designed_direction(
    medium_events: list[CanonicalEvent],
) -> None:
    personas = _personas(medium_events)
    ttv_minutes: dict[str, list[float]] = defaultdict(list)
    for user_id, events in _by_user(medium_events).items():
        first_report = next((e.timestamp for e in events if e.name == "report_generated"), None)
        if first_report is not None:
            ttv_minutes[personas[user_id]].append((first_report - events[1].timestamp).total_seconds() / 60)
    medians = {persona: statistics.median(values) for persona, values in ttv_minutes.items()}
    assert medians["agency"] < medians["podcast_network"] < medians["solo_podcaster"]
    assert all(10 < median < 3 * 24 * 60 for median in medians.values()), medians


def test_planted_deployment_triples_report_errors_for_its_persona_only(
    medium_events: list[CanonicalEvent],
) -> None:
    deployed = END - timedelta(days=MEDIUM.days) + timedelta(days=76, hours=10)
    before, after = (deployed - timedelta(days=14), deployed), (deployed, deployed + timedelta(days=14))

    def ratio(persona: str) -> float:
        return _report_errors_per_active_user(
            medium_events, persona, *after
        ) / _report_errors_per_active_user(medium_events, persona, *before)

    assert ratio("podcast_network") > 2
    assert 0.5 < ratio("agency") < 1.6


def test_without_the_deployment_only_the_planted_errors_change() -> None:
    """The planted effect must be the only difference, or the retro could blame the deploy for other changes."""
    planted = list(generate_events(SMALL))
    unplanted = list(generate_events(SyntheticConfig(users=150, end=END, deployments=())))

    def others(events: list[CanonicalEvent]) -> list[tuple[str | None, str, datetime]]:
        return [
            (e.user_id, e.name, e.timestamp)
            for e in events
            if e.user_id is not None and e.properties.get("feature") != "report_generation"
        ]

    assert others(planted) == others(unplanted)
    assert sum(e.name == "deployment" for e in unplanted) == 0


def test_system_events_include_the_deployment_and_weekly_costs(medium_events: list[CanonicalEvent]) -> None:
    system = [e for e in medium_events if e.user_id is None]
    assert all(e.anonymous_id == "system" for e in system)
    (deployment,) = [e for e in system if e.name == "deployment"]
    assert deployment.properties["version"] == "v1.4.0"
    assert deployment.timestamp == END - timedelta(days=90) + timedelta(days=76, hours=10)
    assert len(deployment.properties["commit"]) == 40
    weeks = 13  # ceil(90 / 7)
    assert sum(e.name == "infra_cost" for e in system) == weeks
    acquisition = Counter(e.properties["persona"] for e in system if e.name == "acquisition_cost")
    assert acquisition == dict.fromkeys(MEDIUM.personas, weeks)


def test_every_deployment_is_emitted_with_its_version() -> None:
    deployments = (PlantedDeployment(), PlantedDeployment(version="v1.5.0", day=40, persona="agency"))
    config = SyntheticConfig(users=20, end=END, deployments=deployments)
    versions = {e.properties["version"] for e in generate_events(config) if e.name == "deployment"}
    assert versions == {"v1.4.0", "v1.5.0"}


@pytest.mark.parametrize(
    "config",
    [
        MEDIUM,
        SyntheticConfig(users=300, days=30, end=END, seed=3),
        SyntheticConfig(users=1000, days=180, end=END),
    ],
)
def test_count_hint_is_within_a_quarter_of_the_real_count(config: SyntheticConfig) -> None:
    real = sum(1 for _ in generate_events(config))
    assert 0.75 * real <= count_hint(config) <= 1.25 * real


def test_default_size_is_in_the_designed_range() -> None:
    count = sum(1 for _ in generate_events(SyntheticConfig(end=END)))
    assert 150_000 <= count <= 300_000


@pytest.mark.parametrize(
    "config",
    [
        SyntheticConfig(end=datetime(2026, 1, 1)),
        SyntheticConfig(end=END, persona_weights=(1.0,)),
        SyntheticConfig(end=END, days=0),
    ],
)
def test_invalid_configs_are_rejected_with_a_clear_error(config: SyntheticConfig) -> None:
    with pytest.raises(SyntheticConfigError):
        next(iter(generate_events(config)))
