"""The FastAPI application factory (uvicorn runs `feedbackloop.api.app:create_app` with factory=True)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from feedbackloop.api import (
    escalations,
    experiments,
    github,
    health,
    hooks,
    ingest,
    kpis,
    metrics,
    retros,
    surveys,
)
from feedbackloop.api.access import install_access
from feedbackloop.api.chat import router as chat_router
from feedbackloop.api.escalation_bodies import install_escalation_errors
from feedbackloop.api.experiment_bodies import install_experiment_errors
from feedbackloop.api.observability import CountingIngestor, ProcessMetrics, install_observability
from feedbackloop.api.slack import router as slack_router
from feedbackloop.api.state import AppState
from feedbackloop.api.survey_bodies import install_survey_errors
from feedbackloop.settings import Settings, get_settings
from feedbackloop.worker import escalation_service
from store.database import Database
from store.engine import database_unavailable
from tools.events.segment import PayloadError
from tools.personas import load_registry
from tools.surveys.service import SurveyService
from tools.tickets.registry import TicketSinkConfigError

log = logging.getLogger("feedbackloop")
# What a 503 for a database that is away or busy asks clients to wait before retrying (Segment's and PostHog's
# clients honour Retry-After; the request changed nothing, and every write door is idempotent).
DATABASE_RETRY_AFTER_SECONDS = 1


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = database or Database(settings.database_url)
    personas = load_registry(settings.personas_file)
    app = FastAPI(
        title="feedbackloop",
        version="0.1.0",
        description="Event ingestion (Segment and PostHog wire formats) and the feedback-loop service API.",
    )
    process_metrics = ProcessMetrics()
    app.state.feedbackloop = AppState(
        settings,
        database,
        CountingIngestor(
            database, personas, survey_recontact_days=settings.survey_recontact_days, metrics=process_metrics
        ),
    )
    # First start on a database: the product's default surveys (editable afterwards like any other).
    SurveyService(database, global_recontact_days=settings.survey_recontact_days).ensure_defaults()
    escalation_service(database, settings).ensure_default_rules()  # and the five default escalation rules
    install_access(app, settings)  # API keys' 401/403, CORS, the warning when auth is off

    @app.exception_handler(PayloadError)
    async def _payload_error(_request: Request, error: PayloadError) -> JSONResponse:
        return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status)

    install_experiment_errors(app)
    install_survey_errors(app)
    install_escalation_errors(app)

    @app.exception_handler(TicketSinkConfigError)
    async def _sink_configuration(_request: Request, error: TicketSinkConfigError) -> JSONResponse:
        # A door that builds the ticket sinks (retros, chat) cannot work until the setting is fixed; nothing ran.
        body = {
            "code": "invalid_configuration",
            "field": error.setting,
            "message": f"{error.setting}: {error}",
        }
        return JSONResponse(body, status_code=503)

    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in first["loc"])
        return JSONResponse(
            {"code": "invalid_request", "message": f"{field}: {first['msg']}"}, status_code=400
        )

    _document_validation_errors(app)

    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(metrics.router)
    app.include_router(kpis.router)
    app.include_router(experiments.router)
    app.include_router(surveys.router)
    app.include_router(escalations.router)
    app.include_router(retros.router)
    app.include_router(chat_router)
    app.include_router(slack_router)
    app.include_router(hooks.router)
    app.include_router(github.router)
    install_observability(app, process_metrics)  # last: request ids and figures cover every other middleware
    return app


async def _database_error(_request: Request, error: Exception) -> JSONResponse:
    """A database that is away or busy (restarting, locked past the busy timeout) is a 503 with Retry-After, so
    clients retry; any other database error stays a 500."""
    if not database_unavailable(error):
        raise error
    log.warning(
        "database unavailable, answered 503: %s", type(getattr(error, "orig", None) or error).__name__
    )
    body = {
        "code": "database_unavailable",
        "message": "the database is unavailable or busy (restarting, or locked by another writer); "
        f"retry in {DATABASE_RETRY_AFTER_SECONDS} s",
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


_VALIDATION_SCHEMA_REF = "#/components/schemas/HTTPValidationError"


def _document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 `HTTPValidationError` on every route with parameters; this app answers a request
    that fails them with 400 `{code: invalid_request, message}` (the handler above), so the OpenAPI says that."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                declared = responses.get("422", {}).get("content", {}).get("application/json", {})
                if declared.get("schema", {}).get("$ref") != _VALIDATION_SCHEMA_REF:
                    continue  # a route's own 422 (experiments, surveys, escalations) stays
                del responses["422"]
                responses.setdefault("400", {"description": "a parameter is missing or invalid (named)"})
                responses["400"].setdefault("content", {"application/json": {"schema": _ERROR_SCHEMA}})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
