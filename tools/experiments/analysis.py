"""Analyse an experiment: SQL sufficient statistics → tools.stats → guardrails, power, winner.

Winner rule: a variant wins only if a primary metric improves significantly in its favour after the correction
across primary metrics × variants, no primary metric is significantly worse, no guardrail fails its margin, the
split shows no sample-ratio mismatch and every arm reached the minimum sample. Otherwise `winner` is None and
`winner_reason` says why. `confidence_level` is 1 − adjusted p (frequentist) or the chance to win (Bayesian) of
the winner, or of the most promising variant when nothing won.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from store.database import Database
from store.repositories import experiments as repo
from store.repositories.experiment_stats import GroupQuantile, GroupStatistics, GroupSums, MetricQuery
from store.repositories.experiment_stats import experiment_statistics as query_statistics
from store.repositories.experiment_units import (
    LARGE_REFRESH_USERS,
    REFRESH_CHUNK_USERS,
    refresh_unit_values,
    update_planner_statistics,
    vacuum_after_bulk_refresh,
)
from tools.experiments.errors import ExperimentStateError
from tools.experiments.metrics import ExperimentMetric, supports_cuped
from tools.experiments.model import Experiment, ExperimentMode, ExperimentStatus
from tools.experiments.service import ExperimentService
from tools.stats.analysis import AnalysisSettings, MetricInput, analyze_metrics
from tools.stats.corrections import Correction
from tools.stats.power import PowerInputError, remaining_to_power, sample_size_per_arm
from tools.stats.results import EffectResult, MetricResult
from tools.stats.srm import has_srm, srm_p_value
from tools.stats.statistics import (
    BinomialStatistic,
    CupedStatistic,
    MeanStatistic,
    QuantileStatistic,
    RatioStatistic,
    Statistic,
    quantile_rank_bounds,
)

Role = Literal["primary", "secondary", "guardrail"]
GuardrailStatus = Literal["pass", "fail", "inconclusive"]
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class MetricOutcome:
    metric: ExperimentMetric
    role: Role
    result: MetricResult
    guardrail_status: dict[str, GuardrailStatus] = field(default_factory=dict)  # per variant
    margin: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name, "role": self.role, "kind": self.metric.kind,
            "lower_is_better": self.metric.lower_is_better, "description": self.metric.description,
            **{k: v for k, v in self.result.as_dict().items() if k != "metric"},
            "guardrail_status": self.guardrail_status or None, "margin": self.margin,
        }  # fmt: skip


@dataclass(frozen=True)
class PowerStatus:
    metric: str
    reached: bool | None
    units_per_variant_needed: int | None
    units_per_variant_now: int
    more_units_per_variant: int | None
    more_days: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ExperimentResults:
    experiment_key: str
    name: str
    status: str
    mode: str
    engine: str
    phase: int
    units: dict[str, int]
    expected_weights: dict[str, float]
    srm_p_value: float | None
    srm: bool
    metrics: tuple[MetricOutcome, ...]
    winner: str | None
    winner_reason: str
    confidence_level: float | None
    power: PowerStatus | None
    main_effects: dict[str, list[MetricResult]]
    generated_at: datetime
    decision: str | None = None

    @property
    def primary(self) -> list[MetricOutcome]:
        return [m for m in self.metrics if m.role == "primary"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment_key, "name": self.name, "status": self.status, "mode": self.mode,
            "engine": self.engine, "phase": self.phase, "units": self.units,
            "expected_weights": self.expected_weights, "srm_p_value": self.srm_p_value, "srm": self.srm,
            "winner": self.winner, "winner_reason": self.winner_reason, "confidence_level": self.confidence_level,
            "power": self.power.as_dict() if self.power else None,
            "metrics": [m.as_dict() for m in self.metrics],
            "main_effects": {f: [r.as_dict() for r in results] for f, results in self.main_effects.items()},
            "decision": self.decision, "generated_at": self.generated_at.isoformat(),
        }  # fmt: skip


def analyze(service: ExperimentService, key: str, *, now: datetime | None = None) -> ExperimentResults:
    experiment = service.get(key)
    if experiment.status is ExperimentStatus.DRAFT or experiment.phase is None:
        raise ExperimentStateError("status", f"experiment {key!r} is a draft; start it to collect data first")
    return _analyze(service.database, experiment, now or datetime.now(UTC))


def _analyze(database: Database, experiment: Experiment, now: datetime) -> ExperimentResults:
    spec, phase = experiment.spec, experiment.phase
    assert phase is not None
    names = [v.name for v in spec.variants]
    roles: list[tuple[ExperimentMetric, Role, float | None]] = [
        *((m, "primary", None) for m in spec.primary_metrics),
        *((m, "secondary", None) for m in spec.secondary_metrics),
        *((g.metric, "guardrail", g.margin) for g in spec.guardrails),
    ]
    queries = [_query(metric, spec.cuped) for metric, _, _ in roles]
    lookback = spec.cuped_lookback_days * SECONDS_PER_DAY
    refresh_values(database, experiment, queries, lookback)
    with database.read() as connection:
        counts = repo.assignment_counts(connection, experiment.id, phase.index)
        first, last = repo.assignment_span(connection, experiment.id, phase.index)
        stats = query_statistics(connection, experiment.id, phase.index, queries, rank_bounds=quantile_rank_bounds,
                                 lookback_seconds=lookback, assigned=counts)  # fmt: skip
        main_stats = _main_effect_statistics(
            connection, experiment, queries[: len(spec.primary_metrics)], lookback
        )
    units = {name: counts.get(i, 0) for i, name in enumerate(names)}
    weights = list(phase.weights)
    srm_p = srm_p_value(list(units.values()), weights) if sum(units.values()) else None
    srm = has_srm(srm_p) if srm_p is not None else False
    correction: Correction | None = {"holm": "holm", "benjamini-hochberg": "bh"}.get(spec.correction)  # type: ignore[assignment]

    def inputs(selected: Sequence[int], margin_for: Mapping[int, float] | None = None) -> list[MetricInput]:
        built = []
        for i in selected:
            metric = roles[i][0]
            settings = AnalysisSettings(
                engine=spec.engine,  # type: ignore[arg-type]
                alpha=spec.alpha, lower_is_better=metric.lower_is_better,
                non_inferiority_margin=(margin_for or {}).get(i),
            )  # fmt: skip
            arms = [_statistic(metric, stats[i].get(v)) for v in range(len(names))]
            built.append(MetricInput(metric.name, arms, names, settings, weights))
        return built

    primary_idx = [i for i, r in enumerate(roles) if r[1] == "primary"]
    secondary_idx = [i for i, r in enumerate(roles) if r[1] == "secondary"]
    guard_idx = [i for i, r in enumerate(roles) if r[1] == "guardrail"]
    outcomes: list[MetricOutcome] = []
    for i, result in zip(primary_idx, _analyze_observed(inputs(primary_idx), correction), strict=True):
        outcomes.append(MetricOutcome(roles[i][0], "primary", result))
    for i, result in zip(secondary_idx, _analyze_observed(inputs(secondary_idx)), strict=True):
        outcomes.append(MetricOutcome(roles[i][0], "secondary", result))
    if guard_idx:
        harm = _analyze_observed(inputs(guard_idx))
        margins = {i: float(roles[i][2] or 0.0) for i in guard_idx}
        non_inferiority = (
            _analyze_observed(inputs(guard_idx, margins)) if spec.engine == "frequentist" else harm
        )
        for position, i in enumerate(guard_idx):
            status = _guardrail_status(roles[i][0], harm[position], non_inferiority[position], spec.alpha,
                                       margins[i], spec.engine)  # fmt: skip
            outcomes.append(MetricOutcome(roles[i][0], "guardrail", harm[position], status, margins[i]))
    winner, reason, confidence = _winner(
        outcomes, units, srm, spec.min_units_per_variant, spec.alpha, spec.engine
    )
    power = _power(
        outcomes, stats, primary_idx, units, first, last, spec.minimum_detectable_effect, spec.alpha
    )
    main_effects = _main_effects(experiment, main_stats, spec.engine, spec.alpha)
    return ExperimentResults(
        experiment_key=spec.key, name=spec.name, status=experiment.status.value, mode=spec.mode.value,
        engine=spec.engine, phase=phase.index, units=units, expected_weights=dict(zip(names, weights, strict=True)),
        srm_p_value=srm_p, srm=srm, metrics=tuple(outcomes), winner=winner, winner_reason=reason,
        confidence_level=confidence, power=power, main_effects=main_effects, generated_at=now,
        decision=experiment.decision,
    )  # fmt: skip


def _analyze_observed(
    inputs: Sequence[MetricInput], correction: Correction | None = None
) -> list[MetricResult]:
    """tools.stats results with each arm's observed mean: CUPED adjusts the estimate of the effect, not what the
    users did, so (as GrowthBook does) the means shown are unadjusted while effects and intervals use CUPED."""
    results = analyze_metrics(inputs, correction)
    return [_with_observed_means(result, metric.arms) for result, metric in zip(results, inputs, strict=True)]


def _with_observed_means(result: MetricResult, arms: Sequence[Statistic]) -> MetricResult:
    control = replace(result.control, mean=arms[0].unadjusted_mean if arms[0].n else None)
    variants = tuple(
        replace(effect, mean=arm.unadjusted_mean if arm.n else None)
        for effect, arm in zip(result.variants, arms[1:], strict=True)
    )
    return replace(result, control=control, variants=variants)


def refresh_running(service: ExperimentService) -> dict[str, int]:
    """Bring every running experiment's per-user values up to date (the worker's job): an analysis that follows
    reads ready sums instead of first recomputing the users whose events arrived since. Returns the number of
    users refreshed per experiment key."""
    refreshed = {}
    for experiment in service.experiments(status=ExperimentStatus.RUNNING.value):
        if experiment.phase is None:
            continue
        spec = experiment.spec
        metrics = [*spec.primary_metrics, *spec.secondary_metrics, *(g.metric for g in spec.guardrails)]
        queries = [_query(metric, spec.cuped) for metric in metrics]
        refreshed[experiment.key] = refresh_values(
            service.database, experiment, queries, spec.cuped_lookback_days * SECONDS_PER_DAY
        )
    return refreshed


def refresh_values(
    database: Database, experiment: Experiment, queries: Sequence[MetricQuery], lookback_seconds: float
) -> int:
    """Bring the per-user values up to date in short write transactions (SQLite ingestion keeps flowing)."""
    assert experiment.phase is not None
    total, chunks = 0, 0
    while True:
        with database.write() as connection:
            done = refresh_unit_values(connection, experiment.id, experiment.phase.index, queries,
                                       lookback_seconds=lookback_seconds, max_users=REFRESH_CHUNK_USERS)  # fmt: skip
        total, chunks = total + done, chunks + 1
        if done < REFRESH_CHUNK_USERS:
            break
        if chunks in (1, 4) or chunks % 16 == 0:
            # A large refresh grows the kept values from (possibly) nothing: re-analysed early and now and then,
            # PostgreSQL keeps using the indexes instead of scanning a table it still believes tiny.
            with database.write() as connection:
                update_planner_statistics(connection)
    if total >= LARGE_REFRESH_USERS:
        vacuum_after_bulk_refresh(database)
    return total


def _query(metric: ExperimentMetric, cuped: bool) -> MetricQuery:
    return MetricQuery(
        kind=metric.kind, window_seconds=metric.window_hours * SECONDS_PER_HOUR, event=metric.event,
        property=metric.property, denominator_event=metric.denominator_event,
        denominator_property=metric.denominator_property, quantile=metric.quantile,
        covariate=cuped and supports_cuped(metric),
    )  # fmt: skip


def _statistic(metric: ExperimentMetric, group: GroupSums | GroupQuantile | None) -> Statistic:
    """The tools.stats statistic for one arm; an arm nobody reached is an empty statistic (analysis says why)."""
    if metric.kind in ("quantile", "time_to_value"):
        q = metric.quantile or 0.5
        if (
            not isinstance(group, GroupQuantile)
            or group.estimate is None
            or group.lower is None
            or group.upper is None
        ):
            return QuantileStatistic(n=group.n if group else 0, quantile=q, estimate=0.0, lower_order_statistic=0.0,
                                     upper_order_statistic=0.0)  # fmt: skip
        return QuantileStatistic(n=group.n, quantile=q, estimate=group.estimate, lower_order_statistic=group.lower,
                                 upper_order_statistic=group.upper)  # fmt: skip
    sums = group if isinstance(group, GroupSums) else GroupSums(0, 0.0, 0.0)
    if metric.kind == "ratio":
        return RatioStatistic(sums.n, sums.sum, sums.sum_squares, sums.denominator_sum, sums.denominator_sum_squares,
                              sums.main_denominator_sum_product)  # fmt: skip
    if sums.covariate_sum_squares > 0:
        return CupedStatistic(sums.n, sums.sum, sums.sum_squares, sums.covariate_sum, sums.covariate_sum_squares,
                              sums.main_covariate_sum_product)  # fmt: skip
    if metric.kind == "conversion":
        return BinomialStatistic(sums.n, sums.sum)
    return MeanStatistic(sums.n, sums.sum, sums.sum_squares)


def _favourable(effect: EffectResult, lower_is_better: bool, alpha: float, engine: str) -> int:
    """+1 significantly better, −1 significantly worse, 0 neither (or not computable)."""
    if effect.error is not None or effect.effect is None:
        return 0
    better = effect.effect < 0 if lower_is_better else effect.effect > 0
    if engine == "bayesian":
        chance = effect.chance_to_win
        if chance is None:
            return 0
        return 1 if chance >= 1 - alpha else (-1 if chance <= alpha else 0)
    if effect.p_value is None or effect.p_value >= alpha or effect.effect == 0:
        return 0
    return 1 if better else -1


def _guardrail_status(metric: ExperimentMetric, harm: MetricResult, non_inferiority: MetricResult, alpha: float,
                      margin: float, engine: str) -> dict[str, GuardrailStatus]:  # fmt: skip
    statuses: dict[str, GuardrailStatus] = {}
    for two_sided, one_sided in zip(harm.variants, non_inferiority.variants, strict=True):
        if _favourable(two_sided, metric.lower_is_better, alpha, engine) < 0 and _beyond_margin(
            two_sided, metric, margin
        ):
            statuses[two_sided.name] = "fail"
        elif (engine == "frequentist" and one_sided.p_value is not None and one_sided.p_value < alpha) or (
            engine == "bayesian"
            and _favourable(two_sided, metric.lower_is_better, alpha, engine) >= 0
            and (two_sided.ci is not None and _ci_within_margin(two_sided, metric, margin))
        ):
            statuses[two_sided.name] = "pass"
        else:
            statuses[two_sided.name] = "inconclusive"
    return statuses  # fmt: skip


def _beyond_margin(effect: EffectResult, metric: ExperimentMetric, margin: float) -> bool:
    if effect.effect is None:
        return False
    harm = effect.effect if metric.lower_is_better else -effect.effect
    return harm > margin


def _ci_within_margin(effect: EffectResult, metric: ExperimentMetric, margin: float) -> bool:
    assert effect.ci is not None
    low, high = effect.ci
    if metric.lower_is_better:
        return high is not None and high < margin
    return low is not None and low > -margin


def _winner(outcomes: Sequence[MetricOutcome], units: Mapping[str, int], srm: bool, min_units: int, alpha: float,
            engine: str) -> tuple[str | None, str, float | None]:  # fmt: skip
    primary = [o for o in outcomes if o.role == "primary"]
    names = list(units)[1:]
    candidates: list[tuple[float, str]] = []
    best: tuple[float, str] | None = None
    blocked: dict[str, str] = {}
    for name in names:
        verdicts, confidences = [], []
        for outcome in primary:
            effect = next(v for v in outcome.result.variants if v.name == name)
            verdicts.append(_favourable(effect, outcome.metric.lower_is_better, alpha, engine))
            confidences.append(_confidence(effect, outcome.metric.lower_is_better, engine))
        top = max((c for c in confidences if c is not None), default=None)
        if top is not None and (best is None or top > best[0]):
            best = (top, name)
        failing = [
            o.metric.name
            for o in outcomes
            if o.role == "guardrail" and o.guardrail_status.get(name) == "fail"
        ]
        if -1 in verdicts:
            blocked[name] = "a primary metric is significantly worse"
        elif failing:
            blocked[name] = f"guardrail {failing[0]} failed its margin"
        elif 1 in verdicts and top is not None:
            candidates.append((top, name))
        else:
            blocked[name] = "no primary metric is significantly better after correction"
    confidence = best[0] if best else None
    if srm:
        return (
            None,
            "sample ratio mismatch: the split differs from the configured weights, results are not trustworthy",
            confidence,
        )
    small = [n for n, count in units.items() if count < min_units]
    if small:
        return (
            None,
            f"minimum sample not reached ({min_units} units per variant; {small[0]} has {units[small[0]]})",
            confidence,
        )
    if not candidates:
        reasons = "; ".join(f"{n}: {r}" for n, r in blocked.items())
        return None, f"no variant beat control ({reasons})", confidence
    top_confidence, winner = max(candidates)
    return winner, "significant on a primary metric after correction, guardrails hold, no SRM", top_confidence


def _confidence(effect: EffectResult, lower_is_better: bool, engine: str) -> float | None:
    if effect.error is not None or effect.effect is None:
        return None
    if engine == "bayesian":
        return effect.chance_to_win
    if effect.p_value is None:
        return None
    better = effect.effect < 0 if lower_is_better else effect.effect > 0
    return 1 - effect.p_value if better else None


def _power(outcomes: Sequence[MetricOutcome], stats: Sequence[GroupStatistics], primary_idx: Sequence[int],
           units: Mapping[str, int], first: datetime | None, last: datetime | None, mde: float,
           alpha: float) -> PowerStatus | None:  # fmt: skip
    """How far the first primary metric is from 80 % power at the experiment's MDE, in users and days."""
    if not primary_idx:
        return None
    metric = outcomes[0].metric
    control = _statistic(metric, stats[primary_idx[0]].get(0))
    now_per_arm = min(units.values()) if units else 0
    if control.problem() is not None or control.n < 2:
        return PowerStatus(
            metric.name, None, None, now_per_arm, None, None, "not enough data in control to plan power yet"
        )
    variance = (
        control.variance
        if not isinstance(control, QuantileStatistic)
        else control.estimate_variance * control.n
    )
    try:
        needed = sample_size_per_arm(mde, baseline_mean=control.mean, variance_control=variance, alpha=alpha)
    except (PowerInputError, ZeroDivisionError, ValueError) as error:
        return PowerStatus(metric.name, None, None, now_per_arm, None, None, f"cannot plan power: {error}")
    days = ((last - first).total_seconds() / SECONDS_PER_DAY) if first and last else 0.0
    daily = sum(units.values()) / days if days >= 1 else None
    remaining = remaining_to_power(needed, now_per_arm, arms=len(units), daily_units=daily)
    if remaining.reached:
        message = f"powered: {now_per_arm:,} units per variant ≥ {needed:,} needed for a {mde:.0%} effect"
    elif remaining.more_days is not None:
        message = f"needs ~{remaining.more_units_per_arm:,} more users per variant (~{remaining.more_days} more days)"
    else:
        message = f"needs ~{remaining.more_units_per_arm:,} more users per variant"
    return PowerStatus(metric.name, remaining.reached, needed, now_per_arm, remaining.more_units_per_arm,
                       remaining.more_days, message)  # fmt: skip


