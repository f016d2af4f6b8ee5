"""compute_kpis: every KPI of the tracking plan for one window, overall and per persona.

The database does all the aggregation (store.repositories.kpis): a handful of statements return one row per
persona plus an overall row. This module only turns those sums into KPI values — ratios, the 30-day scaling,
and the reasons why a value is missing. See docs/kpis.md for the definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from store.repositories import kpis as repository
from store.repositories.kpis import (
    ByPersona,
    ConversionCounts,
    CostTotal,
    Distribution,
    NpsCounts,
    SubscriptionCounts,
    WindowActivity,
)
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.kpis.model import KpiSnapshot, KpiValue
from tools.window import Window

DEFAULT_GROSS_MARGIN = 0.8
MIN_PAYING_ACCOUNTS_FOR_LTV = 20
DAYS_PER_MONTH = 30.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SegmentInputs:
    """What the KPIs of one segment (a persona, or everyone) are computed from.

    `infra` and `all_active_users` are the window's totals in every segment: infrastructure cost is shared,
    so each persona's cost per user is the overall one.
    """

    window_days: float
    gross_margin: float
    infra: CostTotal
    all_active_users: int
    activity: WindowActivity = field(default_factory=WindowActivity)
    subscriptions: SubscriptionCounts = field(default_factory=SubscriptionCounts)
    conversions: ConversionCounts = field(default_factory=ConversionCounts)
    acquisition: CostTotal = field(default_factory=CostTotal)
    resolution_hours: Distribution = field(default_factory=Distribution)
    time_to_value_minutes: Distribution = field(default_factory=Distribution)
    nps: NpsCounts = field(default_factory=NpsCounts)

    @property
    def per_30_days(self) -> float:
        """Factor turning a count over the window into a count per 30 days."""
        return DAYS_PER_MONTH / self.window_days


# The aggregates each KPI is computed from, so a caller that needs a few KPIs runs only their queries.
SOURCES_OF_KPI: dict[str, frozenset[str]] = {
    "conversion_rate": frozenset({"conversions"}),
    "ltv": frozenset({"subscriptions", "payments"}),
    "cac": frozenset({"subscriptions", "acquisition"}),
    "ltv_cac_ratio": frozenset({"subscriptions", "payments", "acquisition"}),
    "retention_rate": frozenset({"subscriptions"}),
    "upsell_rate": frozenset({"subscriptions"}),
    "expansion_rate": frozenset({"subscriptions"}),
    "net_revenue_retention": frozenset({"subscriptions"}),
    "support_case_frequency": frozenset({"activity"}),
    "support_resolution_time": frozenset({"resolution_hours"}),
    "automation_coverage": frozenset({"activity"}),
    "infra_cost_per_user": frozenset({"activity", "infra"}),
    "task_completion_rate": frozenset({"activity"}),
    "nps": frozenset({"nps"}),
    "feature_reuse_rate": frozenset({"activity"}),
    "time_to_value_minutes": frozenset({"time_to_value_minutes"}),
}


def compute_kpis(
    connection: Connection,
    window: Window,
    *,
    gross_margin: float = DEFAULT_GROSS_MARGIN,
    only: Sequence[str] | None = None,
) -> KpiSnapshot:
    """Every KPI of KPI_DEFINITIONS for `window`, overall and for every persona that has users.

    With `only`, just those KPIs' aggregates are queried; the other KPIs of the snapshot are then computed from
    empty inputs and must not be read (escalation checks use this to pay only for the KPIs their rules name).
    """
    needed = None if only is None else frozenset().union(*(SOURCES_OF_KPI[name] for name in only))
    sources = _Sources.query(connection, window, needed)
    personas = repository.personas_with_users(connection)

    def segment(persona: str | None) -> SegmentInputs:
        return sources.segment(persona, window_days=window.days, gross_margin=gross_margin)

    return KpiSnapshot(
        window=window,
        overall=kpis_of(segment(None)),
        personas={persona: kpis_of(segment(persona)) for persona in personas},
    )


@dataclass(frozen=True, slots=True)
class _Sources:
    """The repository's aggregates for one window, before they are split into segments."""

    activity: ByPersona[WindowActivity]
    subscriptions: ByPersona[SubscriptionCounts]
    conversions: ByPersona[ConversionCounts]
    acquisition: ByPersona[CostTotal]
    resolution_hours: ByPersona[Distribution]
    time_to_value_minutes: ByPersona[Distribution]
    nps: ByPersona[NpsCounts]
    infra: CostTotal

    @classmethod
    def query(cls, connection: Connection, window: Window, needed: frozenset[str] | None = None) -> _Sources:
        start, end = window.start, window.end

        def wanted(source: str) -> bool:
            return needed is None or source in needed

        def empty(counts: T) -> ByPersona[T]:
            return ByPersona(counts, {})

        return cls(
            activity=repository.window_activity(connection, start, end) if wanted("activity")
            else repository.payments(connection, start, end) if wanted("payments")  # revenue only
            else empty(WindowActivity()),
            subscriptions=repository.subscriptions(connection, start, end)
            if wanted("subscriptions") else empty(SubscriptionCounts()),
            conversions=repository.conversions(connection, start, end)
            if wanted("conversions") else empty(ConversionCounts()),
            acquisition=repository.acquisition_costs(connection, start, end)
            if wanted("acquisition") else empty(CostTotal()),
            resolution_hours=repository.resolution_hours(connection, start, end)
            if wanted("resolution_hours") else empty(Distribution()),
            time_to_value_minutes=repository.time_to_value_minutes(connection, start, end)
            if wanted("time_to_value_minutes") else empty(Distribution()),
            nps=repository.nps_answers(connection, start, end) if wanted("nps") else empty(NpsCounts()),
            infra=repository.infra_cost(connection, start, end) if wanted("infra") else CostTotal(),
        )  # fmt: skip

    def segment(self, persona: str | None, *, window_days: float, gross_margin: float) -> SegmentInputs:
        """Inputs of one persona (None: everyone); a persona absent from an aggregate had none of it."""
        return SegmentInputs(
            window_days=window_days,
            gross_margin=gross_margin,
            infra=self.infra,
            all_active_users=self.activity.overall.active_users,
            activity=_pick(self.activity, persona, WindowActivity()),
            subscriptions=_pick(self.subscriptions, persona, SubscriptionCounts()),
            conversions=_pick(self.conversions, persona, ConversionCounts()),
            acquisition=_pick(self.acquisition, persona, CostTotal()),
            resolution_hours=_pick(self.resolution_hours, persona, Distribution()),
            time_to_value_minutes=_pick(self.time_to_value_minutes, persona, Distribution()),
            nps=_pick(self.nps, persona, NpsCounts()),
        )


