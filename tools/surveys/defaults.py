"""The product's four default surveys, created on first start (and then editable like any other)."""

from __future__ import annotations

from tools.surveys.model import DisplayOption, Survey, SurveyTrigger, SurveyType
from tools.surveys.standard_questions import standard_questions


def default_surveys() -> list[Survey]:
    return [
        Survey(
            survey_id="time_to_value",
            name="Time to value",
            survey_type=SurveyType.TIME_TO_VALUE,
            trigger=SurveyTrigger.VALUE_DELIVERED,
            journey_stage="first_value",
            questions=standard_questions(SurveyType.TIME_TO_VALUE),
            display_option=DisplayOption.UNTIL_ANSWERED,
            max_displays=2,
        ),
        Survey(
            survey_id="report_accuracy",
            name="Report accuracy",
            survey_type=SurveyType.REPORT_ACCURACY,
            trigger=SurveyTrigger.REPORT_SENT,
            journey_stage="adoption",
            questions=standard_questions(SurveyType.REPORT_ACCURACY),
            display_option=DisplayOption.RECURRING,
            recurring_days=14,
            delay_seconds=3600,  # after the sponsor has had time to read the report
        ),
        Survey(
            survey_id="renewal_success",
            name="Renewal success",
            survey_type=SurveyType.RENEWAL_SUCCESS,
            trigger=SurveyTrigger.CAMPAIGN_ENDED,
            journey_stage="renewal",
            questions=standard_questions(SurveyType.RENEWAL_SUCCESS),
            display_option=DisplayOption.RECURRING,
            recurring_days=30,
        ),
        Survey(
            survey_id="support_incident",
            name="Support incident",
            survey_type=SurveyType.SUPPORT_INCIDENT,
            trigger=SurveyTrigger.SUPPORT_CONTACT,
            journey_stage="support",
            questions=standard_questions(SurveyType.SUPPORT_INCIDENT),
            display_option=DisplayOption.RECURRING,
            recurring_days=14,
            ignore_global_recontact=True,  # asked about the contact itself, whatever else was asked this week
        ),
    ]
