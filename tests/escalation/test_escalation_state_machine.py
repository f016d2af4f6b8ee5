"""state.step as a pure function (Prometheus semantics): inactive → pending → firing with `for` (exact boundary),
a pending instance resets, keep_firing_for holds a firing one, only recovery resolves, no_data never resolves a
firing one, and a manual resolve keeps the label set quiet until its condition clears once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.escalation.conditions import Judgement
from tools.escalation.state import Instance, step

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TRUE = Judgement(True, False, 3.0, None, None, None, 40, None)
FALSE = Judgement(False, True, 0.5, None, None, None, 40, None)
BAND = Judgement(False, False, 1.5, None, None, None, 40, None)  # between trigger and recovery (hysteresis)
NO_DATA = Judgement(None, None, 3.0, None, None, None, 2, None, "n = 2 is below min_sample 3")


def minutes(n: float) -> datetime:
    return T + timedelta(minutes=n)


def run(
    judgements: list[tuple[float, Judgement]],
    *,
    for_minutes: int = 0,
    keep: int = 0,
    start: Instance | None = None,
) -> list[tuple[str, str]]:
    """Step through (minute, judgement) pairs; the (state, transition) after each."""
    instance = start or Instance()
    trace = []
    for at, judgement in judgements:
        instance, transition = step(
            instance, judgement, minutes(at), for_minutes=for_minutes, keep_firing_for_minutes=keep
        )
        trace.append((instance.state, transition))
    return trace


def test_without_for_a_true_condition_fires_at_once() -> None:
    instance, transition = step(Instance(), TRUE, T, for_minutes=0, keep_firing_for_minutes=0)
    assert transition == "fired"
    assert instance == Instance("firing", T, T)


def test_pending_then_firing_exactly_when_for_has_elapsed() -> None:
    trace = run([(0, TRUE), (30, TRUE), (59.99, TRUE), (60, TRUE), (90, TRUE)], for_minutes=60)
    assert trace == [
        ("pending", "pending"),
        ("pending", "still_pending"),
        ("pending", "still_pending"),
        ("firing", "fired"),
        ("firing", "still_firing"),
    ]


def test_firing_keeps_the_time_the_condition_became_true() -> None:
    instance = Instance()
    for at in (0, 30, 60):
        instance, _ = step(instance, TRUE, minutes(at), for_minutes=60, keep_firing_for_minutes=0)
    assert instance == Instance("firing", T, minutes(60))


def test_a_pending_instance_whose_condition_turns_false_resets_and_starts_over() -> None:
    trace = run([(0, TRUE), (30, FALSE), (45, TRUE), (90, TRUE), (105, TRUE)], for_minutes=60)
    assert trace == [
        ("pending", "pending"),
        ("inactive", "reset"),
        ("pending", "pending"),  # the clock starts again at 45
        ("pending", "still_pending"),  # 45 minutes pending: not yet
        ("firing", "fired"),  # 60 minutes after 45
    ]


def test_a_pending_instance_in_the_hysteresis_band_resets_too() -> None:
    assert run([(0, TRUE), (10, BAND)], for_minutes=60) == [("pending", "pending"), ("inactive", "reset")]


def test_flapping_input_never_fires_when_for_is_longer_than_the_interval() -> None:
    flapping = [(15 * i, TRUE if i % 2 == 0 else FALSE) for i in range(12)]
    trace = run(flapping, for_minutes=20)
    assert {state for state, _ in trace} == {"pending", "inactive"}
    assert "fired" not in {transition for _, transition in trace}


def test_firing_resolves_only_when_recovered_not_in_the_band() -> None:
    trace = run([(0, TRUE), (10, BAND), (20, BAND), (30, FALSE)])
    assert trace == [
        ("firing", "fired"),
        ("firing", "still_firing"),
        ("firing", "still_firing"),
        ("inactive", "resolved"),
    ]


def test_keep_firing_for_holds_through_a_gap_and_resolves_at_its_exact_end() -> None:
    trace = run([(0, TRUE), (10, FALSE), (20, TRUE), (30, FALSE), (49.99, FALSE), (50, FALSE)], keep=30)
    assert trace == [
        ("firing", "fired"),
        ("firing", "still_firing"),  # 10 minutes after the last true: kept
        ("firing", "still_firing"),  # true again: last_true_at moves to 20
        ("firing", "still_firing"),
        ("firing", "still_firing"),
        ("inactive", "resolved"),  # 30 minutes after the last true evaluation
    ]


def test_band_values_count_as_still_true_for_keep_firing() -> None:
    instance, _ = step(Instance(), TRUE, T, for_minutes=0, keep_firing_for_minutes=30)
    instance, _ = step(instance, BAND, minutes(20), for_minutes=0, keep_firing_for_minutes=30)
    assert instance.last_true_at == minutes(20)
    instance, transition = step(instance, FALSE, minutes(45), for_minutes=0, keep_firing_for_minutes=30)
    assert transition == "still_firing"  # 25 minutes after the band value, not 45 after the true one


def test_no_data_for_a_non_firing_instance_and_a_firing_one_stays_firing() -> None:
    assert run([(0, NO_DATA)]) == [("no_data", "none")]
    assert run([(0, TRUE), (10, NO_DATA)], for_minutes=60) == [("pending", "pending"), ("no_data", "reset")]
    firing = run([(0, TRUE), (10, NO_DATA), (500, NO_DATA), (510, FALSE)], keep=30)
    assert firing == [
        ("firing", "fired"),
        ("firing", "still_firing"),
        ("firing", "still_firing"),  # missing data is not recovery, however long it lasts
        ("inactive", "resolved"),  # the first real recovery resolves (last true was at 0)
    ]


def test_no_data_then_true_starts_pending_from_scratch() -> None:
    trace = run([(0, TRUE), (10, NO_DATA), (20, TRUE), (70, TRUE), (80, TRUE)], for_minutes=60)
    assert trace == [
        ("pending", "pending"),
        ("no_data", "reset"),
        ("pending", "pending"),
        ("pending", "still_pending"),
        ("firing", "fired"),
    ]


def test_suppressed_after_a_manual_resolve_until_the_condition_clears() -> None:
    quiet = Instance("inactive", suppressed=True)
    trace = run([(0, TRUE), (10, NO_DATA), (20, TRUE), (30, FALSE), (40, TRUE)], start=quiet)
    assert trace == [
        ("inactive", "none"),  # still true: stays quiet
        ("no_data", "none"),
        ("inactive", "none"),
        ("inactive", "none"),  # cleared once: the suppression ends
        ("firing", "fired"),  # true again: fires
    ]
    instance, _ = step(quiet, TRUE, T, for_minutes=0, keep_firing_for_minutes=0)
    assert instance.suppressed and instance.last_true_at == T
    cleared, _ = step(instance, FALSE, minutes(1), for_minutes=0, keep_firing_for_minutes=0)
    assert cleared == Instance("inactive")
