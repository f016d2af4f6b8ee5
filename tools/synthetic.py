"""Deterministic synthetic product activity for the demo, the tests and the benchmarks.

Every user is simulated from a random stream of their own, seeded by the config seed and the user's index,
so a user's history never depends on how many other users there are. Report-generation errors draw from a
second per-user stream: planting a deployment then changes those errors and nothing else, which is what lets
the demo and the tests attribute the change to the deployment.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.events.model import CanonicalEvent

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
LIBRARY = {"name": "feedbackloop-synthetic", "version": "1"}
ONBOARDING_STEPS = ("create_account", "connect_podcast", "add_sponsor", "create_campaign", "generate_report")
PLAN_MRR = {"free": 0, "starter": 29, "pro": 99, "agency": 299}
PAID_PLANS = ("starter", "pro", "agency")
FEATURES = ("dashboard", "campaign_builder", "report_editor", "audience_insights", "sponsor_directory")
TASKS = ("import_episodes", "sync_downloads", "build_report", "send_report", "reconcile_promo_codes")
TASK_FAILURE_REASONS = ("timeout", "missing_data", "permission_denied", "provider_unavailable")
OTHER_ERROR_FEATURES = ("dashboard", "rss_import", "export")
TICKET_CATEGORIES = ("billing", "report_accuracy", "integration", "bug", "how_to")
REPORT_TEMPLATES = ("standard", "sponsor_summary", "detailed")
RECIPIENT_ROLES = ("sponsor", "agency_client", "internal")
CORRECTABLE_FIELDS = ("downloads", "impressions", "cpm", "episode_dates", "promo_code_uses")
CANCEL_REASONS = ("too_expensive", "missing_feature", "switched_tool", "no_longer_needed")
HOSTING_PROVIDERS = ("anchor", "buzzsprout", "libsyn", "megaphone", "transistor")
SIGNUP_SOURCES = ("organic_search", "podcast_ad", "referral", "linkedin", "partner")
COMPANY_WORDS = ("Bright", "Quiet", "Northern", "Golden", "Open", "Second", "Loud", "Deep", "Wild", "True")

# Rates per working session, chosen so the planted report-generation effect stands well above the noise.
WEEKEND_ACTIVITY_FACTOR = 0.4
REPORT_ERRORS_PER_SESSION = 0.12
OTHER_ERROR_RATE_PER_SESSION = 0.04
SUPPORT_TICKET_RATE_PER_SESSION = 0.02
TASK_FAILURE_RATE = 0.07
REPORT_SENT_RATE = 0.85
CORRECTION_WINDOW_DAYS = 7.0
RENEWAL_WINDOW_DAYS = 14.0
BILLING_PERIOD_DAYS = 30.0
CAMPAIGN_MEAN_RUN_DAYS = 28.0
DEPLOYMENT_HOUR = 10

_Row = tuple[float, str, dict[str, Any]]  # (seconds from the start of the period, event name, properties)


@dataclass(frozen=True)
class PlantedDeployment:
    """A deployment after which one persona's report-generation errors become more frequent."""

    version: str = "v1.4.0"
    day: int = 76
    persona: str = "podcast_network"
    error_multiplier: float = 3.0


@dataclass(frozen=True)
class SyntheticConfig:
    """What to simulate; the same config (with a fixed `end`) always yields the same events."""

    users: int = 2000
    days: int = 90
    seed: int = 7
    end: datetime | None = None
    deployments: tuple[PlantedDeployment, ...] = (PlantedDeployment(),)
    personas: tuple[str, ...] = ("solo_podcaster", "podcast_network", "agency", "brand_sponsor")
    persona_weights: tuple[float, ...] = (0.45, 0.25, 0.2, 0.1)


class SyntheticConfigError(ValueError):
    """The config cannot be simulated; the message says which field to fix."""


@dataclass(frozen=True)
class _PersonaProfile:
    """How a persona behaves; the differences are what the persona metrics are supposed to reveal."""

    ttv_median_seconds: float
    onboarding_completion: float
    session_probability: float
    lifetime_mean_days: float
    campaigns_per_week: float
    report_interval_days: float
    correction_rate: float
    renewal_rate: float
    conversion_rate: float
    paid_plan: str
    automation_rate: float


