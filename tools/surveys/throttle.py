"""Whether a triggered survey may be shown to a user now: the fatigue rules, as one pure function.

Checked in this order, and the first that applies is the machine-readable reason for not showing:
inactive → persona_not_targeted → sampled_out → response_limit_reached → already_answered →
max_displays_reached → survey_recontact → global_recontact.

- global_recontact: the user saw another survey within `global_recontact_days` (default 7), unless the survey
  sets ignore_global_recontact. One global window is what keeps users from being asked by several surveys in a
  row; it is reported separately from the survey's own wait so nobody has to guess which rule fired.
- survey_recontact: this survey was shown to the user within its own wait — recontact_days if set, else
  recurring_days for a recurring survey, else the global window (so an until_answered survey re-asks after a
  dismissal no sooner than other surveys would).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tools.experiments.assignment import fnv1a32
from tools.surveys.model import DisplayOption, Survey

DEFAULT_GLOBAL_RECONTACT_DAYS = 7


class NotShownReason(StrEnum):
    NO_MATCHING_SURVEY = "no_matching_survey"
    CONTEXT_MISMATCH = "context_mismatch"
    INACTIVE = "inactive"
    PERSONA_NOT_TARGETED = "persona_not_targeted"
    SAMPLED_OUT = "sampled_out"
    RESPONSE_LIMIT_REACHED = "response_limit_reached"
    ALREADY_ANSWERED = "already_answered"
    MAX_DISPLAYS_REACHED = "max_displays_reached"
    SURVEY_RECONTACT = "survey_recontact"
    GLOBAL_RECONTACT = "global_recontact"


@dataclass(frozen=True, slots=True)
class UserSurveyHistory:
    """What throttling needs to know about one user and one survey (read in one query)."""

    displays_of_survey: int = 0
    answered_survey: bool = False
    last_seen_survey: datetime | None = None
    last_seen_other_survey: datetime | None = None


def in_sample(survey_id: str, user_id: str, sampling_percentage: float) -> bool:
    """Deterministic per user and survey: the same user is always in or always out of a survey's sample."""
    if sampling_percentage >= 100:
        return True
    bucket = (fnv1a32(f"{survey_id}:{user_id}") % 10_000) / 100  # 0.00 … 99.99
    return bucket < sampling_percentage


def is_active(survey: Survey, at: datetime) -> bool:
    if not survey.active:
        return False
    if survey.starts_at is not None and at < survey.starts_at:
        return False
    return survey.ends_at is None or at < survey.ends_at


def survey_wait(survey: Survey, global_recontact_days: int) -> timedelta:
    if survey.recontact_days is not None:
        days = max(survey.recontact_days, survey.recurring_days or 0)
    elif survey.display_option == DisplayOption.RECURRING:
        days = survey.recurring_days or 0
    else:
        days = global_recontact_days
    return timedelta(days=days)


def reason_not_to_show(
    survey: Survey,
    *,
    user_id: str,
    persona: str,
    at: datetime,
    history: UserSurveyHistory,
    answered_total: int,
    global_recontact_days: int = DEFAULT_GLOBAL_RECONTACT_DAYS,
) -> NotShownReason | None:
    """None when the survey may be shown to this user at `at`; otherwise the first rule that forbids it."""
    if not is_active(survey, at):
        return NotShownReason.INACTIVE
    if survey.persona_segments and persona not in survey.persona_segments:
        return NotShownReason.PERSONA_NOT_TARGETED
    if not in_sample(survey.survey_id, user_id, float(survey.sampling_percentage)):
        return NotShownReason.SAMPLED_OUT
    if survey.response_limit is not None and answered_total >= survey.response_limit:
        return NotShownReason.RESPONSE_LIMIT_REACHED
    if history.answered_survey and survey.display_option != DisplayOption.RECURRING:
        return NotShownReason.ALREADY_ANSWERED
    if survey.max_displays is not None and history.displays_of_survey >= survey.max_displays:
        return NotShownReason.MAX_DISPLAYS_REACHED
    last = history.last_seen_survey
    if last is not None and at < last + survey_wait(survey, global_recontact_days):
        return NotShownReason.SURVEY_RECONTACT
    other = history.last_seen_other_survey
    if (
        not survey.ignore_global_recontact
        and other is not None
        and at < other + timedelta(days=global_recontact_days)
    ):
        return NotShownReason.GLOBAL_RECONTACT
    return None
