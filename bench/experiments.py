"""Experiments benchmark: assignment speed in process and over HTTP, and analysis time of a 1M-user experiment.

Three parts, each with the target from issue 4:

1. In-process assignments/s: `assign_variant_index(seed, id, weights, coverage=, hash_version=2)` against the
   `growthbook` package doing the same work for the same ids in the same run — `gbhash` + `getBucketRanges` +
   `chooseVariation`, the hash and bucket choice GrowthBook's `run` does for an experiment (target: ours ≥
   GrowthBook). Rounds alternate the two sides (ABBA) and both must agree on every id before a rate is quoted.
   For context: both sides with the bucket ranges computed once, and GrowthBook's full
   `GrowthBook(attributes=…).run(Experiment(…))` per user.
2. Persisted assignments/s through `ExperimentService.assign_many` (10,000 users per call, the bulk route's
   limit), for fresh users (draw, store the assignment and its exposure event) and again for the same users
   (sticky: read back the stored assignment), on SQLite and PostgreSQL; and the same through HTTP
   `POST /v1/experiments/{key}/assignments` against `feedbackloop serve --workers 2` when the app has the route.
3. `tools.experiments.analysis.analyze` of a running 2-variant experiment with 1,000,000 assigned users and 5
   metrics (primary completion_rate; secondary time_to_value, revenue, reports_generated; guardrail error_rate),
   on SQLite and PostgreSQL (target: < 1 s), with the statement time per query (SQLAlchemy cursor events) and the
   plans of the slow ones (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).

The 1M-user database is built once through the product (`ExperimentService.assign_many` in chunks of 10,000
users, exposures spread over 14 days, then ~4.3 events per user through `EventIngestor.ingest_stream`) and cached
in bench/.data/, keyed by its parameters and the source of the generator. PostgreSQL gets the same rows copied
from that file (COPY into a throwaway schema, indexes rebuilt after the copy, then VACUUM ANALYZE).

Writes bench/results/experiments.json and the table between the experiments markers in bench/README.md;
`--quick` is a smoke run with small counts that prints the results and leaves both files alone; `--parts P
--merge` measures only those parts and replaces them in both files, each row dated when its part was measured.

    .venv/bin/python bench/experiments.py [--quick] [--skip-http] [--skip-postgres] [--parts P,… [--merge]]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import http.client
import inspect
import json
import math
import random
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/experiments.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from growthbook import Experiment as GrowthBookExperiment  # noqa: E402
from growthbook import GrowthBook  # noqa: E402
from growthbook import core as growthbook_core  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402

from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from bench.ingest import (  # noqa: E402
    postgres_base_url,
    postgres_schema,
    postgres_server_version,
    process_tree_cpu_seconds,
    running_server,
)
from bench.kpis import code_state, remove_sqlite_files, summary_of, timed_runs  # noqa: E402
from store.database import Database  # noqa: E402
from store.models import Base  # noqa: E402
from tools.events.ingest import EventIngestor  # noqa: E402
from tools.events.model import CanonicalEvent  # noqa: E402
from tools.experiments.analysis import analyze, refresh_running  # noqa: E402
from tools.experiments.assignment import VariantChooser, assign_variant_index  # noqa: E402
from tools.experiments.service import ExperimentService  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "experiments.json"
DATA_DIR = ROOT / "bench" / ".data"

TARGET_RATIO_OF_GROWTHBOOK = 1.0
TARGET_ANALYSIS_SECONDS = 1.0
BULK_USERS_PER_CALL = 10_000  # the bulk route's limit (tools.experiments.service.MAX_BULK_USERS)

# The 1M-user experiment: fixed seeds and times, so every build stores the same rows.
DATA_SEED = 505
ASSIGN_START = datetime(2025, 12, 1, tzinfo=UTC)
ASSIGN_DAYS = 14
ANALYSIS_NOW = ASSIGN_START + timedelta(days=ASSIGN_DAYS + 7)
ANALYSIS_KEY = "onboarding-1m"
ANALYSIS_SPEC: dict[str, Any] = {
    "key": ANALYSIS_KEY,
    "name": "Guided onboarding, 1M users",
    "type": "onboarding",  # completion_rate = onboarding_completed
    "seed": "bench-onboarding-1m",
    "variants": [
        {"name": "standard", "weight": 0.5, "configuration": {"flow": "standard"}},
        {"name": "guided", "weight": 0.5, "configuration": {"flow": "guided"}},
    ],
    "primary_metrics": ["completion_rate"],
    "secondary_metrics": ["time_to_value", "revenue", "reports_generated"],
    "guardrails": [{"metric": "error_rate", "margin": 0.05}],
    "duration_days": ASSIGN_DAYS,
}
HASH_SEED = "bench-onboarding"
HASH_WEIGHTS = [0.5, 0.5]
HASH_COVERAGE = 1.0
PERSIST_SEED, HTTP_SEED, HASH_IDS_SEED = 11, 22, 33

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Parameters:
    """Sizes of one run; `--quick` shrinks the counts, never the method."""

    hash_ids: int = 200_000
    hash_rounds: int = 7
    sdk_ids: int = 20_000
    persist_users: int = 100_000
    persist_rounds: int = 3
    unanalysed_users: int = 30_000  # PostgreSQL before ANALYZE: slow, so fewer users
    http_users: int = 200_000
    http_client_threads: int = 2
    http_server_workers: int = 2
    http_time_limit_seconds: float = 300.0
    analysis_users: int = 1_000_000
    analysis_repeat: int = 5
    explain_share: float = 0.05  # EXPLAIN every statement above this share of the analysis wall time
    quick: bool = False


QUICK = Parameters(hash_ids=20_000, hash_rounds=3, sdk_ids=2_000, persist_users=20_000, persist_rounds=2,
                   unanalysed_users=10_000, http_users=20_000, analysis_users=20_000, analysis_repeat=3,
                   quick=True)  # fmt: skip


def user_ids(count: int, seed: int) -> list[str]:
    """Ids like a product's: 16 hex digits, ASCII (GrowthBook hashes UTF-16 units; ASCII is the common case)."""
    rng = random.Random(seed)
    return [f"{rng.getrandbits(64):016x}" for _ in range(count)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------------------------------------------
# 1. In-process assignment: ours vs the growthbook package


def ours_assign(ids: Sequence[str]) -> list[int]:
    """`assign_variant_index` per user: hash, bucket ranges for the weights, choice — all per call."""
    return [
        -1 if (i := assign_variant_index(HASH_SEED, uid, HASH_WEIGHTS, coverage=HASH_COVERAGE, hash_version=2))
        is None else i
        for uid in ids
    ]  # fmt: skip


def ours_chooser(ids: Sequence[str]) -> list[int]:
    """`VariantChooser`, what the service assigns with: ranges and the seed's FNV state once per phase."""
    chooser = VariantChooser(HASH_SEED, HASH_WEIGHTS, coverage=HASH_COVERAGE, hash_version=2)
    return [-1 if (i := chooser.choose(uid)) is None else i for uid in ids]


def growthbook_assign(ids: Sequence[str]) -> list[int]:
    """The growthbook package's own functions as `GrowthBook.run` composes them per user."""
    gbhash, ranges_of, choose = (
        growthbook_core.gbhash,
        growthbook_core.getBucketRanges,
        growthbook_core.chooseVariation,
    )
    return [
        -1 if (n := gbhash(HASH_SEED, uid, 2)) is None else choose(n, ranges_of(2, HASH_COVERAGE, HASH_WEIGHTS))
        for uid in ids
    ]  # fmt: skip


def growthbook_assign_ranges_once(ids: Sequence[str]) -> list[int]:
    """GrowthBook's hashing speed proper: the ranges computed once, `gbhash` + `chooseVariation` per user."""
    ranges = growthbook_core.getBucketRanges(len(HASH_WEIGHTS), HASH_COVERAGE, HASH_WEIGHTS)
    gbhash, choose = growthbook_core.gbhash, growthbook_core.chooseVariation
    return [-1 if (n := gbhash(HASH_SEED, uid, 2)) is None else choose(n, ranges) for uid in ids]


def growthbook_sdk_run(ids: Sequence[str]) -> list[int]:
    """The full SDK call a server makes per user: a GrowthBook for the user's attributes, `run` an experiment."""
    experiment = GrowthBookExperiment(key=HASH_SEED, variations=[0, 1], weights=HASH_WEIGHTS, seed=HASH_SEED,
                                      hashVersion=2, coverage=HASH_COVERAGE)  # fmt: skip
    out = []
    for uid in ids:
        result = GrowthBook(attributes={"id": uid}).run(experiment)
        out.append(result.variationId if result.inExperiment else -1)
    return out


HASH_SIDES: dict[str, Callable[[Sequence[str]], list[int]]] = {
    "assign_variant_index": ours_assign,
    "VariantChooser": ours_chooser,
    "growthbook_per_user": growthbook_assign,
    "growthbook_ranges_once": growthbook_assign_ranges_once,
}
# (ours, theirs): like for like — everything per user; then what each side can hoist out of the per-user loop.
HASH_COMPARISONS = {
    "per_call": ("assign_variant_index", "growthbook_per_user"),
    "per_phase": ("VariantChooser", "growthbook_ranges_once"),
}


def time_sides(ids: Sequence[str], rounds: int) -> dict[str, list[float]]:
    """Every side once per round, the starting side rotating, so drift on the machine hits all of them alike."""
    names = list(HASH_SIDES)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            started = time.perf_counter()
            HASH_SIDES[name](ids)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def run_hashing(params: Parameters) -> dict[str, Any]:
    ids = user_ids(params.hash_ids, HASH_IDS_SEED)
    expected = growthbook_assign(ids)
    for name, function in HASH_SIDES.items():
        if function(ids) != expected:
            raise AssertionError(f"{name} disagrees with growthbook on some of {len(ids):,} ids")
    sdk_ids = ids[: params.sdk_ids]
    if growthbook_sdk_run(sdk_ids) != expected[: len(sdk_ids)]:
        raise AssertionError("GrowthBook.run disagrees with gbhash + chooseVariation")
    split = Counter(expected)
    log(
        f"hashing: {len(ids):,} ids agree with growthbook on every side (split {dict(sorted(split.items()))})"
    )
    seconds = time_sides(ids, params.hash_rounds)
    sides = {
        name: {"seconds": [round(s, 4) for s in values], "per_second": round(len(ids) / median(values))}
        for name, values in seconds.items()
    }
    comparisons = {}
    for label, (ours, theirs) in HASH_COMPARISONS.items():
        ratio = median(seconds[theirs]) / median(seconds[ours])
        per_round = [t / o for o, t in zip(seconds[ours], seconds[theirs], strict=True)]
        comparisons[label] = {"ours": ours, "growthbook": theirs, "ratio": round(ratio, 4),
                              "ratio_per_round": [round(r, 4) for r in per_round]}  # fmt: skip
        log(f"hashing, {label}: {ours} {sides[ours]['per_second']:,}/s vs {theirs} "
            f"{sides[theirs]['per_second']:,}/s = {ratio:.3f}")  # fmt: skip
    sdk_seconds = []
    for _ in range(max(3, params.hash_rounds // 2)):
        gc.collect()
        started = time.perf_counter()
        growthbook_sdk_run(sdk_ids)
        sdk_seconds.append(time.perf_counter() - started)
    sdk = {"ids": len(sdk_ids), "seconds": [round(s, 4) for s in sdk_seconds],
           "per_second": round(len(sdk_ids) / median(sdk_seconds))}  # fmt: skip
    log(f"hashing: GrowthBook(...).run(Experiment(...)) {sdk['per_second']:,}/s")
    import growthbook

    return {
        "growthbook_version": getattr(growthbook, "__version__", "unknown"),
        "ids": len(ids),
        "rounds": params.hash_rounds,
        "ids_checked_equal": len(ids),
        "split": {str(k): v for k, v in sorted(split.items())},
        "sides": sides,
        "comparisons": comparisons,
        "growthbook_sdk_run": sdk,
    }


# --------------------------------------------------------------------------------------------------------------
# Shared setup: users that exist (with a persona) before they are assigned


def seed_users(database: Database, ids: Sequence[str]) -> None:
    """One identify call per user, through the product's bulk path, so persona look-ups find real rows."""
    personas = ("product_manager", "founder", "analyst", "engineer")
    when = ASSIGN_START - timedelta(days=1)
    events = (
        CanonicalEvent(message_id=f"seed-{uid}", type="identify", name="identify", timestamp=when,
                       received_at=when, user_id=uid, properties={"persona": personas[i % len(personas)]})
        for i, uid in enumerate(ids)
    )  # fmt: skip
    EventIngestor(database).ingest_stream(events)


def experiment_spec(key: str) -> dict[str, Any]:
    return {**ANALYSIS_SPEC, "key": key, "name": f"Bench {key}", "seed": key}


def chunks(ids: Sequence[str], size: int = BULK_USERS_PER_CALL) -> list[Sequence[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def count_rows(database: Database, sql: str) -> int:
    with database.read() as connection:
        return int(connection.exec_driver_sql(sql).scalar_one())


# --------------------------------------------------------------------------------------------------------------
# 2a. Persisted assignment in process: ExperimentService.assign_many


def assign_pass(service: ExperimentService, key: str, ids: Sequence[str], fresh: bool) -> float:
    """Seconds to assign every id in calls of 10,000; checks every user is in and fresh/sticky as expected."""
    gc.collect()
    started = time.perf_counter()
    results = [service.assign_many(key, list(chunk)) for chunk in chunks(ids)]
    seconds = time.perf_counter() - started
    flat = [a for batch in results for a in batch]
    first = sum(a.first_exposure for a in flat)
    if len(flat) != len(ids) or not all(a.in_experiment for a in flat) or first != (len(ids) if fresh else 0):
        raise AssertionError(f"{key}: {len(flat)} answers, {first} first exposures for {len(ids)} users")
    return seconds


def analyze_postgres_tables(database: Database) -> None:
    """ANALYZE the product's tables: what autovacuum does after enough rows change (this server runs with
    autovacuum off, so without it the planner never learns how many assignments an experiment has)."""
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(f"ANALYZE {', '.join(t.name for t in Base.metadata.sorted_tables)}")


def measure_assign_many(database: Database, params: Parameters) -> dict[str, Any]:
    """Rounds on one database, each a new experiment: fresh pass (writes), then the same users again (reads).

    PostgreSQL first gets one round on tables that were never analysed (as this server, with autovacuum off,
    leaves them), then ANALYZE, then the rounds that are quoted.
    """
    ids = user_ids(params.persist_users, PERSIST_SEED)
    seed_users(database, ids)
    service = ExperimentService(database)
    warm = f"persist-warmup-{time.time_ns()}"
    service.create(experiment_spec(warm))
    service.start(warm)
    assign_pass(service, warm, ids[:BULK_USERS_PER_CALL], fresh=True)  # untimed: imports, statement caches
    assign_pass(service, warm, ids[:BULK_USERS_PER_CALL], fresh=False)
    expected = BULK_USERS_PER_CALL + len(ids) * params.persist_rounds
    unanalysed: dict[str, Any] = {}
    if database.dialect == "postgresql":
        some = ids[: params.unanalysed_users]
        key = f"persist-unanalysed-{time.time_ns()}"
        service.create(experiment_spec(key))
        service.start(key)
        fresh, sticky = (
            assign_pass(service, key, some, fresh=True),
            assign_pass(service, key, some, fresh=False),
        )
        unanalysed = {"users": len(some), "fresh_seconds": round(fresh, 3), "sticky_seconds": round(sticky, 3),
                      "fresh_per_second": round(len(some) / fresh),
                      "sticky_per_second": round(len(some) / sticky)}  # fmt: skip
        log(f"  assign_many, tables never analysed: fresh {unanalysed['fresh_per_second']:,}/s, "
            f"sticky {unanalysed['sticky_per_second']:,}/s")  # fmt: skip
        expected += len(some)
        analyze_postgres_tables(database)
    fresh_seconds: list[float] = []
    sticky_seconds: list[float] = []
    for round_number in range(params.persist_rounds):
        key = f"persist-{round_number}-{time.time_ns()}"
        service.create(experiment_spec(key))
        service.start(key)
        fresh_seconds.append(assign_pass(service, key, ids, fresh=True))
        sticky_seconds.append(assign_pass(service, key, ids, fresh=False))
        log(f"  assign_many round {round_number + 1}/{params.persist_rounds}: fresh "
            f"{len(ids) / fresh_seconds[-1]:,.0f}/s, sticky {len(ids) / sticky_seconds[-1]:,.0f}/s")  # fmt: skip
    stored = count_rows(database, "SELECT count(*) FROM experiment_assignments")
    exposures = count_rows(database, "SELECT count(*) FROM events WHERE name = 'experiment_viewed'")
    if stored != expected or exposures != expected:
        raise AssertionError(f"stored {stored} assignments and {exposures} exposures, expected {expected}")
    result = {
        "users": len(ids),
        "users_per_call": BULK_USERS_PER_CALL,
        "rounds": params.persist_rounds,
        "fresh_seconds": [round(s, 3) for s in fresh_seconds],
        "sticky_seconds": [round(s, 3) for s in sticky_seconds],
        "fresh_per_second": round(len(ids) / median(fresh_seconds)),
        "sticky_per_second": round(len(ids) / median(sticky_seconds)),
        "assignments_and_exposures_stored": stored,
    }
    if unanalysed:
        result["never_analysed"] = unanalysed
    return result


def run_assign_many_sqlite(params: Parameters, workdir: Path) -> dict[str, Any]:
    path = workdir / "assign.db"
    database = Database(f"sqlite:///{path}")
    try:
        return measure_assign_many(database, params)
    finally:
        database.dispose()
        remove_sqlite_files(path)


def run_assign_many_postgres(params: Parameters, base_url: str) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, _schema):
        database = Database(url)
        try:
            return measure_assign_many(database, params)
        finally:
            database.dispose()


# --------------------------------------------------------------------------------------------------------------
# 2b. Persisted assignment over HTTP: POST /v1/experiments/{key}/assignments

ROUTE = "/v1/experiments/{key}/assignments"


def app_has_route(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=10) as response:
        return ROUTE in json.loads(response.read()).get("paths", {})


@dataclass
class _Tally:
    next_index: int = 0
    latencies_seconds: list[float] = field(default_factory=list)
    users: int = 0
    first_exposures: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(
    port: int, path: str, bodies: list[bytes], sizes: list[int], tally: _Tally, deadline: float
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    try:
        while time.monotonic() < deadline:
            with tally.lock:
                index, tally.next_index = tally.next_index, tally.next_index + 1
            if index >= len(bodies):
                return
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=bodies[index], headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with tally.lock:
                    tally.failures.append(f"body {index}: {error!r}")
                continue
            elapsed = time.perf_counter() - started
            with tally.lock:
                tally.latencies_seconds.append(elapsed)
                if response.status != 200:
                    tally.failures.append(f"body {index}: HTTP {response.status} {payload[:200]!r}")
                    continue
                answers = json.loads(payload)["assignments"]
                if len(answers) != sizes[index]:
                    tally.failures.append(f"body {index}: {len(answers)} answers for {sizes[index]} users")
                tally.users += len(answers)
                tally.first_exposures += sum(bool(a.get("first_exposure")) for a in answers)
    finally:
        connection.close()


def post_pass(
    port: int, key: str, bodies: list[bytes], sizes: list[int], params: Parameters
) -> dict[str, Any]:
    tally = _Tally()
    deadline = time.monotonic() + params.http_time_limit_seconds
    path = ROUTE.format(key=key)
    threads = [
        threading.Thread(target=_client, args=(port, path, bodies, sizes, tally, deadline))
        for _ in range(params.http_client_threads)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cuts = sorted(tally.latencies_seconds)
    return {
        "users": tally.users,
        "requests": len(tally.latencies_seconds),
        "wall_seconds": round(wall, 3),
        "per_second": round(tally.users / wall) if wall > 0 else 0,
        "first_exposures": tally.first_exposures,
        "latency_p50_ms": round(statistics.median(cuts) * 1000, 1) if cuts else None,
        "latency_max_ms": round(cuts[-1] * 1000, 1) if cuts else None,
        "failures": tally.failures[:10],
        "failure_count": len(tally.failures),
    }


def measure_http(url: str, params: Parameters, workdir: Path) -> dict[str, Any]:
    """Fresh users (one pass), then the same users again (sticky), against a server on a prepared database."""
    ids = user_ids(params.http_users, HTTP_SEED)
    key = "http-bench"
    database = Database(url)
    try:
        seed_users(database, ids)
        service = ExperimentService(database)
        for name in (key, "http-warmup"):
            service.create(experiment_spec(name))
            service.start(name)
    finally:
        database.dispose()
    bodies = [json.dumps({"user_ids": list(chunk)}).encode() for chunk in chunks(ids)]
    sizes = [len(chunk) for chunk in chunks(ids)]
    warm_ids = user_ids(2 * params.http_client_threads * 1_000, HTTP_SEED + 1)
    warm_bodies = [json.dumps({"user_ids": list(c)}).encode() for c in chunks(warm_ids, 1_000)]
    with running_server(url, params.http_server_workers, workdir) as (port, pid):
        if not app_has_route(port):
            return {"skipped": f"the app has no {ROUTE} route yet"}
        post_pass(port, "http-warmup", warm_bodies, [1_000] * len(warm_bodies), params)  # both workers warm
        if url.startswith("postgresql"):
            analysed = Database(url, upgrade=False)
            try:
                analyze_postgres_tables(analysed)  # as in the in-process rounds
            finally:
                analysed.dispose()
        cpu_before = process_tree_cpu_seconds(pid)
        fresh = post_pass(port, key, bodies, sizes, params)
        cpu_fresh = process_tree_cpu_seconds(pid)
        sticky = post_pass(port, key, bodies, sizes, params)
        cpu_sticky = process_tree_cpu_seconds(pid)
    fresh["server_cpu_seconds"] = round(cpu_fresh - cpu_before, 2)
    sticky["server_cpu_seconds"] = round(cpu_sticky - cpu_fresh, 2)
    database = Database(url)
    try:
        with database.read() as connection:
            stored = connection.exec_driver_sql(
                "SELECT count(*) FROM experiment_assignments a JOIN experiments e ON e.id = a.experiment_id "
                f"WHERE e.key = '{key}'"
            ).scalar_one()
    finally:
        database.dispose()
    complete = (
        stored == len(ids) == fresh["users"] == fresh["first_exposures"] == sticky["users"]
        and sticky["first_exposures"] == 0
        and not fresh["failure_count"] + sticky["failure_count"]
    )
    log(f"  http: fresh {fresh['per_second']:,}/s, sticky {sticky['per_second']:,}/s, "
        f"{stored:,} stored, complete={complete}")  # fmt: skip
    return {"users": len(ids), "users_per_request": BULK_USERS_PER_CALL,
            "client_threads": params.http_client_threads, "server_workers": params.http_server_workers,
            "fresh": fresh, "sticky": sticky, "stored": int(stored), "complete": complete}  # fmt: skip


def run_http_sqlite(params: Parameters, workdir: Path) -> dict[str, Any]:
    path = workdir / "http.db"
    try:
        return measure_http(f"sqlite:///{path}", params, workdir)
    finally:
        remove_sqlite_files(path)


def run_http_postgres(params: Parameters, workdir: Path, base_url: str) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, _schema):
        return measure_http(url, params, workdir)


# --------------------------------------------------------------------------------------------------------------
# 3. The 1M-user experiment: data


class ChunkClock:
    """The service's clock while building: chunk k of the assignments happens k/chunks of the way through."""

    def __init__(self) -> None:
        self.now = ASSIGN_START

    def __call__(self) -> datetime:
        return self.now


HOUR = 3600.0


def experiment_events(
    assignments: Sequence[tuple[str, int, datetime]], seed: int
) -> Iterator[CanonicalEvent]:
    """~4.3 events per assigned user around their exposure, with a small planted lift for `guided`.

    Per user: a signup a few minutes before exposure; onboarding_completed for 40 % (42 % guided), ~10 h after;
    Poisson(1.40 / 1.45) report_generated, the first a few hours in; Poisson(0.25) error_occurred; a payment for
    5 % (lognormal amount); Poisson(1.2) page views (not in any metric, so the name filter has work to do).
    Some events land after the 72 h conversion window, as they do in real traffic.
    """
    rng = np.random.default_rng(seed)
    block = 10_000
    for start in range(0, len(assignments), block):
        part = assignments[start : start + block]
        n = len(part)
        guided = np.array([variant for _, variant, _ in part]) == 1
        signup = rng.uniform(5, 600, n)
        completes = rng.random(n) < np.where(guided, 0.42, 0.40)
        completion_at = rng.exponential(10 * HOUR, n)
        reports = rng.poisson(np.where(guided, 1.45, 1.40))
        first_report = rng.lognormal(math.log(4 * HOUR), 1.0, n)
        errors = rng.poisson(0.25, n)
        pays = rng.random(n) < 0.05
        amounts = np.round(rng.lognormal(3.4, 0.6, n), 2)
        pages = rng.poisson(1.2, n)
        later = rng.uniform(0, 120 * HOUR, (n, 8))
        for i, (uid, _variant, exposed_at) in enumerate(part):

            def at(seconds: float, exposed_at: datetime = exposed_at) -> datetime:
                return exposed_at + timedelta(seconds=float(seconds))

            def make(
                k: int, name: str, when: datetime, props: dict[str, Any], uid: str = uid
            ) -> CanonicalEvent:
                return CanonicalEvent(message_id=f"x1m-{uid}-{k}", type="track", name=name, timestamp=when,
                                      received_at=when, user_id=uid, properties=props)  # fmt: skip

            yield make(0, "user_signed_up", at(-signup[i]), {"source": "organic"})
            if completes[i]:
                yield make(1, "onboarding_completed", at(completion_at[i]), {})
            for r in range(min(int(reports[i]), 8)):
                offset = first_report[i] if r == 0 else first_report[i] + later[i, r]
                yield make(10 + r, "report_generated", at(offset), {"template": "weekly"})
            for e in range(min(int(errors[i]), 8)):
                yield make(20 + e, "error_occurred", at(later[i, 7 - e]), {"code": "E_TIMEOUT"})
            if pays[i]:
                yield make(30, "payment_succeeded", at(later[i, 3] + HOUR), {"amount": float(amounts[i]),
                                                                              "currency": "USD"})  # fmt: skip
            for p in range(min(int(pages[i]), 8)):
                yield make(40 + p, "page_viewed", at(later[i, p] * 0.9), {"path": "/reports"})


def data_fingerprint() -> str:
    """The generator's source and the spec: a change to either must not reuse a cache. (Schema changes reach a
    cached file through the product's migrations when it is opened.)"""
    parts = [inspect.getsource(experiment_events), inspect.getsource(build_dataset),
             json.dumps(ANALYSIS_SPEC, sort_keys=True)]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]


def cache_path(users: int) -> Path:
    return DATA_DIR / f"experiments-u{users}-s{DATA_SEED}-{data_fingerprint()}.db"


def build_dataset(path: Path, users: int) -> dict[str, Any]:
    """Assign `users` through the service (chunks of 10,000, clock spread over 14 days), then ingest events."""
    database = Database(f"sqlite:///{path}")
    try:
        clock = ChunkClock()
        service = ExperimentService(database, clock=clock)
        service.create(ANALYSIS_SPEC)
        service.start(ANALYSIS_KEY)
        ids = [f"user-{i:07d}" for i in range(users)]
        pieces = chunks(ids)
        started = time.perf_counter()
        for k, piece in enumerate(pieces):
            clock.now = ASSIGN_START + timedelta(days=ASSIGN_DAYS) * (k / len(pieces))
            service.assign_many(ANALYSIS_KEY, list(piece))
            if k % 20 == 19:
                log(f"  assigned {(k + 1) * BULK_USERS_PER_CALL:,} users")
        assign_seconds = time.perf_counter() - started
        with contextlib.closing(sqlite3.connect(path)) as connection:
            rows = connection.execute(
                "SELECT user_id, variant, assigned_at FROM experiment_assignments ORDER BY user_id"
            ).fetchall()
        assignments = [(u, int(v), datetime.fromisoformat(t).replace(tzinfo=UTC)) for u, v, t in rows]
        del rows
        started = time.perf_counter()
        last = [started]

        def progress(_: int) -> None:
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                log(f"  … ingesting events: {time.perf_counter() - started:.0f}s")

        summary = EventIngestor(database).ingest_stream(
            experiment_events(assignments, DATA_SEED), on_progress=progress
        )
        ingest_seconds = time.perf_counter() - started
    finally:
        database.dispose()
    split = Counter(variant for _, variant, _ in assignments)
    return {
        "users": users,
        "assignments": len(assignments),
        "split": {str(k): v for k, v in sorted(split.items())},
        "assign_many_seconds": round(assign_seconds, 1),
        "assign_many_per_second": round(users / assign_seconds),
        "events_ingested": summary.accepted,
        "ingest_seconds": round(ingest_seconds, 1),
        "ingest_events_per_second": round(summary.accepted / ingest_seconds),
    }


def cached_dataset(users: int) -> tuple[Path, dict[str, Any]]:
    path = cache_path(users)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        log(f"analysis data: cached {path.name} ({meta['events_total']:,} events)")
        return path, {**meta, "cached": True}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    remove_sqlite_files(building)
    log(f"analysis data: building {users:,} users into {path.name}")
    meta = build_dataset(building, users)
    with contextlib.closing(sqlite3.connect(building)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        meta["events_total"] = connection.execute("SELECT count(*) FROM events").fetchone()[0]
        meta["events_by_name"] = dict(
            connection.execute("SELECT name, count(*) FROM events GROUP BY name ORDER BY 2 DESC").fetchall()
        )
    remove_sqlite_files(path)
    building.replace(path)
    remove_sqlite_files(building)
    meta.update(seed=DATA_SEED, fingerprint=data_fingerprint(), file_bytes=path.stat().st_size)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"analysis data: {meta['assignments']:,} assignments in {meta['assign_many_seconds']:.0f}s, "
        f"{meta['events_total']:,} events stored")  # fmt: skip
    return path, {**meta, "cached": False}


def product_tables(source: sqlite3.Connection) -> list[str]:
    """The product's tables the cached file has, parents before children (foreign keys)."""
    present = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [table.name for table in Base.metadata.sorted_tables if table.name in present]


def copy_to_postgres(sqlite_path: Path, url: str, schema: str, base_url: str) -> dict[str, Any]:
    """The cached file's rows into a fresh PostgreSQL schema made by the product's migrations.

    Plain indexes are dropped before the COPY and rebuilt after (their definitions read from pg_indexes), which
    is how a bulk load is done; primary keys and unique constraints stay. Then VACUUM (ANALYZE).
    """
    import psycopg
    from sqlalchemy.engine import make_url

    Database(url).dispose()  # the product's schema, in the throwaway search_path
    conninfo = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    started = time.perf_counter()
    rows_copied: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(sqlite_path)) as source, psycopg.connect(conninfo) as target:
        tables = product_tables(source)
        target.execute(f"SET search_path TO {schema}")
        target.execute("SET TimeZone TO 'UTC'")  # SQLite holds naive UTC text
        indexes = target.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (schema, tables),
        ).fetchall()
        for name, _ in indexes:
            target.execute(f"DROP INDEX {schema}.{name}")
        for table in tables:
            columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            listed = ", ".join(columns)
            count = 0
            with target.cursor().copy(f"COPY {table} ({listed}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {listed} FROM {table}"):
                    copy.write_row(row)
                    count += 1
            rows_copied[table] = count
            if count:
                log(f"  copied {count:,} {table} rows")
        for table in ("events", "experiments"):
            target.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        copied = time.perf_counter()
        for _, definition in indexes:
            target.execute(definition)
        target.commit()
        indexed = time.perf_counter()
        target.autocommit = True
        target.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        vacuumed = time.perf_counter()
        size = target.execute("SELECT pg_total_relation_size('events')").fetchone()
    return {"rows_copied": rows_copied, "copy_seconds": round(copied - started, 1),
            "index_seconds": round(indexed - copied, 1), "vacuum_analyze_seconds": round(vacuumed - indexed, 1),
            "indexes_rebuilt": [name for name, _ in indexes],
            "events_bytes": int(size[0]) if size else None}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# 3. The 1M-user experiment: timing, where the time goes, plans


FETCH_METHODS = frozenset({"fetchone", "fetchmany", "fetchall"})
EXPLAINABLE = re.compile(
    r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b" r"|^\s*CREATE\s+(TEMPORARY\s+)?TABLE\s.*\sAS\s+SELECT\b",
    re.IGNORECASE | re.DOTALL,
)


class StatementLog:
    """Every statement's time while active, labelled by the repository functions that issued it, with its plan.

    A statement's time is its execute plus the fetching of its rows: SQLite does much of a grouped query's work
    while rows are fetched (the first row comes early when an index gives the grouping order), so the fetch calls
    on its cursor are timed too (a C-call profile hook, on for the profiled run only). psycopg fetches the whole
    result inside execute.

    The plan is taken on the same connection just before the statement runs (EXPLAIN on PostgreSQL, EXPLAIN
    QUERY PLAN on SQLite), so it sees the transaction's temporary tables and the statistics of that moment; the
    time that takes is kept apart and left out of the wall time reported.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries: list[dict[str, Any]] = []
        self.plan_seconds = 0.0
        self._starts: list[tuple[float, list[str]]] = []
        self._by_cursor: dict[int, dict[str, Any]] = {}
        self._fetching: list[tuple[Any, float]] = []

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *_: object) -> None:
        sys.setprofile(None)
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _profile(self, _frame: Any, kind: str, arg: Any) -> None:
        if kind == "c_call":
            if getattr(arg, "__name__", None) in FETCH_METHODS and isinstance(
                getattr(arg, "__self__", None), sqlite3.Cursor
            ):
                self._fetching.append((arg.__self__, time.perf_counter()))
        elif kind in ("c_return", "c_exception") and self._fetching:
            cursor, started = self._fetching[-1]
            if getattr(arg, "__self__", None) is cursor and getattr(arg, "__name__", None) in FETCH_METHODS:
                self._fetching.pop()
                entry = self._by_cursor.get(id(cursor))
                if entry is not None:
                    entry["fetch_seconds"] += time.perf_counter() - started

    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        plan: list[str] = []
        if not many and EXPLAINABLE.match(statement):
            started = time.perf_counter()
            plan = self._plan(conn.dialect.name, cursor, statement, parameters)
            self.plan_seconds += time.perf_counter() - started
        self._starts.append((time.perf_counter(), plan))

    @staticmethod
    def _plan(dialect: str, cursor: Any, statement: str, parameters: Any) -> list[str]:
        explain_cursor = cursor.connection.cursor()
        try:
            if dialect == "postgresql":
                explain_cursor.execute("EXPLAIN " + statement, parameters)
                return [str(row[0]) for row in explain_cursor.fetchall()]
            explain_cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return sqlite_plan_lines(explain_cursor.fetchall())
        finally:
            explain_cursor.close()

    def _after(self, _conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started, plan = self._starts.pop()
        entry = {"label": self._label(statement), "execute_seconds": time.perf_counter() - started,
                 "fetch_seconds": 0.0, "statement": statement, "parameters": parameters, "plan": plan}  # fmt: skip
        self.entries.append(entry)
        self._by_cursor[id(cursor)] = entry

    @staticmethod
    def _label(statement: str) -> str:
        """`outer › inner` store/repositories functions on the stack (outermost first) and the statement's verb."""
        frame: FrameType | None = sys._getframe(2)
        chain: list[str] = []
        while frame is not None:  # innermost first
            path = frame.f_code.co_filename
            if "/store/repositories/" in path:
                name = frame.f_code.co_name
                if name not in chain:
                    chain.append(name)
            frame = frame.f_back
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        return f"{' › '.join(reversed(chain)) or 'other'} [{verb}]"

    def seconds(self, entry: dict[str, Any]) -> float:
        return float(entry["execute_seconds"] + entry["fetch_seconds"])

    def report(self, wall_seconds: float) -> dict[str, Any]:
        """`wall_seconds` as measured; the plans' time is taken out of it here."""
        wall_seconds -= self.plan_seconds
        by_label: dict[str, list[float]] = {}
        for entry in self.entries:
            total = by_label.setdefault(entry["label"], [0.0, 0.0, 0])
            total[0] += self.seconds(entry)
            total[1] += entry["fetch_seconds"]
            total[2] += 1
        statement_seconds = sum(self.seconds(e) for e in self.entries)
        ranked = sorted(by_label.items(), key=lambda item: -item[1][0])
        return {
            "wall_seconds": round(wall_seconds, 4),
            "plan_capture_seconds_left_out": round(self.plan_seconds, 4),
            "statement_seconds": round(statement_seconds, 4),
            "rest_seconds": round(wall_seconds - statement_seconds, 4),
            "statements": len(self.entries),
            "by_label": [{"label": label, "seconds": round(total[0], 4), "of_which_fetch_seconds": round(total[1], 4),
                          "statements": int(total[2]), "share_of_wall": round(total[0] / wall_seconds, 3)}
                         for label, total in ranked],
        }  # fmt: skip


def sqlite_plan_lines(rows: Sequence[Sequence[Any]]) -> list[str]:
    """EXPLAIN QUERY PLAN rows (id, parent, notused, detail) as an indented tree."""
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


PLAN_RELATION = re.compile(r" on (\w+)")


def explain_analyze(database: Database, entry: dict[str, Any]) -> list[str] | None:
    """EXPLAIN (ANALYZE, BUFFERS) of a captured PostgreSQL SELECT over the product's own tables, with its own
    parameters, in a transaction that is rolled back; None where that would not show what ran (a statement that
    writes, or reads a temporary table of the analysing connection)."""
    statement = entry["statement"]
    product = {table.name for table in Base.metadata.sorted_tables}
    relations = set(PLAN_RELATION.findall("\n".join(entry["plan"])))
    if database.dialect != "postgresql" or not re.match(r"\s*(SELECT|WITH)\b", statement, re.IGNORECASE):
        return None
    if not relations or not relations <= product:
        return None
    with database.engine.connect() as connection:
        transaction = connection.begin()
        try:
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, entry["parameters"]
            ).all()
        finally:
            transaction.rollback()
    return [str(row[0]) for row in rows]


def profiled(database: Database, action: Callable[[], object], params: Parameters) -> dict[str, Any]:
    """Run `action` once under the statement log. Plans are kept for the statements above `explain_share` of its
    time, and for the slowest statement of each of the three labels that took longest in total (a refresh runs
    one statement per chunk, each small, many times); PostgreSQL SELECTs also get an EXPLAIN ANALYZE."""
    gc.collect()
    with StatementLog(database.engine) as statements:
        started = time.perf_counter()
        action()
        wall = time.perf_counter() - started
    report = statements.report(wall)
    log("  where: " + "; ".join(f"{p['label']} {p['seconds']:.3f}s" for p in report["by_label"][:4]))
    ranked = sorted(statements.entries, key=lambda e: -statements.seconds(e))
    chosen = [e for e in ranked[:4] if statements.seconds(e) >= params.explain_share * report["wall_seconds"]]
    for part in report["by_label"][:3]:
        slowest = next(e for e in ranked if e["label"] == part["label"])
        if all(slowest is not e for e in chosen):
            chosen.append(slowest)
    plans = []
    for entry in chosen:
        seconds = statements.seconds(entry)
        analysed = explain_analyze(database, entry)
        plans.append({"label": entry["label"], "seconds": round(seconds, 4), "statement": entry["statement"],
                      "plan": entry["plan"], "explain_analyze": analysed})  # fmt: skip
        shown = analysed or entry["plan"]
        log(
            f"  plan of {entry['label']} ({seconds:.2f}s):\n    "
            + "\n    ".join(line[:160] for line in shown[:30])
        )
    report["plans"] = plans
    return report


def late_events(assignments: Sequence[tuple[str, int]], round_number: int) -> Iterator[CanonicalEvent]:
    """Three events per user a week after the last exposure: what arrives between two looks at the results."""
    when = ANALYSIS_NOW - timedelta(hours=1) + timedelta(minutes=round_number)
    for uid, _ in assignments:
        for k, name in enumerate(("report_generated", "page_viewed", "error_occurred")):
            yield CanonicalEvent(message_id=f"late-{round_number}-{uid}-{k}", type="track", name=name,
                                 timestamp=when, received_at=when, user_id=uid, properties={})  # fmt: skip


def sample_assigned(database: Database, count: int, seed: int) -> list[tuple[str, int]]:
    with database.read() as connection:
        rows = connection.exec_driver_sql(
            f"SELECT user_id, variant FROM experiment_assignments ORDER BY user_id LIMIT {count * 50}"
        ).all()
    rng = random.Random(seed)
    return [(str(u), int(v)) for u, v in rng.sample(rows, min(count, len(rows)))]


def vacuum_analyze(database: Database) -> float:
    """VACUUM (ANALYZE) the product's tables: statistics for the planner and the visibility map for index-only
    scans, the state autovacuum reaches some time after a bulk write (this server runs with autovacuum off)."""
    started = time.perf_counter()
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(
            f"VACUUM (ANALYZE) {', '.join(t.name for t in Base.metadata.sorted_tables)}"
        )
    return time.perf_counter() - started


def measure_steady(
    database: Database, params: Parameters, run: Callable[[], None], first_round: int
) -> dict[str, Any]:
    """Repeats with nothing new, then `analysis_repeat` rounds of late events for 1 % of the users, each followed
    by a timed analysis (the ingestion is timed apart); one more run of each, profiled, is kept out of the medians
    (the profile hooks slow Python down a little)."""
    seconds = timed_runs(run, params.analysis_repeat)
    log(f"  repeat analysis: median {median(seconds):.3f}s ({', '.join(f'{s:.2f}' for s in seconds)})")
    repeat_profile = profiled(database, run, params)
    users = max(1, params.analysis_users // 100)
    after_new: list[float] = []
    ingest_seconds: list[float] = []
    after_profile: dict[str, Any] = {}
    ingestor = EventIngestor(database)
    for round_number in range(first_round, first_round + params.analysis_repeat + 1):
        sample = sample_assigned(database, users, DATA_SEED + round_number)
        started = time.perf_counter()
        ingestor.ingest_stream(late_events(sample, round_number))
        ingest_seconds.append(time.perf_counter() - started)
        if (
            round_number == first_round + params.analysis_repeat
        ):  # one more round, profiled, not in the median
            after_profile = profiled(database, run, params)
        else:
            gc.collect()
            started = time.perf_counter()
            run()
            after_new.append(time.perf_counter() - started)
    log(f"  after {users:,} users' late events: median {median(after_new):.3f}s "
        f"({', '.join(f'{s:.2f}' for s in after_new)})")  # fmt: skip
    # The same rounds with `feedbackloop worker` running: its refresh job recomputes the late users' values in the
    # background, so the analysis someone asks for afterwards finds nothing dirty.
    worker = ExperimentService(database, clock=lambda: ANALYSIS_NOW)
    refresh_seconds: list[float] = []
    after_refresh: list[float] = []
    for round_number in range(first_round + 1000, first_round + 1000 + params.analysis_repeat):
        sample = sample_assigned(database, users, DATA_SEED + round_number)
        ingestor.ingest_stream(late_events(sample, round_number))
        started = time.perf_counter()
        refresh_running(worker)
        refresh_seconds.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        run()
        after_refresh.append(time.perf_counter() - started)
    log(f"  with the worker: refresh median {median(refresh_seconds):.3f}s, then analysis median "
        f"{median(after_refresh):.3f}s")  # fmt: skip
    return {
        "after_worker_refresh": {**summary_of(after_refresh), "users_with_new_events": users,
                                 "worker_refresh": summary_of(refresh_seconds)},
        "analysis": summary_of(seconds),
        "after_new_events": {**summary_of(after_new), "users_with_new_events": users, "events_per_round": users * 3,
                             "ingest_seconds": [round(s, 3) for s in ingest_seconds]},
        "profile": repeat_profile,
        "profile_after_new_events": after_profile,
    }  # fmt: skip


def measure_analysis(database: Database, params: Parameters) -> dict[str, Any]:
    """The first analysis after loading (every user's values computed), then the steady state: repeats with
    nothing new and analyses after late events. PostgreSQL measures the steady state twice: as the tables are
    left (never analysed since the first analysis wrote a million rows of per-user values; this server runs with
    autovacuum off), and after VACUUM (ANALYZE), the state autovacuum would reach."""
    service = ExperimentService(database, clock=lambda: ANALYSIS_NOW)

    def run() -> None:
        analyze(service, ANALYSIS_KEY, now=ANALYSIS_NOW)

    log("  first analysis after loading")
    first = profiled(database, run, params)
    log(f"  first analysis: {first['wall_seconds']:.2f}s")
    result: dict[str, Any] = {"first_analysis_seconds": first["wall_seconds"], "profile_first": first}
    result["as_left"] = measure_steady(database, params, run, first_round=0)
    if database.dialect == "postgresql":
        seconds = vacuum_analyze(database)
        log(f"  VACUUM (ANALYZE) of the product's tables: {seconds:.1f}s")
        result["vacuum_analyze_seconds"] = round(seconds, 2)
        result["vacuumed"] = measure_steady(database, params, run, first_round=params.analysis_repeat + 1)
    results = analyze(service, ANALYSIS_KEY, now=ANALYSIS_NOW)
    result["result"] = {
        "units": results.units, "srm_p_value": results.srm_p_value, "winner": results.winner,
        "winner_reason": results.winner_reason,
        "metrics": [{"metric": m.metric.name, "role": m.role,
                     "variants": [{"name": v.name, "effect": v.effect, "p_value": v.p_value}
                                  for v in m.result.variants]} for m in results.metrics],
    }  # fmt: skip
    return result


def run_analysis_sqlite(path: Path, params: Parameters, workdir: Path) -> dict[str, Any]:
    """On a copy of the cached file: analysis writes (per-user values, late events), the cache stays as built."""
    working = workdir / "analysis.db"
    started = time.perf_counter()
    shutil.copyfile(path, working)
    log(f"analysis SQLite: copied the cached file in {time.perf_counter() - started:.0f}s; measuring")
    database = Database(f"sqlite:///{working}")
    try:
        return measure_analysis(database, params)
    finally:
        database.dispose()
        remove_sqlite_files(working)


def run_analysis_postgres(path: Path, params: Parameters, base_url: str) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, schema):
        log(f"analysis PostgreSQL: copying the cached rows into schema {schema}")
        load = copy_to_postgres(path, url, schema, base_url)
        log(f"analysis PostgreSQL: copy {load['copy_seconds']:.0f}s, indexes {load['index_seconds']:.0f}s, "
            f"VACUUM ANALYZE {load['vacuum_analyze_seconds']:.0f}s; measuring")  # fmt: skip
        database = Database(url)
        try:
            return {"load": load, **measure_analysis(database, params)}
        finally:
            database.dispose()


# --------------------------------------------------------------------------------------------------------------
# Targets, JSON and the README table


@dataclass(frozen=True)
class Row:
    figure: str
    result: str
    target: str = "—"
    status: str = "info"
    part: str = ""  # of PARTS: whose date the row shows when parts were measured on different days (--merge)


def _status(met: bool) -> str:
    return "met" if met else "**missed**"


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, Any] = {
        "ratio_of_growthbook_at_least": TARGET_RATIO_OF_GROWTHBOOK,
        "analysis_seconds_below": TARGET_ANALYSIS_SECONDS,
    }
    for label, comparison in ((results.get("hashing") or {}).get("comparisons") or {}).items():
        met = comparison["ratio"] >= TARGET_RATIO_OF_GROWTHBOOK
        targets[f"hashing_{label}"] = "met" if met else "missed"
    for database in ("sqlite", "postgresql"):
        measured = (results.get("analysis") or {}).get(database) or {}
        for key, _, seconds, _, _ in analysis_figures(measured):
            targets[f"analysis_{key}_{database}"] = "met" if seconds < TARGET_ANALYSIS_SECONDS else "missed"
    return targets


DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _hash_rows(results: dict[str, Any]) -> list[Row]:
    hashing = results.get("hashing") or {}
    if "comparisons" not in hashing:
        return [Row("In-process assignment", hashing["error"], status="error")] if "error" in hashing else []
    sides, sdk = hashing["sides"], hashing["growthbook_sdk_run"]
    runs = f"{hashing['ids']:,} ASCII ids, 2 variants, hash v2, median of {hashing['rounds']}, all ids agree"
    describe = {
        "per_call": f"In-process assignments/s, everything per user: `assign_variant_index` vs growthbook "
        f"{hashing['growthbook_version']} `gbhash` + `getBucketRanges` + `chooseVariation` ({runs})",
        "per_phase": "In-process assignments/s, per-experiment work done once: `VariantChooser.choose` (what "
        "`assign_many` uses) vs `gbhash` + `chooseVariation` with the ranges computed once (GrowthBook's "
        "hashing speed)",
    }
    rows = []
    for label, comparison in hashing["comparisons"].items():
        ours, theirs, ratio = comparison["ours"], comparison["growthbook"], comparison["ratio"]
        per_round = comparison["ratio_per_round"]
        rows.append(Row(describe[label],
                        f"ours {sides[ours]['per_second']:,}/s vs growthbook {sides[theirs]['per_second']:,}/s "
                        f"= **{ratio:.2f}×** (per round {min(per_round):.2f}–{max(per_round):.2f})",
                        "≥ 1× growthbook", _status(ratio >= TARGET_RATIO_OF_GROWTHBOOK)))  # fmt: skip
    rows.append(Row(f"GrowthBook's full SDK call per user, `GrowthBook(attributes=…).run(Experiment(…))` "
                    f"({sdk['ids']:,} ids)", f"{sdk['per_second']:,}/s"))  # fmt: skip
    return rows


