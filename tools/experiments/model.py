"""An experiment's definition (what the team configures) and its parsing, with errors that name the field.

The definition is immutable once running except for weights and coverage, which start a new phase with a new
seed (so users are re-drawn and the analysis never mixes two splits).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from tools.events.normalize import FieldError
from tools.events.segment import check_json_values
from tools.experiments.errors import ExperimentInputError
from tools.experiments.metrics import ExperimentMetric, parse_metric

WEIGHT_SUM_TOLERANCE = 1e-6
MAX_VARIANTS = 64
MAX_METRICS = 20
MAX_DURATION_DAYS = 365
MAX_CONFIGURATION_CHARS = 20_000
PERCENT_HINT = " (give fractions such as 0.5, not percentages)"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class ExperimentType(StrEnum):
    ONBOARDING = "onboarding"
    PRICING = "pricing"
    REPORT_TEMPLATE = "report_template"
    FEATURE = "feature"
    OTHER = "other"


class ExperimentMode(StrEnum):
    AB = "ab"
    SHADOW = "shadow"  # users see control; the variant they would have had is recorded and analysed
    MULTIVARIATE = "multivariate"  # full factorial: every combination of factor levels is a variant


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# The event that `completion_rate` means for each experiment type (TRACKING_PLAN.md: "or the experiment's own
# completion event").
COMPLETION_EVENTS = {ExperimentType.ONBOARDING: "onboarding_completed", ExperimentType.PRICING: "subscription_started",
                     ExperimentType.REPORT_TEMPLATE: "report_sent"}  # fmt: skip
DEFAULT_COMPLETION_EVENT = "task_completed"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    configuration: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Guardrail:
    metric: ExperimentMetric
    margin: float  # relative non-inferiority margin: 0.02 tolerates a 2 % worse value


@dataclass(frozen=True)
class ExperimentSpec:
    key: str
    name: str
    type: ExperimentType
    variants: tuple[Variant, ...]
    primary_metrics: tuple[ExperimentMetric, ...]
    mode: ExperimentMode = ExperimentMode.AB
    hypothesis: str = ""
    secondary_metrics: tuple[ExperimentMetric, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    coverage: float = 1.0
    personas: tuple[str, ...] = ()  # empty: everyone
    duration_days: int = 14
    hash_version: int = 2
    seed: str = ""  # empty: the key (GrowthBook's default)
    factors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    completion_event: str = DEFAULT_COMPLETION_EVENT
    engine: str = "frequentist"
    correction: str = "holm"
    alpha: float = 0.05
    cuped: bool = True
    cuped_lookback_days: int = 14
    min_units_per_variant: int = 100
    minimum_detectable_effect: float = 0.05  # relative, for the power status

    @property
    def weights(self) -> list[float]:
        return [v.weight for v in self.variants]

    def as_document(self) -> dict[str, Any]:
        return {
            "variants": [{"name": v.name, "weight": v.weight, "configuration": v.configuration} for v in self.variants],
            "primary_metrics": [m.as_dict() for m in self.primary_metrics],
            "secondary_metrics": [m.as_dict() for m in self.secondary_metrics],
            "guardrails": [{"metric": g.metric.as_dict(), "margin": g.margin} for g in self.guardrails],
            "coverage": self.coverage, "personas": list(self.personas), "duration_days": self.duration_days,
            "hash_version": self.hash_version, "seed": self.seed,
            "factors": {k: list(v) for k, v in self.factors.items()},
            "completion_event": self.completion_event, "engine": self.engine, "correction": self.correction,
            "alpha": self.alpha, "cuped": self.cuped, "cuped_lookback_days": self.cuped_lookback_days,
            "min_units_per_variant": self.min_units_per_variant,
            "minimum_detectable_effect": self.minimum_detectable_effect,
        }  # fmt: skip


@dataclass(frozen=True)
class Phase:
    index: int
    seed: str
    coverage: float
    weights: tuple[float, ...]
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Experiment:
    id: int
    spec: ExperimentSpec
    status: ExperimentStatus
    created_at: datetime
    phase: Phase | None = None  # None until started
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    decision: str | None = None
    decision_notes: str = ""

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def experiment_id(self) -> str:
        """The seed API's name for the key (every door addresses an experiment by its key)."""
        return self.spec.key

    def as_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "key": spec.key, "id": self.id, "name": spec.name, "type": spec.type.value, "mode": spec.mode.value,
            "status": self.status.value, "hypothesis": spec.hypothesis, **spec.as_document(),
            "phase": None if self.phase is None else {
                "index": self.phase.index, "seed": self.phase.seed, "coverage": self.phase.coverage,
                "weights": list(self.phase.weights), "started_at": self.phase.started_at.isoformat()},
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "decision": self.decision, "decision_notes": self.decision_notes,
        }  # fmt: skip


