"""Which notifications to send after a check (Alertmanager semantics), written to the outbox in the check's
transaction, so a state change and the message that announces it commit together or not at all.

Per channel, alerts are grouped by `group_by` labels. A new group waits `group_wait` (so alerts that fire together
arrive together); a group whose alerts changed is re-sent after `group_interval`; an unchanged firing group is
repeated after `repeat_interval` unless every alert in it is acknowledged; when the last alert resolves, channels
with send_resolved get a resolved message. Silenced alerts are left out, and a CRITICAL alert firing for a
persona+metric inhibits lower severities on the same persona+metric.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from store.repositories import escalations as repo
from store.repositories import outbox
from tools.escalation.model import EscalationSeverity
from tools.notify.message import AlertLine, Evidence, Notification

EVENT_TYPE = "escalation.group"
MATCH_OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class NotificationPolicy:
    channels: frozenset[str] = frozenset()  # configured channels; a rule's other channels are skipped
    group_by: tuple[str, ...] = ("persona",)
    group_wait_seconds: int = 30
    group_interval_seconds: int = 300
    repeat_interval_seconds: int = 4 * 3600
    send_resolved: frozenset[str] = frozenset({"slack", "pagerduty", "webhook", "file"})
    dashboard_url: str | None = None


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    operator: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.operator == "=":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.operator == "=~" else not found


def silenced(labels: Mapping[str, str], silences: Sequence[Sequence[Matcher]]) -> bool:
    """A silence mutes an alert when all of its matchers match the alert's labels."""
    return any(all(m.matches(labels) for m in matchers) for matchers in silences)


def inhibited(alert: Any, firing: Sequence[Any]) -> bool:
    """Muted by a CRITICAL alert firing for the same persona and metric."""
    if alert["severity"] == EscalationSeverity.CRITICAL:
        return False
    labels = alert["labels"]
    return any(
        other["severity"] == EscalationSeverity.CRITICAL
        and other["id"] != alert["id"]
        and other["labels"].get("persona") == labels.get("persona")
        and other["labels"].get("metric") == labels.get("metric")
        for other in firing
    )


@dataclass
class _Group:
    channel: str
    key: str
    labels: dict[str, str]
    alerts: list[Any] = field(default_factory=list)  # escalation rows


def plan_notifications(
    connection: Connection,
    at: datetime,
    policy: NotificationPolicy,
    channels_of_rule: Mapping[str, list[str]],
) -> int:
    """Queue the notifications due at `at`; returns how many were written to the outbox."""
    groups_state = repo.group_rows(connection)
    # Resolved alerts matter only to groups still notified as firing, and only since their last notification;
    # every group that ever fired keeps its last_sent_at, so the oldest of all would reach back to the beginning.
    lookback = min(
        (
            g["last_sent_at"]
            for g in groups_state.values()
            if g["last_sent_at"] and g["last_status"] == "firing"
        ),
        default=at,
    )
    rows = repo.escalation_rows(connection, statuses=("firing", "acknowledged"), resolved_since=lookback)
    silences = [
        [Matcher(**m) for m in row["matchers"]] for row in repo.silence_rows(connection, active_at=at)
    ]
    active = [r for r in rows if r["status"] in ("firing", "acknowledged")]
    groups: dict[tuple[str, str], _Group] = {}
    muted: set[tuple[str, str]] = set()  # groups with silenced or inhibited alerts: muted, not resolved
    for row in rows:
        if row["firing_at"] is None:
            continue
        # Silences match the identity labels and the type and severity too ("mute every low-severity alert").
        labels_seen = dict(row["labels"]) | {"type": row["type"], "severity": row["severity"]}
        quiet = silenced(labels_seen, silences) or inhibited(row, active)
        for channel in channels_of_rule.get(row["rule_id"], []):
            if channel not in policy.channels:
                continue
            labels = {name: str(row["labels"].get(name, "")) for name in policy.group_by}
            key = _group_key(labels)
            if quiet:
                muted.add((channel, key))
                continue
            state = groups_state.get((channel, key))
            if row["status"] == "resolved" and _announced(row, state):
                continue
            groups.setdefault((channel, key), _Group(channel, key, labels)).alerts.append(row)
    # Groups notified as firing before whose alerts have all gone (resolved long ago, moved to other channels):
    # close them; and groups waiting out group_wait whose alerts went away: stop waiting, so a later alert waits
    # its own group_wait. A group whose alerts are only muted is neither: a silence does not resolve anything.
    for (channel, key), state in groups_state.items():
        if (channel, key) in groups or (channel, key) in muted:
            continue
        waiting = state["last_status"] != "firing" and state["first_active_at"] is not None
        if state["last_status"] == "firing" or waiting:
            groups[(channel, key)] = _Group(channel, key, dict(state["labels"]))
    sent = 0
    for (channel, key), group in sorted(groups.items()):
        sent += _maybe_send(connection, group, groups_state.get((channel, key)), at, policy)
    return sent


