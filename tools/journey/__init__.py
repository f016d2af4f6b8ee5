"""The deterministic theory catalogue a retro maps its signals to: journey stages, Business Model Canvas blocks,
behavioural principles and their interventions (tools.journey.catalogue, tools.journey.principles)."""

from tools.journey.catalogue import (
    CANVAS_BLOCKS,
    JOURNEY_STAGES,
    METRIC_THEORY,
    MetricTheory,
    canonical_metric,
    map_signal,
    map_signals,
    theory_for,
)
from tools.journey.principles import PRINCIPLES, PRINCIPLES_BY_KEY, Principle

__all__ = [
    "CANVAS_BLOCKS",
    "JOURNEY_STAGES",
    "METRIC_THEORY",
    "PRINCIPLES",
    "PRINCIPLES_BY_KEY",
    "MetricTheory",
    "Principle",
    "canonical_metric",
    "map_signal",
    "map_signals",
    "theory_for",
]
