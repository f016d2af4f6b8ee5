"""POST /v1/hooks/deploy: a CI pipeline (or anything) says a deployment finished.

Body `{service, version, environment?, commit?, deployed_at?, url?, immediate?}`. Authenticated either by a
Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">` with FEEDBACKLOOP_DEPLOY_HOOK_SECRET, timestamps within 5 minutes) or by an API key
of scope ingest (`Authorization: Bearer <key>`). A signed request while the secret is unset answers 503 naming the
setting; a request with neither answers 401 — also with FEEDBACKLOOP_AUTH=off, under which a signed route still
checks the key it is given (feedbackloop.api.access).

The deployment is recorded, the escalation check runs, and the deployment retro is scheduled for the end of the
bake window (feedbackloop.deploy_hooks); the answer is that outcome: 201 for a new delivery, 200 with
`duplicate: true` (and the first outcome) for a delivery seen before (same webhook-id, or — without one — the same
service, version, environment and commit). `immediate: true` starts the retro after the answer.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from feedbackloop.api.access import Scope, authorize, signed_route
from feedbackloop.api.body import read_limited_body
from feedbackloop.api.escalation_bodies import ErrorBody
from feedbackloop.api.state import AppState
from feedbackloop.deploy_hooks import (
    DeployBody,
    DeployHookError,
    DeployHooks,
    check_delivery_id,
    parse_deployment,
)
from feedbackloop.settings import Settings
from tools.events.segment import PayloadError, decode_json
from tools.notify.signing import signature
from tools.tickets.registry import TicketSinkConfigError

TOLERANCE_SECONDS = 5 * 60  # Standard Webhooks: reject timestamps further than this from our clock
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

HOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a delivery seen before: nothing was done; the first delivery's outcome"},
    400: {"model": ErrorBody, "description": "malformed JSON, or a field that is missing or wrong (named)"},
    401: {
        "model": ErrorBody,
        "description": "no API key and no signature, or a signature that does not verify",
    },
    403: {"model": ErrorBody, "description": "an API key whose scope is not ingest (or admin)"},
    413: {"model": ErrorBody, "description": "body larger than FEEDBACKLOOP_MAX_BATCH_BYTES"},
    503: {
        "model": ErrorBody,
        "description": "a signed request while FEEDBACKLOOP_DEPLOY_HOOK_SECRET is unset",
    },
}

router = APIRouter(tags=["hooks"])


def deploy_hooks(request: Request) -> DeployHooks:
    """One DeployHooks per app (its retro runner builds the ticket sinks once), on the app's database; a ticket
    sink that cannot be built from the settings is a 503 naming the setting (nothing was recorded)."""
    cached = getattr(request.app.state, "deploy_hooks", None)
    if not isinstance(cached, DeployHooks):
        state: AppState = request.app.state.feedbackloop
        try:
            cached = DeployHooks(state.database, state.settings, ingestor=state.ingestor)
        except TicketSinkConfigError as error:
            raise PayloadError("invalid_configuration", f"{error.setting}: {error}", status=503) from None
        request.app.state.deploy_hooks = cached
    return cached


def hook_answer(
    hooks: DeployHooks, outcome: dict[str, Any], background: BackgroundTasks, *, run_immediate: bool
) -> JSONResponse:
    """201 for a new delivery, 200 for a duplicate; an immediate retro this delivery claimed runs after it."""
    retro = outcome.get("retro") or {}
    run_here = retro.pop(
        "run_here", False
    )  # this delivery claimed the retro (not a worker that polled first)
    if run_immediate and run_here and not outcome["duplicate"]:
        background.add_task(hooks.run_retro, retro["id"])  # a sync function: Starlette runs it in a thread
    return JSONResponse(outcome, status_code=200 if outcome["duplicate"] else 201)


def invalid(error: DeployHookError) -> JSONResponse:
    return JSONResponse(
        {"code": "invalid_deployment", "field": error.field, "message": str(error)}, status_code=400
    )


@router.post(
    "/v1/hooks/deploy",
    dependencies=[signed_route("deploy")],
    status_code=201,
    responses=HOOK_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DeployBody.model_json_schema()}},
        }
    },
)
async def deploy_hook(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Record a finished deployment: a `deployment` event, an escalation check now (changes attributed to the
    deployment) and a deployment retro scheduled after the bake window (`immediate: true`: now)."""
    state: AppState = request.app.state.feedbackloop
    signed = any(name in request.headers for name in SIGNATURE_HEADERS)
    if signed and not _secret(state.settings):
        raise PayloadError(
            "not_configured",
            "this request is signed (webhook-signature) but FEEDBACKLOOP_DEPLOY_HOOK_SECRET is not set: set it "
            "to the sender's whsec_ secret, or send 'Authorization: Bearer <ingest key>' instead",
            status=503,
        )
    if not signed:
        if not request.headers.get(
            "authorization"
        ):  # even with FEEDBACKLOOP_AUTH=off: a hook is never anonymous
            raise PayloadError(
                "unauthorized",
                "sign the request (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) or send "
                "'Authorization: Bearer <key of scope ingest>'",
                status=401,
            )
        await run_in_threadpool(authorize, request, Scope.INGEST)
    body = await read_limited_body(request, state.settings.max_batch_bytes)
    delivery_id: str | None = None
    now = datetime.now(UTC)
    if signed:
        delivery_id = verify_standard_webhook(_secret(state.settings), request.headers, body, now)
    try:
        deployment = parse_deployment(decode_json(body), now=now)
        if delivery_id is not None:
            check_delivery_id(delivery_id, "webhook-id")
        hooks = deploy_hooks(request)
        outcome = await run_in_threadpool(hooks.record, deployment, source="deploy", delivery_id=delivery_id)
    except DeployHookError as error:
        return invalid(error)
    return hook_answer(hooks, outcome, background, run_immediate=True)


def verify_standard_webhook(secret: str, headers: Headers, body: bytes, now: datetime) -> str:
    """The webhook-id of a request whose Standard Webhooks signature verifies, else PayloadError 401."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    presented = headers.get("webhook-signature", "")
    values = (message_id, timestamp, presented)
    missing = [name for name, value in zip(SIGNATURE_HEADERS, values, strict=True) if not value]
    if missing:
        raise _unsigned(
            f"missing {', '.join(missing)}: a signed request carries all of {', '.join(SIGNATURE_HEADERS)}"
        )
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # "²".isdigit() is True
        raise _unsigned("webhook-timestamp must be whole seconds since 1970")
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        raise _unsigned(
            f"webhook-timestamp {timestamp} is more than {TOLERANCE_SECONDS // 60} minutes from the server's clock"
        )
    try:
        expected = signature(secret, message_id, int(timestamp), body).partition(",")[2].encode()
    except ValueError as error:  # the configured secret is not base64
        raise PayloadError(
            "invalid_configuration", f"FEEDBACKLOOP_DEPLOY_HOOK_SECRET: {error}", status=503
        ) from None
    for candidate in presented.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return message_id
    raise _unsigned("webhook-signature does not match the body signed with FEEDBACKLOOP_DEPLOY_HOOK_SECRET")


def _secret(settings: Settings) -> str:
    secret = settings.deploy_hook_secret
    return secret.get_secret_value() if secret is not None else ""


def _unsigned(message: str) -> PayloadError:
    return PayloadError("invalid_signature", message, status=401)
