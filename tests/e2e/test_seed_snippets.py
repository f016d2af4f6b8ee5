"""The product's original README snippets run as written — only `from src.feedback import …` becomes
`from feedbackloop import …` — each on a fresh SQLite and PostgreSQL database.

The snippets are vendored below verbatim, because a clone of this repository does not carry the original
specification; `test_the_vendored_snippets_are_the_seeds` compares them with the seed file whenever it is present
(../shared/seed/ beside the checkout), so what runs here is what the seed shows. Each snippet is compiled with
top-level await allowed and run in an event loop. The seed's systems are configured, not told their database: the
tests point FEEDBACKLOOP_DATABASE_URL at the test database. A snippet that is a fragment of prose gets only the
names that prose presupposes (the system instance it calls, `user`, `user_id`, the integration's host modules,
`datetime`), listed per test. No LLM is configured (the rules synthesise), tickets go to a JSON-lines file and
notifications to a file; nothing leaves the machine.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import feedbackloop
from feedbackloop import (
    ABTestingFramework,
    AutoEscalationSystem,
    EscalationRule,
    EscalationSeverity,
    EscalationType,
    JourneySurveySystem,
    KPICategory,
    KPIDashboardAggregator,
    MetricCategory,
    MetricsTracker,
    RetroAgent,
    RetroAnalysis,
    RetroAnalysisType,
    Survey,
    SurveyTrigger,
    SurveyType,
    User,
)
from feedbackloop.integration import PeriodicCheckResult
from store.database import Database
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events

SEED_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "000_f1c34c6048b51afa.txt"
SEED_IMPORT = "from src.feedback import "
SECTIONS = {  # README heading → snippet key
    "1. Journey-Based Surveys": "surveys", "2. Metrics Tracker": "metrics", "3. KPI Dashboard": "kpis",
    "4. Retrospective Agent": "retro", "5. A/B Testing Framework": "experiments",
    "6. Auto-Escalation System": "escalation", "7. Integration": "integration",
    "Escalation Rules": "escalation_rules", "Survey Configuration": "survey_configuration",
}  # fmt: skip
# The retro's data: the synthetic product's 40 days up to the seed's sprint (1–14 January 2024), with a deployment
# on its first day that multiplies podcast_network report errors, so the sprint has a High insight.
SPRINT_DATA = SyntheticConfig(
    users=500, days=40, seed=5, end=datetime(2024, 1, 15, tzinfo=UTC),
    deployments=(PlantedDeployment(day=26, error_multiplier=6.0),),
)  # fmt: skip

# The seed's usage snippets, verbatim (keyed by the README section they come from).
# fmt: off
SEED_SNIPPETS: dict[str, str] = {
    "surveys": '''\
from src.feedback import JourneySurveySystem, SurveyTrigger

# Trigger survey on feature completion
survey = await survey_system.trigger_survey(
    user=user,
    trigger=SurveyTrigger.VALUE_DELIVERED,
    context={"value_type": "report_generated"},
    feature="report_generation"
)

# Submit response
response = await survey_system.submit_response(
    user=user,
    survey_id=survey.survey_id,
    responses={
        "time_to_value": "<15 minutes",
        "ease_of_setup": "Very Easy",
        "value_perceived": "Yes, significant value"
    }
)
''',
    "metrics": '''\
from src.feedback import MetricsTracker, MetricCategory

# Track time-to-value
await metrics_tracker.track_time_to_value(
    user_id=user_id,
    persona_segment="solo_podcaster",
    value_type="report_generated",
    time_seconds=1200,  # 20 minutes
    feature="report_generation"
)

# Get metrics by persona
metrics = await metrics_tracker.get_metrics_by_persona(
    metric_category=MetricCategory.TIME_TO_VALUE,
    days=30,
    persona_segment="solo_podcaster"
)
''',
    "kpis": '''\
from src.feedback import KPIDashboardAggregator, KPICategory

# Generate dashboard
dashboard = await kpi_dashboard.generate_dashboard(days=30)

# Compare personas
comparison = await kpi_dashboard.compare_personas(
    kpi_category=KPICategory.BUSINESS_SUCCESS,
    days=30
)
''',
    "retro": '''\
from src.feedback import RetroAgent, RetroAnalysisType

# Run sprint retro
analysis = await retro_agent.run_sprint_retro(
    sprint_id="sprint-2024-01",
    sprint_start=datetime(2024, 1, 1),
    sprint_end=datetime(2024, 1, 14)
)

# Access insights
for insight in analysis.insights:
    if insight.impact == "High":
        print(f"High impact: {insight.title}")
        print(f"Recommendations: {insight.recommendations}")

# Get backlog items
for item in analysis.backlog_items:
    print(f"Backlog: {item['title']}")
''',
    "experiments": '''\
from src.feedback import ABTestingFramework, ExperimentType

# Create experiment
experiment = await ab_testing.create_experiment(
    name="Onboarding Flow Test",
    experiment_type=ExperimentType.ONBOARDING,
    variants=[
        {
            "name": "Control",
            "traffic_percentage": 0.5,
            "configuration": {"flow": "standard"}
        },
        {
            "name": "Variant A",
            "traffic_percentage": 0.5,
            "configuration": {"flow": "guided"}
        }
    ],
    success_metrics=["time_to_value", "completion_rate"],
    duration_days=14
)

# Start experiment
await ab_testing.start_experiment(experiment.experiment_id)

# Assign user to variant
assignment = await ab_testing.assign_variant(user, experiment.experiment_id)

# Track events
await ab_testing.track_experiment_event(
    user_id=user.user_id,
    experiment_id=experiment.experiment_id,
    event_name="onboarding_completed"
)

# Analyze results
results = await ab_testing.analyze_experiment(experiment.experiment_id)
print(f"Winner: {results.winner}")
print(f"Confidence: {results.confidence_level}")
''',
    "escalation": '''\
from src.feedback import AutoEscalationSystem

# Check for escalations
escalations = await auto_escalation.check_escalations(days=7)

for escalation in escalations:
    print(f"Escalation: {escalation.title}")
    print(f"Severity: {escalation.severity.value}")
    print(f"Affected personas: {escalation.affected_personas}")

# Resolve escalation
await auto_escalation.resolve_escalation(
    escalation_id=escalation.escalation_id,
    resolved_by="user123",
    resolution_notes="Fixed in deployment v1.2.3"
)
''',
    "integration": '''\
from src.feedback import FeedbackLoopIntegration

# Initialize integration
integration = FeedbackLoopIntegration(
    metrics_collector=metrics,
    event_logger=events,
    user_manager=users,
    campaign_manager=campaigns,
    report_generator=reports,
    measurement=measurement,
    pricing_manager=pricing
)

# Handle events (automatically triggers surveys/metrics)
await integration.on_report_generated(
    user_id=user_id,
    report_id=report_id,
    campaign_id=campaign_id,
    time_to_generate=1200
)

# Run periodic checks
escalations = await integration.run_periodic_checks()

# Run sprint retro
retro = await integration.run_sprint_retro(
    sprint_id="sprint-2024-01",
    sprint_start=datetime(2024, 1, 1),
    sprint_end=datetime(2024, 1, 14)
)
''',
    "escalation_rules": '''\
# Add custom rule
rule = EscalationRule(
    rule_id="custom_rule",
    escalation_type=EscalationType.VALUE_DROP,
    severity=EscalationSeverity.HIGH,
    condition={"metric": "nps_score", "period_days": 7},
    threshold=0.0,
    comparison="less_than",
    action="notify_product_team",
    notification_channels=["email", "slack"]
)
auto_escalation.add_rule(rule)
''',
    "survey_configuration": '''\
# Create custom survey
survey = Survey(
    survey_id="custom_survey",
    survey_type=SurveyType.FEATURE_SATISFACTION,
    trigger=SurveyTrigger.FEATURE_COMPLETED,
    trigger_context={"feature": "custom_feature"},
    questions=[...],
    persona_segments=["solo_podcaster"],
    journey_stage="feature_usage"
)
''',
}
# fmt: on


def seed_snippets(readme: str) -> dict[str, str]:
    """The ```python blocks of the seed's README, keyed by the section they appear in."""
    snippets: dict[str, str] = {}
    section, block = "", None
    for line in readme.splitlines():
        if block is not None:
            if line.strip() == "```":
                snippets[next(key for head, key in SECTIONS.items() if section.startswith(head))] = "".join(
                    block
                )
                block = None
            else:
                block.append(line + "\n")
        elif line.startswith("### "):
            section = line.removeprefix("### ")
        elif line.strip() == "```python":
            block = []
    return snippets


