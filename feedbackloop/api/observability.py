"""Operations surface: `GET /metrics` (Prometheus text format) and the request middleware (request ids, the access
log, request counters and latencies).

Two kinds of figures, because the API may run as several processes and the worker is a process of its own:
- Per process, kept by prometheus_client: HTTP requests and their latency by route template, and events the HTTP
  doors ingested. Under `feedbackloop serve --workers N` prometheus_client runs in multiprocess mode
  (PROMETHEUS_MULTIPROC_DIR, which serve sets up), so any worker's /metrics answers for all of them.
- Read from the database at scrape time: outbox backlog, open escalations, the escalation checks' label sets,
  retros, the LLM calls and tokens retros recorded, an estimate of the events stored. Every instance reports the
  same values; aggregate them with max(), not sum().
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, get_args

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedbackloop.api.access import Scope as AccessScope
from feedbackloop.api.access import require_scope
from feedbackloop.logs import request_id_var
from store.database import Database
from store.repositories import operations
from tools.escalation.model import EscalationSeverity
from tools.escalation.state import InstanceState
from tools.events.ingest import EventIngestor, IngestSummary

log = logging.getLogger("feedbackloop.http")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED_ROUTE = "unmatched"  # 404s: one label value, whatever paths scanners try
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "other"
RETRO_STATUSES = ("scheduled", "running", "awaiting_approval", "completed", "failed")

router = APIRouter(tags=["operations"])
# `*_created` series (when each label set first appeared) are noise here, and multiprocess mode has none.
disable_created_metrics()


# ---- per-process instruments -----------------------------------------------------------------------------------


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps values in PROMETHEUS_MULTIPROC_DIR (decided when it was first imported)."""
    return values.ValueClass is not values.MutexValue


class ProcessMetrics:
    """This process's counters. In multiprocess mode they write to files in PROMETHEUS_MULTIPROC_DIR and a scrape
    reads every process's files; otherwise they live in a registry of this app's own."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry: CollectorRegistry | None = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "feedbackloop_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "feedbackloop_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response body, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.ingested = Counter(
            "feedbackloop_ingested_events",
            "Events the HTTP doors stored (outcome=stored) or recognised as already stored (outcome=duplicate).",
            ["outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)


class CountingIngestor(EventIngestor):
    """The ingestor of the HTTP doors, counting what it stores into `feedbackloop_ingested_events_total`."""

    def __init__(self, *args: Any, metrics: ProcessMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def ingest(self, events: Sequence[Any]) -> IngestSummary:
        summary = super().ingest(events)
        self.metrics.ingested.labels("stored").inc(summary.accepted)
        self.metrics.ingested.labels("duplicate").inc(summary.duplicates)
        return summary


# ---- request ids, access log, request metrics ----------------------------------------------------------------


def sane_request_id(value: str | None) -> str | None:
    """The caller's X-Request-ID when it is 1–128 characters of [A-Za-z0-9._-]; None otherwise."""
    return value if value is not None and _SANE_REQUEST_ID.fullmatch(value) else None