def _main_effect_statistics(connection: Any, experiment: Experiment, queries: Sequence[MetricQuery],
                            lookback: float) -> dict[str, list[GroupStatistics]]:  # fmt: skip
    spec = experiment.spec
    if spec.mode is not ExperimentMode.MULTIVARIATE or not spec.factors or experiment.phase is None:
        return {}
    found = {}
    for factor, levels in spec.factors.items():
        groups = {i: levels.index(v.configuration[factor]) for i, v in enumerate(spec.variants)}
        found[factor] = query_statistics(
            connection, experiment.id, experiment.phase.index, queries,
            rank_bounds=quantile_rank_bounds, lookback_seconds=lookback, groups=groups,
        )  # fmt: skip
    return found


def _main_effects(experiment: Experiment, main_stats: Mapping[str, list[GroupStatistics]], engine: str,
                  alpha: float) -> dict[str, list[MetricResult]]:  # fmt: skip
    """Each factor's main effect: cells pooled by level (sums add up), every level against the first."""
    spec = experiment.spec
    effects = {}
    for factor, stats in main_stats.items():
        levels = list(spec.factors[factor])
        inputs = []
        for metric, groups in zip(spec.primary_metrics, stats, strict=True):
            settings = AnalysisSettings(engine=engine, alpha=alpha, lower_is_better=metric.lower_is_better)  # type: ignore[arg-type]
            arms = [_statistic(metric, groups.get(level)) for level in range(len(levels))]
            inputs.append(MetricInput(metric.name, arms, [f"{factor}={level}" for level in levels], settings))
        effects[factor] = _analyze_observed(inputs)
    return effects
