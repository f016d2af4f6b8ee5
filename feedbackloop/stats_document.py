"""The JSON door to tools.stats (`feedbackloop stats analyze`): validate a document, analyse, render JSON.

Input, one metric:
    {"metric": {"name", "kind": binomial|mean|ratio|quantile, "cuped", "lower_is_better", "non_inferiority_margin"},
     "variants": [{"name", "weight", "n", "sum", "sum_squares", …}, …],      # the first variant is control
     "analysis": {"engine", "difference", "alpha", "sequential", "sequential_tuning", "one_sided", "prior"}}
or several: {"metrics": [<one metric>, …], "correction": "holm" | "bh" | null}.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.stats import (
    AnalysisSettings,
    BinomialStatistic,
    CupedStatistic,
    GaussianPrior,
    MeanStatistic,
    MetricInput,
    MetricResult,
    QuantileStatistic,
    RatioStatistic,
    Statistic,
    StatisticInputError,
    analyze_metrics,
)

WEIGHT_TOLERANCE = 1e-6


class StatsDocumentError(ValueError):
    """The document is invalid; the message starts with the path of the bad field (e.g. variants[1].n)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSpec(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["binomial", "mean", "ratio", "quantile"]
    cuped: bool = False
    lower_is_better: bool = False
    non_inferiority_margin: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _cuped_needs_a_mean(self) -> MetricSpec:
        if self.cuped and self.kind not in ("mean", "binomial"):
            raise ValueError(f"cuped: supported for mean and binomial metrics, not {self.kind}")
        return self


class VariantSpec(_Strict):
    name: str = Field(min_length=1)
    weight: float | None = Field(None, ge=0, le=1)
    n: int = Field(ge=0)
    sum: float | None = None
    sum_squares: float | None = None
    denominator_sum: float | None = None
    denominator_sum_squares: float | None = None
    main_denominator_sum_product: float | None = None
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    main_covariate_sum_product: float | None = None
    quantile: float | None = None
    estimate: float | None = None
    lower_order_statistic: float | None = None
    upper_order_statistic: float | None = None


class PriorSpec(_Strict):
    mean: float = 0.0
    stddev: float = Field(gt=0)


class AnalysisSpec(_Strict):
    engine: Literal["frequentist", "bayesian"] = "frequentist"
    difference: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(0.05, gt=0, lt=1)
    sequential: bool = False
    sequential_tuning: float = Field(5000.0, gt=0)
    one_sided: bool = False
    prior: PriorSpec | None = None


class MetricDocument(_Strict):
    metric: MetricSpec
    variants: list[VariantSpec] = Field(min_length=2)
    analysis: AnalysisSpec = AnalysisSpec()

    @model_validator(mode="after")
    def _names_and_weights(self) -> MetricDocument:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants[*].name: variant names must be unique, got {names}")
        weights = [v.weight for v in self.variants]
        if any(w is not None for w in weights):
            if any(w is None for w in weights):
                raise ValueError("variants[*].weight: give a weight for every variant or for none")
            total = sum(w for w in weights if w is not None)
            if abs(total - 1.0) > WEIGHT_TOLERANCE:
                raise ValueError(
                    f"variants[*].weight: weights sum to {total:.6g}; they must sum to 1 (±1e-6)"
                )
        return self


class MultiMetricDocument(_Strict):
    metrics: list[MetricDocument] = Field(min_length=1)
    correction: Literal["holm", "bh"] | None = None


_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "binomial": ("sum",),
    "mean": ("sum", "sum_squares"),
    "ratio": (
        "sum",
        "sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "main_denominator_sum_product",
    ),
    "quantile": ("quantile", "estimate", "lower_order_statistic", "upper_order_statistic"),
    "cuped": ("sum", "sum_squares", "covariate_sum", "covariate_sum_squares", "main_covariate_sum_product"),
}


def _statistic(metric: MetricSpec, variant: VariantSpec, where: str) -> Statistic:
    kind = "cuped" if metric.cuped else metric.kind
    values = variant.model_dump()
    missing = [name for name in _REQUIRED_FIELDS[kind] if values[name] is None]
    if missing:
        raise StatsDocumentError(f"{where}.{missing[0]}: required for a {kind} metric")
    if (
        kind == "binomial"
        and variant.sum_squares is not None
        and not math.isclose(variant.sum_squares, variant.sum or 0.0, rel_tol=1e-9, abs_tol=1e-9)
    ):
        raise StatsDocumentError(f"{where}.sum_squares: a binomial metric has sum_squares = sum (0/1 values)")
    fields = {name: values[name] for name in _REQUIRED_FIELDS[kind]}
    try:
        if kind == "binomial":
            return BinomialStatistic(n=variant.n, sum=fields["sum"])
        if kind == "mean":
            return MeanStatistic(n=variant.n, **fields)
        if kind == "ratio":
            return RatioStatistic(n=variant.n, **fields)
        if kind == "quantile":
            return QuantileStatistic(n=variant.n, **fields)
        return CupedStatistic(n=variant.n, **fields)
    except StatisticInputError as error:
        raise StatsDocumentError(f"{where}.{error}") from None


def _metric_input(document: MetricDocument, prefix: str) -> MetricInput:
    arms = [_statistic(document.metric, v, f"{prefix}variants[{i}]") for i, v in enumerate(document.variants)]
    spec = document.analysis
    settings = AnalysisSettings(
        engine=spec.engine,
        difference=spec.difference,
        alpha=spec.alpha,
        sequential=spec.sequential,
        sequential_tuning=spec.sequential_tuning,
        one_sided=spec.one_sided,
        prior=GaussianPrior(spec.prior.mean, spec.prior.stddev) if spec.prior else None,
        lower_is_better=document.metric.lower_is_better,
        non_inferiority_margin=document.metric.non_inferiority_margin,
    )
    weights = [v.weight for v in document.variants]
    return MetricInput(
        name=document.metric.name,
        arms=arms,
        arm_names=[v.name for v in document.variants],
        settings=settings,
        weights=[w for w in weights if w is not None] if weights[0] is not None else None,
    )


def _field_path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "document"


def parse_document(data: Any) -> tuple[list[MetricInput], Literal["holm", "bh"] | None, bool]:
    """→ (metric inputs, correction, is_multi). Raises StatsDocumentError naming the field."""
    is_multi = isinstance(data, dict) and "metrics" in data
    try:
        if is_multi:
            multi = MultiMetricDocument.model_validate(data)
            inputs = [_metric_input(doc, f"metrics[{i}].") for i, doc in enumerate(multi.metrics)]
            return inputs, multi.correction, True
        single = MetricDocument.model_validate(data)
        return [_metric_input(single, "")], None, False
    except ValidationError as error:
        first = error.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "value_error":  # our model validators start their message with the field path
            where = _field_path(tuple(first["loc"]))
            prefix = "" if where == "document" else f"{where}."
            raise StatsDocumentError(f"{prefix}{message}") from None
        raise StatsDocumentError(f"{_field_path(tuple(first['loc']))}: {message}") from None


def analyze_document(data: Any) -> dict[str, Any]:
    inputs, correction, is_multi = parse_document(data)
    results = analyze_metrics(inputs, correction=correction)
    if not is_multi:
        single = results[0].as_dict()
        single.pop("metric")
        return single
    return {"correction": correction, "metrics": [r.as_dict() for r in results]}


def results_for_table(data: Any) -> list[MetricResult]:
    inputs, correction, _ = parse_document(data)
    return analyze_metrics(inputs, correction=correction)
