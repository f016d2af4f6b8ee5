"""Request bodies of the experiment routes, how they are read, and how experiment errors become HTTP answers.

Bodies are read like ingestion bodies (size-limited, gzip allowed, strict JSON: NaN is a 400), then validated by a
pydantic model; a body of the wrong shape is a 422 naming the field, the same answer the service gives for a bad
definition. Experiment errors map once, here: input 422, state conflict 409, unknown key 404.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedbackloop.api.body import read_limited_body
from tools.events.normalize import FieldError
from tools.events.segment import check_json_values, decode_json
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError, ExperimentStateError
from tools.experiments.service import MAX_BULK_USERS

# 10,000 ids of up to 255 characters fit; anything larger is refused before it is parsed.
MAX_EXPERIMENT_BODY_BYTES = 4 * 1024 * 1024

Body = TypeVar("Body", bound=BaseModel)


class StopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: str = Field(
        "inconclusive", description="`ship:<variant name>`, `keep_control` or `inconclusive`"
    )
    notes: str = Field("", description="why (at most 5000 characters)")


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=255)
    persona: str | None = Field(
        None, min_length=1, max_length=64, description="the user's persona, if targeting needs it and "
        "it is not stored yet (an identify call's `persona` trait sets it otherwise)",
    )  # fmt: skip


class BulkAssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[str] = Field(
        description=f"up to {MAX_BULK_USERS:,} user ids", json_schema_extra={"maxItems": MAX_BULK_USERS}
    )


class TrackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=255)
    event: str = Field(min_length=1, description="event name, e.g. onboarding_completed")
    properties: dict[str, Any] | None = None
    timestamp: str | None = Field(None, description="ISO 8601 with offset (default now)")
    messageId: str | None = Field(None, description="dedupe key; a retry with the same id is stored once")


class ErrorBody(BaseModel):
    code: str
    message: str = Field(description="starts with the offending field, e.g. `variants: needs at least 2 …`")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "body is not valid JSON"},
    401: {"model": ErrorBody, "description": "missing or invalid write key (when write keys are configured)"},
    404: {"model": ErrorBody, "description": "no experiment has this key"},
    409: {"model": ErrorBody, "description": "the experiment's status forbids this (start twice, assign on a draft)"},
    413: {"model": ErrorBody, "description": "body larger than 4 MiB"},
    422: {"model": ErrorBody, "description": "invalid input; the message names the field"},
}  # fmt: skip

DEFINITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "variants", "primary_metrics"],
    "properties": {
        "key": {"type": "string", "description": "default: the name as a slug"},
        "name": {"type": "string"},
        "type": {"enum": ["onboarding", "pricing", "report_template", "feature", "other"]},
        "mode": {"enum": ["ab", "shadow", "multivariate"]},
        "hypothesis": {"type": "string"},
        "variants": {
            "type": "array", "minItems": 2, "description": "control first; weights sum to 1",
            "items": {"type": "object", "required": ["name", "weight"], "properties": {
                "name": {"type": "string"}, "weight": {"type": "number"}, "configuration": {"type": "object"}}},
        },
        "primary_metrics": {"type": "array", "items": {"type": ["string", "object"]},
                            "description": "names (completion_rate, time_to_value, …) or definitions"},
        "secondary_metrics": {"type": "array", "items": {"type": ["string", "object"]}},
        "guardrails": {"type": "array", "items": {"type": "object", "properties": {
            "metric": {"type": ["string", "object"]}, "margin": {"type": "number"}}}},
        "coverage": {"type": "number"}, "personas": {"type": "array", "items": {"type": "string"}},
        "duration_days": {"type": "integer"}, "seed": {"type": "string"},
        "factors": {"type": "object", "description": "multivariate: factor → levels"},
        "engine": {"enum": ["frequentist", "bayesian"]}, "correction": {"enum": ["holm", "benjamini-hochberg", "none"]},
        "alpha": {"type": "number"}, "cuped": {"type": "boolean"}, "min_units_per_variant": {"type": "integer"},
        "minimum_detectable_effect": {"type": "number"},
    },
    "example": {
        "key": "guided-onboarding", "name": "Guided onboarding", "type": "onboarding",
        "variants": [{"name": "standard", "weight": 0.5, "configuration": {"flow": "standard"}},
                     {"name": "guided", "weight": 0.5, "configuration": {"flow": "guided"}}],
        "primary_metrics": ["onboarding_completion"], "guardrails": [{"metric": "error_rate", "margin": 0.05}],
    },
}  # fmt: skip
CHANGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "any definition field on a draft; only name, hypothesis, weights and coverage while running "
    "or paused (weights or coverage start a new phase)",
    "example": {"weights": [0.3, 0.7]},
}


def body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body we read ourselves."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def read_json(request: Request) -> Any:
    return storable(decode_json(await read_limited_body(request, MAX_EXPERIMENT_BODY_BYTES)))


def storable(payload: Any) -> Any:
    """Refuse what a database cannot store (NUL characters, lone surrogates, |x| > 1e15, deep nesting) before
    the service sees it: PostgreSQL rejects NUL in text, and a refusal must name the field, not be a 500."""
    try:
        check_json_values(payload, "body")
    except FieldError as error:
        raise ExperimentInputError(error.field.removeprefix("body."), error.message) from None
    return payload


async def read_body(request: Request, model: type[Body], *, empty_means_defaults: bool = False) -> Body:
    """The body validated by `model`, or ExperimentInputError naming the first bad field (HTTP 422)."""
    raw = await read_limited_body(request, MAX_EXPERIMENT_BODY_BYTES)
    payload = {} if empty_means_defaults and not raw.strip() else storable(decode_json(raw))
    try:
        return model.model_validate(payload, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        raise ExperimentInputError(field_path(first["loc"]), first["msg"]) from None


def field_path(location: tuple[int | str, ...]) -> str:
    """("user_ids", 3) → "user_ids[3]"; the body itself → "body"."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def install_experiment_errors(app: FastAPI) -> None:
    @app.exception_handler(ExperimentNotFoundError)
    async def _not_found(_request: Request, error: ExperimentNotFoundError) -> JSONResponse:
        return JSONResponse({"code": "experiment_not_found", "message": str(error)}, status_code=404)

    @app.exception_handler(ExperimentInputError)
    async def _invalid(_request: Request, error: ExperimentInputError) -> JSONResponse:
        if isinstance(error, ExperimentStateError):
            return JSONResponse({"code": "experiment_state_conflict", "message": str(error)}, status_code=409)
        return JSONResponse({"code": "invalid_experiment_request", "message": str(error)}, status_code=422)
