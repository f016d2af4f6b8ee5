"""`JourneySurveySystem`: the seed's async API for journey surveys, over the survey service.

survey_system = JourneySurveySystem()               # configured database, or JourneySurveySystem("sqlite:///x.db")
survey = await survey_system.trigger_survey(user=user, trigger=SurveyTrigger.VALUE_DELIVERED,
    context={"value_type": "report_generated"}, feature="report_generation")     # a Survey, or None
response = await survey_system.submit_response(user=user, survey_id=survey.survey_id, responses={...})

The default surveys are created the first time a JourneySurveySystem (or the service) starts on a database.
`evaluate_trigger` returns the full decision (display id, or the machine-readable reason nothing is shown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from feedbackloop.runtime import database_for
from feedbackloop.settings import Settings, get_settings
from tools.surveys.analytics import SurveyResults, free_text_answers, survey_results
from tools.surveys.errors import SurveyInputError, SurveyNotFoundError, SurveyStateError
from tools.surveys.evaluation import TriggerDecision
from tools.surveys.model import DisplayOption, Question, QuestionType, Survey, SurveyTrigger, SurveyType
from tools.surveys.service import PendingSurvey, SurveyResponse, SurveyService
from tools.surveys.throttle import NotShownReason
from tools.users import User

__all__ = [
    "DisplayOption",
    "JourneySurveySystem",
    "NotShownReason",
    "PendingSurvey",
    "Question",
    "QuestionType",
    "Survey",
    "SurveyInputError",
    "SurveyNotFoundError",
    "SurveyResponse",
    "SurveyResults",
    "SurveyStateError",
    "SurveyTrigger",
    "SurveyType",
    "TriggerDecision",
]


class JourneySurveySystem:
    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.database = database_for(database_url, self.settings)
        self.service = SurveyService(
            self.database,
            global_recontact_days=self.settings.survey_recontact_days,
            **({"clock": clock} if clock is not None else {}),
        )
        self.service.ensure_defaults()

    async def trigger_survey(
        self,
        user: User | str,
        trigger: SurveyTrigger | str,
        context: Mapping[str, Any] | None = None,
        feature: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:
        """The survey to show `user` now, or None (see `evaluate_trigger` for why, or for a delayed survey)."""
        decision = await self.evaluate_trigger(user, trigger, context, feature, at)
        return decision.survey if decision.status == "shown" else None

    async def evaluate_trigger(
        self,
        user: User | str,
        trigger: SurveyTrigger | str,
        context: Mapping[str, Any] | None = None,
        feature: str | None = None,
        at: datetime | None = None,
    ) -> TriggerDecision:
        return await asyncio.to_thread(self.service.trigger, user, trigger, context, feature=feature, at=at)

    async def submit_response(
        self,
        user: User | str,
        survey_id: str,
        responses: Mapping[str, Any],
        *,
        display_id: str | None = None,
        partial: bool = False,
        language: str | None = None,
    ) -> SurveyResponse:
        return await asyncio.to_thread(
            self.service.respond, responses, display_id=display_id, user=user, survey_id=survey_id,
            partial=partial, language=language,
        )  # fmt: skip

    async def pending_surveys(self, user: User | str) -> list[PendingSurvey]:
        user_id = user.user_id if isinstance(user, User) else user
        return await asyncio.to_thread(self.service.pending, user_id)

    async def dismiss_survey(self, display_id: str) -> None:
        await asyncio.to_thread(self.service.dismiss, display_id)

    async def create_survey(self, survey: Survey | Mapping[str, Any]) -> Survey:
        return await asyncio.to_thread(self.service.create, survey)

    async def update_survey(self, survey_id: str, **changes: Any) -> Survey:
        return await asyncio.to_thread(self.service.update, survey_id, changes)

    async def get_survey(self, survey_id: str) -> Survey:
        return await asyncio.to_thread(self.service.get, survey_id)

    async def list_surveys(self, *, active_only: bool = False) -> list[Survey]:
        return await asyncio.to_thread(self.service.surveys, active_only=active_only)

    async def get_results(self, survey_id: str, days: int = 30, persona: str | None = None) -> SurveyResults:
        """Response rates, scores with intervals and answer distributions over the last `days` days."""
        survey = await self.get_survey(survey_id)
        end = self.service.clock()
        return await asyncio.to_thread(
            survey_results, self.database, survey, end - timedelta(days=days), end, persona=persona
        )

    async def free_text(
        self, days: int = 30, *, survey_id: str | None = None, persona: str | None = None, redact: bool = True
    ) -> list[dict[str, Any]]:
        """Open-text answers, newest first; redacted of e-mails and phone numbers unless `redact=False`."""
        end = self.service.clock()
        return await asyncio.to_thread(
            free_text_answers, self.database, end - timedelta(days=days), end,
            survey_id=survey_id, persona=persona, redact=redact,
        )  # fmt: skip
