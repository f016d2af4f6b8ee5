"""Whether a triggered survey is shown: each fatigue rule with its machine-readable reason, first as the pure
`reason_not_to_show`, then through the service on SQLite and PostgreSQL (the display rows are the history)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from store.database import Database
from tests.surveys.support import T0, Clock, definition, display_count, displays, with_surveys
from tools.surveys.model import Survey, parse_survey
from tools.surveys.service import PENDING_EXPIRY_DAYS, SurveyService
from tools.surveys.throttle import NotShownReason, UserSurveyHistory, in_sample, reason_not_to_show
from tools.users import User

DAY = timedelta(days=1)


def survey(**overrides: Any) -> Survey:
    return parse_survey(definition(**overrides))


def reason(
    target: Survey,
    history: UserSurveyHistory | None = None,
    *,
    at: Any = T0,
    persona: str = "agency",
    user_id: str = "u1",
    answered_total: int = 0,
    global_recontact_days: int = 7,
) -> str | None:
    found = reason_not_to_show(
        target, user_id=user_id, persona=persona, at=at, history=history or UserSurveyHistory(),
        answered_total=answered_total, global_recontact_days=global_recontact_days,
    )  # fmt: skip
    return found.value if found is not None else None


# ---- the pure function -----------------------------------------------------------------------------------------


def test_a_fresh_user_is_shown_a_plain_survey() -> None:
    assert reason(survey()) is None


def test_inactive_covers_the_flag_and_the_half_open_window() -> None:
    window = survey(starts_at=T0.isoformat(), ends_at=(T0 + DAY).isoformat())
    assert reason(survey(active=False)) == "inactive"
    assert reason(window, at=T0 - timedelta(seconds=1)) == "inactive"
    assert reason(window, at=T0) is None
    assert reason(window, at=T0 + DAY - timedelta(seconds=1)) is None
    assert reason(window, at=T0 + DAY) == "inactive"


def test_persona_targeting() -> None:
    targeted = survey(persona_segments=["solo_podcaster", "agency"])
    assert reason(targeted, persona="agency") is None
    assert reason(targeted, persona="brand_sponsor") == "persona_not_targeted"
    assert reason(targeted, persona="unassigned") == "persona_not_targeted"
    assert reason(survey(), persona="unassigned") is None  # no segments: everyone


def test_sampling_is_deterministic_per_user_and_about_the_percentage() -> None:
    half = survey(sampling_percentage=50)
    users = [f"user-{i}" for i in range(2000)]
    first = [reason(half, user_id=u) for u in users]
    assert first == [reason(half, user_id=u) for u in users]  # the same user, the same answer
    assert set(first) == {None, "sampled_out"}
    inside = [u for u, r in zip(users, first, strict=True) if r is None]
    assert 900 <= len(inside) <= 1100
    assert inside == [u for u in users if in_sample("pulse", u, 50)]
    assert all(in_sample("pulse", u, 100) for u in users)
    assert not any(in_sample("pulse", u, 0) for u in users)
    tenth = sum(in_sample("pulse", u, 10) for u in users)
    assert 150 <= tenth <= 250
    other = {u for u in users if in_sample("other_survey", u, 50)}
    assert 350 <= len(other & set(inside)) <= 650  # each survey samples on its own, not the same half


def test_response_limit_counts_every_users_answers() -> None:
    limited = survey(response_limit=10)
    assert reason(limited, answered_total=9) is None
    assert reason(limited, answered_total=10) == "response_limit_reached"


def test_answered_surveys_are_not_asked_again_unless_recurring() -> None:
    answered = UserSurveyHistory(displays_of_survey=1, answered_survey=True, last_seen_survey=T0 - 90 * DAY)
    assert reason(survey(), answered) == "already_answered"
    assert reason(survey(display_option="until_answered"), answered) == "already_answered"
    assert reason(survey(display_option="recurring", recurring_days=30), answered) is None


def test_max_displays() -> None:
    seen = [UserSurveyHistory(displays_of_survey=n, last_seen_survey=T0 - 90 * DAY) for n in (1, 2, 3)]
    assert reason(survey(), seen[0]) == "max_displays_reached"  # once
    until = survey(display_option="until_answered")  # default max 3
    assert [reason(until, h) for h in seen] == [None, None, "max_displays_reached"]
    assert reason(survey(display_option="until_answered", max_displays=2), seen[1]) == "max_displays_reached"
    recurring = survey(display_option="recurring", recurring_days=30)
    assert reason(recurring, UserSurveyHistory(displays_of_survey=50, last_seen_survey=T0 - 31 * DAY)) is None


def test_survey_recontact_waits() -> None:
    def after(days: float) -> UserSurveyHistory:
        return UserSurveyHistory(displays_of_survey=1, last_seen_survey=T0 - timedelta(days=days))

    until = survey(display_option="until_answered")  # no own wait: the global window
    assert reason(until, after(6.9)) == "survey_recontact"
    assert reason(until, after(7)) is None  # half-open: exactly the wait later is allowed
    assert reason(until, after(6.9), global_recontact_days=3) is None
    own = survey(display_option="until_answered", recontact_days=2)
    assert (reason(own, after(1.9)), reason(own, after(2))) == ("survey_recontact", None)
    recurring = survey(display_option="recurring", recurring_days=30)
    assert (reason(recurring, after(29)), reason(recurring, after(30))) == ("survey_recontact", None)
    both = survey(display_option="recurring", recurring_days=30, recontact_days=45)  # the longer wait
    assert (reason(both, after(44)), reason(both, after(45))) == ("survey_recontact", None)


def test_global_recontact_after_another_survey() -> None:
    def other(days: float) -> UserSurveyHistory:
        return UserSurveyHistory(last_seen_other_survey=T0 - timedelta(days=days))

    assert reason(survey(), other(6.9)) == "global_recontact"
    assert reason(survey(), other(7)) is None
    assert reason(survey(), other(6.9), global_recontact_days=5) is None
    assert reason(survey(ignore_global_recontact=True), other(0)) is None


def test_rules_apply_in_the_documented_order() -> None:
    everything = UserSurveyHistory(
        displays_of_survey=5, answered_survey=True, last_seen_survey=T0, last_seen_other_survey=T0
    )
    strict = {"persona_segments": ["solo_podcaster"], "response_limit": 1, "display_option": "until_answered"}
    sampled_out_user = next(u for u in (f"u{i}" for i in range(100)) if not in_sample("pulse", u, 50))
    assert (
        reason(survey(active=False, **strict), everything, user_id=sampled_out_user, answered_total=1)
        == "inactive"
    )
    steps = [
        ({}, "persona_not_targeted"),
        ({"persona": "solo_podcaster"}, "sampled_out"),
        ({"user_id": "in"}, "response_limit_reached"),
        ({"answered_total": 0}, "already_answered"),
    ]
    arguments: dict[str, Any] = {"user_id": sampled_out_user, "answered_total": 1}
    half = survey(sampling_percentage=50, **strict)
    in_user = next(u for u in (f"u{i}" for i in range(100)) if in_sample("pulse", u, 50))
    for change, expected in steps:
        arguments |= {k: (in_user if v == "in" else v) for k, v in change.items()}
        assert reason(half, everything, **arguments) == expected
    not_answered = UserSurveyHistory(displays_of_survey=5, last_seen_survey=T0, last_seen_other_survey=T0)
    assert reason(half, not_answered, **arguments) == "max_displays_reached"
    fewer = UserSurveyHistory(displays_of_survey=1, last_seen_survey=T0, last_seen_other_survey=T0)
    assert reason(half, fewer, **arguments) == "survey_recontact"
    earlier = UserSurveyHistory(
        displays_of_survey=1, last_seen_survey=T0 - 30 * DAY, last_seen_other_survey=T0
    )
    assert reason(half, earlier, **arguments) == "global_recontact"


# ---- through the service, on both databases ----------------------------------------------------------------------


def decide(surveys: SurveyService, user: User | str, trigger: str = "feature_done", **options: Any) -> Any:
    return surveys.trigger(user, trigger, **options)


def test_shown_now_records_a_shown_display(database: Database) -> None:
    surveys = with_surveys(database, definition())
    decision = decide(surveys, "u1", at=T0)
    assert (decision.survey.survey_id, decision.status, decision.reason) == ("pulse", "shown", None)
    assert decision.candidates == [{"survey_id": "pulse", "reason": None}]
    assert decision.new_display
    [row] = displays(database, "u1")
    assert (row["id"], row["status"], row["shown_at"], row["show_after"]) == (
        decision.display_id,
        "shown",
        T0,
        T0,
    )
    assert (row["persona"], row["trigger"]) == ("unassigned", "feature_done")


def test_inactive_surveys_say_so(database: Database) -> None:
    surveys = with_surveys(
        database,
        definition("paused", active=False),
        definition("later", trigger="later_t", starts_at=(T0 + DAY).isoformat()),
        definition("over", trigger="over_t", ends_at=T0.isoformat(), starts_at=(T0 - 9 * DAY).isoformat()),
    )
    for trigger, survey_id in (("feature_done", "paused"), ("later_t", "later"), ("over_t", "over")):
        decision = decide(surveys, "u1", trigger, at=T0)
        assert (decision.survey, decision.reason) == (None, "inactive")
        assert decision.candidates == [{"survey_id": survey_id, "reason": "inactive"}]
    assert decide(surveys, "u1", "later_t", at=T0 + DAY).status == "shown"
    assert display_count(database, "paused") == 0


def test_persona_from_the_user_object_or_the_stored_user(database: Database) -> None:
    surveys = with_surveys(database, definition(persona_segments=["solo_podcaster"]))
    refused = decide(surveys, User("u1", persona_segment="agency"), at=T0)
    assert refused.reason == "persona_not_targeted"
    assert decide(surveys, "u2", at=T0).reason == "persona_not_targeted"  # unknown user: unassigned
    shown = decide(surveys, User("u3", persona_segment="solo_podcaster"), at=T0)
    assert shown.status == "shown"
    assert displays(database, "u3")[0]["persona"] == "solo_podcaster"


def test_sampled_out_users_stay_out(database: Database) -> None:
    surveys = with_surveys(
        database, definition(sampling_percentage=50, display_option="recurring", recurring_days=1)
    )
    users = [f"user-{i}" for i in range(40)]
    out = [u for u in users if not in_sample("pulse", u, 50)]
    inside = [u for u in users if in_sample("pulse", u, 50)]
    assert out and inside
    for day in range(3):
        for user in out:
            assert decide(surveys, user, at=T0 + day * DAY).reason == "sampled_out"
        for user in inside:
            assert decide(surveys, user, at=T0 + day * DAY).status == "shown"
    assert display_count(database, "pulse") == 3 * len(inside)


def test_response_limit_reached(database: Database) -> None:
    surveys = with_surveys(database, definition(response_limit=2))
    first = decide(surveys, "a", at=T0)
    surveys.respond({"rating": 4}, display_id=first.display_id, at=T0)
    assert decide(surveys, "b", at=T0).status == "shown"  # shown, never answered: does not count
    assert decide(surveys, "c", at=T0).status == "shown"
    second = decide(surveys, "d", at=T0)
    surveys.respond({"rating": 2}, display_id=second.display_id, at=T0)
    refused = decide(surveys, "e", at=T0)
    assert (refused.reason, refused.candidates) == (
        "response_limit_reached", [{"survey_id": "pulse", "reason": "response_limit_reached"}],
    )  # fmt: skip


def test_already_answered_and_recurring(database: Database) -> None:
    surveys = with_surveys(
        database,
        definition("until", display_option="until_answered"),
        definition("monthly", trigger="month_t", display_option="recurring", recurring_days=30,
                   ignore_global_recontact=True),
    )  # fmt: skip
    first = decide(surveys, "u1", at=T0)
    surveys.respond({"rating": 5}, display_id=first.display_id, at=T0)
    assert decide(surveys, "u1", at=T0 + 60 * DAY).reason == "already_answered"
    monthly = decide(surveys, "u1", "month_t", at=T0)
    surveys.respond({"rating": 3}, display_id=monthly.display_id, at=T0)
    assert decide(surveys, "u1", "month_t", at=T0 + 29 * DAY).reason == "survey_recontact"
    again = decide(surveys, "u1", "month_t", at=T0 + 30 * DAY)
    assert again.status == "shown" and again.display_id != monthly.display_id


def test_once_means_one_display_answered_or_not(database: Database) -> None:
    surveys = with_surveys(database, definition())
    first = decide(surveys, "u1", at=T0)
    surveys.dismiss(first.display_id, at=T0)
    assert decide(surveys, "u1", at=T0 + 90 * DAY).reason == "max_displays_reached"
    assert display_count(database, "pulse") == 1


def test_until_answered_reasks_after_dismissal_until_max(database: Database) -> None:
    surveys = with_surveys(database, definition(display_option="until_answered", max_displays=3))
    outcomes = []
    for day in (0, 1, 7, 10, 14, 21, 60):
        decision = decide(surveys, "u1", at=T0 + day * DAY)
        outcomes.append((day, decision.status or decision.reason))
        if decision.status == "shown":
            surveys.dismiss(decision.display_id, at=T0 + day * DAY)
    assert outcomes == [
        (0, "shown"), (1, "survey_recontact"), (7, "shown"), (10, "survey_recontact"), (14, "shown"),
        (21, "max_displays_reached"), (60, "max_displays_reached"),
    ]  # fmt: skip


def test_survey_recontact_days(database: Database) -> None:
    surveys = with_surveys(database, definition(display_option="until_answered", recontact_days=2))
    first = decide(surveys, "u1", at=T0)
    surveys.dismiss(first.display_id, at=T0 + timedelta(hours=1))
    assert decide(surveys, "u1", at=T0 + 2 * DAY - timedelta(seconds=1)).reason == "survey_recontact"
    assert decide(surveys, "u1", at=T0 + 2 * DAY).status == "shown"


def test_global_recontact_between_surveys(database: Database) -> None:
    surveys = with_surveys(
        database,
        definition("first"),
        definition("second", trigger="second_t"),
        definition("support", trigger="support_t", ignore_global_recontact=True),
    )
    assert decide(surveys, "u1", at=T0).status == "shown"
    blocked = decide(surveys, "u1", "second_t", at=T0 + 7 * DAY - timedelta(seconds=1))
    assert (blocked.reason, blocked.candidates) == (
        "global_recontact",
        [{"survey_id": "second", "reason": "global_recontact"}],
    )
    assert decide(surveys, "u2", "second_t", at=T0).status == "shown"  # another user is not affected
    assert decide(surveys, "u1", "support_t", at=T0 + timedelta(minutes=1)).status == "shown"
    # The support survey seen at T0 + 1 minute now holds the second survey back until T0 + 7 days + 1 minute.
    assert decide(surveys, "u1", "second_t", at=T0 + 7 * DAY).reason == "global_recontact"
    assert decide(surveys, "u1", "second_t", at=T0 + 7 * DAY + timedelta(minutes=1)).status == "shown"


def test_global_recontact_days_is_a_service_setting(database: Database) -> None:
    surveys = with_surveys(database, definition("first"), definition("second", trigger="second_t"))
    decide(surveys, "u1", at=T0)
    relaxed = SurveyService(database, clock=Clock(), global_recontact_days=2)
    assert relaxed.trigger("u1", "second_t", at=T0 + DAY).reason == "global_recontact"
    assert relaxed.trigger("u1", "second_t", at=T0 + 2 * DAY).status == "shown"


def test_context_mismatch_and_no_matching_survey(database: Database) -> None:
    surveys = with_surveys(
        database,
        definition("exports", trigger_context={"feature": "export"}),
        definition("plans", trigger_context={"feature": "export", "plan": ["pro", "agency"]}),
    )
    mismatch = decide(surveys, "u1", feature="dashboard", at=T0)
    assert (mismatch.survey, mismatch.reason) == (None, "context_mismatch")
    assert mismatch.candidates == [
        {"survey_id": "exports", "reason": "context_mismatch"},
        {"survey_id": "plans", "reason": "context_mismatch"},
    ]
    nothing = decide(surveys, "u1", "nobody_listens", at=T0)
    assert (nothing.survey, nothing.reason, nothing.candidates) == (None, "no_matching_survey", [])
    assert display_count(database, "exports") + display_count(database, "plans") == 0
    plan = decide(surveys, "u2", context={"feature": "export", "plan": "agency"}, at=T0)
    assert plan.survey.survey_id == "exports"  # the first listening survey that may be shown wins


def test_candidates_explain_every_survey_tried(database: Database) -> None:
    surveys = with_surveys(
        database,
        definition("wrong_feature", trigger_context={"feature": "export"}),
        definition("agencies", persona_segments=["agency"]),
        definition("paused", active=False),
        definition("everyone"),
        definition("never_reached"),
    )
    decision = decide(surveys, User("u1", persona_segment="solo_podcaster"), feature="dashboard", at=T0)
    assert decision.survey.survey_id == "everyone"
    assert decision.candidates == [
        {"survey_id": "wrong_feature", "reason": "context_mismatch"},
        {"survey_id": "agencies", "reason": "persona_not_targeted"},
        {"survey_id": "paused", "reason": "inactive"},
        {"survey_id": "everyone", "reason": None},
    ]
    refused = decide(surveys, User("u1", persona_segment="solo_podcaster"), feature="dashboard", at=T0 + DAY)
    assert refused.survey is None
    assert refused.reason == "persona_not_targeted"  # the first reason among the surveys that listened
    assert [c["reason"] for c in refused.candidates] == [
        "context_mismatch", "persona_not_targeted", "inactive", "max_displays_reached", "global_recontact",
    ]  # fmt: skip
    assert decision.as_dict()["candidates"] == decision.candidates


def test_a_delayed_survey_is_queued_and_offered_once_due(database: Database) -> None:
    surveys = with_surveys(database, definition(delay_seconds=3600))
    queued = decide(surveys, "u1", at=T0)
    assert (queued.status, queued.show_after) == ("pending", T0 + timedelta(hours=1))
    again = decide(surveys, "u1", at=T0 + timedelta(minutes=30))
    assert (again.display_id, again.status) == (queued.display_id, "pending") and not again.new_display
    assert display_count(database, "pulse") == 1
    assert surveys.pending("u1", at=T0 + timedelta(minutes=59)) == []
    [due] = surveys.pending("u1", at=T0 + timedelta(hours=1))
    assert (due.display_id, due.survey.survey_id, due.trigger, due.show_after) == (
        queued.display_id, "pulse", "feature_done", T0 + timedelta(hours=1),
    )  # fmt: skip
    assert surveys.pending("u2", at=T0 + DAY) == []
    expired = T0 + timedelta(hours=1, days=PENDING_EXPIRY_DAYS, seconds=1)  # two weeks after it was due
    assert surveys.pending("u1", at=expired - timedelta(seconds=1)) != []
    assert surveys.pending("u1", at=expired) == []
    shown = surveys.mark_shown(queued.display_id, at=T0 + 2 * DAY)
    assert (shown["status"], shown["shown_at"]) == ("shown", T0 + 2 * DAY)
    assert surveys.mark_shown(queued.display_id, at=T0 + 3 * DAY)["shown_at"] == T0 + 2 * DAY  # idempotent
    assert surveys.pending("u1", at=T0 + 2 * DAY) == []


def test_a_survey_delayed_longer_than_the_expiry_is_still_offered(database: Database) -> None:
    surveys = with_surveys(database, definition(delay_seconds=20 * 86_400))
    queued = decide(surveys, "u1", at=T0)
    assert queued.show_after == T0 + 20 * DAY
    assert surveys.pending("u1", at=T0 + 19 * DAY) == []
    assert [p.display_id for p in surveys.pending("u1", at=T0 + 20 * DAY)] == [queued.display_id]
    assert [p.display_id for p in surveys.pending("u1", at=T0 + 34 * DAY)] == [queued.display_id]
    assert surveys.pending("u1", at=T0 + 34 * DAY + timedelta(seconds=1)) == []


def test_show_now_false_queues_even_without_delay(database: Database) -> None:
    surveys = with_surveys(database, definition())
    queued = surveys.trigger("u1", "feature_done", at=T0, show_now=False)
    assert (queued.status, queued.show_after) == ("pending", T0)
    assert [p.display_id for p in surveys.pending("u1", at=T0)] == [queued.display_id]


def test_a_due_queued_survey_is_shown_when_the_caller_shows_now(database: Database) -> None:
    surveys = with_surveys(database, definition())
    queued = surveys.trigger("u1", "feature_done", at=T0, show_now=False)
    still_queued = surveys.trigger("u1", "feature_done", at=T0 + timedelta(minutes=1), show_now=False)
    assert (still_queued.display_id, still_queued.status) == (queued.display_id, "pending")
    shown = decide(surveys, "u1", at=T0 + timedelta(minutes=2))
    assert (shown.display_id, shown.status, shown.survey.survey_id) == (queued.display_id, "shown", "pulse")
    [row] = displays(database, "u1")
    assert (row["status"], row["shown_at"]) == ("shown", T0 + timedelta(minutes=2))
    assert surveys.pending("u1", at=T0 + DAY) == []
    assert decide(surveys, "u1", at=T0 + timedelta(minutes=3)).reason == "max_displays_reached"


def test_an_expired_queued_survey_is_not_returned_forever(database: Database) -> None:
    """A display queued and never fetched expires after PENDING_EXPIRY_DAYS; a later trigger queues a fresh
    one (subject to the rules) instead of handing back the stale display that pending() no longer offers."""
    surveys = with_surveys(database, definition(display_option="until_answered", delay_seconds=3600))
    stale = decide(surveys, "u1", at=T0)
    later = T0 + timedelta(days=PENDING_EXPIRY_DAYS + 1)
    fresh = decide(surveys, "u1", at=later)
    assert fresh.status == "pending" and fresh.display_id != stale.display_id and fresh.new_display
    assert [p.display_id for p in surveys.pending("u1", at=later + timedelta(hours=1))] == [fresh.display_id]


def test_an_unfetched_pending_survey_blocks_other_surveys_like_a_shown_one(database: Database) -> None:
    surveys = with_surveys(
        database, definition("delayed", delay_seconds=3600), definition("other", trigger="other_t")
    )
    decide(surveys, "u1", at=T0)
    blocked = decide(surveys, "u1", "other_t", at=T0 + 7 * DAY)  # 7 days after T0, < 7 days after show_after
    assert blocked.reason == "global_recontact"
    assert decide(surveys, "u1", "other_t", at=T0 + 7 * DAY + timedelta(hours=1)).status == "shown"


def test_trigger_refuses_bad_input(database: Database) -> None:
    from tools.surveys.errors import SurveyInputError

    surveys = with_surveys(database, definition())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"context": {"feature": {"x": 1}}}, "context.feature"),
        ({"context": ["feature"]}, "context"),
        ({"context": {f"k{i}": i for i in range(51)}}, "context"),
        ({"context": {"note": "a\x00b"}}, "context.note"),
        ({"feature": " "}, "feature"),
        ({"at": T0.replace(tzinfo=None)}, "at"),
    ]
    for options, field in cases:
        with pytest.raises(SurveyInputError) as caught:
            surveys.trigger("u1", "feature_done", **({"at": T0} | options))
        assert caught.value.field == field, options
    with pytest.raises(SurveyInputError) as bad_trigger:
        surveys.trigger("u1", "", at=T0)
    assert bad_trigger.value.field == "trigger"
    assert display_count(database, "pulse") == 0


def test_the_clock_is_the_default_time(database: Database) -> None:
    clock = Clock(T0 + 3 * DAY)
    surveys = with_surveys(database, definition(), clock=clock)
    decision = surveys.trigger("u1", "feature_done")
    assert decision.show_after == T0 + 3 * DAY
    assert NotShownReason(decide(surveys, "u1").reason) is NotShownReason.MAX_DISPLAYS_REACHED


def test_concurrent_triggers_for_one_user_record_one_display(database: Database) -> None:
    """A double-clicked trigger (eight at once here) shows the survey once, on PostgreSQL as on SQLite."""
    import threading

    with_surveys(database, definition("first"), definition("second"))
    workers = 8
    barrier = threading.Barrier(workers)
    statuses: list[str | None] = []
    lock = threading.Lock()

    def trigger() -> None:
        own = SurveyService(database, clock=Clock(T0))
        barrier.wait()
        decision = own.trigger("u1", "feature_done")
        with lock:
            statuses.append(decision.status or decision.reason)

    threads = [threading.Thread(target=trigger) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(displays(database, "u1")) == 1
    assert sorted(statuses, key=str) == ["max_displays_reached"] * (workers - 1) + ["shown"]