def _persist_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for database in ("sqlite", "postgresql"):
        measured = (results.get("assign_many") or {}).get(database)
        if not measured:
            continue
        name = DATABASE_NAMES[database]
        if "fresh_per_second" not in measured:
            rows.append(Row(f"`assign_many`, {name}", measured.get("error", "not measured"), status="error"))
            continue
        runs = f"{measured['users']:,} users in calls of {measured['users_per_call']:,}, median of {measured['rounds']}"
        after = " (tables analysed)" if "never_analysed" in measured else ""
        rows.append(Row(f"Persisted assignments/s in process, `ExperimentService.assign_many`, {name}{after} ({runs})",
                        f"fresh users {measured['fresh_per_second']:,}/s; same users again (sticky reads) "
                        f"{measured['sticky_per_second']:,}/s"))  # fmt: skip
        never = measured.get("never_analysed")
        if never:
            rows.append(Row(f"Same, {name}, tables never analysed (this server runs with autovacuum off; one pass, "
                            f"{never['users']:,} users)",
                            f"fresh users {never['fresh_per_second']:,}/s; sticky {never['sticky_per_second']:,}/s "
                            "(see the note on `stored_assignments`)"))  # fmt: skip
    return rows


def _http_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for database in ("sqlite", "postgresql"):
        measured = (results.get("http") or {}).get(database)
        if not measured:
            continue
        name = DATABASE_NAMES[database]
        if "fresh" not in measured:
            note = measured.get("skipped") or measured.get("error", "not measured")
            rows.append(Row(f"HTTP `POST {ROUTE}`, {name}", note, status="skipped" if "skipped" in measured
                            else "error"))  # fmt: skip
            continue
        fresh, sticky = measured["fresh"], measured["sticky"]
        check = "all stored, exposures once" if measured["complete"] else "**INCOMPLETE**"
        rows.append(Row(
            f"HTTP `POST {ROUTE}`, {name} ({measured['users']:,} users, {measured['users_per_request']:,} per "
            f"request, {measured['client_threads']} clients, `serve --workers {measured['server_workers']}`)",
            f"fresh {fresh['per_second']:,}/s (p50 {fresh['latency_p50_ms']:,.0f} ms per request); sticky "
            f"{sticky['per_second']:,}/s (p50 {sticky['latency_p50_ms']:,.0f} ms); {check}",
        ))  # fmt: skip
    return rows