def _maybe_send(
    connection: Connection,
    group: _Group,
    state: Any,
    at: datetime,
    policy: NotificationPolicy,
) -> int:
    firing = [a for a in group.alerts if a["status"] in ("firing", "acknowledged")]
    last_sent, last_status = (state["last_sent_at"], state["last_status"]) if state else (None, None)
    if state is None or last_status != "firing":
        if not firing:
            if state is not None and state["first_active_at"] is not None:  # nothing left to wait for
                _save(connection, group, None, last_sent, state["last_digest"], last_status)
            return 0
        first_active = state["first_active_at"] if state and state["first_active_at"] else at
        if at - first_active < timedelta(seconds=policy.group_wait_seconds):
            _save(
                connection,
                group,
                first_active,
                last_sent,
                state["last_digest"] if state else None,
                last_status,
            )
            return 0
        return _send(connection, group, firing, at, policy, first_active)
    assert last_sent is not None
    digest = _digest(group.alerts, last_sent)
    since = at - last_sent
    if not firing:
        if group.channel not in policy.send_resolved:
            _save(connection, group, None, last_sent, digest, "resolved")
            return 0
        if since < timedelta(seconds=policy.group_interval_seconds):
            return 0
        return _send(connection, group, [], at, policy, None)
    changed = digest != state["last_digest"]
    if changed and since >= timedelta(seconds=policy.group_interval_seconds):
        return _send(connection, group, firing, at, policy, state["first_active_at"])
    all_acknowledged = all(a["status"] == "acknowledged" for a in firing)
    if not changed and not all_acknowledged and since >= timedelta(seconds=policy.repeat_interval_seconds):
        return _send(connection, group, firing, at, policy, state["first_active_at"])
    return 0


def _send(
    connection: Connection,
    group: _Group,
    firing: list[Mapping[str, Any]],
    at: datetime,
    policy: NotificationPolicy,
    first_active: datetime | None,
) -> int:
    notification = _notification(group, firing, at, policy)
    message_id = (
        "ntf_"
        + hashlib.sha256(
            f"{group.channel}\x1f{group.key}\x1f{at.isoformat()}\x1f{notification.status}\x1f"
            f"{_digest(group.alerts, at)}".encode()
        ).hexdigest()[:32]
    )
    outbox.enqueue(connection, {
        "id": message_id, "channel": group.channel, "event_type": EVENT_TYPE, "destination": group.channel,
        "payload": notification.as_dict(), "status": "pending", "attempts": 0, "next_attempt_at": at,
        "created_at": at,
    })  # fmt: skip
    for alert in group.alerts:
        repo.add_history(connection, alert["id"], at, "notified",
                         details={"channel": group.channel, "group": group.key, "status": notification.status,
                                  "message_id": message_id})  # fmt: skip
    status = "firing" if firing else "resolved"
    _save(connection, group, first_active if firing else None, at, _digest(group.alerts, at), status)
    return 1


def _save(
    connection: Connection,
    group: _Group,
    first_active: datetime | None,
    last_sent: datetime | None,
    digest: str | None,
    status: str | None,
) -> None:
    repo.save_group(connection, {
        "channel": group.channel, "group_key": group.key, "labels": group.labels, "first_active_at": first_active,
        "last_sent_at": last_sent, "last_digest": digest, "last_status": status,
    })  # fmt: skip


def _group_key(labels: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:32]


def _announced(row: Any, state: Any) -> bool:
    """A resolved alert whose resolution the group's last notification already carried: old news."""
    last_sent = state["last_sent_at"] if state is not None else None
    return last_sent is not None and row["resolved_at"] is not None and row["resolved_at"] <= last_sent


def _digest(alerts: Sequence[Mapping[str, Any]], since: datetime) -> str:
    """What the receiver knows: the firing alerts and their status (alerts resolved before `since` are old news).

    An acknowledgement is not news to the channel (its alert still fires; a person took it): acknowledging must
    not re-send the group, and an all-acknowledged group is not repeated either.
    """
    live = sorted(
        (a["fingerprint"], "firing" if a["status"] == "acknowledged" else a["status"])
        for a in alerts
        if a["status"] != "resolved" or (a["resolved_at"] is not None and a["resolved_at"] > since)
    )
    return hashlib.sha256(json.dumps(live).encode()).hexdigest()[:32]


def _notification(
    group: _Group, firing: list[Mapping[str, Any]], at: datetime, policy: NotificationPolicy
) -> Notification:
    # Most severe first, then oldest, then by labels: the title names the same alert whatever the row order.
    firing = sorted(firing, key=_prominence)
    alerts = [_line(a) for a in sorted(group.alerts, key=_prominence)]
    severities = [EscalationSeverity(a.severity) for a in alerts] or [EscalationSeverity.LOW]
    top = max(severities, key=lambda s: s.rank)
    scope = ", ".join(f"{k}={v}" for k, v in group.labels.items())
    if firing:
        title = f"[FIRING:{len(firing)}] {firing[0]['title']}" + (
            f" (+{len(firing) - 1} more)" if len(firing) > 1 else ""
        )
        summary = f"{len(firing)} escalation(s) firing for {scope}: " + "; ".join(a["title"] for a in firing)
    else:
        title = f"[RESOLVED] escalations for {scope}"
        summary = f"Every escalation for {scope} has resolved."
    links = {"dashboard": policy.dashboard_url} if policy.dashboard_url else {}
    return Notification(
        group_key=group.key, status="firing" if firing else "resolved", severity=top.value,
        title=title[:300], summary=summary[:2000], alerts=alerts, group_labels=group.labels, sent_at=at, links=links,
    )  # fmt: skip


def _prominence(row: Mapping[str, Any]) -> tuple[int, datetime, list[tuple[str, str]]]:
    return -EscalationSeverity(row["severity"]).rank, row["opened_at"], sorted(row["labels"].items())


def _line(row: Mapping[str, Any]) -> AlertLine:
    return AlertLine(
        escalation_id=row["id"], fingerprint=row["fingerprint"], status=row["status"],
        severity=row["severity"], title=row["title"], description=row["description"],
        labels={k: str(v) for k, v in row["labels"].items()} | {"type": row["type"], "severity": row["severity"]},
        evidence=[Evidence(**e) for e in row["evidence"]],
        opened_at=row["opened_at"], resolved_at=row["resolved_at"],
    )  # fmt: skip
