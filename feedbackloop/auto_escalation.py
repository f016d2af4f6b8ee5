"""`AutoEscalationSystem`: the seed's async API for escalations, over the escalation service.

auto_escalation = AutoEscalationSystem()                 # configured database, or AutoEscalationSystem("sqlite:///x.db")
escalations = await auto_escalation.check_escalations(days=7)      # the active escalations after this check
await auto_escalation.resolve_escalation(escalation_id=…, resolved_by="user123", resolution_notes="Fixed in v1.2.3")
auto_escalation.add_rule(EscalationRule(rule_id="custom_rule", …))  # synchronous, as in the seed

The five default rules are stored the first time the system starts on a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from feedbackloop.notifications_policy import policy_from_settings
from feedbackloop.runtime import database_for
from feedbackloop.settings import Settings, get_settings
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
from tools.escalation.service import CheckResult, EscalationService

__all__ = [
    "AutoEscalationSystem",
    "CheckResult",
    "Escalation",
    "EscalationInputError",
    "EscalationNotFoundError",
    "EscalationRule",
    "EscalationSeverity",
    "EscalationStateError",
    "EscalationStatus",
    "EscalationType",
]


class AutoEscalationSystem:
    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.service = EscalationService(
            database_for(database_url, self.settings),
            policy=policy_from_settings(self.settings),
            renewal_window_days=self.settings.renewal_window_days,
            gross_margin=self.settings.gross_margin,
            **({"clock": clock} if clock is not None else {}),
        )
        self.service.ensure_default_rules()

    async def check_escalations(self, days: int = 7, at: datetime | None = None) -> list[Escalation]:
        """Evaluate every enabled rule now (or at `at`); returns the escalations active afterwards."""
        result = await self.check(days=days, at=at)
        return result.active

    async def check(self, days: int = 7, at: datetime | None = None) -> CheckResult:
        """Like check_escalations, with what changed (opened, fired, resolved, notifications queued)."""
        return await asyncio.to_thread(self.service.check, at=at, days=days)

    async def resolve_escalation(
        self, escalation_id: str, resolved_by: str, resolution_notes: str = ""
    ) -> Escalation:
        return await asyncio.to_thread(self.service.resolve, escalation_id, resolved_by, resolution_notes)

    async def acknowledge_escalation(self, escalation_id: str, acknowledged_by: str) -> Escalation:
        return await asyncio.to_thread(self.service.acknowledge, escalation_id, acknowledged_by)

    async def get_escalations(self, status: EscalationStatus | str | None = None) -> list[Escalation]:
        value = status.value if isinstance(status, EscalationStatus) else status
        return await asyncio.to_thread(self.service.escalations, value)

    def add_rule(self, rule: EscalationRule | Mapping[str, Any]) -> EscalationRule:
        """Store a rule (synchronous, as the seed calls it); a rule with the same id is replaced."""
        rule = rule if isinstance(rule, EscalationRule) else parse_rule(rule)
        try:
            return self.service.add_rule(rule)
        except EscalationStateError:
            return self.service.update_rule(rule.rule_id, rule.as_dict())

    def rules(self) -> list[EscalationRule]:
        return self.service.rules()
