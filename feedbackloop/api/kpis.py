"""Read routes for KPIs and the dashboard: GET /v1/kpis, GET /v1/kpis/personas, GET /dashboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.metrics import Days, End, Persona
from feedbackloop.api.windows import window_from
from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.kpi_dashboard import KPICategory, PersonaComparison
from tools.kpis.comparison import rank_personas
from tools.kpis.compute import compute_kpis

router = APIRouter(tags=["kpis"])
READ = [require_scope(Scope.READ)]

# The page is self-contained: nothing may load or run, whatever ends up in it.
DASHBOARD_CSP = "default-src 'none'; style-src 'unsafe-inline'"


@router.get("/v1/kpis", dependencies=READ)
async def get_kpis(
    request: Request, days: Days = 30, end: End = None, persona: Persona = None
) -> dict[str, Any]:
    """Every KPI of the tracking plan, overall and per persona: `{"value", "n", "reason"}` each."""
    state = request.app.state.feedbackloop
    window = window_from(days, end)

    def compute() -> dict[str, Any]:
        with state.database.read() as connection:
            body = compute_kpis(connection, window, gross_margin=state.settings.gross_margin).as_dict()
        if persona is not None:
            body["personas"] = {k: v for k, v in body["personas"].items() if k == persona}
        return body

    return await run_in_threadpool(compute)


@router.get("/v1/kpis/personas", dependencies=READ)
async def compare_personas(
    request: Request,
    category: Annotated[
        str, Query(pattern="^(business_success|operational_ease|user_success)$", description="KPI category")
    ] = "business_success",
    days: Days = 30,
    end: End = None,
) -> dict[str, Any]:
    """Personas ranked per KPI; `leader` only where best and worst differ significantly (Holm-adjusted)."""
    state = request.app.state.feedbackloop
    window = window_from(days, end)

    def compute() -> dict[str, Any]:
        with state.database.read() as connection:
            snapshot = compute_kpis(connection, window, gross_margin=state.settings.gross_margin)
        chosen = KPICategory(category)
        return PersonaComparison(chosen, window, rank_personas(snapshot, chosen.value)).as_dict()

    return await run_in_threadpool(compute)


@router.get("/dashboard", dependencies=READ, response_class=HTMLResponse)
async def dashboard(
    request: Request, days: Days = 30, end: End = None, persona: Persona = None
) -> HTMLResponse:
    """The KPI dashboard as one self-contained HTML page (no JavaScript, no external resources)."""
    state = request.app.state.feedbackloop
    window = window_from(days, end)
    data = await run_in_threadpool(build_dashboard, state.database, state.settings, window, persona=persona)
    return HTMLResponse(render_dashboard(data), headers={"Content-Security-Policy": DASHBOARD_CSP})
