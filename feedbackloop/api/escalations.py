"""Escalation routes: rules, escalations (list, show, acknowledge, resolve, check) and silences.

Reads need a `read` key; every write (rules, silences, check, triage, acknowledge, resolve) is an operator's
action and needs an `admin` key (see docs/api.md). Each route is
one call of the escalation service, run in the threadpool because the store is synchronous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.escalation_bodies import (
    CHANGES_SCHEMA,
    ERRORS,
    RECORD_ID_PATTERN,
    RULE_ID_PATTERN,
    RULE_SCHEMA,
    AcknowledgeRequest,
    CheckOut,
    CheckRequest,
    EscalationList,
    EscalationOut,
    EscalationRoute,
    ResolveRequest,
    RuleList,
    RuleOut,
    SilenceList,
    SilenceOut,
    SilenceRequest,
    TriageOut,
    parse_moment,
    read_body,
    read_json,
)
from feedbackloop.api.experiment_bodies import body_schema
from feedbackloop.api.state import AppState
from feedbackloop.escalation_triage import run_triage, triage_of
from feedbackloop.worker import escalation_service
from tools.escalation.model import EscalationInputError, EscalationStatus
from tools.escalation.service import EscalationService

Result = TypeVar("Result")


router = APIRouter(tags=["escalations"], responses=ERRORS, route_class=EscalationRoute)
READ = [require_scope(Scope.READ)]
ADMIN = [require_scope(Scope.ADMIN)]

RuleId = Annotated[str, Path(pattern=RULE_ID_PATTERN, description="the rule's id")]
EscalationId = Annotated[str, Path(pattern=RECORD_ID_PATTERN, description="the escalation's id (esc_…)")]
SilenceId = Annotated[str, Path(pattern=RECORD_ID_PATTERN, description="the silence's id (sil_…)")]


def _service(request: Request) -> EscalationService:
    state: AppState = request.app.state.feedbackloop
    return escalation_service(state.database, state.settings)


def _renamed(call: Callable[[], Result], fields: dict[str, str]) -> Result:
    """`call`, with the service's field names in its errors spelled as this route's body spells them."""
    try:
        return call()
    except EscalationInputError as error:
        if error.field not in fields:
            raise
        raise type(error)(fields[error.field], error.message) from None


# ---- rules --------------------------------------------------------------------------------------------------


@router.get("/v1/escalation-rules", dependencies=READ, response_model=RuleList)
async def list_rules(request: Request) -> dict[str, Any]:
    """Every rule in creation order (the five defaults first on a new database), enabled or not."""
    rules = await run_in_threadpool(_service(request).rules)
    return {"rules": [rule.as_dict() for rule in rules]}


@router.post(
    "/v1/escalation-rules", dependencies=ADMIN, status_code=201, response_model=RuleOut,
    openapi_extra=body_schema(RULE_SCHEMA),
)  # fmt: skip
async def create_rule(request: Request, response: Response) -> dict[str, Any]:
    """A rule from its definition; 422 names the first invalid field (an unknown metric names
    `condition.metric`), 409 if the id is taken."""
    definition = await read_json(request)
    rule = await run_in_threadpool(_service(request).add_rule, definition)
    response.headers["Location"] = f"/v1/escalation-rules/{rule.rule_id}"
    return rule.as_dict()


@router.get("/v1/escalation-rules/{rule_id}", dependencies=READ, response_model=RuleOut)
async def get_rule(request: Request, rule_id: RuleId) -> dict[str, Any]:
    """The rule's definition."""
    return (await run_in_threadpool(_service(request).rule, rule_id)).as_dict()


@router.patch(
    "/v1/escalation-rules/{rule_id}", dependencies=ADMIN, response_model=RuleOut,
    openapi_extra=body_schema(CHANGES_SCHEMA),
)  # fmt: skip
async def update_rule(request: Request, rule_id: RuleId) -> dict[str, Any]:
    """Change any fields but the id (`{"enabled": false}` disables the rule); the result is validated as a
    whole. The next check evaluates the changed rule; open escalations of the rule keep their label sets."""
    changes = await read_json(request)
    return (await run_in_threadpool(_service(request).update_rule, rule_id, changes)).as_dict()


@router.delete("/v1/escalation-rules/{rule_id}", dependencies=ADMIN, status_code=204)
async def delete_rule(request: Request, rule_id: RuleId) -> Response:
    """Delete the rule (disable it instead to keep it for later); its escalations stay as they are."""
    await run_in_threadpool(_service(request).delete_rule, rule_id)
    return Response(status_code=204)


# ---- escalations --------------------------------------------------------------------------------------------


@router.get("/v1/escalations", dependencies=READ, response_model=EscalationList)
async def list_escalations(
    request: Request,
    status: Annotated[EscalationStatus | None, Query(description="only escalations in this status")] = None,
) -> dict[str, Any]:
    """Escalations, oldest first, with their evidence and history."""
    value = status.value if status is not None else None
    found = await run_in_threadpool(_service(request).escalations, value)
    return {"escalations": [escalation.as_dict() for escalation in found]}