# (key, state, figure, description, profile key)
ANALYSIS_FIGURES = (
    ("first", None, "first", "first analysis after loading (every user's values computed; one run)", "profile_first"),
    ("repeat", "as_left", "analysis", "analysis again, nothing new", "profile"),
    ("late", "as_left", "after_new_events", "analysis after late events for 1 % of the users",
     "profile_after_new_events"),
    ("late_worker", "as_left", "after_worker_refresh",
     "analysis after late events for 1 % of the users, with `feedbackloop worker` running (its refresh job "
     "recomputed those users in the background first; see the next row)", None),
    ("repeat_vacuumed", "vacuumed", "analysis", "analysis again, nothing new, after VACUUM (ANALYZE)", "profile"),
    ("late_vacuumed", "vacuumed", "after_new_events",
     "analysis after late events for 1 % of the users, after VACUUM (ANALYZE)", "profile_after_new_events"),
    ("late_worker_vacuumed", "vacuumed", "after_worker_refresh",
     "analysis after late events for 1 % of the users, with the worker running, after VACUUM (ANALYZE)", None),
)  # fmt: skip


def analysis_figures(measured: dict[str, Any]) -> list[tuple[str, str, float, int, dict[str, Any]]]:
    """(key, description, median seconds, runs, profile) of each analysis figure measured on one database."""
    figures = []
    for key, state, figure, description, profile_key in ANALYSIS_FIGURES:
        if state is None:
            if "first_analysis_seconds" in measured:
                figures.append(
                    (key, description, measured["first_analysis_seconds"], 1, measured[profile_key])
                )
            continue
        part = measured.get(state)
        if part and figure in part:
            summary = part[figure]
            profile = part[profile_key] if profile_key else {}
            figures.append((key, description, summary["median_seconds"], summary["runs"], profile))
    return figures


