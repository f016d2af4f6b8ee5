"""Ingestion routes: Segment's /v1/batch and single calls, PostHog's /batch/.

Each needs an `ingest` (or `admin`) key: `Authorization: Bearer <key>`, Segment's Basic `<writeKey>:`, or, without
an Authorization header, Segment's `writeKey` / PostHog's `api_key` in the body, checked once the body is read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from feedbackloop.api.access import Scope, authorize, require_scope
from feedbackloop.api.body import read_limited_body
from feedbackloop.api.state import AppState
from tools.events.ingest import IngestSummary
from tools.events.normalize import FieldError
from tools.events.segment import (
    PayloadError,
    decode_json,
    parse_segment_batch,
    parse_segment_item,
    posthog_to_segment,
)

router = APIRouter(tags=["ingestion"])


class RejectedItem(BaseModel):
    index: int
    messageId: str | None
    reason: str


class TriggeredSurveyItem(BaseModel):
    user_id: str
    survey_id: str
    display_id: str
    show_after: datetime
    event: str


class IngestResponse(BaseModel):
    accepted: int = Field(description="events newly stored")
    duplicates: int = Field(
        description="events whose messageId was already stored (or repeated in the batch)"
    )
    rejected: list[RejectedItem] = Field(description="invalid events, not stored, with the reason")
    surveys: list[TriggeredSurveyItem] | None = Field(
        None,
        description="surveys the events queued for their user (only when every event names the same user); "
        "fetch them from GET /v1/users/{id}/surveys/pending once show_after has passed",
    )


def ingest_response(summary: IngestSummary, user_ids: set[str | None]) -> IngestResponse:
    response = IngestResponse.model_validate(summary.as_response())
    if len(user_ids) == 1 and None not in user_ids:
        response.surveys = [TriggeredSurveyItem.model_validate(s.as_dict()) for s in summary.surveys]
    return response


class ErrorResponse(BaseModel):
    code: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "malformed JSON, wrong shape, oversize item, too many items",
    },
    401: {"model": ErrorResponse, "description": "missing, unknown or revoked key"},
    403: {"model": ErrorResponse, "description": "the key's scope is not ingest (or admin)"},
    413: {"model": ErrorResponse, "description": "body larger than the limit (500 KB by default)"},
    503: {
        "model": ErrorResponse,
        "description": "the database is unavailable or busy (restarting, locked): nothing stored; "
        "send again after Retry-After seconds",
    },
}

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {
                        "batch": {"type": "array", "items": {"type": "object"}, "maxItems": 2500},
                        "sentAt": {"type": "string", "format": "date-time"},
                        "writeKey": {"type": "string"},
                        "context": {"type": "object"},
                    },
                }
            }
        },
    }
}
_ITEM_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}


INGEST = [require_scope(Scope.INGEST, body_key=True)]


async def _authorized_payload(request: Request, max_bytes: int, key_field: str) -> Any:
    """The decoded body, once the ingest check passed with the body's key (`writeKey` or `api_key`) when no
    Authorization header carries one. A keyless body that is not JSON is a 401, not a 400: a caller without a
    key learns nothing about the payload."""
    raw = await read_limited_body(request, max_bytes)
    try:
        payload = decode_json(raw)
    except PayloadError:
        await run_in_threadpool(authorize, request, Scope.INGEST, None)
        raise
    body_key = payload.get(key_field) if isinstance(payload, dict) else None
    await run_in_threadpool(authorize, request, Scope.INGEST, body_key if isinstance(body_key, str) else None)
    return payload


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.feedbackloop
    return state


@router.post(
    "/v1/batch",
    dependencies=INGEST,
    response_model=IngestResponse,
    responses=ERRORS,
    openapi_extra=_BATCH_BODY,
)
async def segment_batch(request: Request) -> IngestResponse:
    """Segment's batch call (what `segment-analytics-python` always uses). Gzip bodies accepted."""
    state = _state(request)
    payload = await _authorized_payload(request, state.settings.max_batch_bytes, "writeKey")
    return await _ingest_batch(state, payload)


@router.post(
    "/batch/", dependencies=INGEST, response_model=IngestResponse, responses=ERRORS, openapi_extra=_BATCH_BODY
)
async def posthog_batch(request: Request) -> IngestResponse:
    """PostHog's batch call (what the `posthog` client sends); `uuid` is the dedupe key."""
    state = _state(request)
    payload = await _authorized_payload(request, state.settings.max_batch_bytes, "api_key")
    return await _ingest_batch(state, posthog_to_segment(payload))


async def _ingest_batch(state: AppState, payload: Any) -> IngestResponse:
    parsed = parse_segment_batch(
        payload,
        received_at=datetime.now(UTC),
        max_items=state.settings.max_batch_items,
        max_item_bytes=state.settings.max_item_bytes,
    )
    summary = await run_in_threadpool(state.ingestor.ingest, parsed.events)
    summary.rejected.extend(parsed.rejected)
    return ingest_response(summary, {event.user_id for event in parsed.events})


def _single_call_route(call_type: str) -> Any:
    async def single_call(request: Request) -> IngestResponse:
        state = _state(request)
        payload = await _authorized_payload(request, state.settings.max_item_bytes, "writeKey")
        if isinstance(payload, dict) and payload.get("type", call_type) != call_type:
            raise PayloadError("invalid_event", f"type: {payload.get('type')!r} sent to /v1/{call_type}")
        try:
            event = parse_segment_item(payload, received_at=datetime.now(UTC), default_type=call_type)
        except FieldError as error:
            raise PayloadError("invalid_event", str(error)) from None
        summary = await run_in_threadpool(state.ingestor.ingest, [event])
        return ingest_response(summary, {event.user_id})

    single_call.__name__ = f"segment_{call_type}"
    single_call.__doc__ = f"Segment's single {call_type} call; answers 400 naming the field when invalid."
    return single_call


for _call in ("track", "identify", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/v1/{_call}",
        _single_call_route(_call),
        methods=["POST"],
        dependencies=INGEST,
        response_model=IngestResponse,
        responses=ERRORS,
        openapi_extra=_ITEM_BODY,
        name=f"segment_{_call}",
    )
