"""The escalation service: rules, checks at any time T, the escalation lifecycle and silences.

`check(at=T)` evaluates every enabled rule per persona, steps each label set's state machine, opens, updates and
resolves escalations, and queues the notifications that are due — all in one write transaction, so a crash
leaves either the whole check or none of it. On PostgreSQL a transaction-scoped advisory lock makes concurrent
checks (several workers, an HTTP call) run one at a time; SQLite's write lock does the same there.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from prompts import render, render_string
from store.database import Database
from store.repositories import escalations as repo
from tools.escalation.conditions import Judgement, judge
from tools.escalation.defaults import default_rules
from tools.escalation.measure import Measurement, MeasurementCache, pooled, resolve_metric, testable
from tools.escalation.model import (
    Escalation,
    EscalationInputError,
    EscalationNotFoundError,
    EscalationRule,
    EscalationSeverity,
    EscalationStateError,
    EscalationStatus,
    EscalationType,
    parse_rule,
)
from tools.escalation.notifications import MATCH_OPERATORS, NotificationPolicy, plan_notifications
from tools.escalation.state import Instance, Transition, step
from tools.notify.message import Evidence
from tools.window import Window

EARLIEST_MOMENT = datetime(1971, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)
CHECK_LOCK_KEY = 0x6662_6573_6361  # "fbesca": the advisory lock every escalation check takes
DEFAULT_PERIOD_DAYS = 7
RELATED_LOOKBACK = timedelta(days=2)  # deployments shortly before a period can explain it too


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CheckResult:
    at: datetime
    evaluated: int
    no_data: int
    opened: list[str] = field(default_factory=list)  # escalation ids that went pending or fired this check
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: int = 0
    active: list[Escalation] = field(default_factory=list)  # pending, firing and acknowledged after the check


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of a label set: hash of its sorted labels (annotations are not identity)."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:32]


class EscalationService:
    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        policy: NotificationPolicy | None = None,
        renewal_window_days: int = 14,
        gross_margin: float = 0.8,
    ) -> None:
        self.database = database
        self.clock = clock
        self.policy = policy or NotificationPolicy()
        self.renewal_window_days = renewal_window_days
        self.gross_margin = gross_margin

    # ---- rules ---------------------------------------------------------------------------------------------

    def ensure_default_rules(self) -> int:
        """Store the five default rules when no rule exists yet (first start)."""
        with self.database.write() as connection:
            if repo.rule_rows(connection):
                return 0
            for rule in default_rules():
                self._insert_rule(connection, rule)
            return len(default_rules())

    def rules(self) -> list[EscalationRule]:
        with self.database.read() as connection:
            return [parse_rule(row["definition"]) for row in repo.rule_rows(connection)]

    def rule(self, rule_id: str) -> EscalationRule:
        with self.database.read() as connection:
            return _rule(connection, rule_id)

    def add_rule(self, rule: EscalationRule | Mapping[str, Any]) -> EscalationRule:
        rule = rule if isinstance(rule, EscalationRule) else parse_rule(rule)
        _check_metric(rule)
        taken = EscalationStateError("rule_id", f"a rule with id {rule.rule_id!r} already exists")
        try:
            with self.database.write() as connection:
                if repo.rule_row(connection, rule.rule_id) is not None:
                    raise taken
                self._insert_rule(connection, rule)
        except IntegrityError:
            raise taken from None
        return rule

    def update_rule(self, rule_id: str, changes: Mapping[str, Any]) -> EscalationRule:
        if not isinstance(changes, Mapping):
            raise EscalationInputError("body", "must be an object of rule fields to change")
        if "rule_id" in changes and changes["rule_id"] != rule_id:
            raise EscalationInputError("rule_id", "cannot be changed; add a new rule instead")
        with self.database.write() as connection:
            _serialise_with_checks(connection)
            rule = parse_rule(_rule(connection, rule_id).as_dict() | dict(changes))
            _check_metric(rule)
            repo.update_rule(connection, rule_id, {"definition": rule.as_dict(), "enabled": rule.enabled,
                                                   "updated_at": self.clock()})  # fmt: skip
            if not rule.enabled:
                self._close_rule(connection, rule_id, "rule disabled")
        return rule

    def set_rule_enabled(self, rule_id: str, enabled: bool) -> EscalationRule:
        return self.update_rule(rule_id, {"enabled": enabled})

    def delete_rule(self, rule_id: str) -> None:
        with self.database.write() as connection:
            _serialise_with_checks(connection)
            _rule(connection, rule_id)
            self._close_rule(connection, rule_id, "rule deleted")
            repo.delete_rule(connection, rule_id)

    def _close_rule(self, connection: Connection, rule_id: str, reason: str) -> None:
        """A rule that stops being evaluated resolves what it opened (the next check tells the channels), instead
        of leaving escalations firing that nothing will ever resolve; its label sets start over if re-enabled."""
        at = self.clock()
        for row in repo.escalation_rows(connection, statuses=("pending", "firing", "acknowledged")):
            if row["rule_id"] != rule_id:
                continue
            if row["status"] == "pending":  # never fired, nobody was told
                repo.delete_escalation(connection, row["id"])
                continue
            repo.update_escalation(connection, row["id"], {
                "status": "resolved", "resolved_at": at, "resolved_by": reason, "resolution_notes": reason,
                "updated_at": at,
            })  # fmt: skip
            repo.add_history(connection, row["id"], at, "resolved", actor=reason)
        repo.delete_instances(connection, rule_id)

    def _insert_rule(self, connection: Connection, rule: EscalationRule) -> None:
        now = self.clock()
        repo.insert_rule(connection, {"rule_id": rule.rule_id, "enabled": rule.enabled, "definition": rule.as_dict(),
                                      "created_at": now, "updated_at": now})  # fmt: skip

    # ---- checks --------------------------------------------------------------------------------------------

    def check(self, *, at: datetime | None = None, days: int = DEFAULT_PERIOD_DAYS) -> CheckResult:
        """Evaluate every enabled rule at `at` (default now); rules without period_days use `days`."""
        moment = self._moment(at)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            raise EscalationInputError("days", f"must be a whole number from 1 to 365, got {days!r}")
        with self.database.write() as connection:
            _serialise_with_checks(connection)
            return self._check(connection, moment, days)

    def _check(self, connection: Connection, at: datetime, days: int) -> CheckResult:
        rules = [parse_rule(row["definition"]) for row in repo.rule_rows(connection, enabled_only=True)]
        instances = repo.instance_rows(connection)
        plan: dict[Window, set[str]] = {}
        for rule in rules:  # which metrics each window needs, so the cache computes each window once
            current_window = Window(at - timedelta(days=rule.period_days or days), at)
            for window in [current_window, *_baseline_windows(rule, current_window)]:
                plan.setdefault(window, set()).add(resolve_metric(rule.metric)[1])
        cache = MeasurementCache(connection, self.renewal_window_days, self.gross_margin, plan=plan)
        tally: dict[str, list[str]] = {"opened": [], "fired": [], "resolved": []}
        evaluated = no_data = 0
        for rule in rules:
            period = rule.period_days or days
            current_window = Window(at - timedelta(days=period), at)
            current = cache.by_persona(rule.metric, current_window)
            windows = _baseline_windows(rule, current_window)
            baseline = pooled([cache.by_persona(rule.metric, w) for w in windows]) if windows else {}
            metric = resolve_metric(rule.metric)[1]
            # Label sets that are pending or firing are judged even when their persona has no data at all any
            # more: a pending one must reset (else it fires later on the strength of old data), a firing one stays.
            live = {
                row["labels"]["persona"]
                for row in instances.values()
                if row["rule_id"] == rule.rule_id
                and row["state"] in ("pending", "firing")
                and row["labels"].get("metric") == metric
            }
            personas = [rule.persona] if rule.persona else sorted(set(current) | set(baseline) | live)
            related = self._related(connection, current_window)
            for persona in personas:
                judgement = judge(rule, current.get(persona, Measurement(None, 0)), baseline.get(persona))
                labels = {"rule": rule.rule_id, "persona": persona, "metric": metric}
                outcome = self._apply(connection, rule, labels, instances, judgement, at, period, related)
                evaluated += 1
                no_data += judgement.no_data
                for kind, escalation_id in outcome:
                    tally[kind].append(escalation_id)
        channels = {rule.rule_id: rule.notification_channels for rule in rules}
        sent = plan_notifications(connection, at, self.policy, channels)
        active = self._escalations(connection, statuses=("pending", "firing", "acknowledged"))
        return CheckResult(
            at, evaluated, no_data, tally["opened"], tally["fired"], tally["resolved"], sent, active
        )

    def _apply(
        self,
        connection: Connection,
        rule: EscalationRule,
        labels: dict[str, str],
        instances: Mapping[str, Any],
        judgement: Judgement,
        at: datetime,
        period_days: int,
        related: dict[str, Any],
    ) -> list[tuple[str, str]]:
        key = fingerprint(labels)
        row = instances.get(key)
        before = (
            Instance(row["state"], row["active_since"], row["last_true_at"], row["suppressed"])
            if row
            else Instance()
        )
        after, transition = step(before, judgement, at, for_minutes=rule.for_minutes,
                                 keep_firing_for_minutes=rule.keep_firing_for_minutes)  # fmt: skip
        escalation_id = row["escalation_id"] if row else None
        outcome, escalation_id = self._record(connection, rule, labels, key, escalation_id, transition, judgement, at,
                                              period_days, related)  # fmt: skip
        repo.save_instance(connection, {
            "fingerprint": key, "rule_id": rule.rule_id, "labels": labels, "state": after.state,
            "active_since": after.active_since, "last_true_at": after.last_true_at, "suppressed": after.suppressed,
            "escalation_id": escalation_id, "evaluated_at": at,
        })  # fmt: skip
        return outcome

    def _record(
        self,
        connection: Connection,
        rule: EscalationRule,
        labels: dict[str, str],
        key: str,
        escalation_id: str | None,
        transition: Transition,
        judgement: Judgement,
        at: datetime,
        period_days: int,
        related: dict[str, Any],
    ) -> tuple[list[tuple[str, str]], str | None]:
        """Write the escalation side of a transition; returns what happened and the instance's escalation id."""
        if escalation_id is not None:
            related = _merged_related(repo.escalation_row(connection, escalation_id), related)
        texts = _texts(rule, labels, judgement, at, period_days, related)
        evidence = [_evidence(labels, judgement)]
        content = {"title": texts[0], "description": texts[1], "evidence": evidence, "related": related,
                   "updated_at": at}  # fmt: skip
        if transition in ("pending", "fired") and escalation_id is None:
            escalation_id = "esc_" + uuid.uuid4().hex[:20]
            status = "pending" if transition == "pending" else "firing"
            repo.insert_escalation(connection, content | {
                "id": escalation_id, "fingerprint": key, "rule_id": rule.rule_id,
                "type": EscalationType(rule.escalation_type).value,
                "severity": EscalationSeverity(rule.severity).value, "status": status, "labels": labels,
                "affected_personas": [labels["persona"]], "opened_at": at,
                "firing_at": at if status == "firing" else None,
            })  # fmt: skip
            repo.add_history(connection, escalation_id, at, "pending" if status == "pending" else "fired")
            return (
                [("opened", escalation_id)] + ([("fired", escalation_id)] if status == "firing" else [])
            ), escalation_id
        if escalation_id is None:
            return [], None
        if transition == "fired":
            repo.update_escalation(connection, escalation_id, content | {"status": "firing", "firing_at": at})
            repo.add_history(connection, escalation_id, at, "fired")
            return [("fired", escalation_id)], escalation_id
        if transition == "reset":  # pending that never fired: nobody was told, so nothing to keep
            repo.delete_escalation(connection, escalation_id)
            return [], None
        if transition == "resolved":
            repo.update_escalation(connection, escalation_id, content | {
                "status": "resolved", "resolved_at": at, "resolved_by": "auto",
                "resolution_notes": "recovered: the condition no longer holds (recovery threshold met)",
            })  # fmt: skip
            repo.add_history(connection, escalation_id, at, "resolved", actor="auto")
            return [("resolved", escalation_id)], None
        if transition in ("still_firing", "still_pending"):
            # Without data the escalation keeps the evidence and text it fired on (a no_data judgement has no
            # numbers to show); with data its annotations are re-rendered.
            repo.update_escalation(
                connection, escalation_id, {"updated_at": at} if judgement.no_data else content
            )
        return [], escalation_id

    def _related(self, connection: Connection, window: Window) -> dict[str, Any]:
        return {
            "deployments": repo.deployments_between(connection, window.start - RELATED_LOOKBACK, window.end),
            "experiments": repo.experiments_live_between(connection, window.start, window.end),
        }

    # ---- the escalation lifecycle ----------------------------------------------------------------------------

    def escalations(self, status: str | None = None) -> list[Escalation]:
        statuses: Sequence[str] | None = None
        if status is not None:
            if status not in {s.value for s in EscalationStatus}:
                known = ", ".join(s.value for s in EscalationStatus)
                raise EscalationInputError("status", f"must be one of {known}; got {status!r}")
            statuses = (status,)
        with self.database.read() as connection:
            return self._escalations(connection, statuses=statuses)

    def get(self, escalation_id: str) -> Escalation:
        with self.database.read() as connection:
            return self._one(connection, escalation_id)

    def acknowledge(self, escalation_id: str, acknowledged_by: str) -> Escalation:
        by = _actor(acknowledged_by, "acknowledged_by")
        with self.database.write() as connection:
            current = self._one(connection, escalation_id, for_update=True)
            if current.status != EscalationStatus.FIRING:
                raise EscalationStateError(
                    "status",
                    f"only a firing escalation can be acknowledged; this one is {current.status.value}",
                )
            at = self.clock()
            repo.update_escalation(connection, escalation_id, {"status": "acknowledged", "acknowledged_at": at,
                                                               "acknowledged_by": by, "updated_at": at})  # fmt: skip
            repo.add_history(connection, escalation_id, at, "acknowledged", actor=by)
            return self._one(connection, escalation_id)

    def resolve(self, escalation_id: str, resolved_by: str, resolution_notes: str = "") -> Escalation:
        """Close an escalation by hand. Its label set stays quiet until the condition clears once, so resolving
        a still-true condition (a fix that is deployed but not yet visible in the numbers) does not re-page."""
        by = _actor(resolved_by, "resolved_by")
        if (
            not isinstance(resolution_notes, str)
            or len(resolution_notes) > 10_000
            or "\x00" in resolution_notes
        ):
            raise EscalationInputError("resolution_notes", "must be text of at most 10,000 characters")
        with self.database.write() as connection:
            # A check in progress has read this label set's instance and would write it back as it was (firing),
            # undoing the suppression below: wait for it, as checks wait for each other.
            _serialise_with_checks(connection)
            current = self._one(connection, escalation_id, for_update=True)
            if current.status == EscalationStatus.RESOLVED:
                raise EscalationStateError("status", f"escalation {escalation_id!r} is already resolved")
            at = self.clock()
            repo.update_escalation(connection, escalation_id, {
                "status": "resolved", "resolved_at": at, "resolved_by": by, "resolution_notes": resolution_notes,
                "updated_at": at,
            })  # fmt: skip
            repo.add_history(
                connection, escalation_id, at, "resolved", actor=by, details={"notes": resolution_notes}
            )
            quiet = {"state": "inactive", "active_since": None, "suppressed": True, "escalation_id": None}
            repo.update_instance(connection, current.fingerprint, quiet)
            return self._one(connection, escalation_id)

    def _one(self, connection: Connection, escalation_id: str, *, for_update: bool = False) -> Escalation:
        if not isinstance(escalation_id, str) or not escalation_id:
            raise EscalationInputError("escalation_id", "must be an escalation id")
        row = repo.escalation_row(connection, escalation_id, for_update=for_update)
        if row is None:
            raise EscalationNotFoundError("escalation", escalation_id)
        return _escalation(row, repo.history_rows(connection, [escalation_id]).get(escalation_id, []))

    def _escalations(self, connection: Connection, *, statuses: Sequence[str] | None) -> list[Escalation]:
        rows = repo.escalation_rows(connection, statuses=statuses)
        history = repo.history_rows(connection, [row["id"] for row in rows])
        return [_escalation(row, history.get(row["id"], [])) for row in rows]

    # ---- silences --------------------------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: Any,
        *,
        ends_at: datetime,
        created_by: str,
        starts_at: datetime | None = None,
        comment: str = "",
    ) -> dict[str, Any]:
        checked = _matchers(matchers)
        start = self._moment(starts_at, "starts_at")
        end = self._moment(ends_at, "ends_at")
        if end <= start:
            raise EscalationInputError("ends_at", "must be after starts_at")
        if not isinstance(comment, str) or len(comment) > 2000:
            raise EscalationInputError("comment", "must be text of at most 2000 characters")
        values = {
            "id": "sil_" + uuid.uuid4().hex[:20], "matchers": checked, "starts_at": start, "ends_at": end,
            "created_by": _actor(created_by, "created_by"), "comment": comment, "created_at": self.clock(),
        }  # fmt: skip
        with self.database.write() as connection:
            repo.insert_silence(connection, values)
        return _silence(values)

    def silences(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        with self.database.read() as connection:
            rows = repo.silence_rows(connection, active_at=self.clock() if active_only else None)
        return [_silence(row) for row in rows]

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        with self.database.write() as connection:
            row = repo.silence_row(connection, silence_id)
            if row is None:
                raise EscalationNotFoundError("silence", silence_id)
            now = self.clock()
            if row["ends_at"] > now:
                repo.expire_silence(connection, silence_id, max(now, row["starts_at"]))
            expired = repo.silence_row(connection, silence_id)
            assert expired is not None
            return _silence(expired)

    def _moment(self, at: datetime | None, name: str = "at") -> datetime:
        moment = at or self.clock()
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise EscalationInputError(name, "must be a timezone-aware datetime (ISO 8601 with an offset)")
        if (
            not EARLIEST_MOMENT <= moment <= LATEST_MOMENT
        ):  # windows reach back a year; beyond these, dates overflow
            raise EscalationInputError(
                name, f"must be between {EARLIEST_MOMENT.year} and {LATEST_MOMENT.year}"
            )
        return moment.astimezone(UTC)


def _check_metric(rule: EscalationRule) -> None:
    """The metric exists, and a significant_* comparison has a test statistic to test (derived KPIs such as LTV
    and medians have none, so such a rule could never fire)."""
    source, name = resolve_metric(rule.metric)
    if rule.comparison.startswith("significant_") and not testable(source, name):
        raise EscalationInputError(
            "comparison",
            f"{name} has no test statistic (a derived KPI or a median); use drop_pct_greater_than or "
            "rise_pct_greater_than with min_sample and for_minutes instead",
        )


def _serialise_with_checks(connection: Connection) -> None:
    """PostgreSQL: the transaction-scoped advisory lock every check takes (SQLite's write lock does it there)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHECK_LOCK_KEY})


def _baseline_windows(rule: EscalationRule, current: Window) -> list[Window]:
    """No window for an absolute rule; the period before; or the trailing N days as periods of equal length."""
    baseline = str(rule.condition.get("baseline", "previous_period"))
    if baseline == "absolute":
        return []
    if baseline == "previous_period":
        return [current.previous()]
    periods = max(1, round(int(baseline.split("_")[1]) / current.days))
    return [
        Window(current.start - (i + 1) * current.duration, current.start - i * current.duration)
        for i in range(periods)
    ]


def _merged_related(row: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    """What was related when the escalation opened stays related (a deployment that caused a spike does not stop
    explaining it when it leaves the evaluation window), plus anything new."""
    before = dict(row["related"]) if row is not None and row["related"] else {}
    merged: dict[str, Any] = {}
    for kind, identity in (("deployments", ("version", "deployed_at")), ("experiments", ("key",))):
        items = list(before.get(kind, [])) + list(current.get(kind, []))
        # One entry per deployment or experiment, as it is now (an experiment stopped since is not listed twice).
        unique = {json.dumps([item.get(k) for k in identity]): item for item in items}
        merged[kind] = list(unique.values())
    return merged


def _evidence(labels: Mapping[str, str], judgement: Judgement) -> dict[str, Any]:
    return {
        "metric": labels["metric"], "persona": labels["persona"], "value": judgement.value,
        "baseline": judgement.baseline, "change": judgement.change, "p_value": judgement.p_value, "n": judgement.n,
    }  # fmt: skip


def _texts(
    rule: EscalationRule,
    labels: Mapping[str, str],
    judgement: Judgement,
    at: datetime,
    period_days: int,
    related: Mapping[str, Any],
) -> tuple[str, str]:
    """Title and description, re-rendered at every evaluation (they are annotations, not identity)."""
    baseline_name = str(rule.condition.get("baseline", "previous_period")).replace("_", " ")
    context = {
        "type_label": EscalationType(rule.escalation_type).value.replace("_", " ").capitalize(),
        "metric": labels["metric"], "persona": labels["persona"], "comparison": rule.comparison,
        "threshold": f"{rule.threshold:g}",
        "recovery_threshold": None if rule.recovery_threshold is None else f"{rule.recovery_threshold:g}",
        "change": judgement.change, "baseline_name": baseline_name, "value": judgement.value,
        "baseline": judgement.baseline, "value_text": _number(judgement.value),
        "baseline_text": _number(judgement.baseline),
        "n": judgement.n, "baseline_n": judgement.baseline_n, "p_value": judgement.p_value,
        "period_days": period_days, "evaluated_at": at.strftime("%Y-%m-%d %H:%M UTC"), "rule_id": rule.rule_id,
        "action": rule.action, "deployments": related.get("deployments", []),
        "experiments": related.get("experiments", []),
    }  # fmt: skip
    title = render("escalation_title.txt.j2", **context).strip()
    template = rule.description.strip()
    if template:
        try:
            return title, render_string(template, **context).strip()
        except Exception as error:
            # A user's template failed (unknown variable, an attribute the sandbox refuses, 1/0): the check goes
            # on with the default text, and the description says what went wrong.
            problem = f"(The rule's description template failed: {type(error).__name__}: {error})"
            return title, render("escalation_description.txt.j2", **context).strip() + "\n" + problem
    return title, render("escalation_description.txt.j2", **context).strip()


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _escalation(row: Any, history: Sequence[Any]) -> Escalation:
    return Escalation(
        escalation_id=row["id"], fingerprint=row["fingerprint"], rule_id=row["rule_id"],
        escalation_type=EscalationType(row["type"]), severity=EscalationSeverity(row["severity"]),
        status=EscalationStatus(row["status"]), title=row["title"], description=row["description"],
        labels=dict(row["labels"]), affected_personas=list(row["affected_personas"]),
        evidence=[Evidence(**e) for e in row["evidence"]], opened_at=row["opened_at"], firing_at=row["firing_at"],
        resolved_at=row["resolved_at"], acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"], resolved_by=row["resolved_by"],
        resolution_notes=row["resolution_notes"], related=dict(row["related"]),
        history=[{"at": h["at"].isoformat(), "kind": h["kind"], "actor": h["actor"], "details": h["details"]}
                 for h in history],
    )  # fmt: skip


def _rule(connection: Connection, rule_id: str) -> EscalationRule:
    row = repo.rule_row(connection, rule_id)
    if row is None:
        raise EscalationNotFoundError("rule", rule_id)
    return parse_rule(row["definition"])


def _actor(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\x00" in value:
        raise EscalationInputError(name, "must be a non-empty name of at most 255 characters")
    return value.strip()


def _matchers(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise EscalationInputError(
            "matchers",
            'must be a non-empty list like [{"label": "persona", "operator": "=", "value": "agency"}]',
        )
    checked = []
    for index, matcher in enumerate(value):
        name = f"matchers[{index}]"
        if not isinstance(matcher, Mapping) or set(matcher) - {"label", "operator", "value"}:
            raise EscalationInputError(name, "must be {label, operator, value}")
        label, operator, wanted = matcher.get("label"), matcher.get("operator", "="), matcher.get("value")
        if not isinstance(label, str) or not label or not isinstance(wanted, str) or len(wanted) > 500:
            raise EscalationInputError(name, "label and value must be text")
        if operator not in MATCH_OPERATORS:
            raise EscalationInputError(f"{name}.operator", f"must be one of {', '.join(MATCH_OPERATORS)}")
        if operator in ("=~", "!~"):
            try:
                re.compile(wanted)
            except re.error as error:
                raise EscalationInputError(
                    f"{name}.value", f"is not a valid regular expression: {error}"
                ) from None
        checked.append({"label": label, "operator": operator, "value": wanted})
    return checked


def _silence(row: Any) -> dict[str, Any]:
    return {
        "silence_id": row["id"], "matchers": row["matchers"], "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(), "created_by": row["created_by"], "comment": row["comment"],
    }  # fmt: skip
