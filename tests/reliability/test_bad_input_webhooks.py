"""Bad input at the webhook doors, each request validly signed so that validation is what answers: the deploy
hook (Standard Webhooks signature) and GitHub's webhook answer 400 naming the field (413 over the size limit) and
record nothing; Slack's slash command answers text that is not a command with the help (200), and its buttons'
route answers a payload that is not JSON with 400. Slack requests are remembered for replay protection (one
`hook_deliveries` row per signed request), so that table is the one allowed change there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from feedbackloop.api.slack import MAX_SLACK_BODY_BYTES
from tests.reliability.bad_input_support import (
    DEEP_LEVELS,
    HUGE_DIGITS,
    SLACK_SECRET,
    UNICODE_ID,
    Door,
    as_json,
    assert_refused,
    assert_unchanged,
    deeply_nested,
    deploy_headers,
    door,
    door_database,
    github_headers,
    slack_headers,
    with_raw,
)
from tests.reliability.store_snapshot import store_snapshot

__all__ = ["door", "door_database"]

MAX_BATCH_BYTES = 500 * 1024

DEPLOY = {"service": "api", "version": "v9.9.9", "environment": "production", "commit": "abc123"}

DEPLOY_CASES: dict[str, tuple[bytes, int, str]] = {
    "malformed": (b'{"service": ', 400, "body"),
    "not-an-object": (b'["api", "v1"]', 400, "body"),
    f"nested-{DEEP_LEVELS}": (deeply_nested(), 400, "body"),
    "nan": (with_raw(DEPLOY, "commit", "NaN"), 400, "NaN"),
    "5000-digit-int": (with_raw(DEPLOY, "commit", HUGE_DIGITS), 400, "body"),
    "oversized": (as_json({**DEPLOY, "url": "x" * MAX_BATCH_BYTES}), 413, "body"),
    "service-missing": (as_json({k: v for k, v in DEPLOY.items() if k != "service"}), 400, "service"),
    "version-wrong-type": (as_json({**DEPLOY, "version": 9}), 400, "version"),
    "version-nul": (as_json({**DEPLOY, "version": "v1\x00"}), 400, "version"),
    "service-control-chars": (as_json({**DEPLOY, "service": "api\x1b[2J"}), 400, "service"),
    "service-10k-chars": (as_json({**DEPLOY, "service": "s" * 10_000}), 400, "service"),
    "environment-lone-surrogate": (as_json({**DEPLOY, "environment": "\ud800"}), 400, "environment"),
    "deployed-at-naive": (as_json({**DEPLOY, "deployed_at": "2026-05-03T10:00:00"}), 400, "deployed_at"),
    "deployed-at-year-1": (as_json({**DEPLOY, "deployed_at": "0001-01-01T00:00:00Z"}), 400, "deployed_at"),
    "deployed-at-year-9999": (as_json({**DEPLOY, "deployed_at": "9999-12-31T23:59:59Z"}), 400, "deployed_at"),
    "deployed-at-feb-30": (as_json({**DEPLOY, "deployed_at": "2026-02-30T00:00:00Z"}), 400, "deployed_at"),
    "immediate-wrong-type": (as_json({**DEPLOY, "immediate": "yes"}), 400, "immediate"),
    "unknown-field": (as_json({**DEPLOY, "rollback": True}), 400, "rollback"),
}


@pytest.mark.parametrize("name", list(DEPLOY_CASES))
def test_the_deploy_hook_refuses_bad_bodies_naming_the_field_and_records_nothing(
    door: Door, name: str
) -> None:
    body, status, field = DEPLOY_CASES[name]
    before = store_snapshot(door.database)
    answer = door.client.post("/v1/hooks/deploy", content=body, headers=deploy_headers(body))
    assert_refused(answer, status, field)
    assert_unchanged(door.database, before)


def test_a_deploy_hook_webhook_id_that_is_not_printable_is_400_naming_it(door: Door) -> None:
    body = as_json(DEPLOY)
    before = store_snapshot(door.database)
    answer = door.client.post(
        "/v1/hooks/deploy", content=body, headers=deploy_headers(body, message_id="m" * 300)
    )
    assert_refused(answer, 400, "webhook-id")
    assert_unchanged(door.database, before)


def github_payload(**changes: Any) -> dict[str, Any]:
    sha = "a10867b14bb761a232cd80139fbd4c0d33264240"
    payload: dict[str, Any] = {
        "deployment_status": {
            "id": 4242,
            "state": "success",
            "created_at": "2026-05-03T10:00:00Z",
            "environment_url": "https://app.example",
        },
        "deployment": {"sha": sha, "ref": "v2.3.0", "environment": "production", "payload": {}},
        "repository": {"name": "podcast-app", "default_branch": "main"},
    }
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key:
            payload[section][key] = value
        else:
            payload[section] = value
    return payload


GITHUB_CASES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "malformed": (b'{"deployment": ', {}, 400, "body"),
    "not-an-object": (b"[]", {}, 400, "body"),
    f"nested-{DEEP_LEVELS}": (deeply_nested(), {}, 400, "body"),
    "5000-digit-int": (with_raw(github_payload(), "zen", HUGE_DIGITS), {}, 400, "body"),
    "oversized": (as_json({**github_payload(), "padding": "x" * MAX_BATCH_BYTES}), {}, 413, "body"),
    "deployment-missing": (as_json({**github_payload(), "deployment": None}), {}, 400, "deployment"),
    "repository-wrong-type": (as_json(github_payload(repository="podcast-app")), {}, 400, "repository"),
    "sha-wrong-type": (as_json(github_payload(deployment__sha=12345)), {}, 400, "deployment.sha"),
    "repository-name-nul": (as_json(github_payload(repository__name="app\x00")), {}, 400, "repository.name"),
    "ref-unicode-control": (as_json(github_payload(deployment__ref="v1\u0007")), {}, 400, "deployment.ref"),
    "created-at-naive": (
        as_json(github_payload(deployment_status__created_at="2026-05-03 10:00")),
        {},
        400,
        "deployment_status.created_at",
    ),
    "created-at-year-1": (
        as_json(github_payload(deployment_status__created_at="0001-01-01T00:00:00Z")),
        {},
        400,
        "deployment_status.created_at",
    ),
    # the replay key is the status id from the signed body (X-GitHub-Delivery is not signed)
    "status-id-negative": (
        as_json(github_payload(deployment_status__id=-1)),
        {},
        400,
        "deployment_status.id",
    ),
    "status-id-boolean": (
        as_json(github_payload(deployment_status__id=True)),
        {},
        400,
        "deployment_status.id",
    ),
}


@pytest.mark.parametrize("name", list(GITHUB_CASES))
def test_the_github_webhook_refuses_bad_payloads_naming_the_field_and_records_nothing(
    door: Door, name: str
) -> None:
    body, options, status, field = GITHUB_CASES[name]
    headers = github_headers(body, **options)
    before = store_snapshot(door.database)
    answer = door.client.post("/integrations/github/webhook", content=body, headers=headers)
    assert_refused(answer, status, field)
    assert_unchanged(door.database, before)


# ---- Slack ----------------------------------------------------------------------------------------------------

SLACK_TEXTS = {
    "unicode-heavy": f"kpis {UNICODE_ID} مرحبا",
    "injection": "experiment ' OR 1=1 --",
    "drop-table": 'kpis "; DROP TABLE events; --',
    "nul": "retro sprint \x00",
    "retro-days-10e20": "retro last 100000000000000000000 days",
    "wildcards": "experiment %_%",
    "1000-chars": "k" * 1000,
}


def slack_form(text: str) -> bytes:
    return urlencode(
        {
            "command": "/feedback",
            "text": text,
            "user_id": "U1",
            "channel_id": "C1",
            "response_url": "http://127.0.0.1:9/unused",
        }
    ).encode()


def post_slack(door: Door, path: str, body: bytes) -> Any:
    return door.client.post(path, content=body, headers=slack_headers(body))


@pytest.mark.parametrize("text", list(SLACK_TEXTS.values()), ids=list(SLACK_TEXTS))
def test_slack_command_text_that_is_not_a_command_gets_the_help_and_stores_nothing(
    door: Door, text: str
) -> None:
    before = store_snapshot(door.database)
    answer = post_slack(door, "/integrations/slack/commands", slack_form(text))
    assert answer.status_code == 200, answer.text
    assert "The commands" in answer.json()["text"] or "Looking into" in answer.json()["text"], answer.text
    assert_unchanged(door.database, before, allowed=("hook_deliveries",))


SLACK_BODIES: dict[str, tuple[str, bytes, int, str]] = {
    "command-oversized": ("commands", slack_form("k" * MAX_SLACK_BODY_BYTES), 413, "body"),
    "actions-payload-malformed": ("actions", urlencode({"payload": '{"type": '}).encode(), 400, "payload"),
    f"actions-payload-nested-{DEEP_LEVELS // 2}": (
        "actions",
        urlencode({"payload": deeply_nested(DEEP_LEVELS // 2).decode()}).encode(),
        400,
        "payload",
    ),
    "actions-payload-5000-digits": ("actions", urlencode({"payload": HUGE_DIGITS}).encode(), 400, "payload"),
    "actions-payload-nan": ("actions", urlencode({"payload": '{"type": NaN}'}).encode(), 400, "payload"),
}


@pytest.mark.parametrize("name", list(SLACK_BODIES))
def test_unusable_slack_bodies_are_refused_naming_the_problem(door: Door, name: str) -> None:
    route, body, status, field = SLACK_BODIES[name]
    before = store_snapshot(door.database)
    answer = post_slack(door, f"/integrations/slack/{route}", body)
    assert_refused(answer, status, field)
    assert_unchanged(door.database, before, allowed=("hook_deliveries",))


def test_a_button_value_nested_beyond_the_recursion_limit_is_ignored_not_a_500(door: Door) -> None:
    value = deeply_nested(5_000).decode()
    payload = {
        "type": "block_actions",
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [{"action_id": "approve_item", "value": value}],
    }
    before = store_snapshot(door.database)
    answer = post_slack(
        door, "/integrations/slack/actions", urlencode({"payload": json.dumps(payload)}).encode()
    )
    assert answer.status_code == 200, answer.text
    assert_unchanged(door.database, before, allowed=("hook_deliveries",))


def test_a_slack_body_that_is_not_utf8_is_refused_401_not_a_500(door: Door) -> None:
    """It cannot be validly signed (Slack signs text); slack_sdk's verifier would raise decoding it."""
    body = b"command=/feedback&text=\xff\xfe"
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SLACK_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    before = store_snapshot(door.database)
    answer = door.client.post("/integrations/slack/commands", content=body, headers=headers)
    assert_refused(answer, 401, "UTF-8")
    assert_unchanged(door.database, before)
