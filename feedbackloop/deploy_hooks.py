"""Post-deploy hooks: what every deploy door (POST /v1/hooks/deploy, the GitHub deployment_status webhook,
`feedbackloop hook deploy`) does with a finished deployment.

1. Validate it (`parse_deployment`: service and version required, environment default production, deployed_at
   ISO 8601 with an offset, default now, not in the future beyond a small clock skew).
2. Claim its delivery in hook_deliveries (the sender's id — X-GitHub-Delivery, Standard Webhooks webhook-id — or
   a key derived from service, version, environment and commit). A delivery seen before is a no-op that answers
   with the first one's outcome.
3. Store the canonical `deployment` event through the EventIngestor (anonymousId "system", as the tracking plan
   has it for system events; messageId derived from the delivery, so a retry stores nothing twice).
4. Run the escalation check now, as the worker runs it (under its lock), so a regression the deployment already
   caused is attributed to it; when another process holds the lock the outcome says the check is already running.
5. Schedule the deployment retro for the end of the bake window (FEEDBACKLOOP_RETRO_BAKE_HOURS after deployed_at);
   with `immediate` it is due at once over the part of the bake window that has passed (whole hours, at least
   one). The worker runs due retros; the HTTP door and the CLI start an immediate one themselves.

Every step is idempotent, so a claim left behind by a process that died mid-way is taken over by a retry after
STALE_CLAIM, and a step that fails releases the claim before the error goes back to the sender.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.retro.runner import RetroRunner
from agents.retro.state import RetroRequest
from feedbackloop.retro_agent import retro_runner
from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from store.repositories import hook_deliveries
from store.repositories import retros as retro_sql
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.retro.window import MAX_LABEL_CHARS as MAX_VERSION_CHARS

log = logging.getLogger("feedbackloop.deploy_hooks")

MAX_LABEL_CHARS = 128  # service, environment, commit
MAX_URL_CHARS = 2048
MAX_DELIVERY_ID_CHARS = hook_deliveries.MAX_DELIVERY_ID_CHARS
CLOCK_SKEW = timedelta(minutes=5)  # a deployed_at this far ahead of our clock is still accepted
STALE_CLAIM = timedelta(minutes=10)  # a delivery claimed this long ago without an outcome was abandoned
EARLIEST_DEPLOYMENT = datetime(1970, 1, 1, tzinfo=UTC)
SYSTEM_ANONYMOUS_ID = "system"  # TRACKING_PLAN.md: events without a user
DEFAULT_ENVIRONMENT = "production"
CHECK_ALREADY_RUNNING = (
    "check already running: another process holds the escalation check lock; that check or the worker's next "
    "one attributes changes to this deployment"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeployHookError(ValueError):
    """A deploy notification that cannot be acted on; `field` names the input to fix (HTTP 400, CLI exit 2)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DeployBody(BaseModel):
    """The body of POST /v1/hooks/deploy (and what the CLI sends): one finished deployment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    service: str = Field(min_length=1, max_length=MAX_LABEL_CHARS, description="the deployed service")
    version: str = Field(min_length=1, max_length=MAX_VERSION_CHARS, description="the deployed version")
    environment: str = Field(DEFAULT_ENVIRONMENT, min_length=1, max_length=MAX_LABEL_CHARS)
    commit: str | None = Field(None, max_length=MAX_LABEL_CHARS, description="the deployed commit (sha)")
    deployed_at: str | None = Field(
        None, max_length=64, description="when it finished, ISO 8601 with an offset (default now)"
    )
    url: str | None = Field(None, max_length=MAX_URL_CHARS, description="where it runs, or its log")
    immediate: bool = Field(
        False, description="run the deployment retro now instead of after the bake window"
    )


@dataclass(frozen=True)
class Deployment:
    service: str
    version: str
    environment: str
    deployed_at: datetime
    commit: str | None = None
    url: str | None = None
    immediate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "version": self.version, "environment": self.environment,
            "commit": self.commit, "url": self.url, "deployed_at": self.deployed_at.isoformat(),
        }  # fmt: skip


def parse_deployment(payload: Any, *, now: datetime) -> Deployment:
    """A deployment from a JSON body (or the CLI's options); DeployHookError names the first bad field."""
    if not isinstance(payload, Mapping):
        raise DeployHookError("body", "must be a JSON object with service and version")
    try:
        body = DeployBody.model_validate(dict(payload), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise DeployHookError(field, first["msg"]) from None
    for name in ("service", "version", "environment", "commit", "url"):
        value = getattr(body, name)
        if value is not None and (not value or any(ord(char) < 32 for char in value)):
            raise DeployHookError(name, "must be non-empty text without control characters")
    return Deployment(
        service=body.service, version=body.version, environment=body.environment,
        deployed_at=deployment_moment(body.deployed_at, now=now), commit=body.commit or None,
        url=body.url or None, immediate=body.immediate,
    )  # fmt: skip


def deployment_moment(value: str | None, *, now: datetime) -> datetime:
    """deployed_at: ISO 8601 with an offset, not before 1970 and not ahead of `now` by more than CLOCK_SKEW."""
    if value is None:
        return now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DeployHookError(
            "deployed_at", f"{value!r} is not ISO 8601 (e.g. 2026-05-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise DeployHookError("deployed_at", f"{value!r} has no UTC offset; add Z or +hh:mm")
    moment = moment.astimezone(UTC)
    if moment > now + CLOCK_SKEW:
        raise DeployHookError(
            "deployed_at",
            f"{moment.isoformat()} is in the future (now {now.isoformat(timespec='seconds')}); send the hook "
            "after the deployment finished",
        )
    if moment < EARLIEST_DEPLOYMENT + timedelta(days=30):
        raise DeployHookError("deployed_at", f"{moment.isoformat()} is too early (before February 1970)")
    return moment


def derived_delivery_id(deployment: Deployment) -> str:
    """The delivery key of a notification that carries no id of its own: the same deployment twice is one."""
    parts = (deployment.service, deployment.version, deployment.environment, deployment.commit or "")
    return "key-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def check_delivery_id(delivery_id: str, field: str) -> str:
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID_CHARS or not delivery_id.isprintable():
        raise DeployHookError(field, f"must be 1 to {MAX_DELIVERY_ID_CHARS} printable characters")
    return delivery_id


@dataclass
class DeployHooks:
    """Records deployments on one database. `runner` defaults to the configured retro runner on it."""

    database: Database
    settings: Settings
    ingestor: EventIngestor | None = None
    runner: RetroRunner | None = None
    clock: Callable[[], datetime] = _utcnow

    def __post_init__(self) -> None:
        if self.ingestor is None:
            self.ingestor = EventIngestor(self.database, survey_triggers=False)
        if self.runner is None:
            self.runner = retro_runner(database=self.database, settings=self.settings, clock=self.clock)

    def record(
        self, deployment: Deployment, *, source: str, delivery_id: str | None = None
    ) -> dict[str, Any]:
        """Act on a deployment once per delivery: {duplicate, delivery, deployment, escalation_check, retro}.

        Raises DeployHookError (nothing written) when the bake window cannot be compared."""
        delivery_id = check_delivery_id(delivery_id or derived_delivery_id(deployment), "delivery_id")
        bake_hours = self._bake_hours(deployment)
        now = self.clock()
        with self.database.write() as connection:
            first = hook_deliveries.claim_delivery(
                connection, source, delivery_id, now, stale_after=STALE_CLAIM
            )
        if not first:
            return self._duplicate(source, delivery_id)
        try:
            outcome = self._act(deployment, source, delivery_id, bake_hours)
            with self.database.write() as connection:
                hook_deliveries.record_outcome(connection, source, delivery_id, outcome)
        except BaseException:
            with self.database.write() as connection:  # a retry of this delivery should act, not be a no-op
                hook_deliveries.release_delivery(connection, source, delivery_id)
            raise
        return {"duplicate": False, **outcome}

    def run_retro(self, retro_id: str) -> dict[str, Any]:
        """Run an immediate retro that `record` claimed (status running): its id, final status and error."""
        assert self.runner is not None
        return self.runner.run_claimed(retro_id)

    # ---- the steps -------------------------------------------------------------------------------------------

    def _act(self, deployment: Deployment, source: str, delivery_id: str, bake_hours: int) -> dict[str, Any]:
        key = hashlib.sha256(f"{source}:{delivery_id}".encode()).hexdigest()
        event_id = f"hook-{key[:32]}"
        stored = self._store_event(deployment, event_id, source, delivery_id)
        return {
            "delivery": {"source": source, "id": delivery_id},
            "deployment": {**deployment.as_dict(), "event_id": event_id, "stored": stored},
            "escalation_check": self._check(deployment),
            "retro": self._schedule(deployment, f"retro-deploy-{key[:16]}", bake_hours),
        }

    def _store_event(self, deployment: Deployment, event_id: str, source: str, delivery_id: str) -> bool:
        properties: dict[str, Any] = {
            "version": deployment.version, "service": deployment.service,
            "environment": deployment.environment, "hook": source, "delivery_id": delivery_id,
        }  # fmt: skip
        if deployment.commit:
            properties["commit"] = deployment.commit
        if deployment.url:
            properties["url"] = deployment.url
        event = CanonicalEvent(
            message_id=event_id, type="track", name="deployment", timestamp=deployment.deployed_at,
            received_at=self.clock(), anonymous_id=SYSTEM_ANONYMOUS_ID, properties=properties,
            context={"library": {"name": "feedbackloop-deploy-hook", "version": "1"}},
        )  # fmt: skip
        assert self.ingestor is not None
        return self.ingestor.ingest([event]).accepted == 1

    def _check(self, deployment: Deployment) -> dict[str, Any]:
        """The escalation check now, under the worker's lock; its failure is reported, not raised (the
        deployment is recorded and its retro scheduled either way, and the worker checks again)."""
        try:
            worker = Worker(self.database, self.settings, notifiers={}, clock=self.clock)
            worker.service.ensure_default_rules()  # a first hook on a new database checks the default rules
            result = worker.check()
        except Exception as error:
            log.exception("the escalation check after deployment %s failed", deployment.version)
            # The kind only: a driver's message can carry SQL and host names; the log has the whole story.
            return {"status": "failed", "error": f"{type(error).__name__} (see the service's log)"}
        if result is None:
            return {"status": "skipped", "reason": CHECK_ALREADY_RUNNING}
        attributed = [
            escalation.escalation_id
            for escalation in result.active
            if any(d.get("version") == deployment.version for d in escalation.related.get("deployments", []))
        ]
        return {
            "status": "ran", "at": result.at.isoformat(), "evaluated": result.evaluated,
            "opened": len(result.opened), "fired": len(result.fired), "resolved": len(result.resolved),
            "active": len(result.active), "attributed_escalations": attributed,
        }  # fmt: skip

    def _schedule(self, deployment: Deployment, retro_id: str, bake_hours: int) -> dict[str, Any]:
        assert self.runner is not None
        run_after = deployment.deployed_at + timedelta(hours=bake_hours)
        request = RetroRequest(
            kind="deployment", version=deployment.version, bake_hours=bake_hours,
            deployed_at=deployment.deployed_at.isoformat(), approve="auto",
        )  # fmt: skip
        self.runner.schedule(request, run_after, retro_id=retro_id)
        # A worker polling for due retros may claim an immediate one first: only the claimer runs it.
        claimed = deployment.immediate and self.runner.claim_due(retro_id)
        return self._retro_state(retro_id, bake_hours, "running" if claimed else None) | {"run_here": claimed}

    def _bake_hours(self, deployment: Deployment) -> int:
        """The configured bake window; for an immediate retro, the whole hours of it that have passed."""
        configured = self.settings.retro_bake_hours  # at most 14 days: the baseline before stays after 1970
        if not deployment.immediate:
            return configured
        elapsed_hours = int((self.clock() - deployment.deployed_at) / timedelta(hours=1))
        if elapsed_hours < 1:
            raise DeployHookError(
                "immediate",
                f"deployment {deployment.version} finished less than an hour ago, so there is nothing after it to "
                f"compare yet; leave immediate off (the retro runs {configured} h after the deployment) or send "
                "an earlier deployed_at",
            )
        return min(configured, elapsed_hours)

    def _retro_state(
        self, retro_id: str, bake_hours: int | None, status: str | None = None
    ) -> dict[str, Any]:
        with self.database.read() as connection:
            row = retro_sql.retro(connection, retro_id)
        if row is None:
            return {"id": retro_id, "status": "unknown", "run_after": None, "bake_hours": bake_hours}
        run_after = row["run_after"]
        return {
            "id": retro_id, "status": status or row["status"],
            "run_after": run_after.isoformat() if run_after is not None else None,
            "bake_hours": (row["request"] or {}).get("bake_hours", bake_hours),
            "links": {"self": f"/v1/retros/{retro_id}"},
        }  # fmt: skip

    def _duplicate(self, source: str, delivery_id: str) -> dict[str, Any]:
        """A delivery seen before: the first one's outcome, with the retro's current state; nothing is done."""
        with self.database.read() as connection:
            row = hook_deliveries.delivery(connection, source, delivery_id)
        outcome: dict[str, Any] = dict(row["outcome"] or {}) if row is not None else {}
        if not outcome:  # the first delivery is still being acted on
            return {
                "duplicate": True, "delivery": {"source": source, "id": delivery_id},
                "status": "in_progress", "message": "the first delivery with this id is still being acted on",
            }  # fmt: skip
        retro = outcome.get("retro") or {}
        if retro.get("id"):
            outcome["retro"] = self._retro_state(retro["id"], retro.get("bake_hours"))
        return {**outcome, "duplicate": True}
