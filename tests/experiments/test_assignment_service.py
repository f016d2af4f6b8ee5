"""Assignment through the service on SQLite and PostgreSQL: GrowthBook's choice, sticky, exposed once, safe under
concurrent requests, persona targeting, shadow mode and the bulk limit."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest
from growthbook import Experiment, GrowthBook
from growthbook import core as gb
from sqlalchemy import func, select, update

from store.database import Database
from store.models import ExperimentAssignmentRow
from tests.experiments.support import (
    Clock,
    definition,
    experiment_id,
    exposure_properties,
    exposures,
    identify,
    stored_rows,
)
from tools.events.ingest import EventIngestor
from tools.experiments.analysis import analyze
from tools.experiments.errors import ExperimentInputError
from tools.experiments.service import MAX_BULK_USERS, Assignment, ExperimentService
from tools.users import User

ALPHABETS = (
    "abcdefghijklmnopqrstuvwxyz0123456789-_@.",
    "äöüßéèêçñÅØ",  # 2-byte UTF-8, one UTF-16 unit
    "日本語中文한국어",  # 3-byte UTF-8, one UTF-16 unit
    "😀🎧🎙👩💻",  # astral: a surrogate pair (two UTF-16 units) each
)


def user_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < count:
        alphabet = ALPHABETS[len(ids) % len(ALPHABETS)]
        ids.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))) + f"#{len(ids)}")
    return sorted(ids)


def growthbook_choice(
    seed: str, user_id: str, weights: list[float], coverage: float, version: int = 2
) -> int:
    """The growthbook package's variation index, −1 outside the experiment."""
    n = gb.gbhash(seed, user_id, version)
    return -1 if n is None else gb.chooseVariation(n, gb.getBucketRanges(len(weights), coverage, weights))


def index(assignment: Assignment) -> int:
    return -1 if assignment.variant_index is None else assignment.variant_index


@pytest.fixture
def service(database: Database) -> ExperimentService:
    return ExperimentService(database, clock=Clock())


THREE_ARMS: dict[str, Any] = {
    "variants": [
        {"name": "control", "weight": 0.2, "configuration": {"price": 10}},
        {"name": "discount", "weight": 0.3, "configuration": {"price": 8}},
        {"name": "premium", "weight": 0.5, "configuration": {"price": 12}},
    ],
    "coverage": 0.8,
    "seed": "prix-ñ-🎧",
}


def test_assignments_equal_the_growthbook_package(service: ExperimentService, database: Database) -> None:
    service.create(definition("pricing", **THREE_ARMS))
    service.start("pricing")
    ids = user_ids(2_400, seed=1)
    assigned = service.assign_many("pricing", ids)
    weights = [0.2, 0.3, 0.5]
    expected = [growthbook_choice("prix-ñ-🎧", u, weights, 0.8) for u in ids]
    assert [index(a) for a in assigned] == expected
    assert Counter(expected)[-1] > 300  # the 20 % coverage gap is exercised
    for a in assigned:
        if a.in_experiment:
            assert a.reason is None and a.first_exposure
            assert a.configuration == THREE_ARMS["variants"][index(a)]["configuration"]
        else:
            assert (a.reason, a.variant, a.configuration) == ("outside_coverage", "control", {"price": 10})
    assert set(stored_rows(database, "pricing")) == {a.user_id for a in assigned if a.in_experiment}
    # The SDK's own entry point, as an app would call it, on a sample of the same users.
    sdk_experiment = Experiment(key="pricing", variations=[0, 1, 2], weights=weights, coverage=0.8,
                                seed="prix-ñ-🎧", hashVersion=2)  # fmt: skip
    for assignment in assigned[::8]:
        client = GrowthBook(attributes={"id": assignment.user_id})
        result = client.run(sdk_experiment)
        client.destroy()
        assert result.inExperiment == assignment.in_experiment
        if result.inExperiment:
            assert result.value == assignment.variant_index


def test_hash_version_one_and_the_key_as_seed(service: ExperimentService) -> None:
    service.create(definition("legacy-exp", hash_version=1))
    service.start("legacy-exp")
    ids = user_ids(400, seed=2)
    got = [index(a) for a in service.assign_many("legacy-exp", ids)]
    assert got == [growthbook_choice("legacy-exp", u, [0.5, 0.5], 1.0, version=1) for u in ids]


