"""POST /v1/chat: the chat grammar for any chat tool (a bot in Teams, Mattermost, Discord …), answering markdown.

`{"text": "kpis podcast_network", "user": "ana", "channel": "#growth"}` → `{"command", "markdown", …}`. Unknown
text is answered with the help (200), never an error page; with an LLM configured, free-form questions are routed
to a command first (`routed_from` says which). Reading commands need a `read` key; retro commands start a retro,
which is an operator's action, so they need an `admin` key (checked once the text is known to be a retro
command). A retro is not waited for: the answer carries its id and the URL to poll (GET /v1/retros/{id}).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedbackloop.api.access import Scope, authorize, require_scope
from feedbackloop.api.body import read_limited_body
from feedbackloop.api.experiment_bodies import body_schema
from feedbackloop.api.state import AppState
from feedbackloop.chat.commands import (
    ChatServices,
    answer,
    chat_services,
    interpret,
    is_retro,
    run_retro,
    start_retro,
)
from feedbackloop.chat.grammar import MAX_TEXT_CHARS
from feedbackloop.chat.replies import ChatReply, read_as
from tools.events.segment import PayloadError, decode_json

log = logging.getLogger("feedbackloop.chat")

MAX_CHAT_BODY_BYTES = 16 * 1024
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="the message, e.g. `kpis agency`")
    user: str | None = Field(
        None, max_length=100, pattern=NO_CONTROL, description="who wrote it (for the log)"
    )
    channel: str | None = Field(None, max_length=100, pattern=NO_CONTROL, description="where (for the log)")


class ChatAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str = Field(description="retro, escalations, experiment, kpis or help")
    markdown: str
    routed_from: str | None = Field(None, description="the command the LLM read a free-form question as")
    retro_id: str | None = None
    status: str | None = Field(None, description="a retro's status: running once started")
    links: dict[str, str] | None = Field(None, description="a started retro's URLs (poll `self`)")


router = APIRouter(tags=["chat"])


def services_of(request: Request) -> ChatServices:
    """One ChatServices per app (its runner builds the ticket sinks once); tests may set their own."""
    cached: ChatServices | None = getattr(request.app.state, "chat_services", None)
    if cached is None:
        state: AppState = request.app.state.feedbackloop
        cached = chat_services(state.database, state.settings)
        request.app.state.chat_services = cached
    return cached


def run_retro_logged(retro_id: str, services: ChatServices) -> ChatReply:
    """The retro's run after the answer; a failure is recorded by the runner and logged here."""
    outcome = run_retro(retro_id, services)
    if outcome.details.get("status") == "failed":
        log.warning("chat retro %s failed; `feedbackloop retro resume %s` continues it", retro_id, retro_id)
    return outcome


@router.post(
    "/v1/chat",
    dependencies=[require_scope(Scope.READ)],
    response_model=ChatAnswer,
    responses={400: {"description": "the body is not {text, user?, channel?} (the field is named)"}},
    openapi_extra=body_schema(ChatBody.model_json_schema()),
)
async def chat(request: Request, background: BackgroundTasks) -> Any:
    """Answer a chat message with markdown: `retro sprint <id>`, `retro last <N> days`, `retro deploy <version>`,
    `escalations`, `experiment <key>`, `kpis [persona]`, `help`. Retro commands need an admin key and answer at
    once with the started retro's id and links."""
    body = await _read_body(request)
    services = services_of(request)
    understood = await run_in_threadpool(interpret, body.text, services)
    command = understood.command
    log.info("chat command %s from %s in %s", command.name, body.user or "?", body.channel or "?")
    if is_retro(command):
        await run_in_threadpool(authorize, request, Scope.ADMIN)
        started = await run_in_threadpool(start_retro, command, services)  # type: ignore[arg-type]
        if started.retro_id is not None:
            background.add_task(run_retro_logged, started.retro_id, services)
        return _answer(started, understood.routed_from, status="running" if started.retro_id else None)
    return _answer(await run_in_threadpool(answer, command, services), understood.routed_from)


async def _read_body(request: Request) -> ChatBody:
    raw = await read_limited_body(request, MAX_CHAT_BODY_BYTES)
    try:  # strict JSON: nesting beyond Python's limits or a 5,000-digit number is a 400, not a 500
        payload = decode_json(raw)
    except PayloadError as error:
        raise PayloadError("invalid_json", f'{error.message}; send {{"text": …}}') from None
    try:
        return ChatBody.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise PayloadError("invalid_chat_request", f"{field}: {first['msg']}") from None


def _answer(reply: ChatReply, routed_from: str | None, *, status: str | None = None) -> JSONResponse:
    reply = read_as(reply, routed_from)
    body: dict[str, Any] = {"command": reply.command, "markdown": reply.markdown, "routed_from": routed_from}
    if reply.retro_id is not None:
        body["retro_id"] = reply.retro_id
        body["status"] = status or reply.details.get("status")
        body["links"] = reply.details.get("links")
    return JSONResponse(body)
