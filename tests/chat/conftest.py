"""Fixtures of the chat door tests: an app on the test's database (SQLite and PostgreSQL) with a Slack signing
secret, chat services whose clock stands at the end of the synthetic product's data, API keys of each scope, and
a loopback receiver standing in for Slack's response_url."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from agents.retro.llm import LLMConfig
from feedbackloop.api.app import create_app
from feedbackloop.chat.commands import ChatServices, chat_services
from feedbackloop.settings import Settings, get_settings
from store.database import Database
from store.repositories import api_keys
from tests.loopback import LoopbackServer, read_body, write_answer
from tests.retro_doors import conftest as retro_fixtures
from tests.retro_doors.support import END

# The retro door tests' fixtures: the backlog file, the test's database, the synthetic product in it.
backlog_file = retro_fixtures.backlog_file
retro_database = retro_fixtures.retro_database
product = retro_fixtures.product

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WAIT_SECONDS = 30.0
# An LLM the tests never reach: the router gets a fake chat model as its client.
FAKE_LLM = LLMConfig(
    base_url="http://127.0.0.1:9/v1", api_key=None, model="fake", structured_output="function_calling"
)


def chat_settings(database: Database, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url,
        "slack_signing_secret": SecretStr(SIGNING_SECRET),
        "llm_base_url": None,
        "auth": "on",
    }
    return get_settings().model_copy(update={**values, **changes})


def frozen_services(database: Database, settings: Settings, now: datetime = END) -> ChatServices:
    """Chat services whose clock stands at the end of the synthetic product (2026-06-01)."""
    return chat_services(database, settings, clock=lambda: now)


@pytest.fixture
def app(retro_database: Database) -> FastAPI:
    settings = chat_settings(retro_database)
    application = create_app(settings, retro_database)
    application.state.chat_services = frozen_services(retro_database, settings)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keys(retro_database: Database) -> dict[str, str]:
    """A Bearer header per scope."""
    headers = {}
    with retro_database.write() as connection:
        for scope in ("ingest", "read", "admin"):
            created = api_keys.create(connection, scope=scope, name=f"chat {scope}", now=END)
            headers[scope] = f"Bearer {created.key}"
    return headers


# ---- Slack's side ---------------------------------------------------------------------------------------------


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Headers as Slack sends them, the signature made by slack_sdk's own helper."""
    moment = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=moment, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": moment,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


@dataclass
class SlackReceiver:
    """The response_url: records every JSON message posted to it and answers 200 `ok` like Slack."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.base_url}/commands/T1/B1/response"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        body, _headers = read_body(handler)
        with self.lock:
            self.messages.append(json.loads(body))
        write_answer(handler, 200, b"ok", {"content-type": "text/plain"})

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        """The first `count` messages, waiting at most WAIT_SECONDS for them."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages[:count])
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages at the response_url, got {self.messages}")


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver()
    receiver.server = LoopbackServer(receiver.serve)
    yield receiver
    receiver.server.close()
