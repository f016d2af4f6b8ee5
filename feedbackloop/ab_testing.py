"""`ABTestingFramework`: the seed's async API for experiments, over the experiments service.

ab_testing = ABTestingFramework()                  # configured database, or ABTestingFramework("sqlite:///x.db")
experiment = await ab_testing.create_experiment(name="Onboarding Flow Test", experiment_type=ExperimentType.ONBOARDING,
    variants=[{"name": "Control", "traffic_percentage": 0.5, "configuration": {"flow": "standard"}}, …],
    success_metrics=["time_to_value", "completion_rate"], duration_days=14)
await ab_testing.start_experiment(experiment.experiment_id)
assignment = await ab_testing.assign_variant(user, experiment.experiment_id)
results = await ab_testing.analyze_experiment(experiment.experiment_id)   # .winner, .confidence_level
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from feedbackloop.runtime import database_for, personas_for
from feedbackloop.settings import Settings, get_settings
from tools.events.ingest import EventIngestor, IngestSummary
from tools.experiments.analysis import ExperimentResults, analyze
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError, ExperimentStateError
from tools.experiments.model import Experiment, ExperimentMode, ExperimentStatus, ExperimentType
from tools.experiments.service import Assignment, ExperimentService
from tools.users import User

__all__ = [
    "ABTestingFramework",
    "Assignment",
    "Experiment",
    "ExperimentInputError",
    "ExperimentMode",
    "ExperimentNotFoundError",
    "ExperimentResults",
    "ExperimentStateError",
    "ExperimentStatus",
    "ExperimentType",
]


class ABTestingFramework:
    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        database = database_for(database_url, self.settings)
        self.service = ExperimentService(database, **({"clock": clock} if clock is not None else {}))
        self.ingestor = EventIngestor(database, personas_for(self.settings))

    async def create_experiment(
        self,
        name: str,
        experiment_type: ExperimentType | str = ExperimentType.OTHER,
        variants: Sequence[Mapping[str, Any]] = (),
        success_metrics: Sequence[Any] = (),
        duration_days: int = 14,
        **options: Any,
    ) -> Experiment:
        """A draft experiment; `options` takes any other definition field (key, hypothesis, mode, guardrails, …)."""
        definition = {"name": name, "type": experiment_type, "variants": list(variants),
                      "success_metrics": list(success_metrics), "duration_days": duration_days, **options}  # fmt: skip
        return await asyncio.to_thread(self.service.create, definition)

    async def get_experiment(self, experiment_id: str) -> Experiment:
        return await asyncio.to_thread(self.service.get, experiment_id)

    async def start_experiment(self, experiment_id: str) -> Experiment:
        return await asyncio.to_thread(self.service.start, experiment_id)

    async def pause_experiment(self, experiment_id: str) -> Experiment:
        return await asyncio.to_thread(self.service.pause, experiment_id)

    async def resume_experiment(self, experiment_id: str) -> Experiment:
        return await asyncio.to_thread(self.service.resume, experiment_id)

    async def stop_experiment(
        self, experiment_id: str, decision: str = "inconclusive", notes: str = ""
    ) -> Experiment:
        return await asyncio.to_thread(self.service.stop, experiment_id, decision, notes)

    async def assign_variant(self, user: User | str, experiment_id: str) -> Assignment:
        """The user's sticky variant (control's configuration in shadow mode); the first exposure is recorded."""
        return await asyncio.to_thread(self.service.assign, experiment_id, user)

    async def assign_variants(self, users: Sequence[User | str], experiment_id: str) -> list[Assignment]:
        return await asyncio.to_thread(self.service.assign_many, experiment_id, list(users))

    async def track_experiment_event(
        self,
        user_id: str,
        experiment_id: str,
        event_name: str,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
    ) -> IngestSummary:
        """Record a product event for an experiment's user; it counts towards the experiment's metrics."""
        return await asyncio.to_thread(
            self.service.track, experiment_id, user_id, event_name, properties, timestamp=timestamp,
            ingestor=self.ingestor,
        )  # fmt: skip

    async def analyze_experiment(self, experiment_id: str) -> ExperimentResults:
        return await asyncio.to_thread(analyze, self.service, experiment_id)
