"""The experiments service: lifecycle, sticky assignment with exposure tracking, and event tracking.

Every door (HTTP, CLI, the seed's ABTestingFramework, the demo) goes through this class. Lifecycle changes run in
one write transaction each; assignment reads first and only takes the write path for users without a current
assignment, so repeat calls for known users never contend for the write lock.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select
from sqlalchemy.exc import IntegrityError

from store.database import Database
from store.models import UNASSIGNED_PERSONA, UserRow
from store.repositories import experiments as repo
from store.repositories.activity_rollups import mark_stale_days
from store.repositories.events import insert_events
from store.repositories.experiment_units import mark_dirty
from tools.events.ingest import EventIngestor, IngestSummary
from tools.events.model import CanonicalEvent
from tools.events.normalize import FieldError
from tools.events.segment import check_json_values, parse_segment_item
from tools.experiments.assignment import VariantChooser
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError, ExperimentStateError
from tools.experiments.metrics import parse_metric
from tools.experiments.model import (
    Experiment,
    ExperimentMode,
    ExperimentSpec,
    ExperimentStatus,
    ExperimentType,
    Guardrail,
    Phase,
    Variant,
    parse_spec,
    with_weights,
)
from tools.users import User, as_user

MAX_BULK_USERS = 10_000
EXPOSURE_EVENT = "experiment_viewed"  # Segment's spec name for "Experiment Viewed"
EDITABLE_WHILE_RUNNING = {"name", "hypothesis", "weights", "coverage"}
# The seed's names for definition fields → the names a stored definition uses.
FIELD_ALIASES = {
    "success_metrics": "primary_metrics",
    "experiment_type": "type",
    "guardrail_metrics": "guardrails",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Assignment:
    """What to show a user. In shadow mode `variant` is always control; `shadow_variant` is what was recorded."""

    experiment_key: str
    user_id: str
    in_experiment: bool
    variant: str | None
    variant_index: int | None
    configuration: dict[str, Any] = field(default_factory=dict)
    shadow_variant: str | None = None
    reason: str | None = None  # why not in the experiment: persona_not_targeted, outside_coverage, paused
    first_exposure: bool = False  # this call recorded the exposure
    phase: int | None = None

    @property
    def variant_name(self) -> str | None:
        return self.variant

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment_key, "user_id": self.user_id, "in_experiment": self.in_experiment,
            "variant": self.variant, "variant_index": self.variant_index, "configuration": self.configuration,
            "shadow_variant": self.shadow_variant, "reason": self.reason, "first_exposure": self.first_exposure,
            "phase": self.phase,
        }  # fmt: skip


class ExperimentService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.database = database
        self.clock = clock

    # ---- definition and lifecycle -------------------------------------------------------------------------

    def create(self, data: Mapping[str, Any]) -> Experiment:
        spec = parse_spec(data)
        now = self.clock()
        try:
            with self.database.write() as connection:
                if repo.experiment_by_key(connection, spec.key) is not None:
                    raise ExperimentStateError("key", f"an experiment with key {spec.key!r} already exists")
                repo.insert_experiment(
                    connection, _row_values(spec, ExperimentStatus.DRAFT, now) | {"created_at": now}
                )
        except IntegrityError:  # a concurrent create of the same key won the race
            raise ExperimentStateError("key", f"an experiment with key {spec.key!r} already exists") from None
        return self.get(spec.key)

    def get(self, key: str) -> Experiment:
        with self.database.read() as connection:
            return _load(connection, key)

    def experiments(self, status: str | None = None) -> list[Experiment]:
        if status is not None and status not in {s.value for s in ExperimentStatus}:
            raise ExperimentInputError(
                "status", f"must be one of {', '.join(s.value for s in ExperimentStatus)}"
            )
        with self.database.read() as connection:
            return [_from_row(connection, row) for row in repo.list_experiments(connection, status)]

    def update(self, key: str, changes: Mapping[str, Any]) -> Experiment:
        """Drafts accept any field; running or paused experiments only name, hypothesis, weights and coverage
        (a weights/coverage change starts a new phase with a new seed)."""
        if not isinstance(changes, Mapping) or not changes:
            raise ExperimentInputError("body", "give at least one field to change")
        now = self.clock()
        with self.database.write() as connection:
            experiment = _load(connection, key, for_update=True)
            if experiment.status is ExperimentStatus.STOPPED:
                raise ExperimentStateError(
                    "status", f"experiment {key!r} is stopped; it can no longer change"
                )
            if experiment.status is ExperimentStatus.DRAFT:
                # A change given under the seed's name (success_metrics, …) replaces the stored field, not loses to it.
                base = _without(
                    _as_input(experiment.spec), *(FIELD_ALIASES[k] for k in changes if k in FIELD_ALIASES)
                )
                spec = parse_spec({**base, **_without(changes, "weights"), "key": key})
                if "weights" in changes:
                    spec = with_weights(spec, changes["weights"], None)
                repo.update_experiment(connection, experiment.id, _row_values(spec, experiment.status, now))
                return _load(connection, key)
            locked = sorted(set(changes) - EDITABLE_WHILE_RUNNING)
            if locked:
                raise ExperimentStateError(
                    locked[0],
                    f"cannot change {locked[0]!r} while the experiment is {experiment.status.value}; "
                    "only name, hypothesis, weights and coverage can change (stop it and create a new one)",
                )
            spec = experiment.spec
            if "name" in changes or "hypothesis" in changes:
                text = parse_spec(
                    {
                        **_as_input(spec),
                        "name": changes.get("name", spec.name),
                        "hypothesis": changes.get("hypothesis", spec.hypothesis),
                        "key": key,
                    }
                )
                spec = replace(spec, name=text.name, hypothesis=text.hypothesis)
            if "weights" in changes or "coverage" in changes:
                spec = with_weights(spec, changes.get("weights"), changes.get("coverage"))
                assert experiment.phase is not None
                repo.end_phase(connection, experiment.id, experiment.phase.index, now)
                next_phase = experiment.phase.index + 1
                repo.insert_phase(connection, _phase_values(experiment.id, spec, next_phase, now))
                repo.update_experiment(connection, experiment.id, {"current_phase": next_phase})
            repo.update_experiment(connection, experiment.id, _row_values(spec, experiment.status, now))
            return _load(connection, key)

    def start(self, key: str) -> Experiment:
        now = self.clock()
        with self.database.write() as connection:
            experiment = _load(connection, key, for_update=True)
            if experiment.status is not ExperimentStatus.DRAFT:
                verb = {
                    "running": "is already running",
                    "paused": "is paused (resume it)",
                    "stopped": "is stopped",
                }
                raise ExperimentStateError(
                    "status", f"experiment {key!r} {verb[experiment.status.value]}; only a draft can start"
                )
            repo.insert_phase(connection, _phase_values(experiment.id, experiment.spec, 0, now))
            repo.update_experiment(
                connection,
                experiment.id,
                {
                    "status": ExperimentStatus.RUNNING.value,
                    "started_at": now,
                    "updated_at": now,
                    "current_phase": 0,
                },
            )
            return _load(connection, key)  # fmt: skip

    def pause(self, key: str) -> Experiment:
        return self._transition(key, ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)

    def resume(self, key: str) -> Experiment:
        return self._transition(key, ExperimentStatus.PAUSED, ExperimentStatus.RUNNING)

    def stop(self, key: str, decision: str = "inconclusive", notes: str = "") -> Experiment:
        """Stop with a decision: `ship:<variant name>`, `keep_control` or `inconclusive`."""
        if not isinstance(notes, str) or len(notes) > 5000:
            raise ExperimentInputError("notes", "must be text of at most 5000 characters")
        _check_storable(notes, "notes")
        now = self.clock()
        with self.database.write() as connection:
            experiment = _load(connection, key, for_update=True)
            if experiment.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
                raise ExperimentStateError(
                    "status",
                    f"experiment {key!r} is {experiment.status.value}; only a running or paused experiment can stop",
                )
            _check_decision(decision, experiment.spec)
            if experiment.phase is not None:
                repo.end_phase(connection, experiment.id, experiment.phase.index, now)
            repo.update_experiment(
                connection,
                experiment.id,
                {
                    "status": ExperimentStatus.STOPPED.value,
                    "stopped_at": now,
                    "updated_at": now,
                    "decision": decision,
                    "decision_notes": notes,
                },
            )
            return _load(connection, key)  # fmt: skip

    def delete(self, key: str) -> None:
        with self.database.write() as connection:
            experiment = _load(connection, key, for_update=True)
            if experiment.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
                raise ExperimentStateError(
                    "status", f"experiment {key!r} is {experiment.status.value}; stop it before deleting"
                )
            repo.delete_experiment(connection, experiment.id)  # fmt: skip

    def _transition(self, key: str, source: ExperimentStatus, target: ExperimentStatus) -> Experiment:
        now = self.clock()
        with self.database.write() as connection:
            experiment = _load(connection, key, for_update=True)
            if experiment.status is not source:
                raise ExperimentStateError(
                    "status", f"experiment {key!r} is {experiment.status.value}, not {source.value}"
                )
            repo.update_experiment(connection, experiment.id, {"status": target.value, "updated_at": now})
            return _load(connection, key)  # fmt: skip

    # ---- assignment ---------------------------------------------------------------------------------------

    def assign(self, key: str, user: User | str) -> Assignment:
        return self.assign_many(key, [user])[0]

    def assign_many(self, key: str, users: Sequence[User | str]) -> list[Assignment]:
        """Sticky assignments for up to 10,000 users, in input order; the first exposure of each is recorded once."""
        requested = _requested_users(users)
        with self.database.read() as connection:
            experiment = _load(connection, key)
            _check_assignable(experiment)
            stored = repo.stored_assignments(connection, experiment.id, [u.user_id for u in requested])
        assert experiment.phase is not None
        current = experiment.phase.index
        missing = [u for u in requested if u.user_id not in stored or stored[u.user_id].phase < current]
        fresh: set[str] = set()
        if missing and experiment.status is ExperimentStatus.RUNNING:
            drawn, fresh = self._store_draws(key, list({u.user_id: u for u in missing}.values()))
            stored = {**stored, **drawn}  # users already assigned keep what the read found
        answers = []
        for user in requested:
            answers.append(
                _assignment(experiment, user.user_id, stored.get(user.user_id), user.user_id in fresh)
            )
            fresh.discard(user.user_id)  # a repeated id: only its first answer is the exposure
        return answers

    def _store_draws(
        self, key: str, users: Sequence[User]
    ) -> tuple[dict[str, repo.StoredAssignment], set[str]]:
        now = self.clock()
        with self.database.write() as connection:
            experiment = _load(connection, key)  # re-read: a phase change may have happened meanwhile
            _check_assignable(experiment)
            assert experiment.phase is not None
            phase = experiment.phase
            personas = _personas(connection, users)
            draws = []
            chooser = VariantChooser(phase.seed, list(phase.weights), coverage=phase.coverage,
                                     hash_version=experiment.spec.hash_version)  # fmt: skip
            for user in users:
                if experiment.spec.personas and personas[user.user_id] not in experiment.spec.personas:
                    continue
                index = chooser.choose(user.user_id)
                if index is not None:
                    draws.append(
                        repo.StoredAssignment(user.user_id, phase.index, index, personas[user.user_id], now)
                    )
            ids = [d.user_id for d in draws]
            before = repo.stored_assignments(connection, experiment.id, ids)
            inserted = repo.insert_assignments(
                connection, experiment.id, [d for d in draws if d.user_id not in before]
            )
            redrawn = repo.redraw_assignments(
                connection, experiment.id, [d for d in draws if d.user_id in before]
            )
            fresh = inserted | redrawn
            stored = repo.stored_assignments(connection, experiment.id, [u.user_id for u in users])
            exposures = [_exposure_event(experiment, stored[uid], now) for uid in sorted(fresh)]
            insert_events(connection, exposures)
            mark_stale_days(connection, [e.timestamp for e in exposures], datetime.now(UTC))
            mark_dirty(connection, experiment.id, sorted(fresh))  # their metric values start (again) now
            return stored, fresh  # fmt: skip

    # ---- tracking -----------------------------------------------------------------------------------------

    def track(
        self,
        key: str,
        user_id: str,
        event_name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        ingestor: EventIngestor | None = None,
    ) -> IngestSummary:
        """Record a product event of an experiment's user (it counts towards the experiment's metrics)."""
        experiment = self.get(key)
        item: dict[str, Any] = {"type": "track", "userId": user_id, "event": event_name,
                                "properties": {**dict(properties or {}), "experiment": experiment.key}}  # fmt: skip
        if isinstance(timestamp, datetime):
            item["timestamp"] = timestamp.isoformat()
        elif timestamp is not None:
            item["timestamp"] = timestamp
        item["messageId"] = message_id or f"exp-{uuid.uuid4().hex}"
        try:
            event = parse_segment_item(item, received_at=self.clock(), correct_skew=False)
        except FieldError as error:
            field_name = {"userId": "user_id", "event": "event_name"}.get(error.field, error.field)
            raise ExperimentInputError(field_name, error.message) from None
        return (ingestor or EventIngestor(self.database)).ingest([event])


def _without(changes: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if k not in keys}


def _check_storable(text: str, field_name: str) -> None:
    """No NUL characters or lone surrogates: PostgreSQL cannot store them (a 500 instead of a clear 4xx)."""
    try:
        check_json_values(text, field_name)
    except FieldError as error:
        raise ExperimentInputError(field_name, error.message) from None


def _requested_users(users: Sequence[User | str]) -> list[User]:
    if isinstance(users, str | User) or not isinstance(users, Sequence):
        raise ExperimentInputError("user_ids", "must be a list of user ids")
    if not users:
        raise ExperimentInputError("user_ids", "give at least one user id")
    if len(users) > MAX_BULK_USERS:
        raise ExperimentInputError("user_ids", f"{len(users)} users; at most {MAX_BULK_USERS} per request")
    requested = []
    for i, user in enumerate(users):
        try:
            parsed = as_user(user)
        except (TypeError, ValueError):
            raise ExperimentInputError(f"user_ids[{i}]", "must be a non-empty user id") from None
        if len(parsed.user_id) > 255:
            raise ExperimentInputError(f"user_ids[{i}]", "is longer than 255 characters")
        _check_storable(parsed.user_id, f"user_ids[{i}]")
        requested.append(parsed)
    return requested


def _check_assignable(experiment: Experiment) -> None:
    if experiment.status is ExperimentStatus.DRAFT:
        raise ExperimentStateError(
            "status", f"experiment {experiment.key!r} is a draft; start it before assigning users"
        )
    if experiment.status is ExperimentStatus.STOPPED:
        raise ExperimentStateError("status", f"experiment {experiment.key!r} is stopped; it assigns no one")


def _assignment(
    experiment: Experiment, user_id: str, stored: repo.StoredAssignment | None, fresh: bool
) -> Assignment:
    spec, phase = experiment.spec, experiment.phase
    assert phase is not None
    if stored is None or stored.phase != phase.index:
        if experiment.status is ExperimentStatus.PAUSED:
            reason = "paused"
        else:
            reason = "persona_not_targeted" if spec.personas else "outside_coverage"
        control = spec.variants[0]
        return Assignment(spec.key, user_id, False, control.name, None, dict(control.configuration), reason=reason,
                          phase=phase.index)  # fmt: skip
    variant = spec.variants[stored.variant]
    if spec.mode is ExperimentMode.SHADOW:
        control = spec.variants[0]
        return Assignment(spec.key, user_id, True, control.name, 0, dict(control.configuration),
                          shadow_variant=variant.name, first_exposure=fresh, phase=phase.index)  # fmt: skip
    return Assignment(spec.key, user_id, True, variant.name, stored.variant, dict(variant.configuration),
                      first_exposure=fresh, phase=phase.index)  # fmt: skip


def _exposure_event(experiment: Experiment, stored: repo.StoredAssignment, now: datetime) -> CanonicalEvent:
    # One id per (experiment, phase, user): a retried or concurrent exposure is stored once.
    digest = hashlib.sha256(f"{experiment.id}\x00{stored.phase}\x00{stored.user_id}".encode()).hexdigest()[
        :40
    ]
    variant = experiment.spec.variants[stored.variant]
    return CanonicalEvent(
        message_id=f"exposure-{digest}", type="track", name=EXPOSURE_EVENT, timestamp=now, received_at=now,
        user_id=stored.user_id,
        properties={"experiment_id": experiment.key, "variation_id": stored.variant, "variant": variant.name,
                    "phase": stored.phase, "shadow": experiment.spec.mode is ExperimentMode.SHADOW},
    )  # fmt: skip


def _personas(connection: Connection, users: Sequence[User]) -> dict[str, str]:
    known = {u.user_id: u.persona_segment for u in users if u.persona_segment}
    unknown = [u.user_id for u in users if not u.persona_segment]
    for start in range(0, len(unknown), repo.ASSIGNMENT_CHUNK_ROWS):
        chunk = unknown[start : start + repo.ASSIGNMENT_CHUNK_ROWS]
        rows = connection.execute(select(UserRow.id, UserRow.persona).where(UserRow.id.in_(chunk)))
        known.update((user_id, persona) for user_id, persona in rows)
    return {u.user_id: known.get(u.user_id) or UNASSIGNED_PERSONA for u in users}


def _check_decision(decision: str, spec: ExperimentSpec) -> None:
    if decision in ("keep_control", "inconclusive"):
        return
    names = [v.name for v in spec.variants]
    if isinstance(decision, str) and decision.startswith("ship:") and decision[5:] in names:
        return
    choices = ", ".join(["keep_control", "inconclusive", *(f"ship:{n}" for n in names)])
    raise ExperimentInputError("decision", f"must be one of {choices}; got {decision!r}")


def _row_values(spec: ExperimentSpec, status: ExperimentStatus, now: datetime) -> dict[str, Any]:
    return {"key": spec.key, "name": spec.name, "type": spec.type.value, "mode": spec.mode.value,
            "status": status.value, "hypothesis": spec.hypothesis, "definition": spec.as_document(),
            "updated_at": now}  # fmt: skip


def _phase_values(experiment_id: int, spec: ExperimentSpec, phase: int, now: datetime) -> dict[str, Any]:
    base = spec.seed or spec.key
    seed = base if phase == 0 else f"{base}:phase-{phase}"  # a new seed re-draws everyone
    return {"experiment_id": experiment_id, "phase": phase, "seed": seed, "coverage": spec.coverage,
            "weights": spec.weights, "started_at": now}  # fmt: skip


def _load(connection: Connection, key: str, *, for_update: bool = False) -> Experiment:
    if not isinstance(key, str) or not key:
        raise ExperimentInputError("key", "must be a non-empty experiment key")
    row = repo.experiment_by_key(connection, key, for_update=for_update)
    if row is None:
        raise ExperimentNotFoundError(key)
    return _from_row(connection, row)


def _from_row(connection: Connection, row: RowMapping) -> Experiment:
    spec = spec_from_document(dict(row))
    phase = None
    if row["status"] != ExperimentStatus.DRAFT.value:
        phase_row = repo.phase_row(connection, row["id"], row["current_phase"])
        if phase_row is not None:
            phase = Phase(phase_row["phase"], phase_row["seed"], phase_row["coverage"], tuple(phase_row["weights"]),
                          phase_row["started_at"], phase_row["ended_at"])  # fmt: skip
    return Experiment(id=row["id"], spec=spec, status=ExperimentStatus(row["status"]), created_at=row["created_at"],
                      phase=phase, started_at=row["started_at"], stopped_at=row["stopped_at"],
                      decision=row["decision"], decision_notes=row["decision_notes"])  # fmt: skip


def spec_from_document(row: Mapping[str, Any]) -> ExperimentSpec:
    """The stored definition back into a spec (no re-validation: it was validated when written)."""
    doc = row["definition"]
    completion = doc["completion_event"]

    def metric(data: Any) -> Any:
        return parse_metric(data, "definition", completion_event=completion)

    return ExperimentSpec(
        key=row["key"], name=row["name"], type=ExperimentType(row["type"]), mode=ExperimentMode(row["mode"]),
        hypothesis=row["hypothesis"],
        variants=tuple(Variant(v["name"], v["weight"], v["configuration"]) for v in doc["variants"]),
        primary_metrics=tuple(metric(m) for m in doc["primary_metrics"]),
        secondary_metrics=tuple(metric(m) for m in doc["secondary_metrics"]),
        guardrails=tuple(Guardrail(metric(g["metric"]), g["margin"]) for g in doc["guardrails"]),
        coverage=doc["coverage"], personas=tuple(doc["personas"]), duration_days=doc["duration_days"],
        hash_version=doc["hash_version"], seed=doc["seed"],
        factors={k: tuple(v) for k, v in doc["factors"].items()}, completion_event=completion,
        engine=doc["engine"], correction=doc["correction"], alpha=doc["alpha"], cuped=doc["cuped"],
        cuped_lookback_days=doc["cuped_lookback_days"], min_units_per_variant=doc["min_units_per_variant"],
        minimum_detectable_effect=doc["minimum_detectable_effect"],
    )  # fmt: skip


def _as_input(spec: ExperimentSpec) -> dict[str, Any]:
    """A spec as the input document parse_spec accepts (for merging edits into a draft)."""
    doc = spec.as_document()
    doc["guardrails"] = [{"metric": g["metric"], "margin": g["margin"]} for g in doc["guardrails"]]
    if spec.mode is ExperimentMode.MULTIVARIATE:
        doc.pop("variants")
    return {"key": spec.key, "name": spec.name, "type": spec.type.value, "mode": spec.mode.value,
            "hypothesis": spec.hypothesis, **doc}  # fmt: skip
