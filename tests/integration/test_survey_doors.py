"""Surveys through the HTTP and CLI doors, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from feedbackloop.api.app import create_app
from feedbackloop.cli import app as cli
from feedbackloop.settings import Settings
from store.database import Database
from tests.access.support import bearer, create_key
from tools.stats.intervals import mean_interval, proportion_interval
from tools.surveys.model import Question, Survey
from tools.surveys.service import SurveyService

runner = CliRunner()
WIDE = {"COLUMNS": "240"}
DEFAULTS = ["renewal_success", "report_accuracy", "support_incident", "time_to_value"]
SURVEY_TABLES = ("surveys", "survey_displays", "survey_responses", "survey_answers")


def definition(survey_id: str = "export_satisfaction", **changes: Any) -> dict[str, Any]:
    return {
        "survey_id": survey_id, "name": "Export satisfaction", "survey_type": "feature_satisfaction",
        "trigger": "feature_completed", "trigger_context": {"feature": "csv_export"},
        "persona_segments": ["agency"],
        "questions": [
            {"question_id": "satisfaction", "type": "csat", "text": "How satisfied are you with the export?",
             "translations": {"de": {"text": "Wie zufrieden sind Sie mit dem Export?"}}},
            {"question_id": "missing", "type": "multi_choice", "text": "What was missing?", "required": False,
             "options": ["Columns", "Date ranges", "Formats"],
             "translations": {"de": {"text": "Was fehlte?", "options": ["Spalten", "Zeiträume", "Formate"]}}},
            {"question_id": "comment", "type": "open_text", "text": "Anything else?", "required": False},
        ],
        **changes,
    }  # fmt: skip


def question(question_id: str, **changes: Any) -> dict[str, Any]:
    return {"question_id": question_id, "type": "nps", "text": "Recommend us?", **changes}


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database.url), database)) as test_client:
        yield test_client


def survey_snapshot(database: Database) -> dict[str, tuple[int, str]]:
    """Row count and checksum of every survey table, to prove a refused request changed nothing."""
    snapshot = {}
    with database.read() as connection:
        for table in SURVEY_TABLES:
            rows = sorted(
                repr(tuple(map(str, row))) for row in connection.execute(text(f"SELECT * FROM {table}"))
            )
            snapshot[table] = (len(rows), hashlib.sha256("".join(rows).encode()).hexdigest())
    return snapshot


def ids(response: Any) -> list[str]:
    return [survey["survey_id"] for survey in response.json()["surveys"]]


def trigger(client: TestClient, user_id: str, name: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/surveys/trigger", json={"user_id": user_id, "trigger": name, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---- definitions --------------------------------------------------------------------------------------------


def test_crud_round_trip(client: TestClient) -> None:
    assert ids(client.get("/v1/surveys")) == DEFAULTS  # created on first start
    created = client.post("/v1/surveys", json=definition())
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/surveys/export_satisfaction"
    body = created.json()
    assert (body["survey_type"], body["trigger"], body["display_option"], body["max_displays"]) == (
        "feature_satisfaction", "feature_completed", "once", 1,
    )  # fmt: skip
    assert [q["question_id"] for q in body["questions"]] == ["satisfaction", "missing", "comment"]
    assert body["questions"][1]["options"] == ["Columns", "Date ranges", "Formats"]
    assert body["persona_segments"] == ["agency"] and body["active"] is True
    assert client.get("/v1/surveys/export_satisfaction").json() == body
    assert ids(client.get("/v1/surveys")) == [*DEFAULTS, "export_satisfaction"]

    edited = client.patch("/v1/surveys/export_satisfaction", json={"name": "CSV export", "active": False})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["name"], edited.json()["active"]) == ("CSV export", False)
    assert edited.json()["questions"] == body["questions"]
    assert ids(client.get("/v1/surveys?active=false")) == ["export_satisfaction"]
    assert ids(client.get("/v1/surveys?active=true")) == DEFAULTS

    refused = client.patch("/v1/surveys/export_satisfaction", json={"delay_seconds": -5})
    assert refused.status_code == 422 and refused.json()["field"] == "delay_seconds", refused.text
    renamed = client.patch("/v1/surveys/export_satisfaction", json={"survey_id": "other"})
    assert renamed.status_code == 422 and renamed.json()["field"] == "survey_id"
    not_object = client.patch("/v1/surveys/export_satisfaction", json=["active"])
    assert not_object.status_code == 422 and not_object.json()["field"] == "body"
    assert client.get("/v1/surveys/export_satisfaction").json()["name"] == "CSV export"

    taken = client.post("/v1/surveys", json=definition())
    assert taken.status_code == 409 and taken.json()["code"] == "survey_state_conflict"
    assert taken.json()["field"] == "survey_id" and "already exists" in taken.json()["message"]

    assert client.delete("/v1/surveys/export_satisfaction").status_code == 204
    gone = client.get("/v1/surveys/export_satisfaction")
    assert gone.status_code == 404
    assert gone.json() == {
        "code": "survey_not_found",
        "message": "survey 'export_satisfaction' does not exist",
    }
    assert ids(client.get("/v1/surveys")) == DEFAULTS


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"questions": [question(f"q{i}") for i in range(6)]}, "questions", "1–5 questions; got 6"),
        ({"questions": [question("q"), question("q")]}, "questions", "'q' is used twice"),
        ({"questions": [question("pick", type="single_choice", options=["a", "b"], metric="nps")]},
         "questions[0].metric", "only numeric questions"),
        ({"questions": [question("pick", type="single_choice", options=["only"])]},
         "questions[0].options", "needs 2–20 options"),
        ({"questions": [question("q", colour="red")]}, "questions[0].colour", "is not a question field"),
        ({"display_option": "sometimes"}, "display_option", "must be one of once, until_answered, recurring"),
        ({"display_option": "recurring"}, "recurring_days", "needs recurring_days"),
        ({"colour": "blue"}, "colour", "is not a survey field"),
        ({"survey_id": "has space"}, "survey_id", "must be 1–100 letters"),
        ({"sampling_percentage": 101}, "sampling_percentage", "between 0 and 100"),
        ({"starts_at": "tomorrow"}, "starts_at", "is not an ISO 8601"),
        ({"name": "a\u0000b"}, "name", "NUL"),
        ({"trigger_context": {"plan": {"nested": 1}}}, "trigger_context.plan", "must be a string"),
    ],
)  # fmt: skip
def test_invalid_definitions_are_422_naming_the_field_and_store_nothing(
    client: TestClient, database: Database, changes: dict[str, Any], field: str, fragment: str
) -> None:
    before = survey_snapshot(database)
    response = client.post("/v1/surveys", json=definition(**changes))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_survey_request" and body["field"] == field, body
    assert body["message"].startswith(f"{field}:") and fragment in body["message"], body
    assert survey_snapshot(database) == before
    assert ids(client.get("/v1/surveys")) == DEFAULTS


def test_missing_fields_and_bodies_of_the_wrong_shape(client: TestClient, database: Database) -> None:
    before = survey_snapshot(database)
    missing = {k: v for k, v in definition().items() if k != "trigger"}
    cases: list[tuple[Any, str]] = [(missing, "trigger"), ([definition()], "body"), ("survey", "body")]
    for body, field in cases:
        response = client.post("/v1/surveys", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    broken = client.post(
        "/v1/surveys", content=b"{'survey_id':", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_json"
    nan = client.post("/v1/surveys", content=b'{"sampling_percentage": NaN}')
    assert nan.status_code == 400 and nan.json()["code"] == "invalid_json"
    assert survey_snapshot(database) == before


def test_bodies_over_the_configured_limit_are_413(database: Database) -> None:
    settings = Settings(database_url=database.url, max_batch_bytes=4096)
    with TestClient(create_app(settings, database)) as client:
        big = definition(name="x" * 5000)
        response = client.post("/v1/surveys", json=big)
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
        answers = {"user_id": "u", "responses": {"comment": "y" * 5000}}
        assert client.post("/v1/surveys/support_incident/responses", json=answers).status_code == 413
        assert client.post("/v1/surveys", json=definition()).status_code == 201  # small bodies still pass


# ---- triggers -----------------------------------------------------------------------------------------------


def test_trigger_shows_a_survey_or_says_why_not(client: TestClient) -> None:
    client.post("/v1/surveys", json=definition())
    export = {"context": {"feature": "csv_export"}}
    solo = trigger(client, "solo-1", "feature_completed", persona="solo_podcaster", **export)
    assert (solo["survey"], solo["display_id"], solo["reason"]) == (None, None, "persona_not_targeted")
    assert solo["candidates"] == [{"survey_id": "export_satisfaction", "reason": "persona_not_targeted"}]
    elsewhere = trigger(
        client, "agency-1", "feature_completed", persona="agency", context={"feature": "search"}
    )
    assert (elsewhere["survey"], elsewhere["reason"]) == (None, "context_mismatch")
    nothing = trigger(client, "agency-1", "logged_in")
    assert (nothing["survey"], nothing["reason"], nothing["candidates"]) == (None, "no_matching_survey", [])

    shown = trigger(client, "agency-1", "feature_completed", persona="agency", language="de", **export)
    assert (shown["survey_id"], shown["status"], shown["reason"]) == ("export_satisfaction", "shown", None)
    rendered = shown["survey"]
    assert (
        rendered["language"] == "de"
        and rendered["questions"][0]["text"] == "Wie zufrieden sind Sie mit dem Export?"
    )
    assert (
        rendered["questions"][0]["scale"] == {"min": 1, "max": 5}
        and "options" not in rendered["questions"][0]
    )
    assert rendered["questions"][1]["options"][0] == {"value": "Columns", "label": "Spalten"}
    assert rendered["questions"][2]["text"] == "Anything else?"  # untranslated: the original text

    again = trigger(client, "agency-1", "feature_completed", persona="agency", **export)
    assert (again["survey"], again["reason"]) == (None, "max_displays_reached")  # display_option once
    other = trigger(client, "agency-1", "campaign_ended")  # renewal_success: another survey within 7 days
    assert (other["survey"], other["reason"]) == (None, "global_recontact")
    support = trigger(client, "agency-1", "support_contact")  # ignores the global wait by design
    assert support["survey_id"] == "support_incident" and support["status"] == "shown"

    delayed = trigger(client, "solo-2", "report_sent")  # report_accuracy waits an hour after the report
    assert delayed["survey_id"] == "report_accuracy" and delayed["status"] == "pending"
    assert datetime.fromisoformat(delayed["show_after"]) > datetime.now(UTC) + timedelta(minutes=59)
    assert client.get("/v1/users/solo-2/surveys/pending").json() == {"surveys": []}  # not due yet


def test_ingested_report_sent_queues_the_survey_and_answers_reach_the_results(client: TestClient) -> None:
    sent_at = datetime.now(UTC) - timedelta(hours=2)  # the survey's one-hour delay has passed
    users = {"ana": "agency", "ben": "agency", "cy": "solo_podcaster", "dee": "solo_podcaster"}
    batch = []
    for user, persona in users.items():
        batch.append({"type": "identify", "userId": user, "traits": {"persona": persona}, "messageId": f"id-{user}",
                      "timestamp": (sent_at - timedelta(minutes=5)).isoformat()})  # fmt: skip
        batch.append({"type": "track", "event": "Report Sent", "userId": user, "messageId": f"rs-{user}",
                      "timestamp": sent_at.isoformat(), "properties": {"report_id": f"r-{user}"}})  # fmt: skip
    ingested = client.post("/v1/batch", json={"batch": batch})
    assert ingested.status_code == 200 and ingested.json()["accepted"] == 8, ingested.text

    displays = {}
    for user in users:
        pending = client.get(f"/v1/users/{user}/surveys/pending").json()["surveys"]
        assert [p["survey_id"] for p in pending] == ["report_accuracy"], (user, pending)
        assert pending[0]["trigger"] == "report_sent"
        delay = datetime.fromisoformat(pending[0]["show_after"]) - datetime.fromisoformat(
            pending[0]["triggered_at"]
        )
        assert delay == timedelta(hours=1)
        displays[user] = pending[0]["display_id"]
    rendered = client.get("/v1/users/ana/surveys/pending?language=fr").json()["surveys"][0]["survey"]
    assert rendered["language"] is None and rendered["questions"][0]["question_id"] == "accuracy_rating"

    shown = client.post(f"/v1/surveys/displays/{displays['ana']}/shown")
    assert shown.status_code == 200 and shown.json()["status"] == "shown" and shown.json()["shown_at"]
    assert shown.json()["user_id"] == "ana" and shown.json()["persona"] == "agency"
    assert client.get("/v1/users/ana/surveys/pending").json() == {"surveys": []}  # shown: no longer pending

    answers = {
        "ana": {"accuracy_rating": 5, "sponsor_questions": "No", "nps": 10, "comment": "Mail me at ana@example.com"},
        "ben": {"accuracy_rating": 4, "sponsor_questions": "Yes, minor questions", "nps": 9},
        "cy": {"accuracy_rating": 2, "sponsor_questions": "Yes, corrections were needed", "nps": 3,
               "comment": "Downloads were off by a week"},
    }  # fmt: skip
    for user, given in answers.items():
        client.post(f"/v1/surveys/displays/{displays[user]}/shown")
        stored = client.post("/v1/surveys/report_accuracy/responses",
                             json={"display_id": displays[user], "user_id": user, "responses": given})  # fmt: skip
        assert stored.status_code == 201, stored.text
        assert stored.json()["answers"] == given and stored.json()["partial"] is False
    dismissed = client.post(f"/v1/surveys/displays/{displays['dee']}/dismiss").json()
    assert dismissed["status"] == "dismissed" and dismissed["closed_at"] is not None

    results = client.get("/v1/surveys/report_accuracy/results?days=7")
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["displays"] == {"triggered": 4, "shown": 4, "answered": 3, "dismissed": 1, "partial": 0}
    rate = body["response_rate"]
    assert (rate["shown"], rate["answered"], rate["rate"]) == (4, 3, 0.75)
    assert rate["interval"] == pytest.approx(list(proportion_interval(3, 4)))
    by_persona = body["response_rate_by_persona"]
    assert (by_persona["agency"]["rate"], by_persona["solo_podcaster"]["rate"]) == (1.0, 0.5)
    questions = {q["question_id"]: q for q in body["questions"]}
    nps = questions["nps"]["score"]
    assert (nps["kind"], nps["n"], nps["promoters"], nps["detractors"]) == ("nps", 3, 2, 1)
    assert nps["value"] == pytest.approx(100 / 3)
    low, high = mean_interval(3, 1.0, 3.0) or (0.0, 0.0)  # +1, +1, −1: the t-interval spans past ±100 …
    assert (100 * low, 100 * high) == (pytest.approx(-253.5, abs=0.1), pytest.approx(320.2, abs=0.1))
    assert nps["interval"] == [-100.0, 100.0]  # … and is clipped to what an NPS can be
    assert questions["nps"]["distribution"]["10"] == 1 and questions["nps"]["distribution"]["3"] == 1
    rating = questions["accuracy_rating"]["score"]
    assert (rating["kind"], rating["value"]) == ("mean", pytest.approx(11 / 3))
    assert questions["accuracy_rating"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert questions["sponsor_questions"]["distribution"] == {
        "No": 1, "Yes, minor questions": 1, "Yes, corrections were needed": 1,
    }  # fmt: skip
    assert questions["comment"]["answered"] == 2 and questions["comment"]["score"] is None
    assert questions["nps"]["score_by_persona"]["agency"]["value"] == 100.0

    agency = client.get("/v1/surveys/report_accuracy/results?persona=agency").json()
    assert agency["persona"] == "agency" and list(agency["response_rate_by_persona"]) == ["agency"]
    assert agency["response_rate"]["rate"] == 1.0
    assert next(q for q in agency["questions"] if q["question_id"] == "nps")["score"]["n"] == 2

    raw = client.get("/v1/surveys/responses/text?survey_id=report_accuracy").json()["answers"]
    assert sorted(a["text"] for a in raw) == ["Downloads were off by a week", "Mail me at ana@example.com"]
    redacted = client.get("/v1/surveys/responses/text?contains=MAIL&redact=true").json()["answers"]
    assert [(a["user_id"], a["persona"], a["text"]) for a in redacted] == [
        ("ana", "agency", "Mail me at [email]")
    ]
    solo = client.get("/v1/surveys/responses/text?persona=solo_podcaster&question_id=comment&limit=1").json()
    assert [a["user_id"] for a in solo["answers"]] == ["cy"]


# ---- responses ----------------------------------------------------------------------------------------------


@pytest.fixture
def display_id(client: TestClient) -> str:
    decision = trigger(
        client, "ana", "support_contact"
    )  # support_incident: resolved, effort, satisfaction, comment
    assert decision["status"] == "shown"
    return str(decision["display_id"])


@pytest.mark.parametrize(
    ("responses", "field", "fragment"),
    [
        ({"resolved": "Yes", "effort": 8, "satisfaction": 5}, "responses.effort", "whole number from 1 to 7"),
        ({"resolved": "Maybe", "effort": 2, "satisfaction": 5}, "responses.resolved", "not one of the options"),
        ({"resolved": "Yes", "effort": 2, "satisfaction": 5, "mood": "ok"}, "responses.mood", "is not a question"),
        ({"resolved": "Yes", "effort": 2, "satisfaction": 5, "comment": 7}, "responses.comment", "must be text"),
        ({"resolved": "Yes", "effort": True, "satisfaction": 5}, "responses.effort", "whole number"),
        ({"resolved": "Yes", "effort": 2}, "responses.satisfaction", "is required"),
        ({"resolved": "Yes", "effort": 2, "satisfaction": 5, "comment": "a\u0000"}, "responses.comment", "NUL"),
    ],
)  # fmt: skip
def test_invalid_answers_are_422_naming_the_question_and_store_nothing(
    client: TestClient,
    database: Database,
    display_id: str,
    responses: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    before = survey_snapshot(database)
    response = client.post("/v1/surveys/support_incident/responses",
                           json={"display_id": display_id, "responses": responses})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and fragment in response.json()["message"], response.json()
    assert survey_snapshot(database) == before


def test_partial_duplicate_and_conflicting_submissions(client: TestClient, display_id: str) -> None:
    url = "/v1/surveys/support_incident/responses"
    progress = client.post(
        url, json={"display_id": display_id, "responses": {"resolved": "Partially"}, "partial": True}
    )
    assert progress.status_code == 201, progress.text
    assert progress.json()["partial"] is True and progress.json()["missing_required"] == [
        "effort",
        "satisfaction",
    ]
    rest = {"display_id": display_id, "responses": {"resolved": "Partially", "effort": 3, "satisfaction": 4}}
    completed = client.post(url, json=rest)
    assert completed.status_code == 201 and completed.json()["partial"] is False
    assert completed.json()["answers"] == {"resolved": "Partially", "effort": 3, "satisfaction": 4}

    repeat = client.post(url, json=rest)
    assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
    assert repeat.json()["answers"] == completed.json()["answers"]
    changed = client.post(url, json={"display_id": display_id, "responses": {"effort": 1}})
    assert changed.status_code == 409 and changed.json()["code"] == "survey_state_conflict"
    assert changed.json()["field"] == "responses.effort" and "answers are final" in changed.json()["message"]
    added = client.post(url, json={"display_id": display_id, "responses": {"comment": "late thought"}})
    assert added.status_code == 409 and added.json()["field"] == "display_id"
    dismiss = client.post(f"/v1/surveys/displays/{display_id}/dismiss")
    assert dismiss.status_code == 409 and "already answered" in dismiss.json()["message"]
    shown = client.post(f"/v1/surveys/displays/{display_id}/shown").json()
    assert shown["status"] == "answered"  # idempotent: nothing changes once answered


def test_respond_by_user_dismissed_displays_and_unknown_ids(client: TestClient, display_id: str) -> None:
    url = "/v1/surveys/support_incident/responses"
    full = {"resolved": "Yes", "effort": 1, "satisfaction": 5}
    by_user = client.post(url, json={"user_id": "ana", "responses": full})  # the user's latest display
    assert by_user.status_code == 201 and by_user.json()["display_id"] == display_id

    never = client.post("/v1/surveys/renewal_success/responses", json={"user_id": "ana", "responses": {}})
    assert never.status_code == 409 and never.json()["field"] == "survey_id"
    other_user = client.post(url, json={"display_id": display_id, "user_id": "ben", "responses": full})
    assert other_user.status_code == 422 and other_user.json()["field"] == "user_id"
    wrong_survey = client.post("/v1/surveys/renewal_success/responses",
                               json={"display_id": display_id, "responses": {"renewal_outcome": "Likely"}})  # fmt: skip
    assert wrong_survey.status_code == 422 and wrong_survey.json()["field"] == "display_id", wrong_survey.text
    neither = client.post(url, json={"responses": full})
    assert neither.status_code == 422 and neither.json()["field"] == "display_id"

    ben = trigger(client, "ben", "support_contact")["display_id"]
    assert client.post(f"/v1/surveys/displays/{ben}/dismiss").json()["status"] == "dismissed"
    late = client.post(url, json={"display_id": ben, "responses": full})
    assert late.status_code == 409 and "dismissed" in late.json()["message"]

    missing_display = {"code": "display_not_found", "message": "display 'nope' does not exist"}
    for path in ("/v1/surveys/displays/nope/shown", "/v1/surveys/displays/nope/dismiss"):
        response = client.post(path)
        assert response.status_code == 404 and response.json() == missing_display
    unknown = client.post(url, json={"display_id": "nope", "responses": full})
    assert unknown.status_code == 404 and unknown.json() == missing_display
    missing_survey = {"code": "survey_not_found", "message": "survey 'no-such' does not exist"}
    calls = [
        ("GET", "/v1/surveys/no-such", None), ("PATCH", "/v1/surveys/no-such", {"active": False}),
        ("DELETE", "/v1/surveys/no-such", None), ("GET", "/v1/surveys/no-such/results", None),
        ("POST", "/v1/surveys/no-such/responses", {"user_id": "ana", "responses": full}),
        ("POST", "/v1/surveys/no-such/responses", {"display_id": display_id, "responses": full}),
    ]  # fmt: skip
    for method, path, body in calls:
        response = client.request(method, path, json=body)
        assert response.status_code == 404 and response.json() == missing_survey, (
            method,
            path,
            response.text,
        )


# ---- malformed input, write keys, OpenAPI -------------------------------------------------------------------


def test_malformed_parameters_and_bodies_are_4xx_naming_the_field(
    client: TestClient, database: Database
) -> None:
    before = survey_snapshot(database)
    reads = [
        ("/v1/surveys/report_accuracy/results?days=0", "days"),
        ("/v1/surveys/report_accuracy/results?days=-3", "days"),
        ("/v1/surveys/report_accuracy/results?days=99999999999999999999999999", "days"),
        ("/v1/surveys/report_accuracy/results?days=week", "days"),
        ("/v1/surveys/report_accuracy/results?persona=a%00b", "persona"),
        ("/v1/surveys/responses/text?limit=0", "limit"),
        ("/v1/surveys/responses/text?contains=%00", "contains"),
        ("/v1/surveys/responses/text?survey_id=a%20b", "survey_id"),
        ("/v1/surveys/-leading-dash", "survey_id"),
        ("/v1/surveys/a:b/results", "survey_id"),
        ("/v1/surveys/%E2%9C%93", "survey_id"),
        (f"/v1/surveys/{'x' * 101}", "survey_id"),
        ("/v1/surveys?active=maybe", "active"),
        ("/v1/users/a%00b/surveys/pending", "user_id"),
        ("/v1/users/ana/surveys/pending?language=english", "language"),
    ]
    for path, field in reads:
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field and response.json()["message"].startswith(f"{field}:"), path
    writes = [
        ("/v1/surveys/trigger", {"user_id": 42, "trigger": "report_sent"}, "user_id"),
        ("/v1/surveys/trigger", {"user_id": "  ", "trigger": "report_sent"}, "user_id"),
        ("/v1/surveys/trigger", {"user_id": "ana"}, "trigger"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "9lives"}, "trigger"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "context": "csv"}, "context"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "context": {"k": [1]}}, "context.k"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "context": {"k": "a\u0000"}}, "context.k"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "persona": "p" * 65}, "persona"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "colour": "red"}, "colour"),
        ("/v1/surveys/trigger", {"user_id": "ana", "trigger": "x", "language": "German"}, "language"),
        ("/v1/surveys/report_accuracy/responses", {"user_id": "ana", "responses": [5]}, "responses"),
        (
            "/v1/surveys/report_accuracy/responses",
            {"user_id": "ana", "responses": {}, "partial": "yes"},
            "partial",
        ),
        (
            "/v1/surveys/report_accuracy/responses",
            {"user_id": "ana", "responses": {"nps": 1e300}},
            "responses.nps",
        ),
        ("/v1/surveys/report_accuracy/responses", {"display_id": "a/b", "responses": {}}, "display_id"),
        ("/v1/surveys/report_accuracy/responses", {"user_id": "ana"}, "responses"),
    ]
    for path, body, field in writes:
        response = client.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())
    assert client.post("/v1/surveys/displays/a%00b/shown").json()["field"] == "display_id"
    assert client.get("/v1/surveys/a%2Fb").status_code == 404  # an encoded slash is a path no route has
    assert survey_snapshot(database) == before


def test_routes_ask_for_keys_of_their_scope(database: Database) -> None:
    settings = Settings(database_url=database.url, write_keys=[SecretStr("sekrit")], auth="on")
    with TestClient(create_app(settings, database)) as client:
        before = survey_snapshot(database)
        writes = [
            ("POST", "/v1/surveys", definition()), ("PATCH", "/v1/surveys/report_accuracy", {"active": False}),
            ("DELETE", "/v1/surveys/report_accuracy", None),
            ("POST", "/v1/surveys/trigger", {"user_id": "ana", "trigger": "support_contact"}),
            ("POST", "/v1/surveys/displays/d1/shown", None), ("POST", "/v1/surveys/displays/d1/dismiss", None),
            ("POST", "/v1/surveys/support_incident/responses", {"user_id": "ana", "responses": {}}),
        ]  # fmt: skip
        for method, path, body in writes:
            refused = client.request(method, path, json=body)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized", (method, path)
            wrong = client.request(method, path, json=body, headers={"authorization": "Bearer guess"})
            assert wrong.status_code == 401, (method, path)
        assert survey_snapshot(database) == before
        # a write key (FEEDBACKLOOP_WRITE_KEYS) is an ingest key
        basic = {"authorization": "Basic " + base64.b64encode(b"sekrit:").decode()}
        assert client.post("/v1/surveys", json=definition(), headers=basic).status_code == 403
        admin = bearer(create_key(database, "admin").key)
        assert client.post("/v1/surveys", json=definition(), headers=admin).status_code == 201
        decided = client.post("/v1/surveys/trigger", json={"user_id": "ana", "trigger": "support_contact"},
                              headers={"authorization": "Bearer sekrit"})  # fmt: skip
        assert decided.json()["status"] == "shown"
        assert client.get("/v1/users/ana/surveys/pending", headers=basic).status_code == 200
        read = bearer(create_key(database, "read").key)
        reads = ["/v1/surveys", "/v1/surveys/export_satisfaction", "/v1/surveys/support_incident/results",
                 "/v1/surveys/responses/text"]  # fmt: skip
        for path in reads:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=read).status_code == 200, path


def test_survey_routes_are_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/surveys"]) == {"get", "post"}
    assert set(paths["/v1/surveys/{survey_id}"]) == {"get", "patch", "delete"}
    writes = ["/v1/surveys/trigger", "/v1/surveys/{survey_id}/responses",
              "/v1/surveys/displays/{display_id}/shown", "/v1/surveys/displays/{display_id}/dismiss"]  # fmt: skip
    for path in writes:
        assert {"401", "404", "422"} <= set(paths[path]["post"]["responses"]), path
    for path in writes[:2]:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {"responses", "trigger"} & set(body["properties"]), path
    assert set(paths["/v1/surveys/{survey_id}/responses"]["post"]["responses"]) >= {
        "200",
        "201",
        "409",
        "413",
    }
    create = paths["/v1/surveys"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["required"] == ["survey_id", "survey_type", "trigger", "questions"]
    assert set(create["properties"]) == {spec.name for spec in fields(Survey)}  # every field, no stale one
    assert set(create["properties"]["questions"]["items"]["properties"]) == {
        spec.name for spec in fields(Question)
    }
    assert set(client.get("/v1/surveys/report_accuracy").json()) == {spec.name for spec in fields(Survey)}
    results = paths["/v1/surveys/{survey_id}/results"]["get"]
    days = next(p for p in results["parameters"] if p["name"] == "days")
    assert (days["schema"]["minimum"], days["schema"]["maximum"]) == (1, 3660)
    assert "/v1/users/{user_id}/surveys/pending" in paths and "/v1/surveys/responses/text" in paths


# ---- CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture
def answered(database: Database) -> Database:
    """Three answered report_accuracy displays (NPS 10, 9, 3) and one comment."""
    service = SurveyService(database)
    service.ensure_defaults()
    given = [(10, 5, None), (9, 4, "Great, call me on +44 20 7946 0958"), (3, 2, None)]
    for index, (nps, rating, comment) in enumerate(given):
        decision = service.trigger(f"user-{index}", "report_sent")
        answers: dict[str, Any] = {"accuracy_rating": rating, "sponsor_questions": "No", "nps": nps}
        if comment:
            answers["comment"] = comment
        service.respond(answers, display_id=decision.display_id)
    return database


def test_cli_list_show_results_and_text(answered: Database) -> None:
    url = ["--database-url", answered.url]
    listed = runner.invoke(cli, ["surveys", "list", *url], env=WIDE)
    assert listed.exit_code == 0, listed.output
    for fragment in (*DEFAULTS, "report_sent", "recurring every 14 d", "until answered (max 2)",
                     "value_delivered (report_generated)", "4 surveys"):  # fmt: skip
        assert fragment in listed.output, fragment
    as_json = json.loads(runner.invoke(cli, ["surveys", "list", "--format", "json", *url]).output)
    assert [s["survey_id"] for s in as_json["surveys"]] == DEFAULTS

    shown = runner.invoke(cli, ["surveys", "show", "report_accuracy", *url], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "accuracy_rating" in shown.output and "1–5" in shown.output and "1 h" in shown.output
    detail = json.loads(
        runner.invoke(cli, ["surveys", "show", "report_accuracy", "--format", "json", *url]).output
    )
    assert detail["delay_seconds"] == 3600 and detail["recurring_days"] == 14

    table = runner.invoke(cli, ["surveys", "results", "report_accuracy", "--days", "7", *url], env=WIDE)
    assert table.exit_code == 0, table.output
    low, high = proportion_interval(3, 3) or (0.0, 0.0)
    assert "100.0%" in table.output and f"[{low:.1%}, {high:.1%}]" in table.output
    assert "NPS +33" in table.output and "(n=3)" in table.output and "mean 3.67" in table.output
    assert "3 triggered, 3 shown, 3 answered" in table.output
    results = json.loads(
        runner.invoke(cli, ["surveys", "results", "report_accuracy", "--format", "json", *url]).output
    )
    nps = next(q for q in results["questions"] if q["question_id"] == "nps")
    assert nps["score"]["value"] == pytest.approx(100 / 3) and nps["distribution"]["9"] == 1
    empty = json.loads(
        runner.invoke(
            cli, ["surveys", "results", "report_accuracy", "--persona", "agency", "--format", "json", *url]
        ).output
    )
    assert empty["response_rate"] == {"shown": 0, "answered": 0, "rate": None, "interval": None}

    raw = runner.invoke(
        cli, ["surveys", "text", "--survey", "report_accuracy", "--contains", "great", *url], env=WIDE
    )
    assert raw.exit_code == 0 and "+44 20 7946 0958" in raw.output and "1 free-text answer" in raw.output
    redacted = json.loads(
        runner.invoke(cli, ["surveys", "text", "--redact", "--format", "json", *url]).output
    )
    assert [a["text"] for a in redacted["answers"]] == ["Great, call me on [phone]"]
    none = json.loads(
        runner.invoke(cli, ["surveys", "text", "--persona", "agency", "--format", "json", *url]).output
    )
    assert none == {"answers": []}


def test_cli_create_from_json_and_yaml(database: Database, tmp_path: Path) -> None:
    url = ["--database-url", database.url]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(definition(name="Export [/oops]")), encoding="utf-8")  # not rich markup
    created = runner.invoke(cli, ["surveys", "create", str(path), *url], env=WIDE)
    assert created.exit_code == 0, created.output
    summary = "created: feature_satisfaction, trigger feature_completed (feature_used), 3 questions, active"
    assert f"survey export_satisfaction {summary}" in created.output
    shown = runner.invoke(cli, ["surveys", "show", "export_satisfaction", *url], env=WIDE)
    assert shown.exit_code == 0 and "Export [/oops] (export_satisfaction)" in shown.output, shown.output
    assert '{"feature": "csv_export"}' in shown.output and "Columns; Date ranges; Formats" in shown.output
    yaml_path = tmp_path / "nps.yaml"
    yaml_path.write_text(
        "survey_id: quarterly_nps\nsurvey_type: nps\ntrigger: report_exported\ndisplay_option: recurring\n"
        "recurring_days: 90\nstarts_at: 2026-01-01T00:00:00Z\nquestions:\n"
        "  - question_id: nps\n    type: nps\n    text: How likely are you to recommend us?\n",
        encoding="utf-8",
    )
    from_yaml = runner.invoke(cli, ["surveys", "create", str(yaml_path), "--format", "json", *url])
    assert from_yaml.exit_code == 0, from_yaml.output
    body = json.loads(from_yaml.output)
    assert (body["trigger"], body["recurring_days"], body["starts_at"]) == (
        "report_exported", 90, "2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    stored = SurveyService(database).surveys()
    assert [s.survey_id for s in stored] == [*DEFAULTS, "export_satisfaction", "quarterly_nps"]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["show", "no-such"], "survey 'no-such' does not exist; `feedbackloop surveys list` shows the ids"),
        (["results", "no-such"], "survey 'no-such' does not exist"),
        (["text", "--survey", "no-such"], "survey 'no-such' does not exist"),
        (["results", "report_accuracy", "--days", "0"], "--days: must be a whole number from 1 to 3660"),
        (["text", "--days", "5000"], "--days"),
        (["list", "--format", "xml"], "--format: 'xml' is not one of table, json"),
        (["results", "report_accuracy", "--format", "csv"], "--format"),
        (["create", "/nonexistent/survey.json"], "/nonexistent/survey.json: No such file"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(database: Database, arguments: list[str], fragment: str) -> None:
    result = runner.invoke(cli, ["surveys", *arguments, "--database-url", database.url], env=WIDE)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_cli_create_with_a_bad_definition_names_the_field(database: Database, tmp_path: Path) -> None:
    url = ["--database-url", database.url]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition(questions=[question("q"), question("q")])), encoding="utf-8")
    duplicate = runner.invoke(cli, ["surveys", "create", str(path), *url], env=WIDE)
    assert (
        duplicate.exit_code == 2 and f"{path}: questions: question_id 'q' is used twice" in duplicate.output
    )
    taken = runner.invoke(
        cli, ["surveys", "create", "-", *url], input=json.dumps(definition("report_accuracy"))
    )
    assert taken.exit_code == 2 and "a survey with id 'report_accuracy' already exists" in taken.output
    not_json = tmp_path / "broken.json"
    not_json.write_text("{", encoding="utf-8")
    broken = runner.invoke(cli, ["surveys", "create", str(not_json), *url], env=WIDE)
    assert broken.exit_code == 2 and "not valid JSON" in broken.output
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("survey_id: [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in runner.invoke(cli, ["surveys", "create", str(bad_yaml), *url], env=WIDE).output
    nul = runner.invoke(cli, ["surveys", "create", "-", *url], input=json.dumps(definition(name="x\u0000")))
    assert nul.exit_code == 2 and "-: name: contains a NUL character" in nul.output
    assert [s.survey_id for s in SurveyService(database).surveys()] == DEFAULTS
