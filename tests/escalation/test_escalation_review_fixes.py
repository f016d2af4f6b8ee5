"""Fixes from the review of the escalation doors (both databases where the store is involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedbackloop.auto_escalation import AutoEscalationSystem
from store.database import Database
from tests.escalation.support import Clock, Plant, day, instance_states, rule, sent, service
from tools.escalation.model import EscalationInputError
from tools.escalation.service import EscalationService


def _firing(database: Database) -> tuple[Clock, EscalationService]:
    clock = Clock(day(1))
    escalations = service(database, rule(), clock=clock)
    Plant(database).rate("agency", 1, 3)
    escalations.check(at=day(1))
    clock.now = day(1, minutes=1)
    escalations.check(at=clock.now)  # after group_wait: the firing group is notified
    assert [e.status.value for e in escalations.escalations("firing")] == ["firing"]
    return clock, escalations


@pytest.mark.parametrize("how", ["disable", "delete"])
def test_a_rule_that_stops_resolves_what_it_opened(database: Database, how: str) -> None:
    clock, escalations = _firing(database)
    if how == "disable":
        escalations.set_rule_enabled("errors_high", False)
    else:
        escalations.delete_rule("errors_high")
    [closed] = escalations.escalations("resolved")
    assert closed.resolved_by == f"rule {how}d"
    assert not escalations.escalations("firing")
    assert instance_states(database) == {}
    clock.now = day(1, minutes=10)
    escalations.check(at=clock.now)
    assert [status for _, status, _ in sent(database)][-1] == "resolved"  # the channels hear it is over


def test_silences_match_severity_and_type(database: Database) -> None:
    clock = Clock(day(1))
    escalations = service(database, rule(severity="low"), clock=clock)
    escalations.add_silence([{"label": "severity", "operator": "=", "value": "low"}],
                            starts_at=day(0), ends_at=day(5), created_by="ana")  # fmt: skip
    Plant(database).rate("agency", 1, 3)
    escalations.check(at=day(1))
    escalations.check(at=day(1, minutes=1))
    assert escalations.escalations("firing") and sent(database) == []


def test_significant_comparisons_need_a_test_statistic(database: Database) -> None:
    with pytest.raises(EscalationInputError) as error:
        service(database, rule(condition={"metric": "ltv", "period_days": 30}, comparison="significant_drop",
                               threshold=10.0))  # fmt: skip
    assert error.value.field == "comparison"


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
def test_silence_times_are_named_and_bounded(database: Database, field: str) -> None:
    escalations = service(database)
    times = {"starts_at": day(0), "ends_at": day(1)} | {field: datetime(1, 1, 2, tzinfo=UTC)}
    with pytest.raises(EscalationInputError) as error:
        escalations.add_silence(
            [{"label": "persona", "operator": "=", "value": "agency"}], created_by="ana", **times
        )
    assert error.value.field == field


def test_seed_add_rule_with_a_dict_names_an_unknown_field(database: Database) -> None:
    system = AutoEscalationSystem(database.url, clock=lambda: day(1))
    with pytest.raises(EscalationInputError) as error:
        system.add_rule(rule().as_dict() | {"treshold": 2})
    assert error.value.field == "treshold"


def test_same_moment_repeats_do_not_collide_in_the_outbox(database: Database) -> None:
    from tests.escalation.support import POLICY

    clock = Clock(day(1))
    policy = type(POLICY)(channels=POLICY.channels, group_wait_seconds=0, group_interval_seconds=0,
                          repeat_interval_seconds=3600)  # fmt: skip
    escalations = service(database, rule(), rule("errors_higher", threshold=2.0), clock=clock, policy=policy)
    plant = Plant(database)
    plant.rate("agency", 1, 3)
    escalations.check(at=day(1))
    plant.errors_at("agency", day(1) - timedelta(minutes=30), [5, 5, 5], user_prefix="x")
    escalations.check(at=day(1))  # same moment, group changed: a second notification, not a key collision
    assert len(sent(database)) >= 2
