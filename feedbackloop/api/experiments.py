"""Experiment routes: definition and lifecycle, sticky assignment (single and bulk), tracking, results.

Reads need a `read` key; definition and lifecycle an `admin` key; assignment, bulk assignment and tracking, which
a product's front-end or back-end calls, an `ingest` key (see docs/api.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.experiment_bodies import (
    CHANGES_SCHEMA,
    DEFINITION_SCHEMA,
    ERRORS,
    AssignRequest,
    BulkAssignRequest,
    StopRequest,
    TrackRequest,
    body_schema,
    read_body,
    read_json,
)
from feedbackloop.api.ingest import IngestResponse, ingest_response
from feedbackloop.api.state import AppState
from tools.experiments.analysis import analyze
from tools.experiments.errors import ExperimentInputError
from tools.experiments.model import KEY_PATTERN
from tools.experiments.service import ExperimentService
from tools.users import User

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], responses=ERRORS)
READ = [require_scope(Scope.READ)]
ADMIN = [require_scope(Scope.ADMIN)]
INGEST = [require_scope(Scope.INGEST)]

Key = Annotated[str, Path(pattern=KEY_PATTERN.pattern, description="the experiment's key")]


def _service(request: Request) -> ExperimentService:
    state: AppState = request.app.state.feedbackloop
    return ExperimentService(state.database)


# ---- reads ------------------------------------------------------------------------------------------------


@router.get("", dependencies=READ)
async def list_experiments(
    request: Request,
    status: Annotated[str | None, Query(description="draft, running, paused or stopped")] = None,
) -> dict[str, Any]:
    """Every experiment in creation order, optionally only those in one status."""
    found = await run_in_threadpool(_service(request).experiments, status)
    return {"experiments": [experiment.as_dict() for experiment in found]}


@router.get("/{key}", dependencies=READ)
async def get_experiment(request: Request, key: Key) -> dict[str, Any]:
    """The definition, status, current phase and decision."""
    return (await run_in_threadpool(_service(request).get, key)).as_dict()


@router.get("/{key}/results", dependencies=READ)
async def experiment_results(request: Request, key: Key) -> dict[str, Any]:
    """Per metric per variant: n, mean, relative effect, CI, p-value (or chance to win), guardrail status; SRM,
    power, and the winner with its reason and `confidence_level`. A draft has no results (409)."""
    service = _service(request)
    return (await run_in_threadpool(analyze, service, key)).as_dict()


# ---- definition and lifecycle -------------------------------------------------------------------------------


@router.post("", dependencies=ADMIN, status_code=201, openapi_extra=body_schema(DEFINITION_SCHEMA))
async def create_experiment(request: Request, response: Response) -> dict[str, Any]:
    """A draft experiment from its definition; 422 names the first invalid field, 409 if the key exists."""
    definition = await read_json(request)
    experiment = await run_in_threadpool(_service(request).create, definition)
    response.headers["Location"] = f"/v1/experiments/{experiment.key}"
    return experiment.as_dict()


@router.patch("/{key}", dependencies=ADMIN, openapi_extra=body_schema(CHANGES_SCHEMA))
async def update_experiment(request: Request, key: Key) -> dict[str, Any]:
    """Change a draft freely; a running or paused experiment only its name, hypothesis, weights and coverage."""
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise ExperimentInputError("body", "must be a JSON object of the fields to change")
    return (await run_in_threadpool(_service(request).update, key, changes)).as_dict()


@router.delete("/{key}", dependencies=ADMIN, status_code=204)
async def delete_experiment(request: Request, key: Key) -> Response:
    """Delete a draft or stopped experiment with its assignments (a running one must stop first: 409)."""
    await run_in_threadpool(_service(request).delete, key)
    return Response(status_code=204)


@router.post("/{key}/start", dependencies=ADMIN)
async def start_experiment(request: Request, key: Key) -> dict[str, Any]:
    """Draft → running: phase 0 begins and users can be assigned."""
    return (await run_in_threadpool(_service(request).start, key)).as_dict()


@router.post("/{key}/pause", dependencies=ADMIN)
async def pause_experiment(request: Request, key: Key) -> dict[str, Any]:
    """Running → paused: known users keep their variant, new users get control and are not recorded."""
    return (await run_in_threadpool(_service(request).pause, key)).as_dict()


@router.post("/{key}/resume", dependencies=ADMIN)
async def resume_experiment(request: Request, key: Key) -> dict[str, Any]:
    """Paused → running."""
    return (await run_in_threadpool(_service(request).resume, key)).as_dict()


@router.post("/{key}/stop", dependencies=ADMIN, openapi_extra=body_schema(StopRequest.model_json_schema()))
async def stop_experiment(request: Request, key: Key) -> dict[str, Any]:
    """Running or paused → stopped, with the decision and notes. An empty body means `inconclusive`."""
    stop = await read_body(request, StopRequest, empty_means_defaults=True)
    service = _service(request)
    return (await run_in_threadpool(service.stop, key, stop.decision, stop.notes)).as_dict()


# ---- assignment and tracking ------------------------------------------------------------------------------


@router.post(
    "/{key}/assign", dependencies=INGEST, openapi_extra=body_schema(AssignRequest.model_json_schema())
)
async def assign_user(request: Request, key: Key) -> dict[str, Any]:
    """The user's sticky variant and its configuration; the first call records the exposure
    (`first_exposure` true). Users outside the experiment get control with `in_experiment` false and a reason."""
    body = await read_body(request, AssignRequest)
    try:
        user = User(body.user_id, persona_segment=body.persona)
    except ValueError as error:
        raise ExperimentInputError("user_id", str(error)) from None
    return (await run_in_threadpool(_service(request).assign, key, user)).as_dict()


@router.post(
    "/{key}/assignments",
    dependencies=INGEST,
    openapi_extra=body_schema(BulkAssignRequest.model_json_schema()),
)
async def assign_users(request: Request, key: Key) -> dict[str, Any]:
    """Sticky assignments for up to 10,000 users in one transaction, in request order (for back-ends)."""
    body = await read_body(request, BulkAssignRequest)
    assignments = await run_in_threadpool(_service(request).assign_many, key, body.user_ids)
    return {"assignments": [assignment.as_dict() for assignment in assignments]}


@router.post(
    "/{key}/track",
    dependencies=INGEST,
    response_model=IngestResponse,
    openapi_extra=body_schema(TrackRequest.model_json_schema()),
)
async def track_event(request: Request, key: Key) -> IngestResponse:
    """A product event of an experiment's user (stored like any event, tagged with the experiment); it counts
    towards the metrics that name it. A repeated `messageId` is a duplicate, stored once."""
    body = await read_body(request, TrackRequest)
    state: AppState = request.app.state.feedbackloop
    service = ExperimentService(state.database)

    def track() -> IngestResponse:
        try:
            summary = service.track(key, body.user_id, body.event, body.properties, timestamp=body.timestamp,
                                    message_id=body.messageId, ingestor=state.ingestor)  # fmt: skip
        except ExperimentInputError as error:
            if error.field != "event_name":
                raise
            raise ExperimentInputError("event", error.message) from None
        return ingest_response(summary, {body.user_id})

    return await run_in_threadpool(track)