def test_sticky_with_one_exposure_per_user(service: ExperimentService, database: Database) -> None:
    service.create(definition("exp"))
    service.start("exp")
    ids = [f"u{i}" for i in range(300)]
    first = service.assign_many("exp", ids)
    second = service.assign_many("exp", list(reversed(ids)))
    assert [a.variant for a in first] == [a.variant for a in reversed(second)]
    assert all(a.first_exposure for a in first) and not any(a.first_exposure for a in second)
    mixed = service.assign_many("exp", ["u3", "newcomer", "u4"])  # known and new users in one request
    assert [(a.variant, a.in_experiment, a.first_exposure) for a in mixed] == [
        (first[3].variant, True, False), (mixed[1].variant, True, True), (first[4].variant, True, False)
    ]  # fmt: skip
    ids.append("newcomer")
    single = service.assign("exp", "u7")
    assert single.variant == first[7].variant and not single.first_exposure
    assert exposures(database) == {u: 1 for u in ids}
    properties = exposure_properties(database, "u7")[0]
    assert properties == {"experiment_id": "exp", "variation_id": first[7].variant_index,
                          "variant": first[7].variant, "phase": 0, "shadow": False}  # fmt: skip
    # The stored assignment wins over the hash: overwrite one row and it is what the user gets.
    flipped = 1 - (first[7].variant_index or 0)
    with database.write() as connection:
        connection.execute(
            update(ExperimentAssignmentRow)
            .where(ExperimentAssignmentRow.experiment_id == experiment_id(database, "exp"),
                   ExperimentAssignmentRow.user_id == "u7")
            .values(variant=flipped)
        )  # fmt: skip
    assert service.assign("exp", "u7").variant_index == flipped


def test_repeated_ids_in_one_request_store_one_row(service: ExperimentService, database: Database) -> None:
    service.create(definition("exp"))
    service.start("exp")
    result = service.assign_many("exp", ["d", "e", "d", User("d"), "e"])
    assert len({a.variant for a in result if a.user_id == "d"}) == 1
    assert len(stored_rows(database, "exp")) == 2
    assert exposures(database) == {"d": 1, "e": 1}


def test_concurrent_assignment_of_the_same_users(database: Database) -> None:
    service = ExperimentService(database, clock=Clock())
    service.create(definition("exp", variants=THREE_ARMS["variants"]))
    service.start("exp")
    ids = [f"user-{i}" for i in range(500)]
    threads, barrier = 8, threading.Barrier(8)
    seen: list[dict[str, tuple[int | None, bool]]] = [{} for _ in range(threads)]
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        rng = random.Random(number)
        order = ids[:]
        rng.shuffle(order)
        try:
            barrier.wait()
            position = 0
            while position < len(order):
                size = rng.choice([1, 7, 40, 120])
                chunk = order[position : position + size]
                position += size
                results = service.assign_many("exp", chunk) if size > 1 else [service.assign("exp", chunk[0])]
                seen[number].update((a.user_id, (a.variant_index, a.first_exposure)) for a in results)
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not failures, failures
    variants: dict[str, set[int | None]] = defaultdict(set)
    first_exposures: Counter[str] = Counter()
    for per_thread in seen:
        assert set(per_thread) == set(ids)
        for user, (variant, first) in per_thread.items():
            variants[user].add(variant)
            first_exposures[user] += first
    assert {
        u: v for u, v in variants.items() if len(v) != 1 or None in v
    } == {}  # every thread saw one variant
    assert first_exposures == dict.fromkeys(ids, 1)  # exactly one call recorded each first exposure
    assert exposures(database) == dict.fromkeys(ids, 1)
    table = ExperimentAssignmentRow
    with database.read() as connection:
        rows, distinct = connection.execute(
            select(func.count(), func.count(func.distinct(table.user_id)))
        ).one()
    assert rows == distinct == 500
    assert {u: (0, next(iter(v))) for u, v in variants.items()} == stored_rows(database, "exp")


