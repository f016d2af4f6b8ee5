"""Request ids (echoed when sane, generated otherwise) and the JSON log lines that carry them, without secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from feedbackloop.api.app import create_app
from feedbackloop.api.observability import sane_request_id
from feedbackloop.logs import REDACTED, JsonFormatter, RequestIdFilter, request_id_var
from feedbackloop.settings import Settings
from store.database import Database


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/feedbackloop.db", auth="on")


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    database = Database(app_settings.database_url)
    with TestClient(create_app(app_settings, database)) as test_client:
        yield test_client
    database.dispose()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of the root logger, formatted as the service formats them with FEEDBACKLOOP_LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_sane_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2_x"})
    assert response.headers["x-request-id"] == "lb-7f3a.2_x"


def test_a_missing_request_id_is_generated_per_request(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert first != second and len(first) == 32 and first.isalnum()


@pytest.mark.parametrize(
    "insane", ["a" * 129, "has space", "new\\nline", "<script>", "quote\"d", "semi;colon", ""]
)  # fmt: skip
def test_an_insane_request_id_is_replaced(client: TestClient, insane: str) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": insane}).headers["x-request-id"]
    assert echoed != insane and sane_request_id(echoed) == echoed


def test_the_request_id_rides_on_error_responses_too(client: TestClient) -> None:
    response = client.get("/metrics", headers={"X-Request-ID": "req-401"})  # auth on, no key
    assert response.status_code == 401 and response.headers["x-request-id"] == "req-401"


def test_json_log_lines_carry_the_request_id_and_no_authorization(
    client: TestClient, json_lines: io.StringIO
) -> None:
    secret = "fbk_deadbeef_ThisIsTheSecretPartOfTheKey0123456789"
    response = client.get(
        "/v1/escalations?status=firing&token=query-secret",
        headers={"X-Request-ID": "req-42", "Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 401  # an unknown key
    lines = records(json_lines)
    ours = [line for line in lines if line["request_id"] == "req-42"]
    access = [line for line in ours if line["logger"] == "feedbackloop.http"]
    assert len(access) == 1
    assert access[0] | {"ts": None, "duration_ms": None} == {
        "ts": None, "level": "INFO", "logger": "feedbackloop.http", "request_id": "req-42",
        "message": f"GET /v1/escalations 401 {access[0]['duration_ms']:.1f} ms", "method": "GET",
        "path": "/v1/escalations", "route": "/v1/escalations", "status": 401, "duration_ms": None,
    }  # fmt: skip
    # The refusal is logged from the access check (run in the thread pool): it carries the request id too.
    assert any(line["logger"] == "feedbackloop.access" for line in ours)
    # What the service wrote (the test client's own httpx logger prints its URL, query string and all).
    written = "\n".join(json.dumps(line) for line in lines if not line["logger"].startswith("httpx"))
    assert secret not in written and "ThisIsTheSecretPart" not in written
    assert "query-secret" not in written and "Bearer" not in written


def test_logs_outside_a_request_have_no_request_id(json_lines: io.StringIO) -> None:
    logging.getLogger("feedbackloop.test").info("startup %s", "done")
    [line] = [line for line in records(json_lines) if line["logger"] == "feedbackloop.test"]
    assert line["message"] == "startup done" and line["request_id"] is None and line["level"] == "INFO"


def test_json_formatter_redacts_secret_looking_extras_and_keeps_the_rest() -> None:
    record = logging.LogRecord("feedbackloop.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.authorization = "Bearer abc"
    record.llm_api_key = "sk-123"
    record.channel = "slack"
    token = request_id_var.set("req-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello you" and line["request_id"] == "req-9"
    assert (
        line["authorization"] == REDACTED and line["llm_api_key"] == REDACTED and line["channel"] == "slack"
    )


def test_json_formatter_writes_the_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in line["exception"] and line["level"] == "ERROR"
