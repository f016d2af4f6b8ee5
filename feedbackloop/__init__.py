"""feedbackloop: the product feedback loop as a self-hosted service.

The public Python API. Class names follow the product's original specification; each is exported by the change
that implements it.
"""

from __future__ import annotations

from feedbackloop.ab_testing import ABTestingFramework, ExperimentType
from feedbackloop.auto_escalation import (
    AutoEscalationSystem,
    EscalationRule,
    EscalationSeverity,
    EscalationType,
)
from feedbackloop.integration import FeedbackLoopIntegration
from feedbackloop.journey_surveys import JourneySurveySystem, Survey, SurveyTrigger, SurveyType
from feedbackloop.kpi_dashboard import KPICategory, KPIDashboardAggregator
from feedbackloop.metrics import MetricCategory, MetricsTracker
from feedbackloop.retro_agent import RetroAgent, RetroAnalysis, RetroAnalysisType
from feedbackloop.settings import Settings, get_settings
from store.database import Database
from tools.events.ingest import EventIngestor, IngestSummary
from tools.events.model import CanonicalEvent
from tools.personas import load_registry
from tools.users import User

__all__ = [
    "ABTestingFramework",
    "AutoEscalationSystem",
    "CanonicalEvent",
    "Database",
    "EscalationRule",
    "EscalationSeverity",
    "EscalationType",
    "EventIngestor",
    "ExperimentType",
    "FeedbackLoopIntegration",
    "IngestSummary",
    "JourneySurveySystem",
    "KPICategory",
    "KPIDashboardAggregator",
    "MetricCategory",
    "MetricsTracker",
    "RetroAgent",
    "RetroAnalysis",
    "RetroAnalysisType",
    "Settings",
    "Survey",
    "SurveyTrigger",
    "SurveyType",
    "User",
    "connect",
    "ingestor",
]


def connect(database_url: str | None = None) -> Database:
    """Open the configured database (or `database_url`), bringing its schema up to date first."""
    return Database(database_url or get_settings().database_url)


def ingestor(database_url: str | None = None) -> EventIngestor:
    """An EventIngestor on the configured database, with the configured persona registry."""
    settings = get_settings()
    return EventIngestor(connect(database_url), load_registry(settings.personas_file))
