"""The winner rule on simulated experiments: planted effects are found, null experiments declare no winner, and a
broken split, a failing guardrail or a small sample each block the winner with the reason.

One planted-effect case runs on SQLite and PostgreSQL; the repeated seeded simulations run on SQLite (the SQL is
checked on both databases in test_analysis_sql.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from store.database import Database
from store.models import ExperimentAssignmentRow
from tests.experiments.support import (
    Clock,
    assign_in_waves,
    definition,
    experiment_id,
    exposed_users,
    plant_conversions,
    track,
)
from tools.events.ingest import EventIngestor
from tools.experiments.analysis import ExperimentResults, analyze
from tools.experiments.service import ExperimentService

PLANTED = (0.30, 0.40)  # onboarding completion, control vs guided


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One SQLite file for the module's simulations; each uses its own experiment key and user ids."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('simulations')}/experiments.db")
    yield database
    database.dispose()


def run(database: Database, key: str, rates: Sequence[float], *, seed: int, users_per_arm: int = 2_000,
        **settings: Any) -> ExperimentResults:  # fmt: skip
    """Create, start, assign users_per_arm × arms users over a day, plant conversions, analyse."""
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition(key, **settings))
    service.start(key)
    arms = len(service.get(key).spec.variants)
    assign_in_waves(service, clock, key, [f"{key}-{i}" for i in range(users_per_arm * arms)])
    plant_conversions(database, key, rates, seed=seed)
    return analyze(service, key, now=clock.now)


def completion(results: ExperimentResults, metric: str = "onboarding_completion") -> Any:
    return next(m.result for m in results.metrics if m.metric.name == metric)


def test_a_planted_effect_wins_on_both_databases(database: Database) -> None:
    results = run(database, "planted", PLANTED, seed=0)
    assert results.winner == "treatment", results.winner_reason
    assert results.confidence_level is not None and results.confidence_level > 0.95
    assert not results.srm and sum(results.units.values()) == 4_000
    effect = completion(results).variants[0]
    assert effect.p_value < 0.001 and 0.2 < effect.effect < 0.45  # relative lift; planted +33 %
    assert results.confidence_level == 1 - effect.p_value  # one primary metric: the adjusted p is the p
    assert results.power is not None and results.power.metric == "onboarding_completion"
    as_dict = results.as_dict()
    assert as_dict["winner"] == "treatment" and as_dict["metrics"][0]["role"] == "primary"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_planted_effect_wins_on_every_seed(sqlite_database: Database, seed: int) -> None:
    results = run(sqlite_database, f"planted-{seed}", PLANTED, seed=seed)
    assert results.winner == "treatment", results.winner_reason
    assert results.confidence_level is not None and results.confidence_level > 0.95


def test_null_experiments_rarely_declare_a_winner(sqlite_database: Database) -> None:
    """Same rates in both arms. A false winner needs p < α = 0.05 in the treatment's favour (≈ 2.5 % per run);
    P(≥ 2 of 10) ≈ 2.6 %, so at most one of ten seeded runs may declare one (here: none does)."""
    winners = []
    for seed in range(10):
        results = run(sqlite_database, f"null-{seed}", (0.3, 0.3), seed=100 + seed, users_per_arm=1_000)
        winners.append(results.winner)
        if results.winner is None:
            assert results.winner_reason.startswith("no variant beat control")
    assert sum(w is not None for w in winners) <= 1, winners


def test_sample_ratio_mismatch_blocks_the_winner(database: Database) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    results = run(database, "srm", PLANTED, seed=7, users_per_arm=1_000)
    assert results.winner == "treatment" and not results.srm
    treated = sorted(u for u, (variant, _) in exposed_users(database, "srm").items() if variant == 1)
    table = ExperimentAssignmentRow
    with database.write() as connection:  # lose half of one arm, as a broken redirect or tracking would
        connection.execute(delete(table).where(table.experiment_id == experiment_id(database, "srm"),
                                               table.user_id.in_(treated[::2])))  # fmt: skip
    broken = analyze(service, "srm", now=clock.now)
    assert broken.srm and broken.srm_p_value is not None and broken.srm_p_value < 0.001
    assert broken.winner is None and broken.winner_reason.startswith("sample ratio mismatch")


def test_extra_rows_in_one_arm_are_a_mismatch_too(sqlite_database: Database) -> None:
    results = run(sqlite_database, "srm-extra", PLANTED, seed=8, users_per_arm=1_000)
    assert not results.srm
    table = ExperimentAssignmentRow
    identifier = experiment_id(sqlite_database, "srm-extra")
    with sqlite_database.write() as connection:
        template = connection.execute(select(table).where(table.experiment_id == identifier).limit(1)).one()
        rows = [{**template._asdict(), "user_id": f"ghost-{i}", "variant": 0} for i in range(300)]
        connection.execute(table.__table__.insert(), rows)
    broken = analyze(ExperimentService(sqlite_database), "srm-extra")
    assert broken.srm and broken.winner is None and "sample ratio mismatch" in broken.winner_reason


def _plant_errors(database: Database, key: str, means: Sequence[float], seed: int) -> None:
    """error_occurred events per user: 0–2, with the given mean per arm, inside the window."""
    rng = random.Random(seed)
    events = []
    for user, (variant, exposed_at) in sorted(exposed_users(database, key).items()):
        mean = means[variant]
        for n in range(2):
            if rng.random() < mean / 2:
                events.append(track(user, "error_occurred", exposed_at + timedelta(hours=1 + n)))
    EventIngestor(database).ingest(events)


def test_a_guardrail_failing_its_margin_blocks_the_winner(sqlite_database: Database) -> None:
    guard = {"guardrails": [{"metric": "error_rate", "margin": 0.05}]}
    service = ExperimentService(sqlite_database)
    run(sqlite_database, "harm", PLANTED, seed=9, **guard)
    _plant_errors(sqlite_database, "harm", (0.3, 0.6), seed=9)
    results = analyze(service, "harm")
    guardrail = next(m for m in results.metrics if m.role == "guardrail")
    assert guardrail.guardrail_status == {"treatment": "fail"} and guardrail.margin == 0.05
    assert results.winner is None
    assert "guardrail error_rate failed its margin" in results.winner_reason
    assert completion(results).variants[0].p_value < 0.001  # the primary metric alone would have won

    run(sqlite_database, "safe", PLANTED, seed=10, guardrails=[{"metric": "error_rate", "margin": 0.5}])
    _plant_errors(sqlite_database, "safe", (0.3, 0.3), seed=10)
    safe = analyze(service, "safe")
    assert next(m for m in safe.metrics if m.role == "guardrail").guardrail_status == {"treatment": "pass"}
    assert safe.winner == "treatment"


def test_minimum_sample_not_reached(database: Database) -> None:
    results = run(database, "small", (0.3, 0.95), seed=11, users_per_arm=60)
    assert completion(results).variants[0].p_value < 0.01  # clearly better, but on too few users
    assert results.winner is None
    assert results.winner_reason.startswith("minimum sample not reached (100 units per variant;")
    assert results.power is not None and results.power.units_per_variant_now == min(results.units.values())


def test_multivariate_main_effects(sqlite_database: Database) -> None:
    factors = {"layout": ["list", "grid"], "copy": ["short", "long"]}
    clock = Clock()
    service = ExperimentService(sqlite_database, clock=clock)
    service.create(definition("mvt", mode="multivariate", variants=None, factors=factors))
    service.start("mvt")
    spec = service.get("mvt").spec
    assert spec.variants[0].name == "layout=list|copy=short" and len(spec.variants) == 4
    assign_in_waves(service, clock, "mvt", [f"mvt-{i}" for i in range(6_000)])
    rates = [0.40 if v.configuration["layout"] == "grid" else 0.30 for v in spec.variants]
    plant_conversions(sqlite_database, "mvt", rates, seed=12)
    results = analyze(service, "mvt", now=clock.now)
    assert set(results.main_effects) == {"layout", "copy"}
    [layout] = results.main_effects["layout"]
    [copy] = results.main_effects["copy"]
    assert layout.control.name == "layout=list" and layout.control.n > 2_500
    grid = layout.variants[0]
    assert grid.name == "layout=grid" and grid.p_value < 0.001 and grid.effect > 0.2
    assert copy.variants[0].name == "copy=long" and copy.variants[0].p_value > 0.05  # no planted copy effect
    assert results.as_dict()["main_effects"]["layout"][0]["variants"][1]["name"] == "layout=grid"


def test_shadow_mode_analysis_compares_the_recorded_groups(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/shadow.db")
    results = run(database, "shadow", PLANTED, seed=13, mode="shadow")
    assert results.mode == "shadow" and results.winner == "treatment"
    database.dispose()


def test_bayesian_confidence_is_the_chance_to_win(sqlite_database: Database) -> None:
    results = run(sqlite_database, "bayes", PLANTED, seed=14, engine="bayesian")
    effect = completion(results).variants[0]
    assert results.winner == "treatment" and effect.p_value is None
    assert results.confidence_level == effect.chance_to_win and effect.chance_to_win > 0.95


def test_cuped_uses_the_pre_exposure_window_and_narrows_the_interval(sqlite_database: Database) -> None:
    """Two experiments over the same users with the same seed (so the same split): with and without CUPED."""
    clock = Clock()
    service = ExperimentService(sqlite_database, clock=clock)
    for key, cuped in (("with-cuped", True), ("without-cuped", False)):
        service.create(definition(key, seed="shared-seed", cuped=cuped))
        service.start(key)
    users = [f"cuped-{i}" for i in range(3_000)]
    service.assign_many("with-cuped", users)
    service.assign_many("without-cuped", users)
    rng = random.Random(15)
    events = []
    for user, (variant, exposed_at) in sorted(exposed_users(sqlite_database, "with-cuped").items()):
        engaged = rng.random() < 0.5  # engaged users completed before exposure and keep completing
        if engaged:
            events.append(track(user, "onboarding_completed", exposed_at - timedelta(days=3)))
        if rng.random() < (0.8 if engaged else 0.05) + 0.05 * variant:
            events.append(track(user, "onboarding_completed", exposed_at + timedelta(hours=3)))
    EventIngestor(sqlite_database).ingest(events)
    adjusted = completion(analyze(service, "with-cuped")).variants[0]
    plain = completion(analyze(service, "without-cuped")).variants[0]
    assert adjusted.se is not None and plain.se is not None and adjusted.se < 0.8 * plain.se
    assert abs(adjusted.effect - plain.effect) < 2 * plain.se  # the same effect, estimated more precisely
    # The means shown are what users did (unadjusted), the same with and without CUPED, as GrowthBook shows them.
    assert adjusted.mean == plain.mean
    with_cuped, without = (
        completion(analyze(service, "with-cuped")),
        completion(analyze(service, "without-cuped")),
    )
    assert with_cuped.control.mean == without.control.mean and 0.4 < without.control.mean < 0.5
