"""The Slack doors on SQLite and PostgreSQL: signatures (valid, wrong secret, stale, replayed, unset secret), quick
commands answered in the response, a slash-command retro whose report arrives at the response_url, and the
Approve / Drop buttons that resume it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from feedbackloop.api.app import create_app
from feedbackloop.chat.routing import llm_router
from store.database import Database
from tests.agents.fake_chat import ScriptedChatModel, tool_answer
from tests.chat.conftest import FAKE_LLM, SlackReceiver, chat_settings, frozen_services, signed_headers
from tests.loopback import LoopbackServer, read_body, write_answer
from tests.retro_doors.support import filed_tickets, row_count

HELP_FORM = {"command": "/feedbackloop", "text": "help", "user_id": "U1", "channel_id": "C1"}


def command_body(**fields: str) -> bytes:
    return urlencode({**HELP_FORM, **fields}).encode()


def send_command(client: TestClient, body: bytes, **header_changes: Any) -> Any:
    return client.post(
        "/integrations/slack/commands", content=body, headers=signed_headers(body, **header_changes)
    )


# ---- signatures -------------------------------------------------------------------------------------------------


def test_a_signed_request_is_answered_and_every_bad_one_refused(client: TestClient) -> None:
    body = command_body()
    headers = signed_headers(body)
    valid = client.post("/integrations/slack/commands", content=body, headers=headers)
    assert valid.status_code == 200, valid.text
    assert valid.json()["response_type"] == "ephemeral"
    assert "retro last &lt;N&gt; days" in json.dumps(valid.json()["blocks"])

    replayed = client.post("/integrations/slack/commands", content=body, headers=headers)
    assert replayed.status_code == 401 and "replay" in replayed.json()["message"], replayed.text

    wrong_secret = send_command(client, command_body(text="kpis"), secret="not-the-signing-secret")
    assert wrong_secret.status_code == 401, wrong_secret.text
    assert wrong_secret.json()["code"] == "invalid_slack_signature"

    stale = send_command(client, command_body(text="kpis"), timestamp=int(time.time()) - 6 * 60)
    assert stale.status_code == 401, stale.text

    future = send_command(client, command_body(text="kpis"), timestamp=int(time.time()) + 6 * 60)
    assert future.status_code == 401, future.text

    tampered_body = command_body(text="escalations")
    tampered = client.post("/integrations/slack/commands", content=tampered_body, headers=headers | {
        "X-Slack-Request-Timestamp": str(int(time.time()))})  # fmt: skip
    assert tampered.status_code == 401, tampered.text

    unsigned = client.post("/integrations/slack/commands", content=command_body(), headers=HEADERS_FORM)
    assert unsigned.status_code == 401, unsigned.text
    not_a_time = client.post("/integrations/slack/commands", content=body, headers=headers | {
        "X-Slack-Request-Timestamp": "yesterday"})  # fmt: skip
    assert not_a_time.status_code == 401, not_a_time.text

    # raw header bytes, as any client may send: not ASCII, so not a Slack signature (401, not a 500)
    raw_headers = [
        (name.encode(), value.encode()) for name, value in headers.items() if name != "X-Slack-Signature"
    ]
    raw_headers.append((b"X-Slack-Signature", "v0=\u00e9".encode()))
    non_ascii = client.post(
        "/integrations/slack/commands", content=command_body(text="kpis"), headers=raw_headers
    )
    assert non_ascii.status_code == 401, non_ascii.text

    # the buttons' route checks the same way
    actions = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode()
    assert (
        client.post("/integrations/slack/actions", content=actions, headers=HEADERS_FORM).status_code == 401
    )
    assert send_command_to(client, "/integrations/slack/actions", actions).status_code == 200


HEADERS_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def send_command_to(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers=signed_headers(body))


def test_without_a_signing_secret_the_slack_routes_answer_503_naming_the_setting(
    retro_database: Database,
) -> None:
    settings = chat_settings(retro_database, slack_signing_secret=None)
    with TestClient(create_app(settings, retro_database)) as client:
        for path in ("/integrations/slack/commands", "/integrations/slack/actions"):
            body = command_body()
            answer = client.post(path, content=body, headers=signed_headers(body))
            assert answer.status_code == 503, answer.text
            assert "FEEDBACKLOOP_SLACK_SIGNING_SECRET" in answer.json()["message"]
    assert row_count(retro_database, "hook_deliveries") == 0


def test_quick_commands_answer_in_the_response(client: TestClient) -> None:
    escalations = send_command(client, command_body(text="escalations"))
    assert escalations.status_code == 200 and "No open escalations" in json.dumps(escalations.json())
    unknown = send_command(client, command_body(text="please do something <!channel>"))
    assert unknown.status_code == 200, unknown.text
    shown = json.dumps(unknown.json()["blocks"])
    assert "`please` is not a command" in shown and "The commands:" in shown
    bad_days = send_command(client, command_body(text="retro last 9999 days"))
    assert "a retro covers 1 to 366 days, not 9999" in json.dumps(bad_days.json())
    kpis = send_command(client, command_body(text="kpis nobody"))
    assert "is not a persona" in json.dumps(kpis.json())


# ---- a retro from a slash command, and its buttons ------------------------------------------------------------------


def button_payload(message: dict[str, Any], action_id: str, item_id: str, response_url: str) -> bytes:
    """The block_actions payload Slack sends when someone clicks a button of `message`."""
    for block in message["blocks"]:
        for element in block.get("elements", ()) if block["type"] == "actions" else ():
            if element["action_id"] == action_id and json.loads(element["value"])["item_id"] == item_id:
                clicked = {
                    **element,
                    "block_id": "b1",
                    "action_ts": f"{time.time():.6f}",
                }  # a new body each click
                payload = {
                    "type": "block_actions", "user": {"id": "U2", "username": "ana"},
                    "response_url": response_url, "actions": [clicked],
                }  # fmt: skip
                return urlencode({"payload": json.dumps(payload)}).encode()
    raise AssertionError(f"no {action_id} button for {item_id} in {message}")


def proposed_items(message: dict[str, Any]) -> list[str]:
    return [
        json.loads(element["value"])["item_id"]
        for block in message["blocks"] if block["type"] == "actions"
        for element in block["elements"] if element["action_id"] == "retro_approve"
    ]  # fmt: skip


def test_a_signed_slash_command_posts_the_retro_and_the_buttons_resume_it(
    app: FastAPI, client: TestClient, product: Database, receiver: SlackReceiver, backlog_file: Path
) -> None:
    body = command_body(command="/retro", text="last 14 days", response_url=receiver.url)
    started = send_command(client, body)
    assert started.status_code == 200, started.text
    assert started.json()["response_type"] == "ephemeral"
    assert "Running the retro over the last 14 days" in started.json()["text"]

    [report] = receiver.wait_for(1)
    assert report["response_type"] == "in_channel"
    assert report["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Sprint retro",
                                                              "emoji": True}}  # fmt: skip
    assert "status: awaiting approval" in json.dumps(report["blocks"])
    items = proposed_items(report)
    assert items and filed_tickets(backlog_file) == []

    retro_id = next(json.loads(e["value"])["retro_id"] for b in report["blocks"] if b["type"] == "actions"
                    for e in b["elements"])  # fmt: skip
    assert f"retro {retro_id}" in json.dumps(report["blocks"][-1])
    action_url = receiver.url.replace("/commands/", "/actions/")
    # Drop every item but the first, then approve the first: the click that decides the last item resumes it.
    for number, item_id in enumerate(items[1:], start=2):
        dropped = click(client, button_payload(report, "retro_drop", item_id, action_url))
        assert dropped.status_code == 200
        note = receiver.wait_for(number)[-1]
        assert f"{item_id} dropped by ana" in json.dumps(note) and note["response_type"] == "ephemeral"
    clicked = click(client, button_payload(report, "retro_approve", items[0], action_url))
    assert clicked.status_code == 200 and clicked.text == ""
    final = receiver.wait_for(len(items) + 1)[-1]
    assert final["replace_original"] is True and final["response_type"] == "in_channel"
    assert "status: completed" in json.dumps(final["blocks"])
    assert not proposed_items(final)  # the buttons are gone

    result = app.state.chat_services.runner.result(retro_id)
    assert result["status"] == "completed"
    filed = [item["id"] for item in result["backlog_items"] if item.get("tickets") or item.get("ticket")]
    assert filed == [items[0]] and len(filed_tickets(backlog_file)) == 1

    again = click(client, button_payload(report, "retro_approve", items[0], action_url))
    assert again.status_code == 200
    late = receiver.wait_for(len(items) + 2)[-1]
    assert "no longer waiting for approval" in json.dumps(late) and late["response_type"] == "ephemeral"
    assert len(filed_tickets(backlog_file)) == 1


def click(client: TestClient, body: bytes) -> Any:
    return send_command_to(client, "/integrations/slack/actions", body)


def test_a_free_form_question_is_routed_in_the_background_and_answered_at_the_response_url(
    app: FastAPI, client: TestClient, receiver: SlackReceiver
) -> None:
    model = ScriptedChatModel(
        replies=[tool_answer({"command": "escalations", "argument": ""}, name="RoutedCommand")]
    )
    services = app.state.chat_services
    services.router = llm_router(FAKE_LLM, personas=services.personas, experiment_keys=list, client=model)
    asked = send_command(client, command_body(text="anything on fire right now?", response_url=receiver.url))
    assert asked.status_code == 200 and asked.json()["text"] == "Looking into “anything on fire right now?” …"
    [answer] = receiver.wait_for(1)
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["elements"][0]["text"] == "_Read as `escalations`._"
    assert "No open escalations." in json.dumps(answer["blocks"])


# ---- a retro that outlives its response_url ----------------------------------------------------------------------


def test_when_the_response_url_has_expired_the_bot_token_posts_the_report_to_the_channel(
    retro_database: Database, product: Database
) -> None:
    """Slack's response_url lasts 30 minutes and 5 posts; a retro that takes longer still reaches the channel
    through chat.postMessage with the bot token (a local stand-in for Slack's Web API)."""
    posted: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    arrived = threading.Event()

    def slack(handler: Any) -> None:
        body, headers = read_body(handler)
        if handler.path.startswith("/response"):  # what Slack answers for a used-up response_url
            write_answer(handler, 404, b"expired_url", {"content-type": "text/plain"})
            return
        posted.append((handler.path, headers, json.loads(body)))
        answer = b'{"ok": true, "channel": "C42", "ts": "1.0"}'
        write_answer(handler, 200, answer, {"content-type": "application/json"})
        arrived.set()

    server = LoopbackServer(slack)
    try:
        api_url = f"{server.base_url}/api/"
        settings = chat_settings(
            retro_database, slack_bot_token=SecretStr("xoxb-test-token"), slack_api_url=api_url
        )
        app = create_app(settings, retro_database)
        app.state.chat_services = frozen_services(retro_database, settings)
        with TestClient(app) as client:
            body = command_body(command="/retro", text="last 14 days", channel_id="C42",
                                response_url=f"{server.base_url}/response/T1/B1/x")  # fmt: skip
            assert send_command(client, body).status_code == 200
            assert arrived.wait(60), "no chat.postMessage arrived"
        [(path, headers, message)] = posted
        assert path == "/api/chat.postMessage" and message["channel"] == "C42"
        assert headers["authorization"] == "Bearer xoxb-test-token"
        assert message["blocks"][0]["text"]["text"] == "Sprint retro"
    finally:
        server.close()


def test_the_retro_slash_command_implies_retro_only_before_a_retro_kind() -> None:
    from feedbackloop.api.slack import _implied_retro

    assert _implied_retro("/retro", "last 14 days") == "retro last 14 days"
    assert _implied_retro("/retro", "Sprint 48") == "retro Sprint 48"
    assert _implied_retro("/retro", "deploy v1.4.0") == "retro deploy v1.4.0"
    assert _implied_retro("/retro", "escalations") == "escalations"
    # a question stays a question, for the LLM router (with `retro` in front it would be a mistyped command)
    assert _implied_retro("/retro", "why did NPS drop for networks?") == "why did NPS drop for networks?"
    assert _implied_retro("/feedbackloop", "last 14 days") == "last 14 days"
