"""The survey service: definitions, trigger evaluation, the display lifecycle and validated responses.

Every door (HTTP, CLI, the seed's JourneySurveySystem, ingestion, the demo) goes through this class or through
`tools.surveys.evaluation` on the ingestion transaction. Each call is one transaction; a response locks its
display row (PostgreSQL) or holds SQLite's write lock, so concurrent submissions of one display store one response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from store.database import Database
from store.models import UNASSIGNED_PERSONA
from store.repositories import surveys as repo
from store.repositories.observations import Observation, insert_observation, persona_of
from tools.surveys.defaults import default_surveys
from tools.surveys.errors import SurveyInputError, SurveyNotFoundError, SurveyStateError
from tools.surveys.evaluation import (
    PENDING_EXPIRY_DAYS,
    DisplayLedger,
    TriggerDecision,
    active_surveys,
    answered_totals,
    decide,
)
from tools.surveys.model import (
    DEFAULT_MAX_DISPLAYS,
    LANGUAGE_PATTERN,
    DisplayOption,
    Survey,
    parse_survey,
    survey_from_stored,
)
from tools.surveys.responses import answer_rows, check_answers
from tools.surveys.throttle import DEFAULT_GLOBAL_RECONTACT_DAYS
from tools.surveys.webhooks import enqueue_response_webhook
from tools.users import User, as_user

MAX_CONTEXT_KEYS = 50


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    display_id: str
    survey_id: str
    user_id: str
    answers: dict[str, Any]
    partial: bool
    missing_required: list[str] = field(default_factory=list)
    duplicate: bool = False  # this submission repeated a stored response and changed nothing
    submitted_at: datetime | None = None

    @property
    def response_id(self) -> str:
        return self.display_id

    def as_dict(self) -> dict[str, Any]:
        return {
            "display_id": self.display_id, "survey_id": self.survey_id, "user_id": self.user_id,
            "answers": self.answers, "partial": self.partial, "missing_required": self.missing_required,
            "duplicate": self.duplicate,
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class PendingSurvey:
    """A survey queued for a user and due: the client shows it, then posts display, dismiss or respond."""

    display_id: str
    survey: Survey
    trigger: str
    triggered_at: datetime
    show_after: datetime

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        return {
            "display_id": self.display_id, "survey_id": self.survey.survey_id, "trigger": self.trigger,
            "triggered_at": self.triggered_at.isoformat(), "show_after": self.show_after.isoformat(),
            "survey": self.survey.localized(language),
        }  # fmt: skip


class SurveyService:
    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        global_recontact_days: int = DEFAULT_GLOBAL_RECONTACT_DAYS,
    ) -> None:
        self.database = database
        self.clock = clock
        self.global_recontact_days = global_recontact_days

    # ---- definitions ---------------------------------------------------------------------------------------

    def ensure_defaults(self) -> int:
        """Create the four default surveys when no survey exists yet (first start); returns how many were made."""
        with self.database.write() as connection:
            if repo.survey_count(connection) > 0:
                return 0
            now = self.clock()
            for survey in default_surveys():
                repo.insert_survey(connection, _row(survey, now) | {"created_at": now})
            return len(default_surveys())

    def create(self, survey: Survey | Mapping[str, Any]) -> Survey:
        survey = survey if isinstance(survey, Survey) else parse_survey(survey)
        now = self.clock()
        taken = SurveyStateError("survey_id", f"a survey with id {survey.survey_id!r} already exists")
        try:
            with self.database.write() as connection:
                if repo.survey_row(connection, survey.survey_id) is not None:
                    raise taken
                repo.insert_survey(connection, _row(survey, now) | {"created_at": now})
        except IntegrityError:  # a concurrent create of the same id won the race
            raise taken from None
        return survey

    def update(self, survey_id: str, changes: Mapping[str, Any]) -> Survey:
        """Apply `changes` (any survey fields but survey_id) and validate the result as a whole."""
        if not isinstance(changes, Mapping):
            raise SurveyInputError("body", "must be an object of survey fields to change")
        if "survey_id" in changes and changes["survey_id"] != survey_id:
            raise SurveyInputError("survey_id", "cannot be changed; create a new survey instead")
        with self.database.write() as connection:
            current = _load(connection, survey_id)
            base = current.as_dict()
            if (
                "display_option" in changes
                and "max_displays" not in changes
                and current.max_displays == DEFAULT_MAX_DISPLAYS.get(DisplayOption(current.display_option))
            ):
                del base["max_displays"]  # the old option's default, not a choice: the new option's applies
            survey = parse_survey(base | dict(changes))
            repo.update_survey(connection, survey_id, _row(survey, self.clock()))
        return survey

    def get(self, survey_id: str) -> Survey:
        with self.database.read() as connection:
            return _load(connection, survey_id)

    def surveys(self, *, active_only: bool = False) -> list[Survey]:
        with self.database.read() as connection:
            rows = repo.survey_rows(connection, active_only=active_only)
        return [survey_from_stored(row["definition"]) for row in rows]

    def delete(self, survey_id: str) -> None:
        with self.database.write() as connection:
            _load(connection, survey_id)
            repo.delete_survey(connection, survey_id)

    # ---- triggering and the display lifecycle ----------------------------------------------------------------

    def trigger(
        self,
        user: User | str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        *,
        feature: str | None = None,
        at: datetime | None = None,
        show_now: bool = True,
    ) -> TriggerDecision:
        """Decide which survey (if any) to show `user` for `trigger`, and record the display.

        `show_now` says the caller displays the survey right away (a survey with a delay is queued instead).
        """
        user = as_user(user)
        trigger_name = _trigger_name(trigger)
        facts = _context(context, feature)
        moment = self._moment(at)
        with self.database.write() as connection:
            repo.lock_user_triggers(connection, user.user_id)
            given = (user.persona_segment or "").strip().lower() or None  # survey targeting is lower-case
            persona = given or persona_of(connection, user.user_id) or UNASSIGNED_PERSONA
            surveys = active_surveys(connection, include_paused=True)
            decision = decide(
                DisplayLedger.load(connection, [user.user_id]), surveys, user_id=user.user_id, persona=persona,
                trigger=trigger_name, context=facts, at=moment, show_now=show_now,
                global_recontact_days=self.global_recontact_days, answered=answered_totals(connection, surveys),
            )  # fmt: skip
            if decision.new_display is not None:
                repo.insert_displays(connection, [decision.new_display])
            elif (
                show_now
                and decision.status == "pending"
                and decision.display_id is not None
                and decision.show_after is not None
                and decision.show_after <= moment
            ):  # queued earlier (an ingested event, show_now=False) and due: the caller shows it now
                repo.update_display(connection, decision.display_id, {"status": "shown", "shown_at": moment})
                decision = replace(decision, status="shown")
            return decision

    def pending(self, user_id: str, *, at: datetime | None = None) -> list[PendingSurvey]:
        """Surveys queued for the user (by ingested events or delayed triggers) that are due now."""
        moment = self._moment(at)
        with self.database.read() as connection:
            rows = repo.due_displays(
                connection, user_id, moment, moment - timedelta(days=PENDING_EXPIRY_DAYS)
            )
            due = []
            for row in rows:
                survey = survey_from_stored(_stored(connection, row["survey_id"]))
                if survey.active:
                    due.append(
                        PendingSurvey(
                            row["id"], survey, row["trigger"], row["triggered_at"], row["show_after"]
                        )
                    )
            return due

    def mark_shown(self, display_id: str, *, at: datetime | None = None) -> dict[str, Any]:
        """The client rendered the survey. Idempotent: a second call changes nothing."""
        moment = self._moment(at)
        with self.database.write() as connection:
            row = _display(connection, display_id)
            if row["status"] == "pending":
                repo.update_display(connection, display_id, {"status": "shown", "shown_at": moment})
            return dict(_display(connection, display_id))

    def dismiss(self, display_id: str, *, at: datetime | None = None) -> dict[str, Any]:
        """The user closed the survey without answering. Refused once answered (409)."""
        moment = self._moment(at)
        with self.database.write() as connection:
            row = _display(connection, display_id)
            if row["status"] == "answered":
                raise SurveyStateError("display_id", f"display {display_id!r} was already answered")
            if row["status"] != "dismissed":
                repo.update_display(
                    connection, display_id,
                    {"status": "dismissed", "closed_at": moment, "shown_at": row["shown_at"] or moment},
                )  # fmt: skip
            return dict(_display(connection, display_id))

    # ---- responses -------------------------------------------------------------------------------------------

    def respond(
        self,
        responses: Any,
        *,
        display_id: str | None = None,
        user: User | str | None = None,
        survey_id: str | None = None,
        partial: bool = False,
        language: str | None = None,
        at: datetime | None = None,
    ) -> SurveyResponse:
        """Store the answers to one display (given, or the user's latest display of `survey_id`).

        Idempotent per display: repeating a stored response returns it with duplicate=True; a later submission
        may add answers to a partial response but never change one already given (409). Without `partial`, every
        required question must be answered (422 naming the first missing one).
        """
        if language is not None and (
            not isinstance(language, str) or not LANGUAGE_PATTERN.fullmatch(language)
        ):
            raise SurveyInputError("language", "must be a language code such as 'de' or 'pt-BR'")
        moment = self._moment(at)
        with self.database.write() as connection:
            display = self._display_for(connection, display_id, user, survey_id)
            survey = survey_from_stored(_stored(connection, display["survey_id"]))
            stored = repo.response_row(connection, display["id"])
            before: dict[str, Any] = dict(stored["answers"]) if stored else {}
            checked = check_answers(survey, responses, language=language, already=before)
            if not partial and checked.missing_required:
                missing = checked.missing_required[0]
                raise SurveyInputError(
                    f"responses.{missing}", "is required (send partial=true to save progress)"
                )
            new = _new_answers(before, checked.answers)
            if stored is not None and not stored["partial"] and new:
                raise SurveyStateError("display_id", f"display {display['id']!r} was already answered")
            if stored is not None and not new:
                return _response(display, stored["answers"], bool(stored["partial"]), checked, True, stored)
            if display["status"] == "dismissed":
                raise SurveyStateError(
                    "display_id", f"display {display['id']!r} was dismissed; trigger it again"
                )
            answers = before | new
            complete = not checked.missing_required
            self._store(
                connection,
                display,
                survey,
                answers,
                new,
                complete,
                language,
                moment,
                exists=stored is not None,
            )
            return _response(display, answers, not complete, checked, False, None, moment)

    def _display_for(
        self, connection: Connection, display_id: str | None, user: User | str | None, survey_id: str | None
    ) -> Any:
        if display_id is not None:
            if survey_id is not None:
                _stored(connection, survey_id)  # an unknown survey is a 404 before anything about the display
            display = _display(connection, display_id, for_update=True)
            if user is not None and as_user(user).user_id != display["user_id"]:
                raise SurveyInputError("user_id", f"display {display_id!r} belongs to another user")
            if survey_id is not None and survey_id != display["survey_id"]:
                raise SurveyInputError(
                    "display_id",
                    f"display {display_id!r} is of survey {display['survey_id']!r}, not {survey_id!r}",
                )
            return display
        if user is None or survey_id is None:
            raise SurveyInputError("display_id", "give the display id, or the user and the survey id")
        _stored(connection, survey_id)
        found = repo.latest_display_id(connection, as_user(user).user_id, survey_id)
        if found is None:
            raise SurveyStateError(
                "survey_id",
                f"survey {survey_id!r} was never shown to this user; trigger it before responding",
            )
        return _display(connection, found, for_update=True)

    def _store(
        self,
        connection: Connection,
        display: Any,
        survey: Survey,
        answers: dict[str, Any],
        new: dict[str, Any],
        complete: bool,
        language: str | None,
        moment: datetime,
        *,
        exists: bool,
    ) -> None:
        repo.save_response(
            connection,
            {
                "display_id": display["id"], "survey_id": survey.survey_id, "user_id": display["user_id"],
                "persona": display["persona"], "answers": answers, "partial": not complete, "language": language,
                "submitted_at": moment, "updated_at": moment,
            },
            exists=exists,
        )  # fmt: skip
        shared = {"display_id": display["id"], "survey_id": survey.survey_id, "persona": display["persona"]}
        repo.insert_answers(
            connection, [row | shared | {"answered_at": moment} for row in answer_rows(survey, new)]
        )
        if complete:
            repo.update_display(
                connection, display["id"],
                {"status": "answered", "closed_at": moment, "shown_at": display["shown_at"] or moment},
            )  # fmt: skip
            enqueue_response_webhook(connection, survey, display, answers, language, moment)
        elif display["status"] == "pending":
            repo.update_display(connection, display["id"], {"status": "shown", "shown_at": moment})
        for question_id, value in new.items():
            question = survey.question(question_id)
            if question is not None and question.metric and isinstance(value, int):
                insert_observation(connection, Observation(
                    category=question.metric, name=survey.survey_id, user_id=display["user_id"],
                    persona=display["persona"], value=float(value), unit="score", observed_at=moment,
                    dims={"survey_id": survey.survey_id, "question_id": question_id, "display_id": display["id"]},
                ))  # fmt: skip

    def _moment(self, at: datetime | None) -> datetime:
        moment = at or self.clock()
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise SurveyInputError("at", "must be a timezone-aware datetime")
        return moment.astimezone(UTC)


def _trigger_name(trigger: Any) -> str:
    from tools.surveys.model import _trigger

    return _trigger(trigger)


def _context(context: Mapping[str, Any] | None, feature: str | None) -> dict[str, Any]:
    if context is not None and not isinstance(context, Mapping):
        raise SurveyInputError("context", "must be an object of property → value")
    facts = dict(context or {})
    if len(facts) > MAX_CONTEXT_KEYS:
        raise SurveyInputError("context", f"has {len(facts)} keys; the limit is {MAX_CONTEXT_KEYS}")
    for key, value in facts.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise SurveyInputError(f"context.{key}", "must be a string, number, boolean or null")
        if isinstance(value, str) and ("\x00" in value or len(value) > 1000):
            raise SurveyInputError(f"context.{key}", "must be text of at most 1000 characters without NUL")
    if feature is not None:
        if not isinstance(feature, str) or not feature.strip():
            raise SurveyInputError("feature", "must be a non-empty string")
        facts.setdefault("feature", feature)
    return facts


def _new_answers(before: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Answers not stored yet; an answer that contradicts a stored one is refused (responses are final)."""
    for question_id, value in given.items():
        if question_id in before and before[question_id] != value:
            raise SurveyStateError(
                f"responses.{question_id}",
                f"was already answered with {before[question_id]!r}; answers are final",
            )
    return {k: v for k, v in given.items() if k not in before}


def _response(
    display: Any,
    answers: Mapping[str, Any],
    partial: bool,
    checked: Any,
    duplicate: bool,
    stored: Any,
    moment: datetime | None = None,
) -> SurveyResponse:
    return SurveyResponse(
        display_id=display["id"], survey_id=display["survey_id"], user_id=display["user_id"],
        answers=dict(answers), partial=partial, missing_required=list(checked.missing_required),
        duplicate=duplicate, submitted_at=stored["submitted_at"] if stored is not None else moment,
    )  # fmt: skip


def _row(survey: Survey, now: datetime) -> dict[str, Any]:
    return {
        "id": survey.survey_id, "type": str(survey.survey_type), "trigger": str(survey.trigger),
        "active": survey.active, "definition": survey.as_dict(), "updated_at": now,
    }  # fmt: skip


def _stored(connection: Connection, survey_id: str) -> dict[str, Any]:
    row = repo.survey_row(connection, survey_id)
    if row is None:
        raise SurveyNotFoundError("survey", survey_id)
    return dict(row["definition"])


def _load(connection: Connection, survey_id: str) -> Survey:
    return survey_from_stored(_stored(connection, survey_id))


def _display(connection: Connection, display_id: str, *, for_update: bool = False) -> Any:
    if not isinstance(display_id, str) or not display_id:
        raise SurveyInputError("display_id", "must be a display id string")
    row = repo.display_row(connection, display_id, for_update=for_update)
    if row is None:
        raise SurveyNotFoundError("display", display_id)
    return row
