"""Retro routes: start a sprint or deployment retro, follow it, approve its backlog items, read its report, list
recent retros.

POST /v1/retros validates and records the retro before it answers — bad input is a 422 naming the field and
writes nothing — then answers 202 and runs the graph in the threadpool after the response (a background task),
so the event loop never waits for it; clients poll GET /v1/retros/{id} until `status` is no longer `running`.
A run that dies with the process stays `running` (or `failed`) and continues with `feedbackloop retro resume`.

Reads (status, list, reports) need a `read` key; starting and approving a retro an `admin` key. Retro errors map
once, in this router's route class (input 422, not now 409, unknown 404), with the field named, the same answers
as the other domains.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agents.retro.runner import RetroRunner
from agents.retro.state import RetroRequest
from feedbackloop.api import domain_doors
from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.escalation_bodies import ERRORS, NO_NUL, ErrorBody
from feedbackloop.api.experiment_bodies import body_schema
from feedbackloop.api.state import AppState
from feedbackloop.retro_agent import RetroInputError, RetroNotFoundError, RetroStateError, retro_runner
from feedbackloop.worker import EARLIEST_MOMENT, LATEST_MOMENT
from store.repositories.retros import recent_retros
from tools.retro.report import render_html, render_markdown
from tools.tickets.registry import TicketSinkConfigError

log = logging.getLogger("feedbackloop.retros")

RETRO_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_ITEMS = 200


# ---- bodies -------------------------------------------------------------------------------------------------


class RetroBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["sprint", "deployment"]
    start: str | None = Field(None, max_length=64, description="sprint's first day, ISO 8601 (naive = UTC)")
    end: str | None = Field(
        None, max_length=64, description="sprint's last day, included (ISO 8601; a time of day = exact end)"
    )
    sprint_id: str | None = Field(None, max_length=100, pattern=NO_NUL)
    version: str | None = Field(None, max_length=100, pattern=NO_NUL, description="the deployed version")
    bake_hours: int | None = Field(
        None, ge=1, le=24 * 366, description="hours after the deployment compared with the hours before it "
        "(default FEEDBACKLOOP_RETRO_BAKE_HOURS)",
    )  # fmt: skip
    approve: Literal["auto", "ask"] = Field(
        "auto", description="auto files the proposed tickets; ask waits for POST /v1/retros/{id}/approve"
    )


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Any = Field(
        description='"all", "none", or a list of the proposed backlog item ids to file (["B1", "B3"])',
        json_schema_extra={
            "oneOf": [
                {"enum": ["all", "none"]},
                {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ITEMS},
            ]
        },
    )


class RetroLinks(BaseModel):
    self: str
    approve: str
    report_markdown: str
    report_html: str


class RetroAccepted(BaseModel):
    retro_id: str
    status: Literal["running"]
    links: RetroLinks


class RetroOut(BaseModel):
    """The retro's result document (what `feedbackloop retro show --format json` prints). Until the run stops
    only retro_id, kind, status and error are there."""

    model_config = ConfigDict(extra="allow")
    retro_id: str
    kind: str | None
    status: Literal["scheduled", "running", "awaiting_approval", "completed", "failed"]
    run_after: str | None = Field(None, description="when a scheduled retro (a deployment's) starts")
    window: dict[str, Any] | None = None
    insights: list[dict[str, Any]] | None = None
    backlog_items: list[dict[str, Any]] | None = None
    warnings: list[str] | None = None
    error: str | None = None


class RetroSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    sprint_id: str | None
    version: str | None
    status: str
    window_start: str
    window_end: str
    created_at: str
    updated_at: str
    links: RetroLinks


class RetroList(BaseModel):
    retros: list[RetroSummary]


ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: answer for status, answer in ERRORS.items() if status in (400, 401, 413, 422)},
    404: {"model": ErrorBody, "description": "no retro has this id"},
    409: {
        "model": ErrorBody,
        "description": "not now: the retro is not awaiting approval, or has no report yet",
    },
}


# ---- errors: mapped here, so the app needs only the include line --------------------------------------------


class RetroRoute(domain_doors.parameter_route(RetroInputError)):  # type: ignore[misc]
    """Retro errors as answers: input 422 `invalid_retro_request`, state 409 `retro_state_conflict`, unknown 404
    `retro_not_found`; a ticket sink that cannot be built from the settings is a 503 naming the setting."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RetroNotFoundError as error:
                return JSONResponse({"code": "retro_not_found", "message": str(error)}, status_code=404)
            except RetroInputError as error:
                state = isinstance(error, RetroStateError)
                return JSONResponse(
                    {"code": "retro_state_conflict" if state else "invalid_retro_request", "field": error.field,
                     "message": str(error)}, status_code=409 if state else 422,
                )  # fmt: skip
            except TicketSinkConfigError as error:
                return JSONResponse(
                    {
                        "code": "invalid_configuration",
                        "field": error.setting,
                        "message": f"{error.setting}: {error}",
                    },
                    status_code=503,  # the service is not usable until the setting is fixed; nothing was run
                )

        return route


