"""POST /integrations/github/webhook: GitHub's `deployment_status` webhook as a post-deploy hook.

Set up in the repository's (or organisation's) webhook settings: payload URL `<service>/integrations/github/webhook`,
content type application/json, the secret of FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET, and the "Deployment statuses"
event (docs/hooks.md).

- Every delivery must carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` made with that
  secret (compared in constant time); a missing or wrong one answers 401. With the secret unset the route answers
  503 naming the setting and never acts on an unsigned request.
- `ping` (sent when the webhook is created) answers 200 with GitHub's zen; other events, and deployment statuses
  other than `success`, answer 202 `ignored` with the reason.
- A `success` status records the deployment (feedbackloop.deploy_hooks): service = `deployment.payload.service`,
  else the repository's name; version = `deployment.payload.version`, else `deployment.ref` when that names a
  tag or release branch, else the first 12 characters of the commit (a deployment of the default branch or of a
  bare sha has no better name); environment = `deployment.environment`; commit = `deployment.sha`; url = the
  status's `environment_url`, else its `log_url` / `target_url`; deployed_at = the status's `created_at`.
- The deployment status's `id`, from the signed body, is the replay key (`X-GitHub-Delivery` is not signed: a
  captured body resent under a fresh delivery id would otherwise act again): a second delivery of the same status
  answers 200 with `duplicate: true` and does nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from feedbackloop.api.access import signed_route
from feedbackloop.api.body import read_limited_body
from feedbackloop.api.hooks import HOOK_ERRORS, deploy_hooks, hook_answer, invalid
from feedbackloop.api.state import AppState
from feedbackloop.deploy_hooks import DeployHookError, Deployment, check_delivery_id, parse_deployment
from tools.events.segment import PayloadError, decode_json

SHORT_SHA_CHARS = 12
# Where each deployment field comes from in the payload, for error messages that name GitHub's field.
GITHUB_FIELDS = {
    "service": "repository.name", "version": "deployment.ref", "environment": "deployment.environment",
    "commit": "deployment.sha", "url": "deployment_status.environment_url",
    "deployed_at": "deployment_status.created_at", "body": "body",
}  # fmt: skip

router = APIRouter(tags=["hooks"])

GITHUB_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: answer for status, answer in HOOK_ERRORS.items() if status != 403},
    202: {
        "description": "a ping, another event, or a deployment status other than success: ignored (reason)"
    },
    401: {"description": "X-Hub-Signature-256 missing or not the body's HMAC with the configured secret"},
    503: {"description": "FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET is not set"},
}


@router.post(
    "/integrations/github/webhook",
    dependencies=[signed_route("github")],
    status_code=201,
    responses=GITHUB_ERRORS,
)
async def github_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
    """GitHub webhook deliveries: a successful `deployment_status` records the deployment, runs the escalation
    check and schedules the deployment retro; `ping` answers pong; everything else is ignored (202)."""
    state: AppState = request.app.state.feedbackloop
    secret = state.settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise PayloadError(
            "not_configured",
            "GitHub webhooks are not set up here: set FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET to the webhook's secret",
            status=503,
        )
    body = await read_limited_body(request, state.settings.max_batch_bytes)
    verify_github_signature(secret.get_secret_value(), request.headers.get("x-hub-signature-256"), body)
    event = request.headers.get("x-github-event", "")
    payload = decode_json(body)
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "the webhook body must be a JSON object")
    if event == "ping":
        return JSONResponse({"pong": True, "zen": payload.get("zen"), "hook_id": payload.get("hook_id")})
    if event != "deployment_status":
        return ignored(
            f"event {event or '(none)'!r} is not handled; subscribe this webhook to Deployment statuses"
        )
    status = payload.get("deployment_status")
    state_name = status.get("state") if isinstance(status, dict) else None
    if state_name != "success":
        return ignored(f"deployment_status state is {state_name!r}; only success records a deployment")
    try:
        delivery_id = status_delivery_id(status)
        deployment = github_deployment(payload, now=datetime.now(UTC))
        hooks = deploy_hooks(request)
        outcome = await run_in_threadpool(hooks.record, deployment, source="github", delivery_id=delivery_id)
    except DeployHookError as error:
        return invalid(error)
    return hook_answer(hooks, outcome, background, run_immediate=False)


def status_delivery_id(status: Any) -> str:
    """The replay key, from the signed body: the deployment status's id. X-GitHub-Delivery is not signed, so a
    captured body replayed under a fresh delivery id must still be the same delivery (and a repository and an
    organisation webhook both sending one status record it once)."""
    status_id = status.get("id") if isinstance(status, dict) else None
    if isinstance(status_id, bool) or not isinstance(status_id, int) or status_id <= 0:
        raise DeployHookError("deployment_status.id", "must be the status's positive integer id")
    return check_delivery_id(f"deployment-status-{status_id}", "deployment_status.id")


def verify_github_signature(secret: str, presented: str | None, body: bytes) -> None:
    """PayloadError 401 unless `presented` is `sha256=` + the hex HMAC-SHA256 of the raw body with `secret`."""
    if not presented:
        raise PayloadError(
            "invalid_signature",
            "X-Hub-Signature-256 is missing: give the GitHub webhook the secret of FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET",
            status=401,
        )
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise PayloadError(
            "invalid_signature",
            "X-Hub-Signature-256 does not match the body signed with FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET",
            status=401,
        )


def ignored(reason: str) -> JSONResponse:
    return JSONResponse({"ignored": True, "reason": reason}, status_code=202)


def github_deployment(payload: Mapping[str, Any], *, now: datetime) -> Deployment:
    """The deployment a successful deployment_status payload describes; DeployHookError names GitHub's field."""
    deployment = _object(payload, "deployment")
    status = _object(payload, "deployment_status")
    repository = _object(payload, "repository")
    extra = _deployment_payload(deployment.get("payload"))
    sha = deployment.get("sha")
    fields: dict[str, Any] = {
        "service": extra.get("service") or repository.get("name"),
        "version": extra.get("version")
        or _version(deployment.get("ref"), sha, repository.get("default_branch")),
        "environment": deployment.get("environment") or status.get("environment") or "production",
        "commit": sha,
        "url": status.get("environment_url") or status.get("log_url") or status.get("target_url") or None,
        "deployed_at": status.get("created_at"),
    }
    try:
        return parse_deployment({k: v for k, v in fields.items() if v is not None}, now=now)
    except DeployHookError as error:
        name = GITHUB_FIELDS.get(error.field.split(".")[0], error.field)
        raise DeployHookError(name, error.message) from None


def _version(ref: Any, sha: Any, default_branch: Any) -> Any:
    """The ref when it names something (a tag, a release branch), else the short commit."""
    if isinstance(ref, str) and ref and ref != sha and ref != default_branch:
        return ref
    return sha[:SHORT_SHA_CHARS] if isinstance(sha, str) else ref


def _object(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = payload.get(name)
    if not isinstance(value, dict):
        raise DeployHookError(name, "is missing from the deployment_status payload (or not an object)")
    return value


def _deployment_payload(value: Any) -> dict[str, Any]:
    """`deployment.payload`: an object, or a JSON string of one (both occur); anything else is no extra data."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