# Columns follow _PersonaProfile's fields. Agencies reach value fastest, solo podcasters slowest.
# fmt: off
PERSONA_PROFILES: dict[str, _PersonaProfile] = {
    "solo_podcaster":  _PersonaProfile(72000, 0.70, 0.35, 120, 0.15, 7, 0.20, 0.35, 0.15, "starter", 0.30),
    "podcast_network": _PersonaProfile(10800, 0.80, 0.55, 180, 0.50, 5, 0.15, 0.50, 0.35, "pro", 0.55),
    "agency":          _PersonaProfile(2400, 0.85, 0.65, 200, 0.80, 4, 0.12, 0.60, 0.45, "agency", 0.70),
    "brand_sponsor":   _PersonaProfile(28800, 0.60, 0.25, 90, 0.20, 7, 0.10, 0.45, 0.25, "pro", 0.40),
}
# fmt: on
DEFAULT_PROFILE = PERSONA_PROFILES["solo_podcaster"]  # for persona names the caller invents
ACQUISITION = {"solo_podcaster": ("podcast_ads", 1500.0), "podcast_network": ("linkedin", 2500.0),
               "agency": ("partnerships", 3000.0), "brand_sponsor": ("paid_search", 1000.0)}  # fmt: skip
COMPANY_SUFFIXES = {"solo_podcaster": "Podcast", "podcast_network": "Network", "agency": "Media"}


@dataclass(frozen=True)
class _UserOutline:
    """The few draws that fix a user's life span; shared by the generator and by `count_hint`."""

    index: int
    user_id: str
    persona: str
    profile: _PersonaProfile
    signup_seconds: float  # all times are seconds from the start of the period
    first_value_seconds: float | None  # first report_generated; None while onboarding is unfinished
    active_until_seconds: float  # churn or the end of the period, whichever comes first
    churned: bool