router = APIRouter(tags=["retros"], responses=ROUTE_ERRORS, route_class=RetroRoute)
READ = [require_scope(Scope.READ)]
ADMIN = [require_scope(Scope.ADMIN)]
RetroId = Annotated[str, Path(pattern=RETRO_ID_PATTERN, description="the retro's id (retro-…)")]


def _runner(request: Request) -> RetroRunner:
    """One runner per app (its ticket sinks are built once from the settings), on the app's database URL."""
    cached: RetroRunner | None = getattr(request.app.state, "retro_runner", None)
    if cached is None:
        state: AppState = request.app.state.feedbackloop
        cached = retro_runner(database=state.database, settings=state.settings)
        request.app.state.retro_runner = cached
    return cached


def _links(retro_id: str) -> dict[str, str]:
    base = f"/v1/retros/{retro_id}"
    return {"self": base, "approve": f"{base}/approve", "report_markdown": f"{base}/report.md",
            "report_html": f"{base}/report.html"}  # fmt: skip


def _check_moment(value: str | None, field: str) -> None:
    """ISO 8601 (naive = UTC) within the years the store handles; the runner reads the text itself."""
    if value is None:
        return
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RetroInputError(
            field, f"{value[:64]!r} is not an ISO 8601 date or date-time, e.g. 2026-05-01"
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise RetroInputError(
            field, f"must be from {EARLIEST_MOMENT:%Y-%m-%d} to before {LATEST_MOMENT:%Y-%m-%d}"
        )


def _run_in_background(runner: RetroRunner, retro_id: str) -> None:
    """The graph run after the 202. The runner records a failure (status failed, the error) before it raises;
    here it is only logged, since nobody is waiting for the answer."""
    try:
        runner.run(retro_id)
    except Exception:
        log.exception("retro %s failed; `feedbackloop retro resume %s` continues it", retro_id, retro_id)


# ---- routes -------------------------------------------------------------------------------------------------


@router.post(
    "/v1/retros", dependencies=ADMIN, status_code=202, response_model=RetroAccepted,
    openapi_extra=body_schema(RetroBody.model_json_schema()),
)  # fmt: skip
async def start_retro(request: Request, response: Response, background: BackgroundTasks) -> dict[str, Any]:
    """Start a sprint retro (`start`, `end`) or a deployment retro (`version`, `bake_hours`). The request is
    validated and recorded first (422 names the field; nothing is stored), then the retro runs in the
    background: poll the `self` link until `status` is `completed`, `awaiting_approval` (with `approve: ask`) or
    `failed`."""
    body = await domain_doors.read_model(request, RetroBody, RetroInputError)
    _check_moment(body.start, "start")
    _check_moment(body.end, "end")
    state: AppState = request.app.state.feedbackloop
    bake_hours = body.bake_hours if body.bake_hours is not None else state.settings.retro_bake_hours
    retro_request = RetroRequest(
        kind=body.kind, start=body.start, end=body.end, sprint_id=body.sprint_id, version=body.version,
        bake_hours=bake_hours, approve=body.approve,
    )  # fmt: skip
    runner = _runner(request)
    retro_id = await run_in_threadpool(runner.start, retro_request)
    background.add_task(
        _run_in_background, runner, retro_id
    )  # a sync function: Starlette runs it in a thread
    response.headers["Location"] = f"/v1/retros/{retro_id}"
    return {"retro_id": retro_id, "status": "running", "links": _links(retro_id)}


@router.get("/v1/retros", dependencies=READ, response_model=RetroList)
async def list_retros(
    request: Request, limit: Annotated[int, Query(ge=1, le=500, description="how many, newest first")] = 20
) -> dict[str, Any]:
    """Recent retros, newest first, without their results (follow `links.self` for one)."""
    state: AppState = request.app.state.feedbackloop

    def read() -> list[dict[str, Any]]:
        with state.database.read() as connection:
            return [dict(row) for row in recent_retros(connection, limit)]

    rows = await run_in_threadpool(read)
    return {"retros": [{**_iso_values(row), "links": _links(row["id"])} for row in rows]}


@router.get("/v1/retros/{retro_id}", dependencies=READ, response_model=RetroOut)
async def get_retro(request: Request, retro_id: RetroId) -> dict[str, Any]:
    """The retro's status and, once the run stops, its result: signals, insights, backlog items and tickets."""
    return await run_in_threadpool(_runner(request).result, retro_id)


@router.post(
    "/v1/retros/{retro_id}/approve", dependencies=ADMIN, response_model=RetroOut,
    openapi_extra=body_schema(ApproveBody.model_json_schema()),
)  # fmt: skip
async def approve_retro(request: Request, retro_id: RetroId) -> dict[str, Any]:
    """Answer a retro awaiting approval: file `items` ("all", "none" or a list of proposed ids) and finish the
    run; returns the completed result. 409 when the retro is not awaiting approval; 422 names an id that was not
    proposed."""
    body = await domain_doors.read_model(request, ApproveBody, RetroInputError)
    runner = _runner(request)

    def approve() -> dict[str, Any]:
        current = runner.result(retro_id)
        if current["status"] != "awaiting_approval":
            raise RetroStateError(
                "retro_id", f"retro {retro_id} is {current['status']}, not awaiting approval"
            )
        return runner.approve(retro_id, approval_answer(body.items, current))

    return await run_in_threadpool(approve)


@router.get(
    "/v1/retros/{retro_id}/report.md",
    dependencies=READ,
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}, "description": "the markdown report"}},
)
async def markdown_report(request: Request, retro_id: RetroId) -> Response:
    """The retro's report as markdown (409 until the run has a result)."""
    result = await _reportable(request, retro_id)
    return Response(render_markdown(result), media_type="text/markdown; charset=utf-8")