def _pick(source: ByPersona[T], persona: str | None, empty: T) -> T:
    return source.overall if persona is None else source.personas.get(persona, empty)


def kpis_of(inputs: SegmentInputs) -> dict[str, KpiValue]:
    """All KPIs of one segment, in the order of KPI_DEFINITIONS."""
    return {definition.name: KPI_BUILDERS[definition.name](inputs) for definition in KPI_DEFINITIONS}


def _missing(name: str, reason: str, n: int = 0, extra: dict[str, Any] | None = None) -> KpiValue:
    return KpiValue(name, None, n, reason=reason, extra=extra or {})


def _proportion(name: str, numerator: int, denominator: int, reason_if_empty: str, **extra: Any) -> KpiValue:
    """A share of units (testable as a binomial); None with the reason when there are no units."""
    if denominator == 0:
        return KpiValue(
            name, None, 0, reason=reason_if_empty, numerator=numerator, denominator=0, extra=extra
        )
    return KpiValue(
        name, numerator / denominator, denominator, numerator=numerator, denominator=denominator, extra=extra
    )


def _median(name: str, values: Distribution, reason_if_empty: str, mean_key: str) -> KpiValue:
    """The median of per-unit values; numerator, denominator and sum_squares describe the mean (for tests)."""
    if values.n == 0 or values.median is None:
        return _missing(name, reason_if_empty)
    return KpiValue(
        name,
        values.median,
        values.n,
        numerator=values.total,
        denominator=values.n,
        sum_squares=values.sum_squares,
        extra={mean_key: values.total / values.n},
    )


# Business success


def conversion_rate(inputs: SegmentInputs) -> KpiValue:
    c = inputs.conversions
    return _proportion("conversion_rate", c.converted, c.signups, "no signups in the window")


