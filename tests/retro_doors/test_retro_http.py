"""/v1/retros on SQLite and PostgreSQL: start (202, then the background run), follow, approve, reports, the list,
and refusals (422 naming the field, 404, 409) that store nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from feedbackloop.api.app import create_app
from feedbackloop.retro_agent import retro_runner
from feedbackloop.settings import Settings, get_settings
from store.database import Database
from tests.access.support import bearer, create_key
from tests.retro_doors.support import SPRINT_END, SPRINT_START, filed_tickets, row_count
from tools.retro.report import markdown_escape

SPRINT = {"kind": "sprint", "start": SPRINT_START, "end": SPRINT_END, "sprint_id": "sprint-22"}
WAIT_SECONDS = 30


@pytest.fixture
def client(retro_database: Database) -> Iterator[TestClient]:
    settings = get_settings().model_copy(update={"database_url": retro_database.url})
    with TestClient(create_app(settings, retro_database)) as test_client:
        yield test_client


def start(client: TestClient, **changes: Any) -> str:
    response = client.post("/v1/retros", json={**SPRINT, **changes})
    assert response.status_code == 202, response.text
    body = response.json()
    retro_id: str = body["retro_id"]
    assert body["status"] == "running"
    assert response.headers["location"] == body["links"]["self"] == f"/v1/retros/{retro_id}"
    assert body["links"]["report_markdown"] == f"/v1/retros/{retro_id}/report.md"
    return retro_id


def settled(client: TestClient, retro_id: str) -> dict[str, Any]:
    """The retro once its background run stopped (the test client runs background tasks before it answers, so
    this usually returns at once; the bound keeps a stuck run from hanging the suite)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = client.get(f"/v1/retros/{retro_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "running" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_a_sprint_retro_runs_in_the_background_and_reports(client: TestClient, product: Database) -> None:
    retro_id = start(client)
    result = settled(client, retro_id)
    assert result["status"] == "completed", result
    assert result["retro_id"] == retro_id and result["sprint_id"] == "sprint-22"
    assert result["insights"] and all(insight["evidence_ids"] for insight in result["insights"])

    markdown = client.get(f"/v1/retros/{retro_id}/report.md")
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    for insight in result["insights"]:
        assert markdown_escape(insight["title"]) in markdown.text
    html = client.get(f"/v1/retros/{retro_id}/report.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()

    listed = client.get("/v1/retros").json()["retros"]
    assert [(row["id"], row["status"], row["sprint_id"]) for row in listed] == [
        (retro_id, "completed", "sprint-22")
    ]
    assert listed[0]["links"]["self"] == f"/v1/retros/{retro_id}"


def test_approve_ask_waits_then_approve_files_once(
    client: TestClient, product: Database, backlog_file: Path
) -> None:
    retro_id = start(client, approve="ask")
    waiting = settled(client, retro_id)
    assert waiting["status"] == "awaiting_approval", waiting
    proposed = [item["id"] for item in waiting["backlog_items"] if not item["duplicate_of"]]
    assert proposed and filed_tickets(backlog_file) == []
    assert client.get(f"/v1/retros/{retro_id}/report.md").status_code == 200  # a report of the proposal

    unknown = client.post(f"/v1/retros/{retro_id}/approve", json={"items": [proposed[0], "B999"]})
    assert unknown.status_code == 422 and unknown.json()["field"] == "items[1]", unknown.text
    wrong = client.post(f"/v1/retros/{retro_id}/approve", json={"items": "some"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "items", wrong.text
    missing = client.post(f"/v1/retros/{retro_id}/approve", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "items", missing.text

    approved = client.post(f"/v1/retros/{retro_id}/approve", json={"items": "all"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "completed"
    assert len(filed_tickets(backlog_file)) == len(proposed)
    assert client.get(f"/v1/retros/{retro_id}").json()["status"] == "completed"

    again = client.post(f"/v1/retros/{retro_id}/approve", json={"items": "all"})
    assert again.status_code == 409, again.text
    assert (
        again.json()["code"] == "retro_state_conflict" and "not awaiting approval" in again.json()["message"]
    )
    assert len(filed_tickets(backlog_file)) == len(proposed)


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"kind": None}, "kind"),
    ({"kind": "weekly"}, "kind"),
    ({"start": None}, "start"),
    ({"end": None}, "end"),
    ({"start": "18 May 2026"}, "start"),
    ({"end": "2026-02-30"}, "end"),
    ({"start": "2026-05-18", "end": "2026-05-01"}, "end"),
    ({"start": "0001-01-01"}, "start"),
    ({"sprint_id": " "}, "sprint_id"),
    ({"sprint_id": "a\u0000b"}, "sprint_id"),
    ({"approve": "maybe"}, "approve"),
    ({"bake_hours": "24"}, "bake_hours"),
    ({"colour": "red"}, "colour"),
    ({"kind": "deployment", "version": "v9.9.9"}, "version"),
    ({"kind": "deployment", "version": None}, "version"),
]


def test_refusals_name_the_field_and_store_nothing(
    client: TestClient, retro_database: Database, backlog_file: Path
) -> None:
    for changes, field in INVALID:
        body = {key: value for key, value in {**SPRINT, **changes}.items() if value is not None}
        response = client.post("/v1/retros", json=body)
        assert response.status_code == 422, (changes, response.text)
        answer = response.json()
        assert answer["code"] == "invalid_retro_request" and answer["field"] == field, (changes, answer)
        assert answer["message"].startswith(f"{field}:"), answer
    assert client.post("/v1/retros", content=b"[1, 2]").status_code == 422
    assert client.post("/v1/retros", content=b"{not json").status_code == 400

    unknown = "retro-000000000000"
    for method, path in (
        ("GET", f"/v1/retros/{unknown}"), ("GET", f"/v1/retros/{unknown}/report.md"),
        ("GET", f"/v1/retros/{unknown}/report.html"), ("POST", f"/v1/retros/{unknown}/approve"),
    ):  # fmt: skip
        response = client.request(method, path, json={"items": "all"} if method == "POST" else None)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "retro_not_found"
    bad_id = client.get("/v1/retros/not a retro id")
    assert bad_id.status_code == 422 and bad_id.json()["field"] == "retro_id", bad_id.text
    bad_limit = client.get("/v1/retros?limit=0")
    assert bad_limit.status_code == 422 and bad_limit.json()["field"] == "limit", bad_limit.text
    assert client.get("/v1/retros").json() == {"retros": []}
    assert row_count(retro_database, "retros") == 0 and filed_tickets(backlog_file) == []


def test_a_retro_without_result_has_no_report_yet(client: TestClient, retro_database: Database) -> None:
    started = retro_runner(retro_database.url, settings=get_settings()).start(
        {"kind": "sprint", "start": SPRINT_START, "end": SPRINT_END, "approve": "auto"}
    )
    body = client.get(f"/v1/retros/{started}").json()
    assert (body["retro_id"], body["status"]) == (started, "running")
    for report in ("report.md", "report.html"):
        response = client.get(f"/v1/retros/{started}/{report}")
        assert response.status_code == 409 and response.json()["code"] == "retro_state_conflict", (
            response.text
        )
    approve = client.post(f"/v1/retros/{started}/approve", json={"items": "all"})
    assert approve.status_code == 409, approve.text


def test_writes_ask_for_an_admin_key_and_reads_for_a_read_key(retro_database: Database) -> None:
    settings = Settings(database_url=retro_database.url, write_keys=[SecretStr("wk_secret")], auth="on")
    with TestClient(create_app(settings, retro_database)) as client:
        refused = client.post("/v1/retros", json=SPRINT)
        assert refused.status_code == 401, refused.text
        assert client.post("/v1/retros/retro-000000000000/approve", json={"items": "all"}).status_code == 401
        assert client.get("/v1/retros").status_code == 401
        read = bearer(create_key(retro_database, "read").key)
        assert client.get("/v1/retros", headers=read).status_code == 200
        # a write key (FEEDBACKLOOP_WRITE_KEYS) is an ingest key
        ingest_only = client.post("/v1/retros", json=SPRINT, auth=("wk_secret", ""))
        assert ingest_only.status_code == 403, ingest_only.text
        admin = bearer(create_key(retro_database, "admin").key)
        accepted = client.post("/v1/retros", json={**SPRINT, "start": "nope"}, headers=admin)
        assert accepted.status_code == 422  # past the key, into validation
    assert row_count(retro_database, "retros") == 0