@router.get(
    "/v1/retros/{retro_id}/report.html",
    dependencies=READ,
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "a self-contained HTML page"}},
)
async def html_report(request: Request, retro_id: RetroId) -> Response:
    """The retro's report as one self-contained HTML page (409 until the run has a result)."""
    result = await _reportable(request, retro_id)
    return Response(render_html(result), media_type="text/html; charset=utf-8")


# ---- helpers ------------------------------------------------------------------------------------------------


async def _reportable(request: Request, retro_id: str) -> dict[str, Any]:
    result = await run_in_threadpool(_runner(request).result, retro_id)
    if "insights" not in result:  # running, or failed before any result
        status = result["status"]
        why = "failed before it had a result" if status == "failed" else f"is {status} and has no report yet"
        raise RetroStateError("retro_id", f"retro {retro_id} {why}")
    return result


def approval_answer(items: Any, current: dict[str, Any]) -> str | list[str]:
    """The approval body's `items` checked against what the retro proposed (ids of non-duplicate items)."""
    if items in ("all", "none"):
        return str(items)
    if not isinstance(items, list):
        raise RetroInputError("items", 'must be "all", "none" or a list of backlog item ids such as ["B1"]')
    if len(items) > MAX_ITEMS:
        raise RetroInputError("items", f"at most {MAX_ITEMS} ids")
    proposed = [item["id"] for item in current.get("backlog_items") or [] if not item.get("duplicate_of")]
    for index, item_id in enumerate(items):
        if not isinstance(item_id, str) or item_id not in proposed:
            raise RetroInputError(
                f"items[{index}]",
                f"{item_id!r} is not a proposed item; proposed: {', '.join(proposed) or '(none)'}",
            )
    return list(dict.fromkeys(items))


def _iso_values(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}