def ltv(inputs: SegmentInputs) -> KpiValue:
    """ARPA × gross margin ÷ monthly logo churn, with n = accounts paying at window start."""
    s, a = inputs.subscriptions, inputs.activity
    extra: dict[str, Any] = {"gross_margin": inputs.gross_margin, "revenue_usd": a.revenue_usd}
    arpa_usd = monthly_churn = None
    if a.paying_users:
        arpa_usd = a.revenue_usd / a.paying_users * inputs.per_30_days
    if s.paying_at_start:
        monthly_churn = s.churned / s.paying_at_start * inputs.per_30_days
    extra.update(arpa_usd=arpa_usd, monthly_churn_rate=monthly_churn, churned_accounts=s.churned)
    n = s.paying_at_start
    if monthly_churn is None:
        return _missing("ltv", "no paying accounts at window start", extra=extra)
    if arpa_usd is None:
        return _missing("ltv", "no payments in the window", n, extra=extra)
    if monthly_churn == 0:
        return _missing("ltv", "no churn in the window: LTV is unbounded", n, extra=extra)
    if n < MIN_PAYING_ACCOUNTS_FOR_LTV:
        reason = f"fewer than {MIN_PAYING_ACCOUNTS_FOR_LTV} paying accounts (n={n})"
        return _missing("ltv", reason, n, extra=extra)
    return KpiValue("ltv", arpa_usd * inputs.gross_margin / monthly_churn, n, extra=extra)


def cac(inputs: SegmentInputs) -> KpiValue:
    """Acquisition cost ÷ accounts with a subscription_started in the window."""
    new_accounts, cost = inputs.subscriptions.new_paying, inputs.acquisition
    extra = {"acquisition_cost_usd": cost.amount_usd, "new_paying_accounts": new_accounts}
    if new_accounts == 0:
        return _missing("cac", "no new paying accounts in the window", extra=extra)
    if cost.events == 0:
        return _missing("cac", "no acquisition_cost events in the window", new_accounts, extra=extra)
    return KpiValue("cac", cost.amount_usd / new_accounts, new_accounts, extra=extra)


def ltv_cac_ratio(inputs: SegmentInputs) -> KpiValue:
    lifetime_value, acquisition = ltv(inputs), cac(inputs)
    extra = {"ltv_usd": lifetime_value.value, "cac_usd": acquisition.value}
    if lifetime_value.value is None:
        return _missing("ltv_cac_ratio", f"ltv: {lifetime_value.reason}", acquisition.n, extra=extra)
    if acquisition.value is None:
        return _missing("ltv_cac_ratio", f"cac: {acquisition.reason}", acquisition.n, extra=extra)
    if acquisition.value == 0:
        reason = "cac is 0: the acquisition cost in the window is 0"
        return _missing("ltv_cac_ratio", reason, acquisition.n, extra=extra)
    return KpiValue("ltv_cac_ratio", lifetime_value.value / acquisition.value, acquisition.n, extra=extra)


def retention_rate(inputs: SegmentInputs) -> KpiValue:
    s = inputs.subscriptions
    return _proportion(
        "retention_rate",
        s.retained,
        s.paying_at_start,
        "no paying accounts at window start",
        churned=s.churned,
    )


def upsell_rate(inputs: SegmentInputs) -> KpiValue:
    s = inputs.subscriptions
    return _proportion("upsell_rate", s.upgraded, s.paying_in_window, "no paying accounts in the window")


def expansion_rate(inputs: SegmentInputs) -> KpiValue:
    s = inputs.subscriptions
    extra = {"expansion_mrr_usd": s.expansion_mrr_usd, "mrr_at_start_usd": s.mrr_at_start_usd}
    reason = _no_starting_mrr(s)
    if reason:
        return _missing("expansion_rate", reason, s.paying_at_start, extra=extra)
    return KpiValue(
        "expansion_rate", s.expansion_mrr_usd / s.mrr_at_start_usd, s.paying_at_start, extra=extra
    )


def net_revenue_retention(inputs: SegmentInputs) -> KpiValue:
    s = inputs.subscriptions
    extra = {"mrr_at_start_usd": s.mrr_at_start_usd, "mrr_at_end_usd": s.mrr_at_end_usd}
    reason = _no_starting_mrr(s)
    if reason:
        return _missing("net_revenue_retention", reason, s.paying_at_start, extra=extra)
    return KpiValue(
        "net_revenue_retention", s.mrr_at_end_usd / s.mrr_at_start_usd, s.paying_at_start, extra=extra
    )


