"""What the bad-input tables share: one seeded app per database and module (API keys on, every signing secret
set), the bodies every JSON door is tried with, and the check that a refusal names the field and left the store
as it was.

The app runs with FEEDBACKLOOP_AUTH=on and each request carries a key of the scope its route needs (ingest,
read or admin), or a valid signature on the signed routes, so what a case exercises is validation, not access.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, text

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from store.database import Database
from store.repositories import api_keys
from tests.reliability.store_snapshot import changed_tables, store_snapshot
from tools.notify.signing import headers as standard_webhook_headers

POSTGRES_URL_VARIABLE = "FEEDBACKLOOP_TEST_POSTGRES_URL"
SLACK_SECRET = "slack-signing-secret-for-bad-input"
GITHUB_SECRET = "github-webhook-secret-for-bad-input"
DEPLOY_SECRET = "whsec_" + base64.b64encode(b"deploy-hook-secret-for-bad-input").decode()
DEEP_LEVELS = 10_000  # far beyond Python's recursion limit: the JSON decoder must refuse, not crash


# ---- a database and an app per module ---------------------------------------------------------------------


def _schema_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def door_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A fresh database shared by a module's cases (each case is refused, so they cannot disturb each other)."""
    import os

    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('bad-input')}/feedbackloop.db")
        yield database
        database.dispose()
        return
    base_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base_url:
        pytest.skip(f"PostgreSQL half skipped: set {POSTGRES_URL_VARIABLE}")
    schema = f"bad_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = Database(_schema_url(base_url, schema))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Door:
    """The app under test, its database and a Bearer header per scope."""

    client: TestClient
    database: Database
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def key(self, scope: str) -> dict[str, str]:
        return dict(self.headers[scope])


def door_settings(database: Database, tickets: Path) -> Settings:
    return Settings(
        database_url=database.url,
        auth="on",
        slack_signing_secret=SecretStr(SLACK_SECRET),
        github_webhook_secret=SecretStr(GITHUB_SECRET),
        deploy_hook_secret=SecretStr(DEPLOY_SECRET),
        tickets_jsonl_path=tickets,
        llm_base_url=None,
    )


@pytest.fixture(scope="module")
def door(door_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    """The app on the module's database, seeded with events, users and a running experiment."""
    tickets = tmp_path_factory.mktemp("tickets") / "backlog.jsonl"
    headers = {}
    with door_database.write() as connection:
        for scope in ("ingest", "read", "admin"):
            created = api_keys.create(
                connection, scope=scope, name=f"bad-input {scope}", now=datetime.now(UTC)
            )
            headers[scope] = {"Authorization": f"Bearer {created.key}"}
    with TestClient(create_app(door_settings(door_database, tickets), door_database)) as client:
        seeded = Door(client, door_database, headers)
        _seed(seeded)
        yield seeded


SEED_EXPERIMENT = {
    "key": "seeded-checkout",
    "name": "Seeded checkout",
    "primary_metrics": ["onboarding_completion"],
    "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
}


def _seed(door: Door) -> None:
    batch = [
        {
            "type": "identify",
            "userId": f"seed-{n}",
            "traits": {"persona": "agency"},
            "messageId": f"seed-id-{n}",
            "timestamp": "2026-05-01T10:00:00Z",
        }
        for n in range(3)
    ] + [
        {
            "type": "track",
            "event": "Report Generated",
            "userId": f"seed-{n % 3}",
            "messageId": f"seed-tr-{n}",
            "timestamp": "2026-05-02T10:00:00Z",
            "properties": {"rows": n, "note": "naïve café — 東京 ✓"},
        }
        for n in range(12)
    ]
    answer = door.client.post("/v1/batch", json={"batch": batch}, headers=door.key("ingest"))
    assert answer.status_code == 200 and answer.json()["accepted"] == 15, answer.text
    created = door.client.post("/v1/experiments", json=SEED_EXPERIMENT, headers=door.key("admin"))
    assert created.status_code == 201, created.text
    started = door.client.post("/v1/experiments/seeded-checkout/start", headers=door.key("admin"))
    assert started.status_code == 200, started.text


# ---- bodies -----------------------------------------------------------------------------------------------------


def as_json(value: Any) -> bytes:
    """JSON as a client sends it; lone surrogates stay `\\ud800` escapes (valid JSON, invalid text)."""
    return json.dumps(value).encode()


def deeply_nested(levels: int = DEEP_LEVELS) -> bytes:
    return b"[" * levels + b"]" * levels


def nested_value(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"deeper": value}
    return value


def with_raw(value: dict[str, Any], name: str, raw: str) -> bytes:
    """`value` as JSON with `name` set to a raw JSON token (NaN, Infinity, a 5,000-digit integer)."""
    marker = "__RAW_TOKEN__"
    return json.dumps({**value, name: marker}).replace(f'"{marker}"', raw).encode()


def gzip_bomb(decompressed_bytes: int) -> bytes:
    return gzip.compress(b" " * decompressed_bytes, compresslevel=9)


HUGE_DIGITS = "9" * 5_000  # beyond Python's 4,300-digit limit for int(str)
UNICODE_ID = "\u202eevil\u200b\u2066🎉"  # RTL override, zero-width space, isolate, emoji: not an identifier


# ---- the check ----------------------------------------------------------------------------------------------


def message_of(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text
    if isinstance(body, dict):
        parts = [str(body.get(key, "")) for key in ("field", "message", "markdown", "text", "reason")]
        rejected = body.get("rejected")
        if isinstance(rejected, list):
            parts += [str(item.get("reason", "")) for item in rejected if isinstance(item, dict)]
        return " | ".join(part for part in parts if part)
    return json.dumps(body)


def assert_refused(answer: Any, status: int, field_name: str) -> None:
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text[:500]}"
    message = message_of(answer)
    assert field_name in message, f"the answer does not name {field_name!r}: {message[:500]}"


def assert_unchanged(database: Database, before: dict[str, Any], *, allowed: tuple[str, ...] = ()) -> None:
    after = store_snapshot(database, exclude=allowed)
    changes = changed_tables({k: v for k, v in before.items() if k not in allowed}, after)
    assert not changes, f"the store changed: {changes}"


# ---- signatures ---------------------------------------------------------------------------------------------


def slack_headers(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    moment = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=moment, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": moment,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def github_headers(
    body: bytes, *, event: str = "deployment_status", delivery: str | None = None
) -> dict[str, str]:
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery if delivery is not None else str(uuid.uuid4()),
    }


def deploy_headers(body: bytes, *, message_id: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        **standard_webhook_headers(
            DEPLOY_SECRET, message_id or f"msg_{uuid.uuid4().hex}", int(time.time()), body
        ),
    }
