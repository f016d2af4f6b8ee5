"""Simulated experiment traffic for the demo: users sign up day by day, are assigned, and behave by variant.

Deterministic for a seed. The onboarding experiment carries a real planted effect (guided onboarding completes
more often and reaches first value sooner); the pricing experiment carries none, so its analysis must find none.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.experiments.service import ExperimentService

ONBOARDING_EXPERIMENT: dict[str, Any] = {
    "key": "onboarding-flow",
    "name": "Guided onboarding",
    "type": "onboarding",
    "hypothesis": "A guided setup (checklist + sample report) gets more new users through onboarding, sooner.",
    "variants": [
        {"name": "standard", "weight": 0.5, "configuration": {"flow": "standard"}},
        {"name": "guided", "weight": 0.5, "configuration": {"flow": "guided"}},
    ],
    "success_metrics": ["completion_rate", "time_to_value"],
    "guardrails": [{"metric": "error_rate", "margin": 0.25}],
    "duration_days": 14,
}
PRICING_EXPERIMENT: dict[str, Any] = {
    "key": "pricing-annual-first",
    "name": "Annual plan shown first",
    "type": "pricing",
    "hypothesis": "Showing the annual plan first raises trial-to-paid conversion.",
    "variants": [
        {"name": "monthly_first", "weight": 0.5, "configuration": {"plan_order": ["monthly", "annual"]}},
        {"name": "annual_first", "weight": 0.5, "configuration": {"plan_order": ["annual", "monthly"]}},
    ],
    "success_metrics": ["conversion_rate"],
    "guardrails": [{"metric": "support_incidents", "margin": 0.5}],
    "duration_days": 14,
}
# Planted behaviour: (completion probability, median hours to first report) per onboarding variant.
ONBOARDING_BEHAVIOUR = {"standard": (0.32, 5.0), "guided": (0.42, 3.5)}
FIRST_REPORT_PROBABILITY = 0.6
CONVERSION_PROBABILITY = 0.15  # the same in both pricing variants: no effect
ERROR_PROBABILITY = 0.1
SUPPORT_PROBABILITY = 0.05


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    first_day: datetime  # midnight UTC of the first day of traffic
    days: int = 14
    users_per_day: int = 100
    seed: int = 7
    personas: tuple[str, ...] = ("solo_podcaster", "podcast_network", "agency", "brand_sponsor")
    persona_weights: tuple[float, ...] = (0.45, 0.25, 0.2, 0.1)


def run_experiments(
    service: ExperimentService,
    ingestor: EventIngestor,
    plan: TrafficPlan,
    clock: list[datetime],
    on_day: Callable[[], None] | None = None,
) -> int:
    """Create and start both experiments, then simulate `plan`; `clock[0]` is the service's clock.

    Returns the number of events stored, exposures included."""
    clock[0] = plan.first_day
    for definition in (ONBOARDING_EXPERIMENT, PRICING_EXPERIMENT):
        service.create(definition)
        service.start(definition["key"])
    stored = 0
    for day in range(plan.days):
        signup = plan.first_day + timedelta(days=day, hours=9)
        clock[0] = signup
        ids = [f"trial-{plan.seed}-{day}-{i}" for i in range(plan.users_per_day)]
        onboarding = service.assign_many(ONBOARDING_EXPERIMENT["key"], ids)
        pricing = service.assign_many(
            PRICING_EXPERIMENT["key"], ids
        )  # independent hashing: an unrelated split
        stored += sum(a.first_exposure for a in (*onboarding, *pricing))  # experiment_viewed events
        events = list(
            _day_events(plan, day, signup, [(a.user_id, a.variant or "standard") for a in onboarding])
        )
        stored += ingestor.ingest(events).accepted
        if on_day is not None:
            on_day()
    return stored


def _day_events(
    plan: TrafficPlan, day: int, signup: datetime, users: list[tuple[str, str]]
) -> Iterator[CanonicalEvent]:
    for index, (user_id, variant) in enumerate(users):
        rng = random.Random(f"{plan.seed}-{day}-{index}")  # nosec B311  # seeded demo data, not security
        persona = rng.choices(plan.personas, plan.persona_weights)[0]
        completion, median_hours = ONBOARDING_BEHAVIOUR[variant]
        rows: list[tuple[str, float, dict[str, Any]]] = [("user_signed_up", 0.0, {"persona": persona})]
        if rng.random() < completion:
            rows.append(("onboarding_completed", rng.uniform(0.2, 40.0), {}))
        if rng.random() < FIRST_REPORT_PROBABILITY:
            hours = math.exp(rng.gauss(math.log(median_hours), 0.8))
            rows.append(("report_generated", min(hours, 70.0), {"report_id": f"{user_id}-r1"}))
        if rng.random() < CONVERSION_PROBABILITY:
            rows.append(("subscription_started", rng.uniform(1.0, 60.0), {"plan": "pro", "mrr": 29}))
        if rng.random() < ERROR_PROBABILITY:
            rows.append(("error_occurred", rng.uniform(0.1, 48.0), {"feature": "onboarding"}))
        if rng.random() < SUPPORT_PROBABILITY:
            rows.append(("support_ticket_opened", rng.uniform(1.0, 60.0), {"ticket_id": f"{user_id}-t1"}))
        yield CanonicalEvent(
            message_id=f"demo-exp-{user_id}-identify", type="identify", name="identify", timestamp=signup,
            received_at=signup, user_id=user_id, properties={"persona": persona},
        )  # fmt: skip
        for number, (name, hours, properties) in enumerate(rows):
            moment = signup + timedelta(hours=hours)
            yield CanonicalEvent(
                message_id=f"demo-exp-{user_id}-{number}", type="track", name=name, timestamp=moment,
                received_at=moment, user_id=user_id, properties=properties,
            )  # fmt: skip