def _top_part(profile: dict[str, Any]) -> str:
    if not profile or not profile.get("by_label"):
        return ""
    top = profile["by_label"][0]
    return f" (largest part: {top['label']} {top['seconds']:.2f} s)"


def _analysis_rows(results: dict[str, Any]) -> list[Row]:
    analysis = results.get("analysis") or {}
    rows = []
    data = analysis.get("data") or {}
    target = f"< {TARGET_ANALYSIS_SECONDS:.0f} s"
    if "error" in analysis:
        return [Row("`analyze` of the 1M-user experiment", analysis["error"], target, "error")]
    for database in ("sqlite", "postgresql"):
        measured = analysis.get(database)
        if not measured:
            continue
        name = DATABASE_NAMES[database]
        if "first_analysis_seconds" not in measured:
            note = measured.get("skipped") or measured.get("error", "not measured")
            rows.append(Row(f"`analyze`, {name}", note, target, "error"))
            continue
        size = f"{data.get('assignments', 0):,} users, 5 metrics, {data.get('events_total', 0):,} events"
        for key, description, seconds, runs, profile in analysis_figures(measured):
            runs_text = "" if runs == 1 else f" (median of {runs})"
            rows.append(Row(f"`analyze`, {name}, {size}: {description}{runs_text}",
                            f"{seconds:.2f} s{_top_part(profile)}", target,
                            _status(seconds < TARGET_ANALYSIS_SECONDS)))  # fmt: skip
            if key.startswith("late_worker"):
                state = "vacuumed" if key.endswith("vacuumed") else "as_left"
                refresh = measured[state]["after_worker_refresh"]["worker_refresh"]
                rows.append(Row(f"The worker's refresh of those users' values, {name} (background job, "
                                f"median of {refresh['runs']})", f"{refresh['median_seconds']:.2f} s"))  # fmt: skip
    return rows


