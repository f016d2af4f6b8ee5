"""The inputs of the KPIs (tools/kpis), aggregated in SQL per persona and overall.

Every query is bounded by event name and timestamp, so it runs on the (name, timestamp), (user_id, timestamp)
and (timestamp) indexes, and returns a handful of rows: one per persona plus an overall row that SQL sums from
the same per-persona rows (a portable ROLLUP; SQLite has no GROUPING SETS). Per-account state (paying, MRR) is
aggregated in a subquery and summed per persona in the same statement, so no event row ever reaches Python.

Window bounds are bound as parameters computed in Python; the only date arithmetic in SQL is the elapsed time
between two stored timestamps, rounded to the millisecond on both dialects. JSON properties are read through
`_Json`, which gives the same answer on both dialects (numbers only when sent as JSON numbers, so a stray
string never fails a cast on PostgreSQL). See docs/kpis.md for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from store.models import EventRow, SurveyAnswerRow, UserRow
from store.repositories.active_users import ActivityTables, per_user_activity
from store.repositories.metrics import time_to_value_units
from store.sql import JsonProperties, nearest_rank, seconds_between

CONVERSION_PERIOD = timedelta(days=30)
GROWTH_EVENTS = ("subscription_upgraded", "subscription_expanded")
SUBSCRIPTION_EVENTS = (
    "subscription_started",
    "subscription_cancelled",
    *GROWTH_EVENTS,
    "subscription_contracted",
)

T = TypeVar("T")
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"


@dataclass(frozen=True, slots=True)
class ByPersona(Generic[T]):
    """One aggregate for everyone and one per persona; personas without rows are absent from `personas`."""

    overall: T
    personas: dict[str, T]


@dataclass(frozen=True, slots=True)
class WindowActivity:
    """Per-user activity in the window, summed per persona. `tickets_sum_squares` is Σ (tickets per user)²."""

    active_users: int = 0
    tickets_opened: int = 0
    tickets_sum_squares: int = 0
    tasks_completed: int = 0
    tasks_automated: int = 0
    tasks_failed: int = 0
    feature_users: int = 0
    feature_reusers: int = 0
    paying_users: int = 0
    revenue_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class SubscriptionCounts:
    """Accounts (users) by subscription state; the MRR figures cover the accounts paying at window start."""

    paying_at_start: int = 0
    retained: int = 0
    churned: int = 0
    paying_in_window: int = 0
    upgraded: int = 0
    new_paying: int = 0
    mrr_at_start_usd: float = 0.0
    mrr_at_end_usd: float = 0.0
    expansion_mrr_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class ConversionCounts:
    signups: int = 0
    converted: int = 0


@dataclass(frozen=True, slots=True)
class CostTotal:
    events: int = 0
    amount_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Distribution:
    """n, Σx, Σx² (so the mean can be tested) and the nearest-rank median of per-unit values."""

    n: int = 0
    total: float = 0.0
    sum_squares: float = 0.0
    median: float | None = None


@dataclass(frozen=True, slots=True)
class NpsCounts:
    answered: int = 0
    promoters: int = 0
    detractors: int = 0


_Json = JsonProperties


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _sum_or_zero(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0)


def _in_window(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(EventRow.timestamp >= start, EventRow.timestamp < end)


def personas_with_users(connection: Connection) -> list[str]:
    return sorted(connection.execute(select(UserRow.persona).distinct()).scalars())


def _rollup(connection: Connection, per_persona: AnySelect, counts: type[T]) -> ByPersona[T]:
    """Run an additive per-persona aggregation with an overall row summed in SQL from the same rows.

    Only valid for sums and counts over units that belong to one persona (users, events): each is counted in
    exactly one persona row, so the sum of the rows is the overall figure. `counts` is a dataclass whose
    fields are the labels of the measure columns.
    """
    grouped = per_persona.cte("per_persona")
    measures = [column for column in grouped.c if column.key != "persona"]
    rows = connection.execute(
        union_all(
            select(literal_column("0").label("is_overall"), grouped.c.persona, *measures),
            select(literal_column("1"), null(), *[_sum_or_zero(c).label(c.key) for c in measures]),
        )
    ).all()
    overall = next(_from_row(counts, row) for row in rows if row.is_overall == 1)
    personas = {
        row.persona: _from_row(counts, row) for row in rows if row.is_overall == 0 and row.persona is not None
    }
    return ByPersona(overall, personas)


def _from_row(counts: type[T], row: AnyRow) -> T:
    """Fields ending in _usd are floats, the others ints (PostgreSQL returns sums of integers as Decimal)."""
    values = {
        name: float(row._mapping[name] or 0) if name.endswith("_usd") else int(row._mapping[name] or 0)
        for name in counts.__dataclass_fields__  # type: ignore[attr-defined]
    }
    return counts(**values)


def window_activity(connection: Connection, start: datetime, end: datetime) -> ByPersona[WindowActivity]:
    """Active users (any event in the window) and their tickets, tasks, feature use and payments, per persona.

    Summed per persona from the per-user activity of the window (active_users.per_user_activity: sealed days
    from the rollup, open days from events); inside `shared_activity` from the temporary table the metric reports
    of the same window use too.
    """
    shared = ActivityTables.shared(connection)
    users = (
        shared.users(start, end)
        if shared is not None
        else per_user_activity(connection, start, end).subquery()
    )
    u = users.c
    per_persona = select(
        u.persona,
        func.count().label("active_users"),
        func.sum(u.tickets).label("tickets_opened"),
        func.sum(u.tickets * u.tickets).label("tickets_sum_squares"),
        func.sum(u.tasks_completed).label("tasks_completed"),
        func.sum(u.tasks_automated).label("tasks_automated"),
        func.sum(u.tasks_failed).label("tasks_failed"),
        _count_where(u.feature_days > 0).label("feature_users"),
        _count_where(u.feature_days > 1).label("feature_reusers"),  # on two distinct UTC days or more
        _count_where(u.payments > 0).label("paying_users"),
        func.sum(u.revenue_usd).label("revenue_usd"),
    ).group_by(u.persona)
    return _rollup(connection, per_persona, WindowActivity)


def payments(connection: Connection, start: datetime, end: datetime) -> ByPersona[WindowActivity]:
    """Only the payment part of window_activity (paying users, revenue), from the payment events alone.

    For callers that need revenue but not the rest (the LTV escalation rule): one index range over
    payment_succeeded instead of a scan of every activity event of the window. A user who paid in the window
    was active in it, so the figures equal window_activity's.
    """
    json = _Json(connection.dialect)
    per_user = (
        select(EventRow.user_id, func.sum(json.number("amount")).label("revenue_usd"))
        .where(EventRow.name == "payment_succeeded", _in_window(start, end))
        .group_by(EventRow.user_id)
        .subquery("paid")
    )
    per_persona: AnySelect = (
        select(
            UserRow.persona,
            *(
                literal_column("0").label(name)
                for name in WindowActivity.__dataclass_fields__
                if name not in ("paying_users", "revenue_usd")
            ),
            func.count().label("paying_users"),
            func.sum(per_user.c.revenue_usd).label("revenue_usd"),
        )
        .select_from(per_user)
        .join(UserRow, UserRow.id == per_user.c.user_id)
        .group_by(UserRow.persona)
    )
    return _rollup(connection, per_persona, WindowActivity)


def subscriptions(connection: Connection, start: datetime, end: datetime) -> ByPersona[SubscriptionCounts]:
    """Accounts by state at window start and end, with MRR; an account is a user.

    Paying at t: the account's latest subscription_started/cancelled before t is a start (a start and a
    cancellation at the same instant count as cancelled). MRR at t: `mrr` of the latest start before t plus
    the signed plan-change deltas after that start and before t.
    """
    accounts = _accounts(_subscription_history(_Json(connection.dialect), start, end), start).subquery(
        "accounts"
    )
    a = accounts.c
    at_start = _is_paying(a.started_before_start, a.cancelled_before_start)
    retained = and_(at_start, _is_paying(a.started_before_end, a.cancelled_before_end))
    in_window = or_(at_start, a.starts_in_window > 0)
    per_persona = (
        select(
            UserRow.persona,
            _count_where(at_start).label("paying_at_start"),
            _count_where(retained).label("retained"),
            _count_where(and_(at_start, a.cancellations_in_window > 0)).label("churned"),
            _count_where(in_window).label("paying_in_window"),
            _count_where(and_(in_window, a.upgrades_in_window > 0)).label("upgraded"),
            _count_where(a.starts_in_window > 0).label("new_paying"),
            func.sum(case((at_start, a.mrr_at_start), else_=0)).label("mrr_at_start_usd"),
            func.sum(case((retained, a.mrr_at_end), else_=0)).label("mrr_at_end_usd"),
            func.sum(case((at_start, a.expansion_mrr), else_=0)).label("expansion_mrr_usd"),
        )
        .join(UserRow, UserRow.id == a.user_id)
        .group_by(UserRow.persona)
    )
    return _rollup(connection, per_persona, SubscriptionCounts)


def _subscription_history(json: _Json, start: datetime, end: datetime) -> Subquery:
    """Every subscription event before `end` with its MRR effect and the number of its subscription.

    `subscription_number` counts the account's starts up to the event (in time, then ingestion order), so the
    events of the subscription current at window start carry the number `starts_before_start`. Window
    functions find both in one scan of these few event names, with no lookup per account.
    """
    is_start = EventRow.name == "subscription_started"
    delta = json.number("mrr_delta")
    mrr_effect = case(
        (is_start, json.number("mrr")),
        (EventRow.name == "subscription_contracted", -func.abs(delta)),
        (EventRow.name.in_(GROWTH_EVENTS), delta),
    )
    starts = func.sum(case((is_start, 1), else_=0))
    starts_before_start = func.sum(case((and_(is_start, EventRow.timestamp < start), 1), else_=0))
    account = EventRow.user_id
    return (
        select(
            EventRow.user_id,
            EventRow.name,
            EventRow.timestamp,
            mrr_effect.label("mrr_effect"),
            starts.over(partition_by=account, order_by=(EventRow.timestamp, EventRow.id)).label(
                "subscription_number"
            ),
            starts_before_start.over(partition_by=account).label("starts_before_start"),
            starts.over(partition_by=account).label("starts_before_end"),
        )
        .where(EventRow.name.in_(SUBSCRIPTION_EVENTS), EventRow.timestamp < end)
        .subquery("subscription_history")
    )


def _accounts(history: Subquery, start: datetime) -> AnySelect:
    """Per account: latest start/cancellation before window start and end, window counts, MRR at both ends."""
    h = history.c
    started, cancelled = h.name == "subscription_started", h.name == "subscription_cancelled"
    before_start, in_window = h.timestamp < start, h.timestamp >= start
    current_at_start = and_(h.subscription_number == h.starts_before_start, before_start)
    current_at_end = h.subscription_number == h.starts_before_end
    return select(
        h.user_id,
        func.max(case((and_(started, before_start), h.timestamp))).label("started_before_start"),
        func.max(case((and_(cancelled, before_start), h.timestamp))).label("cancelled_before_start"),
        func.max(case((started, h.timestamp))).label("started_before_end"),
        func.max(case((cancelled, h.timestamp))).label("cancelled_before_end"),
        _count_where(and_(started, in_window)).label("starts_in_window"),
        _count_where(and_(cancelled, in_window)).label("cancellations_in_window"),
        _count_where(and_(h.name == "subscription_upgraded", in_window)).label("upgrades_in_window"),
        _sum_or_zero(case((current_at_start, h.mrr_effect))).label("mrr_at_start"),
        _sum_or_zero(case((current_at_end, h.mrr_effect))).label("mrr_at_end"),
        _sum_or_zero(case((and_(in_window, h.name.in_(GROWTH_EVENTS)), h.mrr_effect))).label("expansion_mrr"),
    ).group_by(h.user_id)


def _is_paying(last_start: ColumnElement[Any], last_cancellation: ColumnElement[Any]) -> ColumnElement[bool]:
    return and_(last_start.is_not(None), or_(last_cancellation.is_(None), last_start > last_cancellation))


def conversions(connection: Connection, start: datetime, end: datetime) -> ByPersona[ConversionCounts]:
    """Users whose first user_signed_up is in the window; converted: their first subscription_started came at or
    after the signup and no more than 30 days later.

    Starts after the window's end count while they are within 30 days of the signup (a cohort measure). Reads the
    users rows (ingestion keeps each user's first signup and first subscription start): one range of the
    signed_up_at index.
    """
    signed_up_at, subscribed_at = UserRow.signed_up_at, UserRow.subscribed_at
    elapsed_seconds = seconds_between(subscribed_at, signed_up_at, connection.dialect)
    converted = and_(
        subscribed_at.is_not(None),
        subscribed_at >= signed_up_at,
        elapsed_seconds <= CONVERSION_PERIOD.total_seconds(),
    )
    per_persona = (
        select(UserRow.persona, func.count().label("signups"), _count_where(converted).label("converted"))
        .where(signed_up_at >= start, signed_up_at < end)
        .group_by(UserRow.persona)
    )
    return _rollup(connection, per_persona, ConversionCounts)


def acquisition_costs(connection: Connection, start: datetime, end: datetime) -> ByPersona[CostTotal]:
    """acquisition_cost in the window by its `persona` property (events without one count only overall)."""
    json = _Json(connection.dialect)
    persona = EventRow.properties["persona"].as_string()
    per_persona = (
        select(
            persona.label("persona"),
            func.count().label("events"),
            _sum_or_zero(json.number("amount")).label("amount_usd"),
        )
        .where(EventRow.name == "acquisition_cost", _in_window(start, end))
        .group_by(persona)
    )
    return _rollup(connection, per_persona, CostTotal)


def infra_cost(connection: Connection, start: datetime, end: datetime) -> CostTotal:
    """infra_cost events in the window, attributed by timestamp (period_start/period_end are not prorated)."""
    json = _Json(connection.dialect)
    events, amount = connection.execute(
        select(func.count(), _sum_or_zero(json.number("amount"))).where(
            EventRow.name == "infra_cost", _in_window(start, end)
        )
    ).one()
    return CostTotal(int(events), float(amount))


def resolution_hours(connection: Connection, start: datetime, end: datetime) -> ByPersona[Distribution]:
    """`resolution_hours` of the support_ticket_resolved events in the window (JSON numbers only)."""
    hours = _Json(connection.dialect).number("resolution_hours")
    values = (
        select(UserRow.persona, hours.label("value"))
        .join(UserRow, UserRow.id == EventRow.user_id)
        .where(EventRow.name == "support_ticket_resolved", _in_window(start, end), hours.is_not(None))
    )
    return _distributions(connection, values)


def time_to_value_minutes(connection: Connection, start: datetime, end: datetime) -> ByPersona[Distribution]:
    """Minutes to first value, from the same units as the time_to_value metric (explicit observations
    included), so the KPI and the metric never disagree."""
    units = time_to_value_units(connection.dialect, start, end)
    values = select(units.c.persona, (units.c.value / 60.0).label("value"))
    return _distributions(connection, values)


def _distributions(connection: Connection, values: AnySelect) -> ByPersona[Distribution]:
    """n, Σx, Σx² and the nearest-rank median (the ⌈n/2⌉-th smallest) of (persona, value) rows.

    Each value appears twice, once in its persona's segment and once in the overall one, so one ROW_NUMBER
    over (segment ORDER BY value) ranks both; the same median rule as tools/metrics' p50.
    """
    base = values.cte("distribution_values")
    segments = union_all(
        select(literal_column("0").label("is_overall"), base.c.persona, base.c.value),
        select(literal_column("1"), null(), base.c.value),
    ).subquery("segments")
    partition = (segments.c.is_overall, segments.c.persona)
    ranked = select(
        segments,
        func.row_number().over(partition_by=partition, order_by=segments.c.value).label("rank"),
        func.count().over(partition_by=partition).label("size"),
    ).subquery("ranked")
    r = ranked.c
    rows = connection.execute(
        select(
            r.is_overall,
            r.persona,
            func.count().label("n"),
            func.sum(r.value).label("total"),
            func.sum(r.value * r.value).label("sum_squares"),
            func.max(case((r.rank == nearest_rank(r.size, 50), r.value))).label("median"),
        ).group_by(r.is_overall, r.persona)
    ).all()
    overall = next((_distribution(row) for row in rows if row.is_overall == 1), Distribution())
    personas = {row.persona: _distribution(row) for row in rows if row.is_overall == 0}
    return ByPersona(overall, personas)


def _distribution(row: AnyRow) -> Distribution:
    return Distribution(int(row.n), float(row.total), float(row.sum_squares), float(row.median))


def nps_answers(connection: Connection, start: datetime, end: datetime) -> ByPersona[NpsCounts]:
    """Answered NPS questions (skips are not stored) in the window: promoters scored 9–10, detractors 0–6.

    Each answer counts in the persona its respondent had when the survey was shown.
    """
    a = SurveyAnswerRow
    per_persona = (
        select(
            a.persona.label("persona"),
            func.count().label("answered"),
            _count_where(a.value_number >= 9).label("promoters"),
            _count_where(a.value_number <= 6).label("detractors"),
        )
        .where(a.question_type == "nps", a.answered_at >= start, a.answered_at < end)
        .group_by(a.persona)
    )
    return _rollup(connection, per_persona, NpsCounts)