def as_ours(snippet: str) -> str:
    """The one change allowed: the seed's import line names our package."""
    return "\n".join(
        "from feedbackloop import " + line.removeprefix(SEED_IMPORT) if line.startswith(SEED_IMPORT) else line
        for line in snippet.splitlines()
    )


def run_snippet(name: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run the named snippet (top-level await allowed) in `namespace`; returns the namespace it filled."""
    code = compile(as_ours(SEED_SNIPPETS[name]), f"<seed snippet {name}>", "exec",
                   flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # fmt: skip

    async def run() -> None:
        outcome = eval(code, namespace)  # the snippet is the test's input, from the vendored seed text
        if inspect.iscoroutine(outcome):
            await outcome

    asyncio.run(run())
    return namespace


def count(database: Database, sql: str, **params: Any) -> int:
    with database.read() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def plant_error_spike(database: Database, now: datetime) -> None:
    """podcast_network's error rate: 3 per active user in the last 7 days against 1 in each of the 4 weeks before,
    so the default error_spike rule opens an escalation at `now`."""
    base, spike = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1] * 4, [3, 2, 4, 3, 2, 3, 4, 3, 2, 4] * 4
    events: list[CanonicalEvent] = []

    def add(kind: str, name: str, user: str, at: datetime, **properties: Any) -> None:
        events.append(CanonicalEvent(f"spike-{len(events)}", kind, name, at, at, user_id=user,
                                     properties=properties))  # fmt: skip

    for position in range(len(base)):
        add("identify", "identify", f"pn-{position}", now - timedelta(days=400), persona="podcast_network")
    for week in range(5, 0, -1):
        start = now - timedelta(days=7 * week - 1)
        for position, errors in enumerate(spike if week == 1 else base):
            add("track", "feature_used", f"pn-{position}", start, feature="reports")
            for k in range(errors):
                add("track", "error_occurred", f"pn-{position}", start + timedelta(seconds=k + 1),
                    feature="reports")  # fmt: skip
    EventIngestor(database, survey_triggers=False).ingest(events)


@pytest.fixture
def seed_env(database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    """The seed's classes read their database and sinks from the settings: point them at this test's."""
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", database.url)
    monkeypatch.setenv("FEEDBACKLOOP_TICKET_SINKS", "jsonl")
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_JSONL_PATH", str(tmp_path / "backlog.jsonl"))
    monkeypatch.setenv("FEEDBACKLOOP_NOTIFICATION_FILE", str(tmp_path / "notifications.jsonl"))
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def test_the_vendored_snippets_are_the_seeds() -> None:
    if not SEED_FILE.exists():
        pytest.skip(f"the seed is not beside this checkout ({SEED_FILE}); the vendored snippets stand in")
    assert seed_snippets(SEED_FILE.read_text(encoding="utf-8")) == SEED_SNIPPETS


def test_only_the_import_line_changes() -> None:
    for name, snippet in SEED_SNIPPETS.items():
        ours = as_ours(snippet)
        changed = [
            (seed, mine)
            for seed, mine in zip(snippet.splitlines(), ours.splitlines(), strict=True)
            if seed != mine
        ]
        imports = [
            line for line in snippet.splitlines() if line.startswith("from ") or line.startswith("import ")
        ]
        assert len(changed) == len(imports) <= 1, name
        for _, line in changed:
            names = [n.strip() for n in line.removeprefix("from feedbackloop import ").split(",")]
            assert all(hasattr(feedbackloop, n) for n in names), line


# ---- 1. surveys ----------------------------------------------------------------------------------------------


def test_surveys_snippet(seed_env: Database) -> None:
    # The prose presupposes `survey_system` and the `user` the survey is for.
    user = User(user_id="seed-user", persona_segment="solo_podcaster")
    ran = run_snippet("surveys", {"survey_system": JourneySurveySystem(), "user": user})

    survey, response = ran["survey"], ran["response"]
    assert (survey.survey_id, survey.survey_type, survey.trigger) == (
        "time_to_value", SurveyType.TIME_TO_VALUE, SurveyTrigger.VALUE_DELIVERED,
    )  # fmt: skip
    assert (response.survey_id, response.user_id, response.partial, response.duplicate) == (
        "time_to_value", "seed-user", False, False,
    )  # fmt: skip
    assert response.answers["ease_of_setup"] == "Very Easy"
    assert count(seed_env, "SELECT count(*) FROM survey_answers") == 3
    assert count(seed_env, "SELECT count(*) FROM survey_displays WHERE status = 'answered'") == 1


# ---- 2. metrics ----------------------------------------------------------------------------------------------


def test_metrics_snippet(seed_env: Database) -> None:
    # The prose presupposes `metrics_tracker` and the `user_id` whose time to value was measured.
    ran = run_snippet("metrics", {"metrics_tracker": MetricsTracker(), "user_id": "seed-user"})

    report = ran["metrics"]
    assert report.metric == MetricCategory.TIME_TO_VALUE.value and list(report.personas) == ["solo_podcaster"]
    current = report.personas["solo_podcaster"].current
    assert (current.n, current.mean, current.unit) == (1, 1200, "seconds")
    assert count(seed_env, "SELECT count(*) FROM metric_observations WHERE category = 'time_to_value'") == 1


# ---- 3. KPIs -------------------------------------------------------------------------------------------------


def test_kpis_snippet(seed_env: Database) -> None:
    EventIngestor(seed_env).ingest_stream(generate_events(SyntheticConfig(users=200, days=60, seed=4)))
    # The prose presupposes `kpi_dashboard`.
    ran = run_snippet("kpis", {"kpi_dashboard": KPIDashboardAggregator()})

    dashboard, comparison = ran["dashboard"], ran["comparison"]
    assert [card.name for card in dashboard.cards] == [k.name for k in KPI_DEFINITIONS]
    assert dashboard.window.end - dashboard.window.start == timedelta(days=30)
    conversion = next(card for card in dashboard.cards if card.name == "conversion_rate")
    assert conversion.n > 0 and conversion.value is not None
    assert comparison.category is KPICategory.BUSINESS_SUCCESS
    assert {r.kpi for r in comparison.rankings} == {
        k.name for k in KPI_DEFINITIONS if k.category == "business_success"
    }
    assert {"solo_podcaster", "agency"} <= {row.persona for r in comparison.rankings for row in r.ranking}


# ---- 4. retro ------------------------------------------------------------------------------------------------


def test_retro_snippet(seed_env: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    EventIngestor(seed_env).ingest_stream(generate_events(SPRINT_DATA))
    # The prose presupposes `retro_agent`, and `datetime` (imported by the seed's module).
    ran = run_snippet("retro", {"retro_agent": RetroAgent(), "datetime": datetime})

    analysis, printed = ran["analysis"], capsys.readouterr().out
    assert isinstance(analysis, RetroAnalysis) and analysis.analysis_type is RetroAnalysisType.SPRINT
    assert analysis.status == "completed" and analysis.synthesis == "rules"
    assert "High impact: error_rate worsened" in printed and "Recommendations: [" in printed
    assert printed.count("Backlog: ") == len(analysis.backlog_items) > 0
    filed = (tmp_path / "backlog.jsonl").read_text().splitlines()
    assert len(filed) == len(analysis.backlog_items)


# ---- 5. experiments ------------------------------------------------------------------------------------------


def test_experiments_snippet(seed_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    # The prose presupposes `ab_testing` and the `user` being assigned.
    user = User(user_id="seed-user", persona_segment="solo_podcaster")
    ran = run_snippet("experiments", {"ab_testing": ABTestingFramework(), "user": user})

    assignment, results = ran["assignment"], ran["results"]
    assert assignment.in_experiment and assignment.configuration["flow"] in ("standard", "guided")
    assert results.units[assignment.variant] == 1
    assert results.winner is None and "minimum sample" in results.winner_reason  # one user decides nothing
    completion = next(m for m in results.metrics if m.metric.name == "completion_rate")
    arm = completion.result.control if assignment.variant == "Control" else completion.result.variants[0]
    assert (arm.n, arm.mean) == (1, 1.0)  # the tracked onboarding_completed counted
    assert capsys.readouterr().out == f"Winner: None\nConfidence: {results.confidence_level}\n"
    assert count(seed_env, "SELECT count(*) FROM events WHERE name = 'onboarding_completed'") == 1


# ---- 6. escalation -------------------------------------------------------------------------------------------


def test_escalation_snippet(seed_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    plant_error_spike(seed_env, datetime.now(UTC))
    # The prose presupposes `auto_escalation`.
    auto_escalation = AutoEscalationSystem()
    ran = run_snippet("escalation", {"auto_escalation": auto_escalation})

    [escalation] = ran["escalations"]
    assert (escalation.rule_id, escalation.affected_personas) == ("error_spike", ["podcast_network"])
    assert capsys.readouterr().out == (
        f"Escalation: {escalation.title}\nSeverity: critical\nAffected personas: ['podcast_network']\n"
    )
    [resolved] = asyncio.run(auto_escalation.get_escalations("resolved"))
    assert (resolved.escalation_id, resolved.resolved_by, resolved.resolution_notes) == (
        escalation.escalation_id, "user123", "Fixed in deployment v1.2.3",
    )  # fmt: skip


def test_escalation_rules_snippet(seed_env: Database) -> None:
    # A configuration fragment: it presupposes `auto_escalation` and the rule vocabulary in scope.
    auto_escalation = AutoEscalationSystem()
    ran = run_snippet("escalation_rules", {
        "auto_escalation": auto_escalation, "EscalationRule": EscalationRule,
        "EscalationType": EscalationType, "EscalationSeverity": EscalationSeverity,
    })  # fmt: skip

    stored = {rule.rule_id: rule for rule in auto_escalation.rules()}
    assert stored["custom_rule"] == ran["rule"]
    assert (stored["custom_rule"].threshold, stored["custom_rule"].comparison) == (0.0, "less_than")
    assert len(stored) == 6  # the five defaults and the custom rule


# ---- survey configuration ------------------------------------------------------------------------------------


def test_survey_configuration_snippet(seed_env: Database) -> None:
    # A configuration fragment: it presupposes the survey vocabulary in scope.
    ran = run_snippet("survey_configuration",
                      {"Survey": Survey, "SurveyType": SurveyType, "SurveyTrigger": SurveyTrigger})  # fmt: skip

    survey = ran["survey"]
    assert (survey.survey_id, survey.persona_segments, survey.journey_stage) == (
        "custom_survey", ["solo_podcaster"], "feature_usage",
    )  # fmt: skip
    assert 1 <= len(survey.questions) <= 5  # `[...]`: the standard questions of a feature-satisfaction survey
    survey_system = JourneySurveySystem()
    asyncio.run(survey_system.create_survey(survey))
    shown = asyncio.run(survey_system.trigger_survey(
        User("u1", persona_segment="solo_podcaster"), SurveyTrigger.FEATURE_COMPLETED, feature="custom_feature"
    ))  # fmt: skip
    assert shown is not None and shown.survey_id == "custom_survey"


# ---- 7. integration ------------------------------------------------------------------------------------------


@dataclass
class HostModules:
    """The host app's modules the integration snippet passes in (each records what it was asked or told)."""

    calls: list[tuple[str, tuple[Any, ...]]]

    def persona_of(self, user_id: str) -> str | None:  # users
        self.calls.append(("users.persona_of", (user_id,)))
        return "agency"

    async def template_of(self, report_id: str) -> str | None:  # reports (an asyncio host module)
        self.calls.append(("reports.template_of", (report_id,)))
        return "sponsor-summary"

    def sponsor_of(self, campaign_id: str) -> str | None:  # campaigns
        self.calls.append(("campaigns.sponsor_of", (campaign_id,)))
        return "acme"

    def plan_of(self, user_id: str) -> str | None:  # pricing
        self.calls.append(("pricing.plan_of", (user_id,)))
        return "pro"

    def log_event(self, name: str, user_id: str, properties: Any) -> None:  # events
        self.calls.append(("events.log_event", (name, user_id, dict(properties))))

    async def observe(self, name: str, value: float, labels: Any) -> None:  # metrics
        self.calls.append(("metrics.observe", (name, value, dict(labels))))

    def record_task(self, user_id: str, task: str, succeeded: bool) -> None:  # measurement
        self.calls.append(("measurement.record_task", (user_id, task, succeeded)))


def test_integration_snippet(seed_env: Database, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    EventIngestor(seed_env).ingest_stream(generate_events(SPRINT_DATA))  # for the sprint retro
    plant_error_spike(seed_env, now)  # for the periodic checks
    signed_up = datetime.now(UTC) - timedelta(minutes=20)  # just before the snippet reports
    EventIngestor(seed_env).ingest([CanonicalEvent("host-signup", "track", "user_signed_up", signed_up, signed_up,
                                                   user_id="host-user")])  # fmt: skip
    host = HostModules(calls=[])
    # The prose presupposes the host's modules (metrics … pricing), the report's ids and `datetime`.
    ran = run_snippet("integration", {
        "metrics": host, "events": host, "users": host, "campaigns": host, "reports": host,
        "measurement": host, "pricing": host, "datetime": datetime,
        "user_id": "host-user", "report_id": "report-1", "campaign_id": "campaign-1",
    })  # fmt: skip

    # on_report_generated: the canonical event, the persona from the user manager, the first-value survey.
    properties = {"report_id": "report-1", "campaign_id": "campaign-1", "duration_seconds": 1200,
                  "template": "sponsor-summary"}  # fmt: skip
    with seed_env.read() as connection:
        stored = connection.execute(text(
            "SELECT name, properties FROM events WHERE user_id = 'host-user' ORDER BY timestamp, name"
        )).all()  # fmt: skip
        display = connection.execute(text("SELECT survey_id, status FROM survey_displays")).one()
    assert [(name, json.loads(p) if isinstance(p, str) else p) for name, p in stored] == [
        ("user_signed_up", {}),
        ("identify", {"persona": "agency"}),
        ("report_generated", properties),
    ]
    assert tuple(display) == ("time_to_value", "shown")
    told = [call for call in host.calls if call[0] not in ("users.persona_of", "reports.template_of")]
    assert told[0] == ("events.log_event", ("report_generated", "host-user", properties))
    observed = {args[0]: args[1] for name, args in told if name == "metrics.observe"}
    assert observed["report_generation_seconds"] == 1200
    assert observed["time_to_value_seconds"] == pytest.approx(1200, abs=30)  # sign-up to this first report
    assert told[-1] == ("measurement.record_task", ("host-user", "report_generation", True))
    assert not [call for call in host.calls if call[0] in ("campaigns.sponsor_of", "pricing.plan_of")]

    checks = ran["escalations"]
    assert isinstance(checks, PeriodicCheckResult) and not checks.skipped
    [spike] = [e for e in checks.active if e.rule_id == "error_spike"]
    assert spike.affected_personas == ["podcast_network"] and spike.escalation_id in checks.opened
    assert [incident["incident_id"] for incident in checks.incidents]  # the escalation agent triaged it

    retro = ran["retro"]
    assert retro.analysis_type is RetroAnalysisType.SPRINT and retro.status == "completed"
    assert any(i.impact == "High" and "error_rate" in i.title for i in retro.insights)
    assert len((tmp_path / "backlog.jsonl").read_text().splitlines()) >= len(retro.backlog_items) > 0