def period_end(config: SyntheticConfig) -> datetime:
    """Explicit `end` (normalised to UTC) or today 00:00 UTC, so a default run covers whole days."""
    if config.end is None:
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if config.end.tzinfo is None:
        raise SyntheticConfigError("end must be timezone-aware; pass e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return config.end.astimezone(UTC)


def _validate(config: SyntheticConfig) -> None:
    """Reject configs that would silently produce nonsense instead of failing later."""
    if config.users < 0 or config.days < 1:
        raise SyntheticConfigError(f"need users ≥ 0 and days ≥ 1; got {config.users=}, {config.days=}")
    if not config.personas or len(config.personas) != len(config.persona_weights):
        raise SyntheticConfigError("personas and persona_weights must be non-empty and of the same length")
    weights = config.persona_weights
    if sum(weights) <= 0 or min(weights) < 0:
        raise SyntheticConfigError(f"persona_weights need values ≥ 0 and a positive sum; got {weights}")


def _outline_user(config: SyntheticConfig, index: int) -> tuple[_UserOutline, random.Random]:
    """Draw persona, signup, time to value and churn; more signups early in the period than late."""
    rng = random.Random(f"{config.seed}:user:{index}")  # nosec B311  # seeded synthetic data, not security
    persona = rng.choices(config.personas, config.persona_weights)[0]  # one draw per user
    profile = PERSONA_PROFILES.get(persona, DEFAULT_PROFILE)
    period_seconds = float(config.days * SECONDS_PER_DAY)
    signup = int(config.days * rng.random() ** 1.35) * SECONDS_PER_DAY + rng.uniform(7, 22) * SECONDS_PER_HOUR
    first_value: float | None = None
    if rng.random() < profile.onboarding_completion:
        ttv_seconds = 120 + rng.lognormvariate(math.log(profile.ttv_median_seconds), 1.0)
        churn = signup + ttv_seconds + rng.expovariate(1 / profile.lifetime_mean_days) * SECONDS_PER_DAY
        first_value = signup + ttv_seconds if signup + ttv_seconds < period_seconds else None
    else:
        churn = signup + rng.uniform(0.5, 6) * SECONDS_PER_DAY
    until, churned = min(churn, period_seconds), churn < period_seconds
    return _UserOutline(index, f"u{index:06d}", persona, profile, signup, first_value, until, churned), rng


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are below 1, so it takes one or two draws."""
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


class _UserHistory:
    """Collects one user's events as (seconds, sequence, name, properties) rows; emits them in time order."""

    def __init__(
        self, outline: _UserOutline, rng: random.Random, config: SyntheticConfig, start: datetime
    ) -> None:
        self.outline, self.rng, self.config, self.start = outline, rng, config, start
        self.profile = outline.profile
        # bandit B311: seeded synthetic data, not security
        self.error_rng = random.Random(f"{config.seed}:errors:{outline.index}")  # nosec B311
        self.limit = outline.active_until_seconds - 1.0  # margin so microsecond rounding never reaches `end`
        self.rows: list[tuple[float, int, str, dict[str, Any]]] = []
        self.serial = 0
        deploy_hour_seconds = DEPLOYMENT_HOUR * SECONDS_PER_HOUR
        self.report_error_multipliers = [
            (d.day * SECONDS_PER_DAY + deploy_hour_seconds, d.error_multiplier)
            for d in config.deployments
            if d.persona == outline.persona
        ]

    def add(self, seconds: float, name: str, **properties: Any) -> None:
        """Keep only what happens while the user is still around (and inside the period)."""
        if seconds < self.limit:
            self.rows.append((seconds, len(self.rows), name, properties))

    def next_id(self, kind: str) -> str:
        """Ids unique across users (they embed the user id), so stores can key on them."""
        self.serial += 1
        return f"{self.outline.user_id}-{kind}{self.serial}"

    def signup(self) -> None:
        """identify, then user_signed_up a second later, so both sort first for every consumer."""
        o, rng = self.outline, self.rng
        created_at = (self.start + timedelta(seconds=o.signup_seconds)).isoformat()
        suffix = COMPANY_SUFFIXES.get(o.persona, "Brands")
        traits = {"persona": o.persona, "plan": "free", "email": f"user{o.index:06d}@example.test",
                  "company": f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)} {suffix}",
                  "created_at": created_at}  # fmt: skip
        signed_up = {"persona": o.persona, "plan": "free", "source": rng.choice(SIGNUP_SOURCES)}
        at = o.signup_seconds
        self.rows += [(at, 0, "identify", traits), (at + 1, 1, "user_signed_up", signed_up)]

    def onboarding(self) -> None:
        """Steps spread between signup and first report; users without a report stop after one to three."""
        o, rng, total = self.outline, self.rng, len(ONBOARDING_STEPS)
        if o.first_value_seconds is None:
            span_seconds, reached = rng.uniform(0.1, 1.0) * SECONDS_PER_DAY, rng.randint(1, 3)
        else:
            span_seconds, reached = o.first_value_seconds - o.signup_seconds - 60, total - 1
        offsets = sorted(rng.random() for _ in range(reached))
        times = [o.signup_seconds + 30 + offset * span_seconds for offset in offsets]
        if o.first_value_seconds is not None:
            times.append(o.first_value_seconds + 2)  # the last step is the first report itself
        for index, (t, step) in enumerate(zip(times, ONBOARDING_STEPS, strict=False)):
            if step == "connect_podcast":
                self.add(t - 1, "podcast_connected", hosting_provider=rng.choice(HOSTING_PROVIDERS))
            self.add(t, "onboarding_step_completed", step=step, step_index=index, total_steps=total)
            if step == "create_campaign" and o.first_value_seconds is not None:
                self.campaign(t + 1, first_report_seconds=o.first_value_seconds)
        if o.first_value_seconds is not None:
            completed = times[-1] + 1
            self.add(completed, "onboarding_completed", duration_seconds=round(completed - o.signup_seconds))

    def campaign(self, created: float, first_report_seconds: float | None = None) -> None:
        """A sponsor campaign: periodic reports while it runs, then an outcome and maybe a renewal."""
        rng, profile = self.rng, self.profile
        ids = {"campaign_id": self.next_id("c"), "sponsor_id": f"s{rng.randrange(500):04d}"}
        budget = int(rng.uniform(5, 50)) * 100
        self.add(created, "campaign_created", **ids, budget=budget)
        ended = created + rng.uniform(0.5, 1.5) * CAMPAIGN_MEAN_RUN_DAYS * SECONDS_PER_DAY
        t = created + rng.uniform(0.2, 2) * SECONDS_PER_DAY
        t = t if first_report_seconds is None else first_report_seconds
        while t < min(ended, self.limit):
            self.report(t, ids["campaign_id"])
            t += profile.report_interval_days * rng.uniform(0.6, 1.4) * SECONDS_PER_DAY
        if ended >= self.limit:
            return
        outcome = rng.choices(("delivered", "underdelivered", "cancelled"), (0.75, 0.2, 0.05))[0]
        self.add(ended, "campaign_ended", **ids, outcome=outcome)
        if rng.random() < profile.renewal_rate * (1.15 if outcome == "delivered" else 0.5):
            renewed = ended + rng.uniform(0.5, RENEWAL_WINDOW_DAYS - 0.5) * SECONDS_PER_DAY
            self.add(renewed, "sponsor_renewed", **ids, amount=round(budget * rng.uniform(0.9, 1.4)))

    def report(self, t: float, campaign_id: str) -> None:
        """Generate, usually send, and sometimes correct a report within the accuracy window."""
        rng, report_id = self.rng, self.next_id("r")
        duration_seconds = round(rng.lognormvariate(math.log(25), 0.6), 1)
        template = rng.choice(REPORT_TEMPLATES)
        ids = {"report_id": report_id, "campaign_id": campaign_id}
        self.add(t, "report_generated", **ids, duration_seconds=duration_seconds, template=template)
        if rng.random() >= REPORT_SENT_RATE:
            return
        sent, role = t + rng.uniform(300, 6 * SECONDS_PER_HOUR), rng.choice(RECIPIENT_ROLES)
        self.add(sent, "report_sent", **ids, recipient_role=role)
        if rng.random() < self.profile.correction_rate:
            corrected = sent + rng.uniform(SECONDS_PER_HOUR, (CORRECTION_WINDOW_DAYS - 0.1) * SECONDS_PER_DAY)
            fields = rng.sample(CORRECTABLE_FIELDS, rng.randint(1, 2))
            self.add(corrected, "report_corrected", report_id=report_id, fields_changed=fields)

    def later_campaigns(self, since: float) -> None:
        """New campaigns arrive as a Poisson process at the persona's weekly rate."""
        rate_per_second = self.profile.campaigns_per_week / (7 * SECONDS_PER_DAY)
        t = since + self.rng.expovariate(rate_per_second)
        while t < self.limit:
            self.campaign(t)
            t += self.rng.expovariate(rate_per_second)

    def sessions(self, since: float, browse_only: bool) -> None:
        """At most one working session a day, fewer at weekends; users without value yet only look around."""
        weekday_of_start = self.start.weekday()
        for day in range(int(since // SECONDS_PER_DAY), math.ceil(self.limit / SECONDS_PER_DAY)):
            weekend = (weekday_of_start + day) % 7 >= 5
            probability = self.profile.session_probability * (WEEKEND_ACTIVITY_FACTOR if weekend else 1.0)
            if self.rng.random() >= probability:
                continue
            t = day * SECONDS_PER_DAY + self.rng.uniform(8, 20) * SECONDS_PER_HOUR
            if t <= since + 60:
                continue
            if browse_only:
                self.add(t, "feature_used", feature=self.rng.choice(FEATURES))
            else:
                self.session(t)

    def session(self, t: float) -> None:
        """Features, tasks, occasional errors and support tickets within an hour or so."""
        rng = self.rng
        for _ in range(1 + (rng.random() < 0.7) + (rng.random() < 0.5) + (rng.random() < 0.3)):
            t += rng.uniform(30, 600)
            self.add(t, "feature_used", feature=rng.choice(FEATURES))
        for _ in range(rng.randint(0, 3)):
            t += rng.uniform(30, 900)
            task = rng.choice(TASKS)
            if rng.random() < TASK_FAILURE_RATE:
                self.add(t, "task_failed", task=task, reason=rng.choice(TASK_FAILURE_REASONS))
                continue
            automated = rng.random() < self.profile.automation_rate
            duration_seconds = round(rng.uniform(2, 40) if automated else rng.uniform(60, 1200), 1)
            self.add(t, "task_completed", task=task, automated=automated, duration_seconds=duration_seconds)
        if rng.random() < OTHER_ERROR_RATE_PER_SESSION:
            feature = rng.choice(OTHER_ERROR_FEATURES)
            self.add(t + 5, "error_occurred", feature=feature, code="E500", message=f"{feature} failed")
        self.report_errors(t)
        if rng.random() < SUPPORT_TICKET_RATE_PER_SESSION:
            self.support_ticket(t + rng.uniform(60, 1800))

    def report_errors(self, t: float) -> None:
        """A separate error stream, so the planted multiplier leaves all other draws unchanged."""
        mean = REPORT_ERRORS_PER_SESSION
        for deployed_seconds, multiplier in self.report_error_multipliers:
            mean *= multiplier if t >= deployed_seconds else 1.0
        for _ in range(_poisson(self.error_rng, mean)):
            code = self.error_rng.choice(("REPORT_TIMEOUT", "RENDER_FAILED"))
            at = t + self.error_rng.uniform(1, 300)
            self.add(at, "error_occurred", feature="report_generation", code=code, message="report failed")

    def support_ticket(self, t: float) -> None:
        """Opened during a session, resolved hours later (long-tailed, as real queues are)."""
        rng, ticket_id = self.rng, self.next_id("t")
        severity = rng.choices(("low", "medium", "high"), (0.55, 0.35, 0.1))[0]
        category = rng.choice(TICKET_CATEGORIES)
        self.add(t, "support_ticket_opened", ticket_id=ticket_id, category=category, severity=severity)
        resolution_hours = round(rng.lognormvariate(math.log(8), 0.9), 1)
        resolved = t + resolution_hours * SECONDS_PER_HOUR
        self.add(resolved, "support_ticket_resolved", ticket_id=ticket_id, resolution_hours=resolution_hours)

    def subscription(self, since: float) -> None:
        """Free → paid for a persona's share, monthly payments, plan changes, cancellation at churn."""
        rng, profile = self.rng, self.profile
        if rng.random() >= profile.conversion_rate:
            return
        started = since + rng.expovariate(1 / 6) * SECONDS_PER_DAY
        lower_plan = PAID_PLANS[max(PAID_PLANS.index(profile.paid_plan) - 1, 0)]
        plan = profile.paid_plan if rng.random() < 0.7 else lower_plan
        stop = self.limit - SECONDS_PER_HOUR if self.outline.churned else self.limit
        if started >= stop:
            return
        self.add(started, "subscription_started", plan=plan, mrr=PLAN_MRR[plan])
        changes = [change for change in self.plan_changes(started, plan) if change[0] < stop]
        for t, name, properties in changes:
            self.add(t, name, **properties)

        def mrr_at(t: float) -> int:
            return PLAN_MRR[plan] + sum(p["mrr_delta"] for when, _, p in changes if when <= t)

        payment = started + 5
        while payment < stop:
            self.add(payment, "payment_succeeded", amount=mrr_at(payment), currency="USD")
            payment += BILLING_PERIOD_DAYS * SECONDS_PER_DAY
        if self.outline.churned:
            self.add(stop, "subscription_cancelled", reason=rng.choice(CANCEL_REASONS), mrr=mrr_at(stop))

    def plan_changes(self, started: float, plan: str) -> list[_Row]:
        """Upgrades, seat expansions and contractions, each with its MRR delta, some time after the start."""
        rng, changes = self.rng, []
        if plan != PAID_PLANS[-1] and rng.random() < 0.15:
            to_plan = PAID_PLANS[PAID_PLANS.index(plan) + 1]
            delta = PLAN_MRR[to_plan] - PLAN_MRR[plan]
            upgrade = {"from_plan": plan, "to_plan": to_plan, "mrr_delta": delta}
            changes.append(("subscription_upgraded", upgrade))
        if rng.random() < 0.10:
            changes.append(("subscription_expanded", {"mrr_delta": rng.choice((10, 20, 50))}))
        if rng.random() < 0.05:
            changes.append(("subscription_contracted", {"mrr_delta": -rng.choice((5, 10, 20))}))
        return [(started + rng.uniform(7, 70) * SECONDS_PER_DAY, name, delta) for name, delta in changes]

    def simulate(self) -> None:
        """Users who never reach a first report only browse; the rest work, run campaigns and may pay."""
        o = self.outline
        self.signup()
        self.onboarding()
        if o.first_value_seconds is None:
            self.sessions(o.signup_seconds + 60, browse_only=True)
            return
        self.later_campaigns(o.first_value_seconds)
        self.sessions(o.first_value_seconds, browse_only=False)
        self.subscription(o.first_value_seconds)

    def events(self) -> Iterator[CanonicalEvent]:
        """Time order per user; message ids follow that order, so they are stable for a given config."""
        self.rows.sort(key=lambda row: (row[0], row[1]))
        user_id, prefix = self.outline.user_id, f"syn-{self.config.seed}-{self.outline.user_id}"
        for number, (seconds, _, name, properties) in enumerate(self.rows):
            yield _event(self.start, f"{prefix}-{number}", (seconds, name, properties), user_id)


def _event(start: datetime, message_id: str, row: _Row, user_id: str | None) -> CanonicalEvent:
    """Users' events carry their user id; system events the anonymous id "system" the tracking plan names."""
    seconds, name, properties = row
    timestamp = start + timedelta(seconds=seconds)
    return CanonicalEvent(
        message_id=message_id,
        type="identify" if name == "identify" else "track",
        name=name,
        timestamp=timestamp,
        received_at=timestamp + timedelta(seconds=1 + int(seconds) % 4),  # a few seconds of transport
        user_id=user_id,
        anonymous_id=None if user_id else "system",
        properties=properties,
        context={"library": dict(LIBRARY)},
    )


def _system_rows(config: SyntheticConfig, start: datetime) -> list[_Row]:
    """Weekly acquisition spend per persona, weekly infra cost growing with the base, planted deployments."""
    rng = random.Random(f"{config.seed}:system")  # nosec B311  # seeded synthetic data, not security
    rows: list[_Row] = []
    period_seconds, weeks = config.days * SECONDS_PER_DAY, math.ceil(config.days / 7)
    user_scale = config.users / 2000
    for week in range(weeks):
        week_start = week * 7 * SECONDS_PER_DAY
        week_end = min(week_start + 7 * SECONDS_PER_DAY, period_seconds)
        amount = round(1500 * (1 + 0.5 * week / weeks) * max(user_scale, 0.05) * rng.uniform(0.95, 1.05), 2)
        period = [(start + timedelta(seconds=seconds)).isoformat() for seconds in (week_start, week_end)]
        infra = {"amount": amount, "period_start": period[0], "period_end": period[1]}
        rows.append((week_start + SECONDS_PER_HOUR, "infra_cost", infra))
        for persona in config.personas:
            channel, spend = ACQUISITION.get(persona, ("paid_search", 1000.0))
            cost = round(spend * user_scale * rng.uniform(0.85, 1.15), 2)
            acquisition = {"amount": cost, "channel": channel, "persona": persona}
            rows.append((week_start + 2 * SECONDS_PER_HOUR, "acquisition_cost", acquisition))
    for planted in config.deployments:
        sha = hashlib.sha1(f"{config.seed}:{planted.version}".encode(), usedforsecurity=False).hexdigest()
        release = {"version": planted.version, "service": "api", "environment": "production", "commit": sha}
        rows.append(((planted.day * 24 + DEPLOYMENT_HOUR) * SECONDS_PER_HOUR, "deployment", release))
    return [row for row in rows if 0 <= row[0] < period_seconds]


def generate_events(config: SyntheticConfig) -> Iterator[CanonicalEvent]:
    """System events first, then each user's history in time order; lazy, so callers can stream to a store."""
    _validate(config)
    start = period_end(config) - timedelta(days=config.days)
    for number, row in enumerate(_system_rows(config, start)):
        yield _event(start, f"syn-{config.seed}-system-{number}", row, None)
    for index in range(config.users):
        history = _UserHistory(*_outline_user(config, index), config, start)
        history.simulate()
        yield from history.events()


def count_hint(config: SyntheticConfig) -> int:
    """Estimate for a progress bar without simulating everyone.

    Simulates about 200 evenly spread users exactly and scales by a cheap activity weight, known for every
    user from their first few draws, so the estimate follows the life spans of this very config.
    """
    _validate(config)
    start = period_end(config) - timedelta(days=config.days)
    outlines = [_outline_user(config, index) for index in range(config.users)]
    sample = outlines[:: max(1, len(outlines) // 200)]
    sample_events = 0
    for outline, rng in sample:
        history = _UserHistory(outline, rng, config, start)
        history.simulate()
        sample_events += len(history.rows)
    sample_weight = sum(_activity_weight(outline) for outline, _ in sample) or 1.0
    total_weight = sum(_activity_weight(outline) for outline, _ in outlines)
    return round(sample_events * total_weight / sample_weight) + len(_system_rows(config, start))


def _activity_weight(outline: _UserOutline) -> float:
    """Roughly proportional to a user's event count: a fixed onboarding part plus active days × activity."""
    since = outline.first_value_seconds or outline.signup_seconds
    active_days = (outline.active_until_seconds - since) / SECONDS_PER_DAY
    return 10 + active_days * outline.profile.session_probability * 6
