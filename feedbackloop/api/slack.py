"""Slack's doors: the slash command (`/retro …`) and the interactive Approve / Drop buttons of a retro report.

Every request is verified before anything is read from it: the raw body against `X-Slack-Signature` with
slack_sdk's SignatureVerifier (HMAC of `v0:{timestamp}:{body}` with the signing secret, the timestamp within five
minutes of now), then an exact replay of a (timestamp, signature) pair inside that window is refused — both 401.
Without FEEDBACKLOOP_SLACK_SIGNING_SECRET the routes answer 503 and accept nothing. The signature window runs on
the wall clock (it is Slack's clock that signed); the commands run on the chat services' clock.

Slack wants an answer within 3 seconds, so quick commands (escalations, experiment, kpis, help) answer in the
HTTP response (only the caller sees it), while a retro answers with an acknowledgement and runs in the background;
when it finishes, or stops to wait for approval, its report goes to the command's `response_url` for the whole
channel. Free-form questions, when an LLM routes them, are also answered through `response_url`. A button click is
acknowledged with an empty 200 and its outcome posted to the action's `response_url`; the click that completes the
approval replaces the message with the final report, so its buttons disappear (see feedbackloop.chat.approvals).

With `/retro` as the slash command the word `retro` may be left out: `/retro last 14 days`.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from feedbackloop.api.access import signed_route
from feedbackloop.api.body import read_limited_body
from feedbackloop.api.chat import run_retro_logged, services_of
from feedbackloop.api.state import AppState
from feedbackloop.chat import deliveries, grammar
from feedbackloop.chat.approvals import ACTION_DECISIONS, Click, decide
from feedbackloop.chat.commands import (
    ChatServices,
    answer,
    help_reply,
    interpret,
    is_retro,
    needs_llm,
    retro_failed,
    start_retro,
)
from feedbackloop.chat.replies import ChatReply, read_as
from feedbackloop.settings import Settings
from tools.events.segment import PayloadError, decode_json
from tools.retro.report import slack_escape

log = logging.getLogger("feedbackloop.slack")

# Slack puts the whole message, blocks included, into a button click's payload: a long retro report is large.
MAX_SLACK_BODY_BYTES = 1024 * 1024
POST_TIMEOUT_SECONDS = 10
SIGNING_SECRET_SETTING = "FEEDBACKLOOP_SLACK_SIGNING_SECRET"  # nosec B105  # the setting's name, not a secret
MAX_ID_CHARS = 100
RETRO_KINDS = ("sprint", "last", "deploy", "deployment")  # what may follow `retro` in the grammar

router = APIRouter(tags=["slack"])
SIGNED = [signed_route("slack")]


# ---- verification ---------------------------------------------------------------------------------------------


async def verified_body(request: Request) -> bytes:
    """The raw body of a request Slack signed and that was not seen before; else PayloadError 503/401/413."""
    state: AppState = request.app.state.feedbackloop
    secret = state.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        raise PayloadError(
            "slack_not_configured",
            f"the Slack routes are off: set {SIGNING_SECRET_SETTING} to the Slack app's signing secret",
            status=503,
        )
    body = await read_limited_body(request, MAX_SLACK_BODY_BYTES)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise _unauthorized("X-Slack-Request-Timestamp is missing or not a Unix time")
    if not signature.isascii():  # slack_sdk compares str with hmac.compare_digest, which refuses non-ASCII
        raise _unauthorized("X-Slack-Signature is not a Slack signature")
    if not _is_utf8(body):  # slack_sdk decodes the body to check it: anything else would be a 500
        raise _unauthorized("the body is not UTF-8, so it cannot carry a valid Slack signature")
    if not SignatureVerifier(secret.get_secret_value()).is_valid(body, timestamp, signature):
        raise _unauthorized("the Slack signature is invalid or its timestamp is more than 5 minutes off")
    now = datetime.now(UTC)
    first = await run_in_threadpool(
        deliveries.remember_slack_request, state.database, timestamp, signature, now
    )
    if not first:
        raise _unauthorized("this Slack request was received already (replay)")
    return body


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unauthorized(message: str) -> PayloadError:
    return PayloadError("invalid_slack_signature", message, status=401)


# ---- the slash command ------------------------------------------------------------------------------------------


@router.post("/integrations/slack/commands", dependencies=SIGNED)
async def slack_command(request: Request, background: BackgroundTasks) -> Response:
    """A slash command (form-encoded, signed). Quick commands answer here (ephemeral); a retro is acknowledged
    here and its report posted to `response_url` when it is ready."""
    form = _form(await verified_body(request))
    text = _implied_retro(form.get("command", ""), form.get("text", ""))
    response_url = form.get("response_url", "")
    services = services_of(request)
    log.info(
        "slack command %r from %s in %s", text[:80], form.get("user_id", "?"), form.get("channel_id", "?")
    )
    if needs_llm(text, services):
        if _postable(response_url):
            background.add_task(_answer_later, text, response_url, services, form.get("channel_id", ""))
            return _ephemeral(f"Looking into “{slack_escape(text[:100])}” …")
        return _ephemeral("This question needs a response_url to answer; try `help`.")
    command = grammar.parse(text)
    if not is_retro(command):
        return _ephemeral_reply(await run_in_threadpool(answer, command, services))
    started = await run_in_threadpool(start_retro, command, services)  # type: ignore[arg-type]
    if started.retro_id is not None:
        channel_id = form.get("channel_id", "")
        background.add_task(_run_and_post, started.retro_id, response_url, services, channel_id)
    return _ephemeral_reply(started)


def _implied_retro(command: str, text: str) -> str:
    """`/retro last 14 days` means `retro last 14 days`; other text is taken as it is, so `/retro escalations`
    runs that command and `/retro why did NPS drop?` stays a question for the LLM router."""
    words = text.split()
    if command.strip().lower() == "/retro" and words and words[0].lower() in RETRO_KINDS:
        return f"retro {text.strip()}"
    return text


def _run_and_post(retro_id: str, response_url: str, services: ChatServices, channel_id: str = "") -> None:
    reply = run_retro_logged(retro_id, services)
    if not post(response_url, reply, in_channel=True):
        post_to_channel(services.settings, channel_id, reply)


def post_to_channel(settings: Settings, channel_id: str, reply: ChatReply) -> bool:
    """The report through the bot (chat.postMessage) when the response_url refused it — it lasts 30 minutes and
    5 posts, and a long retro can outlive it. Without a bot token the failure is only logged."""
    if settings.slack_bot_token is None or not channel_id:
        log.warning("the retro's report could not be posted: the response_url refused it and no bot token "
                    "(FEEDBACKLOOP_SLACK_BOT_TOKEN) is set to post it to the channel")  # fmt: skip
        return False
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                       timeout=int(POST_TIMEOUT_SECONDS))  # fmt: skip
    try:
        client.chat_postMessage(channel=channel_id, text=reply.text, blocks=reply.blocks)
    except Exception as error:  # SlackApiError (ok: false) or the network: logged, nobody waits on it
        log.warning(
            "posting the retro's report with the bot token failed: %s: %s", type(error).__name__, error
        )
        return False
    return True


def _answer_later(text: str, response_url: str, services: ChatServices, channel_id: str = "") -> None:
    """A free-form question: the LLM picks the command, which then answers (or starts a retro) as usual. A failure
    is told to the person who asked (they only saw "Looking into …"), and logged."""
    try:
        understood = interpret(text, services)
        command = understood.command
        if not is_retro(command):
            post(response_url, read_as(answer(command, services), understood.routed_from), in_channel=False)
            return
        started = start_retro(command, services)  # type: ignore[arg-type]
    except Exception:
        log.exception("answering the Slack question %r failed", text[:80])
        post(response_url, help_reply(note="Answering this failed on our side; try again, or `help`."),
             in_channel=False)  # fmt: skip
        return
    post(response_url, read_as(started, understood.routed_from), in_channel=False)
    if started.retro_id is not None:
        _run_and_post(started.retro_id, response_url, services, channel_id)


# ---- the buttons --------------------------------------------------------------------------------------------------


@router.post("/integrations/slack/actions", dependencies=SIGNED)
async def slack_actions(request: Request, background: BackgroundTasks) -> Response:
    """Block Kit interactions (form field `payload`, signed). Approve / Drop on a retro report records the
    decision and, once every proposed item has one, resumes the retro; the outcome goes to `response_url`.
    Other interactions are acknowledged and ignored."""
    form = _form(await verified_body(request))
    try:  # strict JSON: nesting beyond Python's limits or a 5,000-digit number is a 400, not a 500
        payload = decode_json(form.get("payload", "").encode())
    except PayloadError as error:
        raise PayloadError("invalid_slack_payload", f"payload: not JSON ({error.message})") from None
    click = _click(payload) if isinstance(payload, dict) else None
    response_url = payload.get("response_url", "") if isinstance(payload, dict) else ""
    if click is None or not isinstance(response_url, str) or not _postable(response_url):
        return Response(status_code=200)  # not one of our buttons: nothing to do
    background.add_task(_decide_and_post, click, response_url, services_of(request))
    return Response(status_code=200)


def _click(payload: dict[str, Any]) -> Click | None:
    """The Approve / Drop click of a retro report, or None for any other interaction."""
    if payload.get("type") != "block_actions":
        return None
    user = payload.get("user")
    user = user if isinstance(user, dict) else {}
    who = str(user.get("username") or user.get("name") or user.get("id") or "someone")[:MAX_ID_CHARS]
    actions = payload.get("actions")
    for action in actions if isinstance(actions, list) else ():
        if not isinstance(action, dict) or str(action.get("action_id")) not in ACTION_DECISIONS:
            continue
        try:
            value = decode_json(str(action.get("value") or "").encode("utf-8", "surrogatepass"))
        except PayloadError:
            return None
        if not isinstance(value, dict):
            return None
        retro_id, item_id = value.get("retro_id"), value.get("item_id")
        if isinstance(retro_id, str) and isinstance(item_id, str) and _short(retro_id) and _short(item_id):
            return Click(retro_id, item_id, ACTION_DECISIONS[str(action["action_id"])], who)
        return None
    return None


def _decide_and_post(click: Click, response_url: str, services: ChatServices) -> None:
    try:
        outcome = decide(click, services)
    except Exception as error:  # the channel hears about it; the traceback goes to the log
        log.exception("deciding %s on retro %s failed", click.item_id, click.retro_id)
        post(response_url, retro_failed(click.retro_id, error), in_channel=False)
        return
    post(response_url, outcome.reply, in_channel=outcome.finished, replace_original=outcome.finished)


# ---- answering --------------------------------------------------------------------------------------------------


def post(response_url: str, reply: ChatReply, *, in_channel: bool, replace_original: bool = False) -> bool:
    """Send a reply to a Slack response_url; failures are logged (nobody is waiting on the HTTP side)."""
    if not _postable(response_url):
        log.warning("not posting to %r: not an https URL (or http on this machine)", response_url[:100])
        return False
    try:
        sent = WebhookClient(response_url, timeout=POST_TIMEOUT_SECONDS).send(
            text=reply.text, blocks=reply.blocks, response_type="in_channel" if in_channel else "ephemeral",
            replace_original=replace_original,
        )  # fmt: skip
    except Exception as error:  # a network failure must not take the worker thread down
        log.warning("posting to Slack's response_url failed: %s: %s", type(error).__name__, error)
        return False
    if sent.status_code != 200:
        log.warning("Slack's response_url answered %s: %s", sent.status_code, sent.body[:200])
    return sent.status_code == 200


def _postable(url: str) -> bool:
    """https anywhere (Slack's hooks.slack.com), plain http only to this machine (local receivers, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _ephemeral_reply(reply: ChatReply) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": reply.text, "blocks": reply.blocks})


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("invalid_slack_payload", "the body is not form-encoded UTF-8") from None
    return {name: values[0] for name, values in fields.items() if values}


def _short(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_CHARS
