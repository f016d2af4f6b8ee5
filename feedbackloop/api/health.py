"""Liveness that means something: the database answers and its schema is current."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from feedbackloop.api.access import public_route
from store.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[public_route()])
async def healthz(request: Request) -> JSONResponse:
    database = request.app.state.feedbackloop.database

    def probe() -> dict[str, object]:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(database.engine)
        return {
            "database": database.dialect,
            "schema_revision": revision,
            "schema_current": revision == head_revision(),
        }

    try:
        details = await run_in_threadpool(probe)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": database.dialect, "message": str(exc)[:300]}, 503)
    status = "ok" if details["schema_current"] else "error"
    return JSONResponse({"status": status, **details}, 200 if status == "ok" else 503)