@router.post(
    "/v1/escalations/check", dependencies=ADMIN, response_model=CheckOut,
    openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
        "schema": CheckRequest.model_json_schema()}}}},
)  # fmt: skip
async def check_escalations(request: Request) -> dict[str, Any]:
    """Evaluate every enabled rule for every persona now (or `at`, to replay history), step each label set's
    state machine, and queue the notifications that are due — what the worker does every few minutes. Returns
    what changed and the escalations active afterwards. An empty body means now and 7 days."""
    body = await read_body(request, CheckRequest, empty_means_defaults=True)
    at = parse_moment(body.at, "at")
    service = _service(request)
    result = await run_in_threadpool(lambda: service.check(at=at, days=body.days))
    return {
        "at": result.at.isoformat(), "evaluated": result.evaluated, "no_data": result.no_data,
        "opened": result.opened, "fired": result.fired, "resolved": result.resolved,
        "notifications": result.notifications, "escalations": [e.as_dict() for e in result.active],
    }  # fmt: skip


@router.get("/v1/escalations/{escalation_id}", dependencies=READ, response_model=EscalationOut)
async def get_escalation(request: Request, escalation_id: EscalationId) -> dict[str, Any]:
    """One escalation with its evidence, related deployments and experiments, history, and the triage of the
    incident it belongs to (null until the escalation agent triaged it)."""
    state: AppState = request.app.state.feedbackloop
    escalation = await run_in_threadpool(_service(request).get, escalation_id)
    triage = await run_in_threadpool(triage_of, state.database, escalation_id)
    return escalation.as_dict() | {"triage": triage}


@router.post("/v1/escalations/{escalation_id}/triage", dependencies=ADMIN, response_model=TriageOut)
async def triage_escalation(request: Request, escalation_id: EscalationId) -> dict[str, Any]:
    """Triage now: group the escalation with related open ones into an incident, name the probable cause (citing
    evidence ids), the owner from the routing table and next steps; the result is stored and returned. 404 for
    an unknown escalation."""
    state: AppState = request.app.state.feedbackloop
    incidents = await run_in_threadpool(run_triage, state.database, state.settings, [escalation_id])
    return {"incidents": incidents}


@router.post(
    "/v1/escalations/{escalation_id}/acknowledge", dependencies=ADMIN, response_model=EscalationOut,
    openapi_extra=body_schema(AcknowledgeRequest.model_json_schema()),
)  # fmt: skip
async def acknowledge_escalation(request: Request, escalation_id: EscalationId) -> dict[str, Any]:
    """Someone is on it: a firing escalation becomes acknowledged and its group is no longer repeated. 409 for
    an escalation that is not firing."""
    body = await read_body(request, AcknowledgeRequest)
    service = _service(request)
    acknowledged = await run_in_threadpool(
        _renamed, lambda: service.acknowledge(escalation_id, body.by), {"acknowledged_by": "by"}
    )
    return acknowledged.as_dict()


@router.post(
    "/v1/escalations/{escalation_id}/resolve", dependencies=ADMIN, response_model=EscalationOut,
    openapi_extra=body_schema(ResolveRequest.model_json_schema()),
)  # fmt: skip
async def resolve_escalation(request: Request, escalation_id: EscalationId) -> dict[str, Any]:
    """Close the escalation by hand. Its label set stays quiet until the condition clears once, so a fix that is
    not yet visible in the numbers does not re-page. 409 if it is already resolved."""
    body = await read_body(request, ResolveRequest)
    service = _service(request)
    resolved = await run_in_threadpool(
        lambda: service.resolve(escalation_id, body.resolved_by, body.resolution_notes)
    )
    return resolved.as_dict()


# ---- silences -----------------------------------------------------------------------------------------------


@router.get("/v1/silences", dependencies=READ, response_model=SilenceList)
async def list_silences(
    request: Request,
    active: Annotated[bool, Query(description="only silences in force now")] = False,
) -> dict[str, Any]:
    """Silences by start time (expired ones too unless `active=true`)."""
    service = _service(request)
    return {"silences": await run_in_threadpool(lambda: service.silences(active_only=active))}


@router.post(
    "/v1/silences", dependencies=ADMIN, status_code=201, response_model=SilenceOut,
    openapi_extra=body_schema(SilenceRequest.model_json_schema()),
)  # fmt: skip
async def create_silence(request: Request) -> dict[str, Any]:
    """Mute notifications of the escalations whose labels match every matcher, from `starts_at` (default now)
    until `ends_at`. Escalations still open and resolve; only their notifications are left out."""
    body = await read_body(request, SilenceRequest)
    starts_at, ends_at = parse_moment(body.starts_at, "starts_at"), parse_moment(body.ends_at, "ends_at")
    assert ends_at is not None
    matchers = [matcher.model_dump() for matcher in body.matchers]
    service = _service(request)
    return await run_in_threadpool(
        lambda: service.add_silence(
            matchers, starts_at=starts_at, ends_at=ends_at, created_by=body.created_by, comment=body.comment
        )
    )


@router.delete("/v1/silences/{silence_id}", dependencies=ADMIN, response_model=SilenceOut)
async def expire_silence(request: Request, silence_id: SilenceId) -> dict[str, Any]:
    """End the silence now (it is kept, expired); returns it."""
    return await run_in_threadpool(_service(request).expire_silence, silence_id)
