"""Lifecycle on SQLite and PostgreSQL: draft → running ⇄ paused → stopped, decisions, phases, deletes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from growthbook import core as gb
from sqlalchemy import select

from store.database import Database
from store.models import ExperimentAssignmentRow, ExperimentPhaseRow
from tests.experiments.support import Clock, definition, experiment_id, exposures, stored_rows
from tools.experiments.analysis import analyze
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError, ExperimentStateError
from tools.experiments.model import ExperimentStatus
from tools.experiments.service import ExperimentService


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(database: Database, clock: Clock) -> ExperimentService:
    return ExperimentService(database, clock=clock)


def test_draft_running_paused_stopped_with_each_decision(service: ExperimentService, clock: Clock) -> None:
    for key, decision in (("a", "ship:treatment"), ("b", "keep_control"), ("c", "inconclusive")):
        draft = service.create(definition(key))
        assert draft.status is ExperimentStatus.DRAFT and draft.phase is None and draft.started_at is None
        running = service.start(key)
        assert running.status is ExperimentStatus.RUNNING and running.started_at == clock.now
        assert running.phase is not None and (running.phase.index, running.phase.seed) == (0, key)
        assert service.pause(key).status is ExperimentStatus.PAUSED
        assert service.resume(key).status is ExperimentStatus.RUNNING
        if key == "b":
            service.pause(key)  # a paused experiment can stop too
        clock.advance(days=1)
        stopped = service.stop(key, decision, notes=f"notes for {key}")
        assert stopped.status is ExperimentStatus.STOPPED and stopped.stopped_at == clock.now
        assert (stopped.decision, stopped.decision_notes) == (decision, f"notes for {key}")
        assert service.get(key).as_dict()["decision"] == decision
    assert [e.key for e in service.experiments()] == ["a", "b", "c"]
    assert service.experiments("running") == []
    assert len(service.experiments("stopped")) == 3


def test_a_bad_decision_names_decision_and_changes_nothing(service: ExperimentService) -> None:
    service.create(definition("exp"))
    service.start("exp")
    for decision in ("ship:nobody", "ship", "launch", ""):
        with pytest.raises(ExperimentInputError) as caught:
            service.stop("exp", decision)
        assert caught.value.field == "decision" and "ship:treatment" in caught.value.message
    with pytest.raises(ExperimentInputError) as caught:
        service.stop("exp", "keep_control", notes="x" * 5001)
    assert caught.value.field == "notes"
    assert service.get("exp").status is ExperimentStatus.RUNNING


def test_transitions_out_of_order_are_state_errors(service: ExperimentService) -> None:
    service.create(definition("exp"))
    for transition in (service.pause, service.resume, service.stop):
        with pytest.raises(ExperimentStateError) as caught:
            transition("exp")
        assert caught.value.field == "status"
    with pytest.raises(ExperimentStateError, match="draft; start it"):
        service.assign("exp", "u1")
    service.start("exp")
    with pytest.raises(ExperimentStateError, match="already running"):
        service.start("exp")
    with pytest.raises(ExperimentStateError):
        service.resume("exp")
    service.pause("exp")
    with pytest.raises(ExperimentStateError, match="paused"):
        service.start("exp")
    service.stop("exp")
    for transition in (service.start, service.pause, service.resume, service.stop):
        with pytest.raises(ExperimentStateError):
            transition("exp")
    with pytest.raises(ExperimentStateError, match="stopped"):
        service.assign("exp", "u1")
    with pytest.raises(ExperimentStateError, match="stopped"):
        service.update("exp", {"name": "renamed"})


def test_keys_are_unique_and_unknown_keys_are_not_found(service: ExperimentService) -> None:
    service.create(definition("exp"))
    with pytest.raises(ExperimentStateError) as caught:
        service.create(definition("exp"))
    assert caught.value.field == "key"
    with pytest.raises(ExperimentNotFoundError):
        service.get("nope")
    with pytest.raises(ExperimentNotFoundError):
        service.start("nope")
    with pytest.raises(ExperimentInputError) as bad_status:
        service.experiments("finished")
    assert bad_status.value.field == "status"


def test_drafts_accept_any_change_including_the_seeds_names(service: ExperimentService) -> None:
    service.create(definition("exp"))
    changed = service.update("exp", {"variants": [{"name": "a", "weight": 0.3}, {"name": "b", "weight": 0.7}],
                                     "success_metrics": ["completion_rate"], "experiment_type": "pricing"})  # fmt: skip
    assert [v.name for v in changed.spec.variants] == ["a", "b"]
    assert [m.name for m in changed.spec.primary_metrics] == ["completion_rate"]
    assert changed.spec.type.value == "pricing"
    assert service.update("exp", {"weights": [0.5, 0.5]}).spec.weights == [0.5, 0.5]
    with pytest.raises(ExperimentInputError) as caught:
        service.update("exp", {"variants": [{"name": "a", "weight": 1.0}]})
    assert caught.value.field == "variants"
    with pytest.raises(ExperimentInputError) as caught:
        service.update("exp", {})
    assert caught.value.field == "body"


def test_running_experiments_change_only_name_hypothesis_weights_coverage(service: ExperimentService) -> None:
    service.create(definition("exp"))
    service.start("exp")
    for field, value in (
        ("variants", [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]),
        ("primary_metrics", ["revenue"]),
        ("personas", ["agency"]),
        ("mode", "shadow"),
    ):
        with pytest.raises(ExperimentStateError) as caught:
            service.update("exp", {field: value})
        assert caught.value.field == field and "while the experiment is running" in caught.value.message
    renamed = service.update("exp", {"name": "Renamed", "hypothesis": "guided is faster"})
    assert (renamed.spec.name, renamed.spec.hypothesis) == ("Renamed", "guided is faster")
    assert renamed.phase is not None and renamed.phase.index == 0  # text edits start no phase
    with pytest.raises(ExperimentInputError) as caught:
        service.update("exp", {"weights": [0.6, 0.6]})
    assert caught.value.field == "weights"
    assert service.get("exp").phase.index == 0  # type: ignore[union-attr]


def test_a_weight_change_starts_a_new_phase_and_redraws_users(
    service: ExperimentService, database: Database, clock: Clock
) -> None:
    service.create(definition("exp", min_units_per_variant=2))
    service.start("exp")
    early = [f"early-{i}" for i in range(300)]
    phase0 = {a.user_id: a.variant_index for a in service.assign_many("exp", early)}
    clock.advance(days=2)
    changed = service.update("exp", {"weights": [0.2, 0.8]})
    assert changed.phase is not None and changed.phase.index == 1 and changed.phase.weights == (0.2, 0.8)
    assert changed.phase.seed not in ("exp", "") and changed.phase.started_at == clock.now
    with database.read() as connection:
        ended = connection.execute(
            select(ExperimentPhaseRow.phase, ExperimentPhaseRow.ended_at)
            .where(ExperimentPhaseRow.experiment_id == experiment_id(database, "exp"))
            .order_by(ExperimentPhaseRow.phase)
        ).all()
    assert ended == [(0, clock.now), (1, None)]

    clock.advance(hours=1)
    returning, newcomers = early[:100], [f"new-{i}" for i in range(50)]
    phase1 = service.assign_many("exp", [*returning, *newcomers])
    ranges = gb.getBucketRanges(2, 1.0, [0.2, 0.8])
    for assignment in phase1:
        expected = gb.chooseVariation(gb.gbhash(changed.phase.seed, assignment.user_id, 2), ranges)
        assert (assignment.variant_index, assignment.phase, assignment.first_exposure) == (expected, 1, True)
    moved = sum(phase0[a.user_id] != a.variant_index for a in phase1[:100])
    assert moved > 25  # a new seed re-draws: from 50/50 to 20/80 half the users change arm

    rows = stored_rows(database, "exp")
    assert sum(phase == 1 for phase, _ in rows.values()) == 150 and len(rows) == 350
    assert exposures(database, returning) == {u: 2 for u in returning}  # one exposure per phase
    results = analyze(service, "exp", now=clock.now)
    assert results.phase == 1 and sum(results.units.values()) == 150  # only phase-1 users count
    again = service.assign_many("exp", returning)
    assert [a.variant_index for a in again] == [a.variant_index for a in phase1[:100]]
    assert not any(a.first_exposure for a in again)


def test_a_coverage_change_also_starts_a_phase(service: ExperimentService, database: Database) -> None:
    service.create(definition("exp"))
    service.start("exp")
    service.assign_many("exp", [f"u{i}" for i in range(200)])
    changed = service.update("exp", {"coverage": 0.5})
    assert changed.phase is not None and (changed.phase.index, changed.phase.coverage) == (1, 0.5)
    again = service.assign_many("exp", [f"u{i}" for i in range(200)])
    outside = [a for a in again if not a.in_experiment]
    assert 60 < len(outside) < 140 and all(a.reason == "outside_coverage" for a in outside)
    assert all(a.variant == "control" and a.configuration == {"flow": "standard"} for a in outside)
    rows = stored_rows(database, "exp")
    assert all(rows[a.user_id][0] == 0 for a in outside)  # kept as phase-0 history, never counted again
    assert all(rows[a.user_id][0] == 1 for a in again if a.in_experiment)


def test_pause_keeps_existing_users_and_shows_control_to_new_ones(
    service: ExperimentService, database: Database
) -> None:
    service.create(definition("exp"))
    service.start("exp")
    known = service.assign_many("exp", [f"u{i}" for i in range(40)])
    service.pause("exp")
    again = service.assign_many("exp", [f"u{i}" for i in range(40)])
    assert [(a.variant, a.in_experiment, a.first_exposure) for a in again] == [
        (a.variant, True, False) for a in known
    ]
    newcomer = service.assign("exp", "late")
    assert (newcomer.in_experiment, newcomer.variant, newcomer.variant_index, newcomer.reason) == (
        False, "control", None, "paused"
    )  # fmt: skip
    assert newcomer.configuration == {"flow": "standard"}
    assert "late" not in stored_rows(database, "exp") and exposures(database, ["late"]) == {}
    service.resume("exp")
    resumed = service.assign("exp", "late")
    assert resumed.in_experiment and resumed.first_exposure and resumed.reason is None


def test_delete_rules(service: ExperimentService, database: Database) -> None:
    service.create(definition("draft"))
    service.delete("draft")
    with pytest.raises(ExperimentNotFoundError):
        service.get("draft")
    service.create(definition("exp"))
    service.start("exp")
    service.assign_many("exp", ["u1", "u2"])
    with pytest.raises(ExperimentStateError, match="stop it before deleting"):
        service.delete("exp")
    service.pause("exp")
    with pytest.raises(ExperimentStateError):
        service.delete("exp")
    identifier = experiment_id(database, "exp")
    service.stop("exp", "keep_control")
    service.delete("exp")
    with database.read() as connection:
        for table in (ExperimentAssignmentRow, ExperimentPhaseRow):
            left = connection.execute(select(table).where(table.experiment_id == identifier)).all()
            assert left == []
    with pytest.raises(ExperimentNotFoundError):
        service.delete("exp")
    service.create(definition("exp"))  # the key is free again
    assert service.get("exp").status is ExperimentStatus.DRAFT


def test_tracked_events_count_towards_the_experiment(service: ExperimentService, clock: Clock) -> None:
    service.create(definition("exp", min_units_per_variant=2))
    service.start("exp")
    assigned = service.assign_many("exp", ["t1", "t2", "t3", "t4"])
    later = clock.now + timedelta(hours=1)
    summary = service.track("exp", "t1", "onboarding_completed", {"step": 3}, timestamp=later)
    assert summary.accepted == 1 and not summary.rejected
    service.track("exp", "t2", "onboarding_completed", timestamp=later.isoformat(), message_id="m-1")
    assert (
        service.track("exp", "t2", "onboarding_completed", timestamp=later, message_id="m-1").duplicates == 1
    )
    results = analyze(service, "exp", now=later)
    converted = {a.variant: 0 for a in assigned}
    for a in assigned[:2]:
        converted[a.variant] += 1
    arms = {arm.name: arm for arm in (results.metrics[0].result.control, *results.metrics[0].result.variants)}
    assert {name: round((arm.mean or 0) * arm.n) for name, arm in arms.items()} == converted
    for user, event_name, field in (("", "onboarding_completed", "user_id"), ("t1", "", "event_name")):
        with pytest.raises(ExperimentInputError) as caught:
            service.track("exp", user, event_name)
        assert caught.value.field == field
    with pytest.raises(ExperimentNotFoundError):
        service.track("nope", "t1", "onboarding_completed")
    with pytest.raises(ExperimentNotFoundError):
        service.assign("nope", "t1")
    with pytest.raises(ExperimentInputError) as caught:
        service.get("")
    assert caught.value.field == "key"