def slug(name: str) -> str:
    """A key from a display name: "Onboarding Flow Test" → "onboarding-flow-test"."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:100] or "experiment"


def parse_spec(data: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a definition (HTTP body, CLI file, seed call) into an ExperimentSpec; errors name the field."""
    if not isinstance(data, Mapping):
        raise ExperimentInputError("body", "must be a JSON object")
    try:
        check_json_values(dict(data), "body")  # NUL, lone surrogates, non-finite numbers, deep nesting
    except FieldError as error:
        raise ExperimentInputError(error.field.removeprefix("body."), error.message) from None
    allowed = set(ExperimentSpec.__dataclass_fields__) | {
        "success_metrics",
        "experiment_type",
        "guardrail_metrics",
    }
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ExperimentInputError(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    name = _text(data.get("name"), "name", 255)
    key = data.get("key") or slug(name)
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ExperimentInputError(
            "key", "must be 1–100 letters, digits, '-', '_', '.', ':' starting with a letter or digit"
        )
    # Errors name the field as the caller spelt it: the seed's success_metrics, experiment_type, …
    type_field = "type" if "type" in data or "experiment_type" not in data else "experiment_type"
    primary_field = (
        "success_metrics"
        if "success_metrics" in data and "primary_metrics" not in data
        else "primary_metrics"
    )
    guardrail_field = (
        "guardrail_metrics" if "guardrail_metrics" in data and "guardrails" not in data else "guardrails"
    )
    exp_type = _enum(ExperimentType, data.get(type_field, "other"), type_field)
    mode = _enum(ExperimentMode, data.get("mode", "ab"), "mode")
    factors = _factors(data.get("factors"), mode)
    if mode is ExperimentMode.MULTIVARIATE and data.get("variants") is None:
        variants = _factorial_variants(factors)
    else:
        variants = _variants(data.get("variants"))
        _check_cells(variants, factors)
    completion_event = _text(
        data.get("completion_event", COMPLETION_EVENTS.get(exp_type, DEFAULT_COMPLETION_EVENT)),
        "completion_event",
        100,
    )
    primary = _metrics(data.get(primary_field), primary_field, completion_event, required=True)
    secondary = _metrics(data.get("secondary_metrics", []), "secondary_metrics", completion_event)
    spec = ExperimentSpec(
        key=key, name=name, type=exp_type, variants=variants, primary_metrics=primary, mode=mode,
        hypothesis=_optional_text(data.get("hypothesis"), "hypothesis", 5000),
        secondary_metrics=secondary,
        guardrails=_guardrails(data.get(guardrail_field, []), guardrail_field, completion_event),
        coverage=_fraction(data.get("coverage", 1.0), "coverage"),
        personas=_personas(data.get("personas", [])),
        duration_days=_whole(data.get("duration_days", 14), "duration_days", 1, MAX_DURATION_DAYS),
        hash_version=_whole(data.get("hash_version", 2), "hash_version", 1, 2),
        seed=_optional_text(data.get("seed"), "seed", 255),
        factors=factors, completion_event=completion_event,
        engine=_choice(data.get("engine", "frequentist"), "engine", ("frequentist", "bayesian")),
        correction=_choice(data.get("correction", "holm"), "correction", ("holm", "benjamini-hochberg", "none")),
        alpha=_open_fraction(data.get("alpha", 0.05), "alpha"),
        cuped=_flag(data.get("cuped", True), "cuped"),
        cuped_lookback_days=_whole(data.get("cuped_lookback_days", 14), "cuped_lookback_days", 1, 90),
        min_units_per_variant=_whole(data.get("min_units_per_variant", 100), "min_units_per_variant", 2, 10**9),
        minimum_detectable_effect=_open_fraction(
            data.get("minimum_detectable_effect", 0.05), "minimum_detectable_effect"),
    )  # fmt: skip
    names = [
        m.name for m in (*spec.primary_metrics, *spec.secondary_metrics, *(g.metric for g in spec.guardrails))
    ]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ExperimentInputError(primary_field, f"metric {duplicated[0]!r} is listed more than once")
    return spec


def with_weights(spec: ExperimentSpec, weights: Sequence[Any] | None, coverage: Any | None) -> ExperimentSpec:
    """The spec with new weights and/or coverage, validated (a running experiment then starts a new phase)."""
    variants = spec.variants
    if weights is not None:
        if not isinstance(weights, list | tuple) or len(weights) != len(spec.variants):
            raise ExperimentInputError(
                "weights", f"must be a list of {len(spec.variants)} numbers, one per variant"
            )
        hint = PERCENT_HINT if _looks_like_percentages(weights) else ""
        values = [_fraction(w, f"weights[{i}]", hint) for i, w in enumerate(weights)]
        _check_weight_sum(values, "weights")
        variants = tuple(replace(v, weight=w) for v, w in zip(spec.variants, values, strict=True))
    new_coverage = spec.coverage if coverage is None else _fraction(coverage, "coverage")
    return replace(spec, variants=variants, coverage=new_coverage)


def _variants(raw: Any) -> tuple[Variant, ...]:
    if not isinstance(raw, list | tuple):
        raise ExperimentInputError(
            "variants", "must be a list of {name, weight | traffic_percentage, configuration}"
        )
    if len(raw) < 2:
        raise ExperimentInputError("variants", f"needs at least 2 variants (control first), got {len(raw)}")
    if len(raw) > MAX_VARIANTS:
        raise ExperimentInputError("variants", f"at most {MAX_VARIANTS} variants, got {len(raw)}")
    raw_weights = [item.get("weight", item.get("traffic_percentage")) if isinstance(item, Mapping) else None
                   for item in raw]  # fmt: skip
    hint = PERCENT_HINT if _looks_like_percentages(raw_weights) else ""
    variants = []
    for i, item in enumerate(raw):
        where = f"variants[{i}]"
        if not isinstance(item, Mapping):
            raise ExperimentInputError(where, "must be an object with name, weight and configuration")
        unknown = sorted(set(item) - {"name", "weight", "traffic_percentage", "configuration", "key"})
        if unknown:
            raise ExperimentInputError(
                f"{where}.{unknown[0]}",
                "unknown key; allowed: name, weight (or traffic_percentage), configuration",
            )
        weight = item.get("weight", item.get("traffic_percentage"))
        if weight is None:
            raise ExperimentInputError(f"{where}.weight", "is required (a fraction such as 0.5)")
        configuration = item.get("configuration", {})
        if not isinstance(configuration, Mapping):
            raise ExperimentInputError(f"{where}.configuration", "must be a JSON object")
        if len(repr(configuration)) > MAX_CONFIGURATION_CHARS:
            raise ExperimentInputError(
                f"{where}.configuration", f"is larger than {MAX_CONFIGURATION_CHARS} characters"
            )
        name = _text(item.get("name"), f"{where}.name", 100)
        variants.append(Variant(name, _fraction(weight, f"{where}.weight", hint), dict(configuration)))
    names = [v.name for v in variants]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ExperimentInputError(
            "variants", f"variant name {duplicated[0]!r} is used twice; names must be unique"
        )
    _check_weight_sum([v.weight for v in variants], "variants")
    return tuple(variants)


def _looks_like_percentages(weights: Sequence[Any]) -> bool:
    """Weights such as 50/50 or 20/30/50: each is then refused as a fraction, and the error says why."""
    numbers = [
        w for w in weights if isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
    ]
    return len(numbers) == len(weights) and abs(math.fsum(numbers) - 100) < 1e-6


def _check_weight_sum(weights: Sequence[float], field_name: str) -> None:
    total = math.fsum(weights)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ExperimentInputError(field_name, f"weights must sum to 1 ± 1e-6, they sum to {total:g}")


def _check_cells(variants: Sequence[Variant], factors: Mapping[str, Sequence[str]]) -> None:
    """Explicit variants of a multivariate experiment must each name one level of every factor (main effects
    pool the cells by level)."""
    for i, variant in enumerate(variants):
        for factor, levels in factors.items():
            if variant.configuration.get(factor) not in levels:
                raise ExperimentInputError(
                    f"variants[{i}].configuration.{factor}",
                    f"must be one of the levels {', '.join(levels)} (each variant is a cell of the factors)",
                )


def _factors(raw: Any, mode: ExperimentMode) -> dict[str, tuple[str, ...]]:
    if raw is None or raw == {}:
        if mode is ExperimentMode.MULTIVARIATE:
            raise ExperimentInputError(
                "factors", 'a multivariate experiment needs factors, e.g. {"layout": ["list", "grid"]}'
            )
        return {}
    if mode is not ExperimentMode.MULTIVARIATE:
        raise ExperimentInputError("factors", "only multivariate experiments take factors")
    if not isinstance(raw, Mapping) or not 1 <= len(raw) <= 4:
        raise ExperimentInputError("factors", "must be an object of 1–4 factors, each a list of 2–8 levels")
    factors: dict[str, tuple[str, ...]] = {}
    for name, levels in raw.items():
        where = f"factors.{name}"
        _text(name, "factors", 50)
        if not isinstance(levels, list | tuple) or not 2 <= len(levels) <= 8:
            raise ExperimentInputError(where, "must be a list of 2–8 levels (the first is the control level)")
        texts = tuple(_text(level, where, 50) for level in levels)
        if len(set(texts)) != len(texts):
            raise ExperimentInputError(where, "levels must be unique")
        factors[str(name)] = texts
    cells = math.prod(len(v) for v in factors.values())
    if cells > MAX_VARIANTS:
        raise ExperimentInputError("factors", f"{cells} cells is more than {MAX_VARIANTS} variants")
    return factors


def _factorial_variants(factors: Mapping[str, Sequence[str]]) -> tuple[Variant, ...]:
    """Every combination of levels, control (all first levels) first, equal weights."""
    names = list(factors)
    cells = list(itertools.product(*(factors[n] for n in names)))
    weight = 1 / len(cells)
    variants = []
    for cell in cells:
        levels = dict(zip(names, cell, strict=True))
        variants.append(Variant("|".join(f"{n}={level}" for n, level in levels.items()), weight, levels))
    return tuple(variants)


def _metrics(
    raw: Any, field_name: str, completion_event: str, *, required: bool = False
) -> tuple[ExperimentMetric, ...]:
    if raw is None and required:
        raise ExperimentInputError(field_name, "at least one primary (success) metric is required")
    if not isinstance(raw, list | tuple):
        raise ExperimentInputError(field_name, "must be a list of metric names or definitions")
    if required and not raw:
        raise ExperimentInputError(field_name, "at least one primary (success) metric is required")
    if len(raw) > MAX_METRICS:
        raise ExperimentInputError(field_name, f"at most {MAX_METRICS} metrics")
    return tuple(
        parse_metric(m, f"{field_name}[{i}]", completion_event=completion_event) for i, m in enumerate(raw)
    )


def _guardrails(raw: Any, field_name: str, completion_event: str) -> tuple[Guardrail, ...]:
    if not isinstance(raw, list | tuple) or len(raw) > MAX_METRICS:
        raise ExperimentInputError(
            field_name, 'must be a list of {"metric": name or definition, "margin": 0.02}'
        )
    guardrails = []
    for i, item in enumerate(raw):
        where = f"{field_name}[{i}]"
        if isinstance(item, str):
            item = {"metric": item}
        if not isinstance(item, Mapping) or "metric" not in item:
            raise ExperimentInputError(where, 'must be {"metric": …, "margin": …} or a metric name')
        margin = item.get("margin", 0.0)
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise ExperimentInputError(
                f"{where}.margin", f"must be a relative margin in [0, 1), got {margin!r}"
            )
        metric = parse_metric(item["metric"], f"{where}.metric", completion_event=completion_event)
        guardrails.append(Guardrail(metric, float(margin)))
    return tuple(guardrails)


def _personas(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        raise ExperimentInputError("personas", "must be a list of persona keys (empty: everyone)")
    return tuple(_text(p, f"personas[{i}]", 64) for i, p in enumerate(raw))


def _text(value: Any, field_name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ExperimentInputError(field_name, "must be a non-empty string")
    if len(value) > limit:
        raise ExperimentInputError(field_name, f"is {len(value)} characters; the limit is {limit}")
    return value.strip()


def _optional_text(value: Any, field_name: str, limit: int) -> str:
    """Empty or missing → ""; otherwise a string within `limit`."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ExperimentInputError(field_name, "must be a string")
    if len(value) > limit:
        raise ExperimentInputError(field_name, f"is {len(value)} characters; the limit is {limit}")
    return value.strip()


def _enum(enum: type[StrEnum], value: Any, field_name: str) -> Any:
    raw = value.value if isinstance(value, StrEnum) else value
    try:
        return enum(str(raw).lower())
    except ValueError:
        choices = ", ".join(e.value for e in enum)
        raise ExperimentInputError(field_name, f"must be one of {choices}, got {value!r}") from None


def _choice(value: Any, field_name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ExperimentInputError(field_name, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _number(value: Any, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExperimentInputError(field_name, f"must be a finite number, got {value!r}")
    return float(value)


def _fraction(value: Any, field_name: str, hint: str = "") -> float:
    number = _number(value, field_name)
    if not 0 <= number <= 1:
        raise ExperimentInputError(field_name, f"must be between 0 and 1, got {value!r}{hint}")
    return number


def _open_fraction(value: Any, field_name: str) -> float:
    number = _number(value, field_name)
    if not 0 < number < 1:
        raise ExperimentInputError(field_name, f"must be strictly between 0 and 1, got {value!r}")
    return number


def _whole(value: Any, field_name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExperimentInputError(field_name, f"must be a whole number in [{low}, {high}], got {value!r}")
    return value


def _flag(value: Any, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise ExperimentInputError(field_name, "must be true or false")
    return value
