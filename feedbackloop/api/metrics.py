"""Read routes for metrics: GET /v1/metrics/{category}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.windows import window_from
from tools.metrics.compute import metric_report

router = APIRouter(tags=["metrics"])

Days = Annotated[int, Query(ge=1, le=3660, description="window length in days")]
End = Annotated[str | None, Query(description="window end, ISO 8601 with offset (default now)")]
# No control characters: a metric name is inlined (escaped) into the CREATE TABLE … AS SELECT that materializes
# its units, where SQLite refuses a NUL with an error; PostgreSQL cannot compare text holding one either.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Persona = Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL, description="only this persona")]


@router.get("/v1/metrics/{category}", dependencies=[require_scope(Scope.READ)])
async def get_metric(
    request: Request,
    category: Annotated[
        str,
        Path(
            max_length=255,
            pattern=NO_CONTROL,
            description="time_to_value, report_accuracy, … or a custom name",
        ),
    ],
    days: Days = 30,
    end: End = None,
    persona: Persona = None,
) -> dict[str, Any]:
    """A metric overall and per persona: n, mean, p50, p90, rate (with interval), the previous window, the
    change and its p-value, and a daily series."""
    state = request.app.state.feedbackloop
    window = window_from(days, end)

    def compute() -> dict[str, Any]:
        with state.database.read() as connection:
            report = metric_report(
                connection, category, window, persona=persona,
                renewal_window_days=state.settings.renewal_window_days,
            )  # fmt: skip
        return report.as_dict()

    return await run_in_threadpool(compute)