class RequestContextMiddleware:
    """Pure ASGI (safe for streaming responses and background tasks): gives each HTTP request an id (the caller's
    X-Request-ID when sane, else a new one) in a context variable and the response header, writes one access-log
    line (method, path without query string, route, status, duration — never headers), and counts the request
    under its route template."""

    def __init__(self, app: ASGIApp, metrics: ProcessMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = sane_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped the app
        answered: float | None = None  # when the body's last byte went out

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = time.perf_counter()

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Starlette runs a response's background tasks (a chat retro, a deploy hook's retro) inside this call,
            # after the body: the latency is until the answer was sent, not until those finish.
            elapsed = (answered if answered is not None else time.perf_counter()) - started
            self._record(scope, status, elapsed)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed_seconds: float) -> None:
        # Any token is a valid HTTP method; a label per invented one would let anyone grow the series without bound.
        method = str(scope.get("method", ""))
        method = method if method in KNOWN_METHODS else "other"
        route = route_template(scope)
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.duration.labels(method, route).observe(elapsed_seconds)
        log.info(
            "%s %s %d %.1f ms",
            method,
            scope.get("path", ""),
            status,
            elapsed_seconds * 1000,
            extra={
                "method": method,
                "path": scope.get("path", ""),
                "route": route,
                "status": status,
                "duration_ms": round(elapsed_seconds * 1000, 3),
            },
        )


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/escalations/{escalation_id}`), never the raw path."""
    route = scope.get("route")  # FastAPI's APIRoute puts itself here when it matches
    if route is not None and isinstance(getattr(route, "path", None), str):
        return str(route.path)
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):  # plain Starlette routes (/docs, /openapi.json) and mounts
        match, _ = candidate.matches(scope)
        if match is not Match.NONE:
            path = getattr(candidate, "path", None)
            return str(path) if path else UNMATCHED_ROUTE
    return UNMATCHED_ROUTE


# ---- figures from the store ------------------------------------------------------------------------------------


class RetroUsageTally:
    """The LLM usage retros recorded, summed by model. It re-reads only the results of retros that changed since
    the last scrape (a result document can be large; ids and timestamps are not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}
        self._usage: dict[str, operations.RetroUsage] = {}

    def totals(self, connection: Any) -> dict[str, tuple[int, int, int]]:
        """Model → (LLM calls, input tokens, output tokens), over every retro stored."""
        with self._lock:
            versions = operations.retro_versions(connection)
            changed = [rid for rid, updated in versions.items() if self._seen.get(rid) != updated]
            for usage in operations.retro_usage(connection, changed):
                self._usage[usage.retro_id] = usage
            for retro_id in set(self._usage) - set(versions):
                del self._usage[retro_id]  # a deleted retro (restored backup): its figures go with it
            self._seen = versions
            totals: dict[str, tuple[int, int, int]] = {}
            for usage in self._usage.values():
                if usage.llm_calls or usage.input_tokens or usage.output_tokens:
                    calls, tokens_in, tokens_out = totals.get(usage.model or "unknown", (0, 0, 0))
                    totals[usage.model or "unknown"] = (
                        calls + usage.llm_calls,
                        tokens_in + usage.input_tokens,
                        tokens_out + usage.output_tokens,
                    )
            return totals


def store_families(database: Database, tally: RetroUsageTally) -> list[Metric]:
    """The database's figures (blocking: call from a thread). A failing database gives `feedbackloop_store_up 0`
    and no other store family, so the per-process figures are still served."""
    started = time.perf_counter()
    up = GaugeMetricFamily(
        "feedbackloop_store_up", "1 when /metrics could read the database, 0 when it failed."
    )
    try:
        with database.read() as connection:
            families = list(_families(connection, tally))
    except SQLAlchemyError as error:
        log.warning("/metrics could not read the database: %s", type(error).__name__)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    seconds = GaugeMetricFamily(
        "feedbackloop_store_scrape_duration_seconds", "Time /metrics took to read the database's figures."
    )
    seconds.add_metric([], time.perf_counter() - started)
    return [up, seconds, *families]


def _families(connection: Any, tally: RetroUsageTally) -> Iterable[Metric]:
    estimate = operations.events_stored_estimate(connection)
    events = GaugeMetricFamily(
        "feedbackloop_events_stored_estimate",
        "Events stored: exact on SQLite (highest event id), PostgreSQL's planner estimate (pg_class.reltuples, "
        "refreshed by autovacuum/ANALYZE). Absent until PostgreSQL has an estimate.",
    )
    if estimate is not None:
        events.add_metric([], estimate)
    yield events

    backlog = GaugeMetricFamily(
        "feedbackloop_outbox_messages",
        "Undelivered outbox messages (notifications, webhooks) by channel and status (pending, failed).",
        labels=["channel", "status"],
    )
    oldest = GaugeMetricFamily(
        "feedbackloop_outbox_oldest_pending_created_timestamp_seconds",
        "Unix time the oldest pending outbox message of a channel was written (time() minus it = its age).",
        labels=["channel"],
    )
    for channel, status, messages, created_at in operations.outbox_backlog(connection):
        backlog.add_metric([channel, status], messages)
        if status == "pending" and created_at is not None:
            oldest.add_metric([channel], created_at.timestamp())
    yield backlog
    yield oldest

    open_escalations = GaugeMetricFamily(
        "feedbackloop_escalations_open",
        "Escalations not resolved, by status (pending, firing, acknowledged) and severity.",
        labels=["status", "severity"],
    )
    counts = {(status, level): n for status, level, n in operations.open_escalations(connection)}
    for status in operations.OPEN_ESCALATION_STATUSES:
        for severity in EscalationSeverity:
            counts.setdefault((status, severity.value), 0)
    for (status, level), n in sorted(counts.items()):
        open_escalations.add_metric([status, level], n)
    yield open_escalations

    yield from _escalation_check_families(connection)

    retros = GaugeMetricFamily("feedbackloop_retros", "Retros by status.", labels=["status"])
    by_status = dict.fromkeys(RETRO_STATUSES, 0) | operations.retros_by_status(connection)
    for status, n in sorted(by_status.items()):
        retros.add_metric([status], n)
    yield retros

    calls = CounterMetricFamily(
        "feedbackloop_llm_calls",
        "LLM requests the agents recorded (answered or not), by agent and model.",
        labels=["agent", "model"],
    )
    tokens = CounterMetricFamily(
        "feedbackloop_llm_tokens",
        "LLM tokens the agents recorded, by agent, model and direction (input = prompt, output = completion).",
        labels=["agent", "model", "direction"],
    )
    for model, (n_calls, tokens_in, tokens_out) in sorted(tally.totals(connection).items()):
        calls.add_metric(["retro", model], n_calls)
        tokens.add_metric(["retro", model, "input"], tokens_in)
        tokens.add_metric(["retro", model, "output"], tokens_out)
    yield calls
    yield tokens


def _escalation_check_families(connection: Any) -> Iterable[Metric]:
    label_sets = GaugeMetricFamily(
        "feedbackloop_escalation_label_sets",
        "Label sets (rule, persona, metric) of the escalation state machine, by state after their last check.",
        labels=["state"],
    )
    rows = operations.escalation_label_sets(connection)
    by_state = dict.fromkeys(get_args(InstanceState), 0) | {state: n for state, n, _ in rows}
    for state, n in sorted(by_state.items()):
        label_sets.add_metric([state], n)
    yield label_sets
    moments = [latest for _, _, latest in rows if latest is not None]
    last_check = GaugeMetricFamily(
        "feedbackloop_escalation_last_check_timestamp_seconds",
        "The moment (Unix time) the latest escalation check evaluated; a replayed past check shows its past moment.",
    )
    evaluated = GaugeMetricFamily(
        "feedbackloop_escalation_last_check_label_sets",
        "Label sets the latest escalation check evaluated.",
    )
    if moments:
        latest = max(moments)
        last_check.add_metric([], latest.timestamp())
        evaluated.add_metric([], operations.label_sets_evaluated_at(connection, latest))
    yield last_check
    yield evaluated


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


# ---- the route and the wiring -----------------------------------------------------------------------------------


@router.get(
    "/metrics",
    dependencies=[require_scope(AccessScope.READ)],
    response_class=Response,
    summary="Prometheus metrics (text format 0.0.4)",
)
async def metrics(request: Request) -> Response:
    process: ProcessMetrics = request.app.state.feedbackloop_metrics
    tally: RetroUsageTally = request.app.state.feedbackloop_retro_usage
    database = request.app.state.feedbackloop.database
    families = await run_in_threadpool(store_families, database, tally)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    body = process.exposition() + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE)


def install_observability(app: FastAPI, metrics: ProcessMetrics) -> None:
    """The request middleware (outermost, so its figures include every other middleware) and /metrics."""
    app.state.feedbackloop_metrics = metrics
    app.state.feedbackloop_retro_usage = RetroUsageTally()
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(router)
