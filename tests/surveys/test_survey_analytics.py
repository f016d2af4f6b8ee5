"""Survey results on a hand-built set of displays and answers (every figure worked out below), free-text filters
and PII redaction, and the nps KPI counting answered NPS questions per persona — on SQLite and PostgreSQL.

The dataset, all in the window [T0 − 1 day, T0 + 1 day):
- agency a0–a3 answer, a4 dismisses, a5 leaves a partial response, p0 p1 have the survey queued (not shown);
- solo_podcaster s0–s5 all answer; x0 (agency) answered ten days earlier, outside the window.
NPS scores: agency 10 9 7 3 (2 promoters, 1 detractor), solo 9 10 9 8 7 6 (3 promoters, 1 detractor):
5 promoters, 3 passives, 2 detractors of 10 → NPS 30.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from scipy import stats

from store.database import Database
from tests.surveys.support import T0, Clock, definition, identify, with_surveys
from tools.events.ingest import EventIngestor
from tools.kpis.compute import compute_kpis
from tools.surveys.analytics import SurveyResults, free_text_answers, score, survey_results
from tools.surveys.redaction import redact_pii
from tools.surveys.service import SurveyService
from tools.window import Window

START, END = T0 - timedelta(days=1), T0 + timedelta(days=1)
QUESTIONS: list[dict[str, Any]] = [
    {"question_id": "score", "type": "nps", "text": "Recommend us?", "required": False},
    {"question_id": "stars", "type": "rating", "text": "Rate it", "required": False},
    {"question_id": "plan", "type": "single_choice", "text": "Plan?", "options": ["Free", "Pro", "Agency"]},
    {"question_id": "comment", "type": "open_text", "text": "Anything else?", "required": False},
]
# user → (persona, answers); None = only shown
ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "a0": ("agency", {"score": 10, "stars": 5, "plan": "Pro",
                      "comment": "Call me at +1 (555) 123-4567 or mail jane.doe@example.com"}),
    "a1": ("agency", {"score": 9, "stars": 4, "plan": "Pro", "comment": "The export broke on 2026-03-02"}),
    "a2": ("agency", {"score": 7, "stars": 4, "plan": "Agency"}),
    "a3": ("agency", {"score": 3, "plan": "Agency"}),
    "s0": ("solo_podcaster", {"score": 9, "stars": 3, "plan": "Free", "comment": "Great since version 1.4.0"}),
    "s1": ("solo_podcaster", {"score": 10, "stars": 3, "plan": "Free", "comment": "EXPORT is slow in 2026"}),
    "s2": ("solo_podcaster", {"score": 9, "stars": 4, "plan": "Free"}),
    "s3": ("solo_podcaster", {"score": 8, "stars": 5, "plan": "Pro"}),
    "s4": ("solo_podcaster", {"score": 7, "stars": 2, "plan": "Pro"}),
    "s5": ("solo_podcaster", {"score": 6, "stars": 1, "plan": "Pro"}),
}  # fmt: skip
Z = 1.959963984540054


def wilson(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@pytest.fixture
def dataset(database: Database) -> SurveyService:
    personas = {user: persona for user, (persona, _) in ANSWERS.items()}
    personas |= {"a4": "agency", "a5": "agency", "p0": "agency", "p1": "agency", "x0": "agency"}
    EventIngestor(database).ingest([identify(user, persona=persona) for user, persona in personas.items()])
    surveys = with_surveys(database, definition("full", questions=QUESTIONS), clock=Clock())
    old = surveys.trigger("x0", "feature_done", at=T0 - timedelta(days=10))
    surveys.respond({"score": 0, "stars": 1, "plan": "Free"}, display_id=old.display_id, at=old.show_after)
    for minute, (user, (_, answers)) in enumerate(ANSWERS.items()):
        decision = surveys.trigger(user, "feature_done", at=T0 + timedelta(minutes=minute))
        surveys.respond(answers, display_id=decision.display_id, at=T0 + timedelta(hours=1, minutes=minute))
    surveys.dismiss(surveys.trigger("a4", "feature_done", at=T0).display_id, at=T0)
    partial = surveys.trigger("a5", "feature_done", at=T0)
    surveys.respond(
        {"comment": "Half done"}, display_id=partial.display_id, partial=True, at=T0 + timedelta(hours=3)
    )
    for user in ("p0", "p1"):
        assert surveys.trigger(user, "feature_done", at=T0, show_now=False).status == "pending"
    return surveys


def results(database: Database, surveys: SurveyService, persona: str | None = None) -> SurveyResults:
    return survey_results(database, surveys.get("full"), START, END, persona=persona)


def test_response_rates_per_persona_with_wilson_intervals(database: Database, dataset: SurveyService) -> None:
    overall = results(database, dataset)
    assert overall.displays == {"triggered": 14, "shown": 12, "answered": 10, "dismissed": 1, "partial": 1}
    assert (overall.response_rate.shown, overall.response_rate.answered) == (12, 10)
    assert overall.response_rate.rate == pytest.approx(10 / 12)
    assert overall.response_rate.interval == pytest.approx(wilson(10, 12))
    agency = overall.response_rate_by_persona["agency"]
    assert (agency.shown, agency.answered, agency.rate) == (6, 4, pytest.approx(4 / 6))
    assert agency.interval == pytest.approx(wilson(4, 6))
    solo = overall.response_rate_by_persona["solo_podcaster"]
    assert (solo.shown, solo.answered, solo.rate) == (6, 6, 1.0)
    assert solo.interval == pytest.approx(wilson(6, 6)) and solo.interval[1] == 1.0
    assert set(overall.response_rate_by_persona) == {"agency", "solo_podcaster"}  # x0's display is earlier


def test_nps_score_and_interval(database: Database, dataset: SurveyService) -> None:
    nps = next(q for q in results(database, dataset).questions if q.question_id == "score")
    assert nps.answered == 10
    assert nps.score is not None and nps.score.kind == "nps"
    assert (nps.score.n, nps.score.promoters, nps.score.detractors) == (10, 5, 2)
    assert nps.score.value == pytest.approx(30.0)
    low, high = t_interval([1.0] * 5 + [0.0] * 3 + [-1.0] * 2)  # each answer as +1 / 0 / −1
    assert nps.score.interval == pytest.approx((100 * low, 100 * high))
    by_persona = nps.score_by_persona
    assert (by_persona["agency"].value, by_persona["agency"].n) == (pytest.approx(25.0), 4)
    assert (by_persona["solo_podcaster"].value, by_persona["solo_podcaster"].n) == (
        pytest.approx(100 * 2 / 6),
        6,
    )
    assert nps.distribution == {str(v): {3: 1, 6: 1, 7: 2, 8: 1, 9: 3, 10: 2}.get(v, 0) for v in range(11)}
    assert list(nps.distribution) == [str(v) for v in range(11)]


def test_rating_mean_with_t_interval(database: Database, dataset: SurveyService) -> None:
    stars = next(q for q in results(database, dataset).questions if q.question_id == "stars")
    values = [5, 4, 4, 3, 3, 4, 5, 2, 1]  # a3 skipped the rating
    assert stars.answered == 9
    assert stars.score is not None and stars.score.kind == "mean"
    assert (stars.score.n, stars.score.value) == (9, pytest.approx(31 / 9))
    assert stars.score.interval == pytest.approx(t_interval(values))
    assert stars.score_by_persona["agency"].value == pytest.approx(13 / 3)
    assert stars.score_by_persona["solo_podcaster"].interval == pytest.approx(t_interval([3, 3, 4, 5, 2, 1]))
    assert stars.distribution == {"1": 1, "2": 1, "3": 2, "4": 3, "5": 2}


def test_distributions_keep_option_order_and_zero_counts(database: Database, dataset: SurveyService) -> None:
    plan = next(q for q in results(database, dataset).questions if q.question_id == "plan")
    assert plan.distribution == {"Free": 3, "Pro": 5, "Agency": 2}
    assert plan.score is None and plan.answered == 10
    solo = results(database, dataset, persona="solo_podcaster")
    solo_plan = next(q for q in solo.questions if q.question_id == "plan")
    assert list(solo_plan.distribution.items()) == [("Free", 3), ("Pro", 3), ("Agency", 0)]
    comment = next(q for q in solo.questions if q.question_id == "comment")
    assert (comment.answered, comment.distribution, comment.score) == (2, {}, None)


def test_results_for_one_persona(database: Database, dataset: SurveyService) -> None:
    agency = results(database, dataset, persona="agency")
    assert agency.persona == "agency"
    assert agency.displays == {"triggered": 8, "shown": 6, "answered": 4, "dismissed": 1, "partial": 1}
    assert list(agency.response_rate_by_persona) == ["agency"]
    nps = next(q for q in agency.questions if q.question_id == "score")
    assert nps.score is not None and (nps.score.value, nps.score.n) == (pytest.approx(25.0), 4)
    nobody = results(database, dataset, persona="brand_sponsor")
    assert nobody.response_rate.rate is None and nobody.response_rate.interval is None
    assert all(q.answered == 0 for q in nobody.questions)
    empty_nps = next(q for q in nobody.questions if q.question_id == "score")
    assert empty_nps.score is not None and (empty_nps.score.value, empty_nps.score.interval) == (None, None)
    assert results(database, dataset).as_dict()["start"] == START.isoformat()


def test_score_edge_cases() -> None:
    from store.repositories.survey_analytics import AnswerSums

    single = score("rating", AnswerSums(1, 4.0, 16.0))
    assert (single.value, single.interval) == (4.0, None)  # one answer: no interval, never NaN
    unanimous = score("nps", AnswerSums(3, 30.0, 300.0, promoters=3))
    assert (unanimous.value, unanimous.interval) == (100.0, (100.0, 100.0))


def test_free_text_filters(database: Database, dataset: SurveyService) -> None:
    everything = free_text_answers(database, START, END)
    assert [row["user_id"] for row in everything] == ["a5", "s1", "s0", "a1", "a0"]  # newest first
    first = everything[0]
    assert (first["survey_id"], first["question_id"], first["persona"], first["text"]) == (
        "full", "comment", "agency", "Half done",
    )  # fmt: skip
    assert first["answered_at"] == (T0 + timedelta(hours=3)).isoformat()
    assert [r["user_id"] for r in free_text_answers(database, START, END, persona="solo_podcaster")] == [
        "s1",
        "s0",
    ]
    contains = free_text_answers(database, START, END, contains="export")
    assert [r["text"] for r in contains] == ["EXPORT is slow in 2026", "The export broke on 2026-03-02"]
    assert free_text_answers(database, START, END, contains="%") == []  # a wildcard is a literal character
    assert free_text_answers(database, START, END, survey_id="other") == []
    assert free_text_answers(database, START, END, question_id="score") == []
    assert len(free_text_answers(database, START, END, question_id="comment", limit=2)) == 2
    assert free_text_answers(database, START, T0 + timedelta(hours=1)) == []  # half-open window


def test_free_text_is_redacted_on_request(database: Database, dataset: SurveyService) -> None:
    raw = {r["user_id"]: r["text"] for r in free_text_answers(database, START, END)}
    redacted = {r["user_id"]: r["text"] for r in free_text_answers(database, START, END, redact=True)}
    assert raw["a0"] == "Call me at +1 (555) 123-4567 or mail jane.doe@example.com"
    assert redacted["a0"] == "Call me at [phone] or mail [email]"
    assert redacted["s0"] == "Great since version 1.4.0"
    assert redacted["s1"] == "EXPORT is slow in 2026"
    assert redacted["a1"] == "The export broke on 2026-03-02"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+podcast@mail.example.co.uk today", "mail [email] today"),
        ("JANE@EXAMPLE.COM", "[email]"),
        ("call +1 (555) 123-4567.", "call [phone]."),
        ("(555) 123-4567", "[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("ring 555-1234 now", "ring [phone] now"),
        ("0171.234.5678", "[phone]"),
        ("a@b.io or 555 123 4567", "[email] or [phone]"),
        ("on 2026-03-02 call 555-123-4567", "on 2026-03-02 call [phone]"),
    ],
)
def test_redact_pii_removes_contact_data(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "version 1.4.0",
        "since v10.2.3 the export is slow",
        "a year: 2026",
        "between 2025 and 2026",
        "the report of 2026-03-02 was off",
        "at 2026-03-02 10:00 it failed",
        "on 12.03.2026 it failed",
        "it took 1-4 hours, not 15-60 minutes",
        "$1,299 per month",
        "100,000 downloads",
        "ticket #4521",
        "rated 4/5, NPS 9",
        "user@ without domain",
        "",
    ],
)
def test_redact_pii_keeps_what_is_not_contact_data(text: str) -> None:
    assert redact_pii(text) == text


# ---- the nps KPI -------------------------------------------------------------------------------------------------


def test_nps_kpi_counts_answered_nps_questions_per_persona(
    database: Database, dataset: SurveyService
) -> None:
    with database.read() as connection:
        snapshot = compute_kpis(connection, Window(START, END))
    overall = snapshot.overall["nps"]
    assert (overall.value, overall.n, overall.reason) == (pytest.approx(30.0), 10, None)
    assert overall.extra == {"promoters": 5, "detractors": 2}
    agency = snapshot.personas["agency"]["nps"]
    assert (agency.value, agency.n, agency.extra) == (
        pytest.approx(25.0),
        4,
        {"promoters": 2, "detractors": 1},
    )
    solo = snapshot.personas["solo_podcaster"]["nps"]
    assert (solo.value, solo.n, solo.extra) == (
        pytest.approx(100 * 2 / 6),
        6,
        {"promoters": 3, "detractors": 1},
    )
    with database.read() as connection:
        earlier = compute_kpis(connection, Window(T0 - timedelta(days=11), START))
    assert (earlier.overall["nps"].value, earlier.overall["nps"].n) == (
        pytest.approx(-100.0),
        1,
    )  # x0 scored 0
    assert earlier.personas["solo_podcaster"]["nps"].reason == "no answered NPS questions in the window"


def test_nps_kpi_counts_nps_questions_of_every_survey(database: Database) -> None:
    surveys = with_surveys(database, definition("full", questions=QUESTIONS), clock=Clock())
    surveys.ensure_defaults()  # nothing: surveys exist already
    surveys.create(definition("nps_only", survey_type="nps", trigger="nps_t", questions=[...]))
    first = surveys.trigger("u1", "feature_done", at=T0)
    surveys.respond({"score": 10, "plan": "Pro"}, display_id=first.display_id, at=T0)
    second = surveys.trigger("u1", "nps_t", at=T0 + timedelta(days=8))
    surveys.respond({"nps": 2, "comment": "slow"}, display_id=second.display_id, at=T0 + timedelta(days=8))
    skipped = surveys.trigger("u2", "feature_done", at=T0)
    surveys.respond({"plan": "Free"}, display_id=skipped.display_id, at=T0)  # NPS skipped: not counted
    with database.read() as connection:
        snapshot = compute_kpis(connection, Window(T0, T0 + timedelta(days=9)))
    nps = snapshot.overall["nps"]
    assert (nps.value, nps.n, nps.extra) == (0.0, 2, {"promoters": 1, "detractors": 1})