def _no_starting_mrr(s: SubscriptionCounts) -> str | None:
    if s.paying_at_start == 0:
        return "no paying accounts at window start"
    if s.mrr_at_start_usd <= 0:
        return "MRR at window start is 0"
    return None


# Operational ease


def support_case_frequency(inputs: SegmentInputs) -> KpiValue:
    """Tickets per active user per 30 days; numerator/denominator are the unscaled counts."""
    a = inputs.activity
    extra = {"tickets_opened": a.tickets_opened, "window_days": inputs.window_days}
    if a.active_users == 0:
        return _missing("support_case_frequency", "no active users in the window", extra=extra)
    return KpiValue(
        "support_case_frequency",
        a.tickets_opened / a.active_users * inputs.per_30_days,
        a.active_users,
        numerator=a.tickets_opened,
        denominator=a.active_users,
        sum_squares=a.tickets_sum_squares,
        extra=extra,
    )


def support_resolution_time(inputs: SegmentInputs) -> KpiValue:
    reason = "no support tickets resolved in the window (with resolution_hours)"
    return _median("support_resolution_time", inputs.resolution_hours, reason, "mean_hours")


def automation_coverage(inputs: SegmentInputs) -> KpiValue:
    a = inputs.activity
    return _proportion(
        "automation_coverage", a.tasks_automated, a.tasks_completed, "no task_completed events in the window"
    )


def infra_cost_per_user(inputs: SegmentInputs) -> KpiValue:
    """The window's whole infrastructure cost ÷ all active users, the same in every persona (shared cost)."""
    cost, users = inputs.infra, inputs.all_active_users
    extra = {"infra_cost_usd": cost.amount_usd}
    if cost.events == 0:
        return _missing("infra_cost_per_user", "no infra_cost events in the window", users, extra=extra)
    if users == 0:
        return _missing("infra_cost_per_user", "no active users in the window", extra=extra)
    return KpiValue("infra_cost_per_user", cost.amount_usd / users, users, extra=extra)


# User success


def task_completion_rate(inputs: SegmentInputs) -> KpiValue:
    a = inputs.activity
    attempts = a.tasks_completed + a.tasks_failed
    reason = "no task_completed or task_failed events in the window"
    return _proportion(
        "task_completion_rate", a.tasks_completed, attempts, reason, tasks_failed=a.tasks_failed
    )


def nps(inputs: SegmentInputs) -> KpiValue:
    """% promoters − % detractors, from −100 to 100."""
    answers = inputs.nps
    extra = {"promoters": answers.promoters, "detractors": answers.detractors}
    if answers.answered == 0:
        return _missing("nps", "no answered NPS questions in the window", extra=extra)
    score = 100.0 * (answers.promoters - answers.detractors) / answers.answered
    return KpiValue("nps", score, answers.answered, extra=extra)


def feature_reuse_rate(inputs: SegmentInputs) -> KpiValue:
    a = inputs.activity
    reason = "no feature_used events in the window"
    return _proportion("feature_reuse_rate", a.feature_reusers, a.feature_users, reason)


def time_to_value_minutes(inputs: SegmentInputs) -> KpiValue:
    reason = "no user reached first value in the window (a first report_generated after a user_signed_up)"
    return _median("time_to_value_minutes", inputs.time_to_value_minutes, reason, "mean_minutes")


KPI_BUILDERS: dict[str, Callable[[SegmentInputs], KpiValue]] = {
    "conversion_rate": conversion_rate,
    "ltv": ltv,
    "cac": cac,
    "ltv_cac_ratio": ltv_cac_ratio,
    "retention_rate": retention_rate,
    "upsell_rate": upsell_rate,
    "expansion_rate": expansion_rate,
    "net_revenue_retention": net_revenue_retention,
    "support_case_frequency": support_case_frequency,
    "support_resolution_time": support_resolution_time,
    "automation_coverage": automation_coverage,
    "infra_cost_per_user": infra_cost_per_user,
    "task_completion_rate": task_completion_rate,
    "nps": nps,
    "feature_reuse_rate": feature_reuse_rate,
    "time_to_value_minutes": time_to_value_minutes,
}