def test_persona_targeting(service: ExperimentService, database: Database) -> None:
    EventIngestor(database).ingest([
        identify("a1", persona="agency"),
        identify("n1", account_type="network"),  # the default registry's rule: podcast_network
        identify("s1", persona="solo_podcaster"),
    ])  # fmt: skip
    service.create(definition("exp", personas=["agency", "podcast_network"]))
    service.start("exp")
    users: list[User | str] = ["a1", "n1", "s1", "stranger", User("fresh", persona_segment="agency"),
                               User("other", persona_segment="brand_sponsor")]  # fmt: skip
    result = {a.user_id: a for a in service.assign_many("exp", users)}
    assert {u for u, a in result.items() if a.in_experiment} == {"a1", "n1", "fresh"}
    for user in ("s1", "stranger", "other"):
        assert (result[user].reason, result[user].variant) == ("persona_not_targeted", "control")
    table = ExperimentAssignmentRow
    with database.read() as connection:
        personas = {
            user: persona for user, persona in connection.execute(select(table.user_id, table.persona))
        }
    assert personas == {"a1": "agency", "n1": "podcast_network", "fresh": "agency"}
    assert set(exposures(database)) == {"a1", "n1", "fresh"}


def test_shadow_mode_never_exposes_the_variant(service: ExperimentService, database: Database) -> None:
    service.create(definition("shadow", mode="shadow", min_units_per_variant=2))
    service.start("shadow")
    ids = [f"s{i}" for i in range(400)]
    assigned = service.assign_many("shadow", ids) + service.assign_many("shadow", ids[:50])
    for a in assigned:
        assert (a.variant, a.variant_index, a.configuration) == ("control", 0, {"flow": "standard"})
        assert a.in_experiment and a.shadow_variant in ("control", "treatment")
        drawn = growthbook_choice("shadow", a.user_id, [0.5, 0.5], 1.0)
        assert a.shadow_variant == ("control", "treatment")[drawn]
    drawn_counts = Counter(a.shadow_variant for a in assigned[:400])
    assert min(drawn_counts.values()) > 150
    treated = next(a for a in assigned if a.shadow_variant == "treatment")
    [event] = exposure_properties(database, treated.user_id)
    assert event["shadow"] is True and (event["variant"], event["variation_id"]) == ("treatment", 1)
    assert stored_rows(database, "shadow")[treated.user_id] == (0, 1)
    results = analyze(service, "shadow")
    assert results.units == {"control": drawn_counts["control"], "treatment": drawn_counts["treatment"]}


def test_bulk_limit_and_bad_ids(service: ExperimentService, database: Database) -> None:
    service.create(definition("exp"))
    service.start("exp")
    too_many = [f"u{i}" for i in range(MAX_BULK_USERS + 1)]
    cases: list[tuple[Any, str]] = [
        (too_many, "user_ids"), ([], "user_ids"), ("u1", "user_ids"), (User("u1"), "user_ids"),
        (["ok", ""], "user_ids[1]"), (["ok", 5], "user_ids[1]"), (["x" * 256], "user_ids[0]"),
    ]  # fmt: skip
    for users, field in cases:
        with pytest.raises(ExperimentInputError) as caught:
            service.assign_many("exp", users)
        assert caught.value.field == field, users
    assert stored_rows(database, "exp") == {}
    with pytest.raises(ExperimentInputError, match="at most 10000 per request"):
        service.assign_many("exp", too_many)
    accepted = service.assign_many("exp", too_many[:MAX_BULK_USERS])
    assert len(accepted) == MAX_BULK_USERS and all(a.in_experiment for a in accepted)
    assert len(stored_rows(database, "exp")) == MAX_BULK_USERS
    assert sum(exposures(database).values()) == MAX_BULK_USERS


@pytest.mark.parametrize(
    ("user_id", "message"), [("", "non-empty"), ("u\x00", "NUL"), ("u\udc00", "surrogate")]
)
def test_user_ids_a_database_cannot_store_are_refused(database: Database, user_id: str, message: str) -> None:
    service = ExperimentService(database, clock=Clock())
    service.create(definition("exp"))
    service.start("exp")
    with pytest.raises(ExperimentInputError) as caught:
        service.assign_many("exp", ["fine", user_id])
    assert caught.value.field == "user_ids[1]" and message in caught.value.message
    assert stored_rows(database, "exp") == {}


def test_an_id_repeated_in_one_request_is_one_exposure(database: Database) -> None:
    service = ExperimentService(database, clock=Clock())
    service.create(definition("exp"))
    service.start("exp")
    first, again = service.assign_many("exp", ["dup", "dup"])
    assert first.first_exposure and not again.first_exposure
    assert first.variant == again.variant
    assert exposures(database) == Counter({"dup": 1})