def markdown_table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    label, date = machine_label(machine), machine["date_utc"][:10]
    if results.get("postgres_server_version"):
        label += f", PostgreSQL {results['postgres_server_version']}"
    lines = ["| Figure | Result | Target | Status | Machine | Date |", "|---|---|---|---|---|---|"]
    measured = results.get("measured") or {}
    parts = {"hashing": _hash_rows, "assign": _persist_rows, "http": _http_rows, "analysis": _analysis_rows}
    for row in (replace(row, part=part) for part, rows_of in parts.items() for row in rows_of(results)):
        row_date = (measured.get(row.part) or {}).get("date_utc", date)[:10]
        lines.append(f"| {row.figure} | {row.result} | {row.target} | {row.status} | {label} | {row_date} |")
    return "\n".join([*lines, "", *notes(results)])


def notes(results: dict[str, Any]) -> list[str]:
    analysis = results.get("analysis") or {}
    data = analysis.get("data") or {}
    lines = []
    if data:
        names = ", ".join(f"{name} {count:,}" for name, count in data.get("events_by_name", {}).items())
        lines.append(
            f"The analysed experiment: {data['assignments']:,} users assigned through `assign_many` "
            f"({data['assign_many_per_second']:,} users/s while building it on SQLite: a one-off build, which may "
            "have shared the machine; the timed assignment figures are the rows above), split "
            f"{' / '.join(f'{v:,}' for v in data['split'].values())}; events: {names}. SQLite is measured as the "
            "product leaves the file (no ANALYZE), on a fresh copy of the cached file per run; PostgreSQL gets "
            "the same rows by COPY, then VACUUM (ANALYZE). The first analysis computes every user's per-user "
            "metric values (the incremental store starts empty); later ones recompute only users with new events. "
            "Late events: 3 per user (report_generated, page_viewed, error_occurred) for 1 % of the users, "
            "ingested before each timed analysis (not timed). This PostgreSQL server runs with autovacuum off, so "
            "the per-user values the first analysis writes are never analysed or vacuumed unless someone does it: "
            "PostgreSQL is measured as left, then again after VACUUM (ANALYZE) of the product's tables (what "
            "autovacuum would do). Statement times include fetching the rows (SQLite aggregates while it fetches)."
        )
    for database in ("sqlite", "postgresql"):
        measured = analysis.get(database) or {}
        for _, description, _, _, profile in analysis_figures(measured):
            if not profile:
                continue
            parts = ", ".join(
                f"{p['label']} {p['seconds']:.2f} s ({p['statements']}×)"
                for p in profile["by_label"][:4]
                if p["seconds"] >= 0.01
            )
            lines.append(
                f"- {DATABASE_NAMES[database]}, {description.split(' (every')[0]}: one profiled run "
                f"{profile['wall_seconds']:.2f} s, {profile['statements']} statements; "
                f"{parts or 'no statement over 10 ms'}; outside statements {profile['rest_seconds']:.2f} s."
            )
    code = results["code"]
    changed = len(code["uncommitted_product_files"])
    state = f"commit {(code['commit'] or 'unknown')[:7]}" + (
        f" with uncommitted changes in {changed} product files" if changed else ""
    )
    measured = results.get("measured") or {}
    if len({(m["date_utc"][:10], m["commit"]) for m in measured.values()}) > 1:
        state = "; ".join(
            f"{part} at commit {(m['commit'] or 'unknown')[:7]} on {m['date_utc'][:10]}"
            for part, m in measured.items()
        )
    lines.append("")
    lines.append(f"Measured: {state}. Plans of the slow statements are in `bench/results/experiments.json`.")
    return [lines[0], "", *lines[1:]] if data else lines


