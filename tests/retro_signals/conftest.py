"""Datasets for the retro's data phase, built once per database (SQLite and PostgreSQL) for the whole session.

"planted": 600 synthetic users over 90 days ending 2024-04-01 with deployment v1.4.0 on day 76 (2024-03-18
10:00 UTC) tripling podcast_network's report errors; the default surveys answered by simulated respondents (the
persona sours after the deployment, as in the demo); the demo's two experiments run on days 20–33 on trial users
of their own (the onboarding one, with a planted winner, is stopped on day 80 shipping "guided"; the pricing one,
without an effect, keeps running); and the default escalation rules checked daily from three days after
the deployment to the end of the sprint. The sprint under review is days 74–87 (2024-03-16 to 2024-03-29, end day
included), its baseline days 60–73.

"null": the same users and days without the deployment (nothing else planted).

The gather step runs once per dataset here, timed, so the tests read the same gathered data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from store.database import Database
from store.repositories.summary import find_event
from tests.conftest import POSTGRES_URL_VARIABLE, _postgres_base_url, _postgres_schema_url
from tools.escalation.service import EscalationService
from tools.events.ingest import EventIngestor
from tools.experiments.demo_traffic import ONBOARDING_EXPERIMENT, TrafficPlan, run_experiments
from tools.experiments.service import ExperimentService
from tools.retro.gather import FAMILIES, GatherSettings, gather
from tools.retro.model import RetroWindow
from tools.retro.window import sprint_window
from tools.surveys.demo_responses import Regression, simulate_respondents
from tools.surveys.service import SurveyService
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events

END = datetime(2024, 4, 1, tzinfo=UTC)
DAYS = 90
USERS = 600
PERIOD_START = END - timedelta(days=DAYS)
PLANTED = PlantedDeployment()  # v1.4.0, day 76, podcast_network, report errors × 3
SURVEYS_FROM_DAY = 60  # surveys exist from the baseline on: fewer displays to simulate
EXPERIMENT_FIRST_DAY, EXPERIMENT_DAYS, EXPERIMENT_USERS_PER_DAY = 20, 14, 100
EXPERIMENT_STOP_DAY = 80
CHECK_EVERY = timedelta(hours=24)
CHECKS_FROM_AFTER_DEPLOY = timedelta(days=3)  # the spike needs a few days of data to be significant


def day(number: float) -> datetime:
    return PERIOD_START + timedelta(days=number)


SPRINT: RetroWindow = sprint_window(day(74), day(87), sprint_id="sprint-2024-06")  # day 87 is the last day


@dataclass(frozen=True)
class Dataset:
    name: str
    database: Database
    deployed_at: datetime | None
    gathered: dict[str, dict[str, Any]]
    seconds: dict[str, float]  # gather time per family
    settings: GatherSettings


def _urls(tmp: Path, backend: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/retro.db"
        return
    base = _postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL half skipped: set {POSTGRES_URL_VARIABLE}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(base, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def gather_all(
    database: Database, window: RetroWindow, settings: GatherSettings
) -> tuple[dict[str, Any], dict[str, float]]:
    gathered, seconds = {}, {}
    for family in FAMILIES:
        started = time.perf_counter()
        with database.read() as connection:
            gathered[family] = gather(connection, family, window, settings)
        seconds[family] = time.perf_counter() - started
    return gathered, seconds


def _load_planted(database: Database) -> datetime:
    events = list(generate_events(SyntheticConfig(users=USERS, days=DAYS, end=END)))
    ingestor = EventIngestor(database)
    cutoff = day(SURVEYS_FROM_DAY)
    ingestor.ingest_stream(e for e in events if e.timestamp < cutoff)
    clock = [day(EXPERIMENT_FIRST_DAY)]
    experiments = ExperimentService(database, clock=lambda: clock[0])
    plan = TrafficPlan(first_day=clock[0], days=EXPERIMENT_DAYS, users_per_day=EXPERIMENT_USERS_PER_DAY)
    run_experiments(experiments, ingestor, plan, clock)
    clock[0] = day(EXPERIMENT_STOP_DAY)
    experiments.stop(ONBOARDING_EXPERIMENT["key"], "ship:guided", "guided onboarding won")
    SurveyService(database).ensure_defaults()
    ingestor.ingest_stream(e for e in events if e.timestamp >= cutoff)
    with database.read() as connection:
        deployed_at = find_event(
            connection, name="deployment", property_name="version", value=PLANTED.version
        )
    assert deployed_at is not None
    simulate_respondents(
        SurveyService(database), until=SPRINT.end, regression=Regression(deployed_at, PLANTED.persona)
    )
    clock[0] = deployed_at + CHECKS_FROM_AFTER_DEPLOY
    escalations = EscalationService(database, clock=lambda: clock[0])
    escalations.ensure_default_rules()
    while clock[0] < SPRINT.end:
        escalations.check(at=clock[0])
        clock[0] += CHECK_EVERY
    return deployed_at


def _dataset(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Dataset]:
    backend = request.param
    for url in _urls(tmp_path_factory.mktemp(f"retro-{name}-{backend}"), backend):
        database = Database(url)
        try:
            if name == "planted":
                deployed_at: datetime | None = _load_planted(database)
            else:
                config = SyntheticConfig(users=USERS, days=DAYS, end=END, deployments=())
                EventIngestor(database).ingest_stream(generate_events(config))
                deployed_at = None
            if database.dialect == "postgresql":
                # Fresh bulk-loaded tables have no planner statistics until autovacuum gets to them; without them
                # the time-to-value query takes seconds instead of ~0.1 s (what a running server sees).
                with database.write() as connection:
                    connection.execute(text("ANALYZE"))
            settings = GatherSettings()
            gathered, seconds = gather_all(database, SPRINT, settings)
            yield Dataset(name, database, deployed_at, gathered, seconds, settings)
        finally:
            database.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    yield from _dataset(request, tmp_path_factory, "planted")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def null(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    yield from _dataset(request, tmp_path_factory, "null")
