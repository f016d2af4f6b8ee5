"""Simulated survey respondents for the demo: users see their queued surveys, answer some, dismiss others.

Deterministic for a seed (each display draws from its own generator, keyed by its id). The planted deployment
leaves a mark: after it, the affected persona scores NPS and report accuracy lower, says more often that the
sponsor needed corrections, and writes comments about failed or wrong reports. Everything goes through the survey
service, exactly as a client's calls would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from store.models import SurveyDisplayRow
from tools.surveys.model import QuestionType, Survey
from tools.surveys.service import SurveyService

ANSWER_PROBABILITY = 0.4
DISMISS_PROBABILITY = 0.4  # the rest never open the survey: it stays pending
COMMENT_PROBABILITY = 0.35
NPS_ANSWER_PROBABILITY = 0.85

# (promoter, passive) probabilities of an NPS answer; the rest are detractors.
NPS_MIX = {"solo_podcaster": (0.45, 0.35), "podcast_network": (0.55, 0.30), "agency": (0.60, 0.28),
           "brand_sponsor": (0.40, 0.35)}  # fmt: skip
NPS_MIX_AFTER_REGRESSION = (0.20, 0.30)
PRAISE = [
    "Setting up the first campaign report was quick.",
    "The sponsor loved the download breakdown.",
    "Love the automated weekly report, saves me an hour.",
    "Would like more control over the report template.",
    "Fine overall; the sponsor dashboard could load faster.",
]
COMPLAINTS = [
    "Report generation failed twice since the last update.",
    "The sponsor report showed wrong download numbers after the update; we had to regenerate it.",
    "Reports for our network shows keep timing out since last week.",
    "Had to send a corrected report to the sponsor again. Call me at +1 415 555 0100 if you need details.",
    "Errors when generating reports for several shows at once. Contact ops@example-network.com.",
]


@dataclass(frozen=True, slots=True)
class Regression:
    """After `since`, users of `persona` are unhappier (the demo's planted deployment)."""

    since: datetime
    persona: str


@dataclass(frozen=True, slots=True)
class RespondentSummary:
    answered: int = 0
    dismissed: int = 0
    unopened: int = 0


def simulate_respondents(
    service: SurveyService,
    *,
    until: datetime,
    regression: Regression | None,
    seed: int = 7,
    on_display: Callable[[], None] | None = None,
) -> RespondentSummary:
    """Play every queued display due before `until` in time order: shown, then answered or dismissed."""
    with service.database.read() as connection:
        d = SurveyDisplayRow
        displays = connection.execute(
            select(d.id, d.survey_id, d.persona, d.show_after)
            .where(d.status == "pending", d.show_after < until)
            .order_by(d.show_after, d.id)
        ).all()
    surveys = {survey.survey_id: survey for survey in service.surveys()}
    answered = dismissed = unopened = 0
    for display_id, survey_id, persona, show_after in displays:
        rng = random.Random(f"{seed}:{display_id}")  # nosec B311  # seeded demo data, not security
        opened = show_after + timedelta(minutes=rng.uniform(2, 36 * 60))
        roll = rng.random()
        if opened >= until or roll >= ANSWER_PROBABILITY + DISMISS_PROBABILITY:
            unopened += 1
        elif roll < ANSWER_PROBABILITY:
            unhappy = regression is not None and persona == regression.persona and opened >= regression.since
            answers = _answers(surveys[survey_id], persona, unhappy, rng)
            service.mark_shown(display_id, at=opened)
            service.respond(
                answers, display_id=display_id, at=opened + timedelta(minutes=rng.uniform(0.5, 4))
            )
            answered += 1
        else:
            service.mark_shown(display_id, at=opened)
            service.dismiss(display_id, at=opened + timedelta(seconds=rng.uniform(3, 40)))
            dismissed += 1
        if on_display is not None:
            on_display()
    return RespondentSummary(answered, dismissed, unopened)


def pending_count(service: SurveyService, until: datetime) -> int:
    with service.database.read() as connection:
        d = SurveyDisplayRow
        return len(connection.execute(select(d.id).where(d.status == "pending", d.show_after < until)).all())


def _answers(survey: Survey, persona: str, unhappy: bool, rng: random.Random) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for question in survey.questions:
        if question.type == QuestionType.NPS:
            if question.required or rng.random() < NPS_ANSWER_PROBABILITY:
                answers[question.question_id] = _nps(persona, unhappy, rng)
        elif question.type == QuestionType.OPEN_TEXT:
            if rng.random() < (0.6 if unhappy else COMMENT_PROBABILITY):
                answers[question.question_id] = rng.choice(COMPLAINTS if unhappy else PRAISE)
        elif question.scale is not None:
            low, high = question.scale
            centre = low + (high - low) * (0.45 if unhappy else 0.78)
            answers[question.question_id] = max(low, min(high, round(rng.gauss(centre, (high - low) * 0.18))))
        elif question.options:
            # Options are listed from best to worst; an unhappy user leans towards the end of the list.
            weights = [
                (i + 1.0) if unhappy else (len(question.options) - i) ** 2
                for i in range(len(question.options))
            ]
            choice = rng.choices(question.options, weights)[0]
            answers[question.question_id] = [choice] if question.type == QuestionType.MULTI_CHOICE else choice
    return answers


def _nps(persona: str, unhappy: bool, rng: random.Random) -> int:
    promoters, passives = NPS_MIX_AFTER_REGRESSION if unhappy else NPS_MIX.get(persona, (0.45, 0.35))
    roll = rng.random()
    if roll < promoters:
        return rng.choice((9, 10))
    if roll < promoters + passives:
        return rng.choice((7, 8))
    return rng.randint(0, 6)