PART_KEYS = {"hashing": "hashing", "assign": "assign_many", "http": "http", "analysis": "analysis"}


def merged_with_stored(new: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    """The stored results with `parts` replaced by this run's; every part records the date and commit it was
    measured at (`measured`), which the table's Date column and the notes show. Refuses another machine's
    results: figures of two machines in one table would compare nothing."""
    if not RESULTS_PATH.exists():
        raise SystemExit(f"--merge: {RESULTS_PATH.relative_to(ROOT)} does not exist; run every part first")
    stored = json.loads(RESULTS_PATH.read_text())
    if stored["machine"]["cpu_model"] != new["machine"]["cpu_model"]:
        raise SystemExit(
            f"--merge: the stored results are from {stored['machine']['cpu_model']}, this machine is "
            f"{new['machine']['cpu_model']}; run every part here instead"
        )
    when = {"date_utc": stored["machine"]["date_utc"], "commit": stored["code"]["commit"]}
    measured = {part: (stored.get("measured") or {}).get(part, when) for part in PARTS}
    for part in parts:
        stored[PART_KEYS[part]] = new[PART_KEYS[part]]
        measured[part] = {"date_utc": new["machine"]["date_utc"], "commit": new["code"]["commit"]}
    stored["measured"] = measured
    stored["targets"] = evaluate_targets(stored)
    return stored


def write_results(results: dict[str, Any]) -> None:
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    temporary = RESULTS_PATH.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    temporary.replace(RESULTS_PATH)


# --------------------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts; print results, write nothing")
    parser.add_argument("--skip-http", action="store_true", help="skip the HTTP bulk-assignment figures")
    parser.add_argument(
        "--skip-postgres", action="store_true", help="skip PostgreSQL even if a server answers"
    )
    parser.add_argument("--parts", type=parse_parts, default=list(PARTS),
                        help=f"comma-separated, of {','.join(PARTS)} (default: all; others print only)")  # fmt: skip
    parser.add_argument("--merge", action="store_true",
                        help="with --parts: replace those parts in the stored results and README table, keeping "
                        "the others with the date and commit they were measured at")  # fmt: skip
    return parser.parse_args(argv)


PARTS = ("hashing", "assign", "http", "analysis")


def parse_parts(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or any(part not in PARTS for part in parts):
        raise argparse.ArgumentTypeError(f"parts must be among {', '.join(PARTS)}; got {text!r}")
    return parts


def postgres_settings(base_url: str) -> dict[str, str]:
    """Server settings that change the figures: whether autovacuum analyses tables, memory, JIT, parallelism."""
    database = Database(base_url, upgrade=False)
    try:
        with database.engine.connect() as connection:
            names = ("autovacuum", "work_mem", "shared_buffers", "jit", "max_parallel_workers_per_gather")
            return {name: str(connection.exec_driver_sql(f"SHOW {name}").scalar_one()) for name in names}
    finally:
        database.dispose()


def guarded(section: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A failing part is recorded as an error instead of losing the other figures (an AssertionError too)."""
    try:
        return measure()
    except Exception as error:
        log(f"{section} failed: {error!r}")
        return {"error": f"{type(error).__name__}: {error}"[:500]}


def run_analysis(params: Parameters, postgres_url: str | None, workdir: Path) -> dict[str, Any]:
    path, meta = cached_dataset(params.analysis_users)
    result: dict[str, Any] = {"data": meta}
    result["sqlite"] = guarded("analysis SQLite", partial(run_analysis_sqlite, path, params, workdir))
    if postgres_url is not None:
        result["postgresql"] = guarded(
            "analysis PostgreSQL", partial(run_analysis_postgres, path, params, postgres_url)
        )
    return result


def run_all(args: argparse.Namespace, params: Parameters, workdir: Path) -> dict[str, Any]:
    postgres_url = None if args.skip_postgres else postgres_base_url()
    results: dict[str, Any] = {
        "benchmark": "experiments",
        "machine": machine_facts(),
        "code": code_state(),
        "parameters": vars(params),
        "postgres": "skipped (--skip-postgres)" if args.skip_postgres else "not available",
    }
    if postgres_url is not None:
        results["postgres"] = "used"
        results["postgres_server_version"] = postgres_server_version(postgres_url)
        results["postgres_settings"] = postgres_settings(postgres_url)
    if "hashing" in args.parts:
        results["hashing"] = guarded("hashing", partial(run_hashing, params))
    if "assign" in args.parts:
        assign_many: dict[str, Any] = {}
        results["assign_many"] = assign_many
        log("assign_many SQLite")
        assign_many["sqlite"] = guarded(
            "assign_many SQLite", partial(run_assign_many_sqlite, params, workdir)
        )
        if postgres_url is not None:
            log("assign_many PostgreSQL")
            assign_many["postgresql"] = guarded(
                "assign_many PostgreSQL", partial(run_assign_many_postgres, params, postgres_url)
            )
    if "http" in args.parts and not args.skip_http:
        http_results: dict[str, Any] = {}
        results["http"] = http_results
        log("HTTP SQLite")
        http_results["sqlite"] = guarded("HTTP SQLite", partial(run_http_sqlite, params, workdir))
        if postgres_url is not None:
            log("HTTP PostgreSQL")
            http_results["postgresql"] = guarded(
                "HTTP PostgreSQL", partial(run_http_postgres, params, workdir, postgres_url)
            )
    if "analysis" in args.parts:
        results["analysis"] = guarded("analysis", partial(run_analysis, params, postgres_url, workdir))
    results["targets"] = evaluate_targets(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so throwaway PostgreSQL schemas and servers are still cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    params = QUICK if args.quick else Parameters()
    with tempfile.TemporaryDirectory(prefix="feedbackloop-bench-") as tmp:
        results = run_all(args, params, Path(tmp))
    results["total_seconds"] = round(time.perf_counter() - _STARTED, 1)
    table = markdown_table(results)
    print(table)
    if args.merge and not params.quick:
        results = merged_with_stored(results, args.parts)
        write_results(results)
        replace_readme_block("experiments", markdown_table(results), heading="Experiments")
        log(
            f"merged {', '.join(args.parts)} into {RESULTS_PATH.relative_to(ROOT)} and the table in bench/README.md"
        )
    elif params.quick or len(args.parts) < len(PARTS):
        log(
            "quick run or some parts only: results printed; bench/results/experiments.json and bench/README.md "
            "left as they were"
        )
    else:
        write_results(results)
        replace_readme_block("experiments", table, heading="Experiments")
        log(f"wrote {RESULTS_PATH.relative_to(ROOT)} and the table in bench/README.md")
    log(f"done in {results['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
