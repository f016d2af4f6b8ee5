"""Golden tests in the style of `promtool test rules`: input series (planted events), evaluation times, and the
exact set of active escalations with their labels and annotations at each time.

Series are error rates per persona and day (see support.py: the check at day(i) sees day i's values). Each
`series` row reads like promtool's `values`: one entry per day, an int = that many errors for each of 4 users, a
list = one user per entry, None = no events at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from scipy import stats

from store.database import Database
from tests.escalation.support import T0, Clock, Plant, active_set, day, instance_states, rule, service
from tools.escalation.defaults import default_rules
from tools.escalation.model import EscalationStatus
from tools.escalation.service import EscalationService

Series = dict[str, Sequence[int | list[int] | None]]


def plant(database: Database, series: Series) -> None:
    planter = Plant(database)
    for persona, values in series.items():
        for index, entry in enumerate(values, start=1):
            if entry is None:
                continue
            planter.day(persona, index, entry if isinstance(entry, list) else [entry] * 4)


def by_persona(escalations: Any) -> dict[str, Any]:
    return {e.labels["persona"]: e for e in escalations}


# ---- pending → firing --------------------------------------------------------------------------------------------


def test_pending_then_firing_after_for(database: Database) -> None:
    plant(database, {"agency": [3], "podcast_network": [1], "solo_podcaster": [[5, 5]]})
    escalations = service(database, rule(for_minutes=120))

    first = escalations.check(at=day(1))
    assert active_set(first.active) == {("errors_high", "agency", "pending", "high")}
    assert (first.evaluated, first.no_data, first.fired, first.notifications) == (3, 1, [], 0)
    assert instance_states(database) == {
        ("errors_high", "agency"): ("pending", False),
        ("errors_high", "podcast_network"): ("inactive", False),  # exactly at the threshold: not above it
        ("errors_high", "solo_podcaster"): ("no_data", False),  # 2 users < min_sample 3
    }
    assert active_set(escalations.check(at=day(1, minutes=119)).active) == {
        ("errors_high", "agency", "pending", "high")
    }

    fired = escalations.check(at=day(1, minutes=120))
    [escalation] = fired.active
    assert fired.fired == [escalation.escalation_id] == first.opened
    assert (escalation.status, escalation.labels) == (
        EscalationStatus.FIRING,
        {"rule": "errors_high", "persona": "agency", "metric": "error_rate"},
    )
    assert escalation.title == "Error spike: error_rate for agency above 1"
    assert escalation.description.startswith(
        "error_rate for agency was 3 over the 1 days to 2026-03-03 02:00 UTC (n = 4)."
    )
    assert "Rule errors_high: greater_than 1; action: notify." in escalation.description
    assert escalation.opened_at == day(1) and escalation.firing_at == day(1, minutes=120)
    assert [(e.value, e.n, e.baseline, e.change, e.p_value) for e in escalation.evidence] == [
        (3.0, 4, None, None, None)
    ]
    assert [(h["kind"], h["at"]) for h in escalation.history] == [
        ("pending", day(1).isoformat()),
        ("fired", day(1, minutes=120).isoformat()),
    ]


# ---- flapping ---------------------------------------------------------------------------------------------------


def test_flapping_input_does_not_fire_when_for_is_longer_than_the_interval(database: Database) -> None:
    # agency flaps true/false every daily evaluation; podcast_network stays true and fires after two days.
    plant(database, {"agency": [3, 0, 3, 0, 3, 0], "podcast_network": [3, 3, 3, 3, 3, 3]})
    escalations = service(database, rule(for_minutes=36 * 60))
    expected = [
        {("errors_high", "agency", "pending", "high"), ("errors_high", "podcast_network", "pending", "high")},
        {("errors_high", "podcast_network", "pending", "high")},
        {("errors_high", "agency", "pending", "high"), ("errors_high", "podcast_network", "firing", "high")},
        {("errors_high", "podcast_network", "firing", "high")},
        {("errors_high", "agency", "pending", "high"), ("errors_high", "podcast_network", "firing", "high")},
        {("errors_high", "podcast_network", "firing", "high")},
    ]
    for index, want in enumerate(expected, start=1):
        assert active_set(escalations.check(at=day(index)).active) == want, f"day {index}"
    # The flapping label set never fired, so nobody was told and nothing about it is kept.
    assert [e.labels["persona"] for e in escalations.escalations()] == ["podcast_network"]


def test_keep_firing_for_holds_a_firing_escalation_through_a_gap(database: Database) -> None:
    plant(database, {"agency": [3, 0, 3, 0, 0]})
    escalations = service(
        database, rule("kept", keep_firing_for_minutes=25 * 60), rule("unkept", keep_firing_for_minutes=0)
    )
    ids: dict[str, list[str]] = {"kept": [], "unkept": []}
    expected = [
        {("kept", "agency", "firing", "high"), ("unkept", "agency", "firing", "high")},
        {("kept", "agency", "firing", "high")},  # the gap: kept for 25 h after the last true evaluation
        {("kept", "agency", "firing", "high"), ("unkept", "agency", "firing", "high")},
        {("kept", "agency", "firing", "high")},
        set(),  # two days after the last true evaluation: resolved
    ]
    for index, want in enumerate(expected, start=1):
        result = escalations.check(at=day(index))
        assert active_set(result.active) == want, f"day {index}"
        for e in result.active:
            ids[e.rule_id].append(e.escalation_id)
    assert len(set(ids["kept"])) == 1 and len(ids["kept"]) == 4  # one escalation through the gap
    assert len(set(ids["unkept"])) == 2  # without keep_firing_for: resolved, then a second escalation
    resolved = escalations.escalations(status="resolved")
    assert sorted((e.rule_id, e.resolved_at, e.resolved_by) for e in resolved) == [
        ("kept", day(5), "auto"),
        ("unkept", day(2), "auto"),
        ("unkept", day(4), "auto"),
    ]


# ---- no data ----------------------------------------------------------------------------------------------------


def test_no_data_fires_nothing_and_does_not_resolve_a_firing_escalation(database: Database) -> None:
    plant(database, {"agency": [3, [5, 5], None, 0], "podcast_network": [[4, 4], [4, 4], None, [4, 4]]})
    escalations = service(database, rule())

    first = escalations.check(at=day(1))
    assert active_set(first.active) == {("errors_high", "agency", "firing", "high")}
    assert (first.evaluated, first.no_data) == (2, 1)
    assert instance_states(database)[("errors_high", "podcast_network")] == ("no_data", False)
    [fired] = first.active

    second = escalations.check(at=day(2))  # agency: 2 users, below min_sample
    assert active_set(second.active) == {("errors_high", "agency", "firing", "high")}
    assert (second.no_data, second.resolved) == (2, [])
    [still] = second.active
    assert still.escalation_id == fired.escalation_id
    # The evidence it fired on stays: missing data neither resolves it nor erases why it fired.
    assert [(e.value, e.n) for e in still.evidence] == [(3.0, 4)]

    third = escalations.check(at=day(3))  # no events at all
    assert active_set(third.active) == {("errors_high", "agency", "firing", "high")}
    assert instance_states(database)[("errors_high", "agency")] == ("firing", False)

    fourth = escalations.check(at=day(4))  # real data again, healthy: resolves
    assert active_set(fourth.active) == set() and fourth.resolved == [fired.escalation_id]
    assert instance_states(database) == {
        ("errors_high", "agency"): ("inactive", False),
        ("errors_high", "podcast_network"): ("no_data", False),
    }
    assert escalations.escalations() == [escalations.get(fired.escalation_id)]


def test_a_pending_instance_whose_persona_disappears_starts_over(database: Database) -> None:
    # brand_sponsor is true on day 1, has no events at all on day 2, true again on day 3. Pending is reset by
    # missing data, so on day 3 it is pending again instead of firing on the strength of day 1.
    plant(database, {"brand_sponsor": [3, None, 3, 3]})
    escalations = service(database, rule(for_minutes=24 * 60))
    assert active_set(escalations.check(at=day(1)).active) == {
        ("errors_high", "brand_sponsor", "pending", "high")
    }
    assert active_set(escalations.check(at=day(2)).active) == set()
    assert instance_states(database)[("errors_high", "brand_sponsor")] == ("no_data", False)
    assert escalations.escalations() == []  # the pending escalation that never fired is gone
    assert active_set(escalations.check(at=day(3)).active) == {
        ("errors_high", "brand_sponsor", "pending", "high")
    }
    assert active_set(escalations.check(at=day(4)).active) == {
        ("errors_high", "brand_sponsor", "firing", "high")
    }


# ---- hysteresis -------------------------------------------------------------------------------------------------


def test_hysteresis_fires_above_the_threshold_and_resolves_only_at_the_recovery_point(
    database: Database,
) -> None:
    series: Series = {"agency": [3, [2, 2, 1, 1], 2, [1, 1, 1, 1], [2, 2, 1, 1], 3]}
    plant(database, series)
    escalations = service(database, rule(threshold=2.0, recovery_threshold=1.0))
    states = []
    for index in range(1, 7):
        result = escalations.check(at=day(index))
        states.append((active_set(result.active), len(result.resolved)))
    firing = {("errors_high", "agency", "firing", "high")}
    assert states == [
        (firing, 0),  # 3 > 2
        (firing, 0),  # 1.5: below the trigger, above the recovery point
        (firing, 0),  # 2: not above the trigger, not at the recovery point
        (set(), 1),  # 1: recovered
        (set(), 0),  # 1.5: not above the trigger again
        (firing, 0),  # 3: a new escalation
    ]
    [first, second] = sorted(escalations.escalations(), key=lambda e: e.opened_at)
    assert first.resolved_at == day(4) and second.opened_at == day(6)
    assert first.fingerprint == second.fingerprint  # same label set, two escalations
    assert "greater_than 2 (recovers at 1)" in second.description


# ---- manual resolve ---------------------------------------------------------------------------------------------


def test_manual_resolve_keeps_quiet_while_still_true_then_refires_after_it_clears(database: Database) -> None:
    plant(database, {"agency": [3, 3, 0, 3]})
    clock = Clock(day(1, hours=1))
    escalations = service(database, rule(), clock=clock)
    [first] = escalations.check(at=day(1)).active
    resolved = escalations.resolve(first.escalation_id, "user123", "Fixed in deployment v1.2.3")
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by) == (
        EscalationStatus.RESOLVED, day(1, hours=1), "user123",
    )  # fmt: skip
    assert resolved.resolution_notes == "Fixed in deployment v1.2.3"
    assert instance_states(database)[("errors_high", "agency")] == ("inactive", True)

    assert escalations.check(at=day(1, hours=2)).active == []  # still true: no re-fire
    assert escalations.check(at=day(2)).active == []
    assert instance_states(database)[("errors_high", "agency")] == ("inactive", True)
    assert escalations.check(at=day(3)).active == []  # cleared once: the suppression ends
    assert instance_states(database)[("errors_high", "agency")] == ("inactive", False)
    [second] = escalations.check(at=day(4)).active  # true again: fires again
    assert second.escalation_id != first.escalation_id and second.status == EscalationStatus.FIRING
    assert escalations.get(first.escalation_id).status == EscalationStatus.RESOLVED


# ---- the default error_spike rule ---------------------------------------------------------------------------------

BASE_WEEK = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1] * 4  # 40 users, mean 1.0 errors per active user per week
SPIKE_WEEK = [3, 2, 4, 3, 2, 3, 4, 3, 2, 4] * 4  # mean 3.0
WEEK = timedelta(days=7)


def test_default_error_spike_rule_fires_on_a_planted_spike_against_the_trailing_28_days(
    database: Database,
) -> None:
    now = T0 + timedelta(days=35)
    planter = Plant(database)
    for week in range(5, 0, -1):  # the 4 baseline weeks, then the current week [now − 7 d, now)
        start = now - week * WEEK + timedelta(days=1)
        planter.errors_at("podcast_network", start, SPIKE_WEEK if week == 1 else BASE_WEEK)
        planter.errors_at("agency", start, BASE_WEEK)
        planter.errors_at(
            "solo_podcaster", start, [v * 3 for v in BASE_WEEK[:10]] if week == 1 else BASE_WEEK[:10]
        )
    planter.deployment("v1.4.0", now - timedelta(days=6, hours=12))
    [error_spike] = [r for r in default_rules() if r.rule_id == "error_spike"]
    escalations = EscalationService(database, clock=Clock(now))
    escalations.add_rule(error_spike)

    first = escalations.check(at=now)
    assert active_set(first.active) == {("error_spike", "podcast_network", "pending", "critical")}
    assert (first.evaluated, first.no_data) == (3, 1)  # solo_podcaster: 10 users, below min_sample 30
    assert instance_states(database)[("error_spike", "agency")] == ("inactive", False)
    assert active_set(escalations.check(at=now + timedelta(minutes=59)).active) == {
        ("error_spike", "podcast_network", "pending", "critical")
    }
    [spike] = escalations.check(at=now + timedelta(minutes=60)).active
    assert (spike.status, spike.severity.value, spike.type.value) == ("firing", "critical", "error_spike")
    assert spike.title == "Error spike: error_rate for podcast_network up 200% vs trailing 28 days"
    [evidence] = spike.evidence
    assert (evidence.metric, evidence.persona, evidence.n) == ("error_rate", "podcast_network", 40)
    assert evidence.value == pytest.approx(3.0) and evidence.baseline == pytest.approx(1.0)
    assert evidence.change == pytest.approx(2.0)
    expected_p = stats.ttest_ind(SPIKE_WEEK, BASE_WEEK * 4, equal_var=False).pvalue
    assert evidence.p_value == pytest.approx(expected_p, rel=1e-6, abs=1e-300) and expected_p < 1e-12
    assert "(n = 40), against 1 in the trailing 28 days (n = 160): +200.0%" in spike.description
    assert "Deployments in or just before the period: v1.4.0 at" in spike.description
    assert [d["version"] for d in spike.related["deployments"]] == ["v1.4.0"]
