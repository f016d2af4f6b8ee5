"""Question sets of the product's surveys: the four defaults' questions and a standard set per survey type.

Answer values are the canonical option texts, so analytics group by them whatever language a user saw.
"""

from __future__ import annotations

from typing import Any

from tools.surveys.model import SurveyType

RECOMMEND: dict[str, Any] = {
    "question_id": "nps", "type": "nps", "required": False, "metric": "nps",
    "text": "How likely are you to recommend us to a friend or colleague?",
}  # fmt: skip


def _comment(text: str) -> dict[str, Any]:
    return {"question_id": "comment", "type": "open_text", "required": False, "text": text}


TIME_TO_VALUE: list[dict[str, Any]] = [
    {"question_id": "time_to_value", "type": "single_choice",
     "text": "How long did it take to get your first report?",
     "options": ["<15 minutes", "15-60 minutes", "1-4 hours", "More than a day"]},
    {"question_id": "ease_of_setup", "type": "single_choice", "text": "How easy was setup?",
     "options": ["Very Easy", "Easy", "Neutral", "Difficult", "Very Difficult"]},
    {"question_id": "value_perceived", "type": "single_choice", "text": "Did the report give you value?",
     "options": ["Yes, significant value", "Yes, some value", "Not yet", "No"]},
    RECOMMEND,
]  # fmt: skip

REPORT_ACCURACY: list[dict[str, Any]] = [
    {"question_id": "accuracy_rating", "type": "rating", "metric": "report_accuracy_rating",
     "text": "How accurate was the report you sent to your sponsor?"},
    {"question_id": "sponsor_questions", "type": "single_choice",
     "text": "Did your sponsor question any figures in it?",
     "options": ["No", "Yes, minor questions", "Yes, corrections were needed"]},
    RECOMMEND,
    _comment("What would have made this report more accurate?"),
]  # fmt: skip

RENEWAL_SUCCESS: list[dict[str, Any]] = [
    {"question_id": "renewal_outcome", "type": "single_choice", "text": "Is the sponsor renewing the campaign?",
     "options": ["Yes, renewed", "Likely", "Unsure", "Unlikely", "No"]},
    {"question_id": "reports_helped", "type": "rating",
     "text": "How much did your reports help the renewal conversation?"},
    RECOMMEND,
    _comment("What would help you win the renewal?"),
]  # fmt: skip

SUPPORT_INCIDENT: list[dict[str, Any]] = [
    {"question_id": "resolved", "type": "single_choice", "text": "Was your issue resolved?",
     "options": ["Yes", "Partially", "No"]},
    {"question_id": "effort", "type": "ces", "text": "How easy was it to get the help you needed?"},
    {"question_id": "satisfaction", "type": "csat", "text": "How satisfied are you with the support you got?"},
    _comment("Anything we should have done differently?"),
]  # fmt: skip

FEATURE_SATISFACTION: list[dict[str, Any]] = [
    {"question_id": "satisfaction", "type": "csat", "text": "How satisfied are you with this feature?"},
    {"question_id": "effort", "type": "ces", "text": "How easy was it to get done what you wanted?"},
    _comment("What would make this feature better?"),
]  # fmt: skip

NPS = [RECOMMEND | {"required": True}, _comment("What is the main reason for your score?")]

STANDARD: dict[SurveyType, list[dict[str, Any]]] = {
    SurveyType.TIME_TO_VALUE: TIME_TO_VALUE,
    SurveyType.REPORT_ACCURACY: REPORT_ACCURACY,
    SurveyType.RENEWAL_SUCCESS: RENEWAL_SUCCESS,
    SurveyType.SUPPORT_INCIDENT: SUPPORT_INCIDENT,
    SurveyType.FEATURE_SATISFACTION: FEATURE_SATISFACTION,
    SurveyType.NPS: NPS,
    SurveyType.CUSTOM: FEATURE_SATISFACTION,
}


def standard_questions(survey_type: SurveyType) -> list[dict[str, Any]]:
    """Fresh copies, so an edited survey never changes the standard set."""
    return [dict(question) for question in STANDARD[survey_type]]
