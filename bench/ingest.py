"""Ingestion benchmark: how fast events get into the store, and how much memory a big import needs.

Three figures, each with the target from the issue:

1. The Python bulk path (`EventIngestor.ingest_stream`) against a raw `sqlite3` executemany of the same rows,
   into the same schema, in the same run (target: ours ≥ 50% of raw). Also the bulk path on PostgreSQL when a
   server answers. Runs alternate ours/raw on fresh files and medians are quoted, because the machine is shared.
2. HTTP `POST /v1/batch` with 100-event Segment batches against the real app (`feedbackloop serve`, 2 workers)
   (target: ≥ 5,000 events/s on 2 cores), with request latency and a check that every event was stored.
3. Peak RSS of a process streaming 1,000,000 synthetic events through `ingest_stream` (target: < 400 MB).

Writes bench/results/ingest.json and the table between the markers in bench/README.md. `--quick` is a smoke
run with small counts that prints the results but leaves both files alone, so it never replaces real figures.

    .venv/bin/python bench/ingest.py [--quick] [--skip-http] [--skip-rss] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import json
import os
import resource
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/ingest.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from store.database import Database  # noqa: E402
from store.repositories.events import EVENT_COLUMNS  # noqa: E402
from tools.events.ingest import DEFAULT_CHUNK_EVENTS, EventIngestor  # noqa: E402
from tools.events.model import CanonicalEvent  # noqa: E402
from tools.synthetic import SyntheticConfig, generate_events  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "ingest.json"

# A fixed end makes the synthetic events (and so the rows written) identical from run to run.
SYNTHETIC_END = datetime(2026, 1, 1, tzinfo=UTC)
SYNTHETIC_DAYS = 90
EVENTS_PER_USER_AT_LEAST = 60  # the default simulation yields ~87 per user over 90 days; sized low on purpose
BULK_SEED, HTTP_SEED, RSS_SEED = 101, 202, 303


@dataclass(frozen=True)
class Parameters:
    """Sizes and limits of one run; `--quick` shrinks the counts, never the method."""

    bulk_events: int = 200_000
    warmup_events: int = (
        10_000  # one untimed run per side first, so imports and caches do not land in round 1
    )
    rounds: int = 5
    chunk_events: int = DEFAULT_CHUNK_EVENTS
    http_events: int = 100_000
    http_batch_events: int = 100
    http_client_threads: int = 4
    http_server_workers: int = 2
    http_time_limit_seconds: float = 300.0
    rss_events: int = 1_000_000
    rss_time_budget_seconds: float = 240.0  # above this the issue wants us to say so, not shrink the count
    rss_time_limit_seconds: float = 900.0  # hard stop for the child process
    quick: bool = False


QUICK = Parameters(
    bulk_events=20_000, warmup_events=2_000, rounds=3, http_events=10_000, rss_events=100_000, quick=True
)

TARGET_RATIO_OF_RAW = 0.50
TARGET_HTTP_EVENTS_PER_SECOND = 5_000.0
TARGET_PEAK_RSS_MB = 400.0

_STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for the RSS child's JSON answer."""
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Events


def synthetic_events(total: int, seed: int) -> Iterator[CanonicalEvent]:
    """Exactly `total` events, lazily; further seeds are chained in the unlikely case one config runs short.

    Message ids embed the seed, so chained configs never collide and every event is a new row.
    """
    users = total // EVENTS_PER_USER_AT_LEAST + 1
    produced = 0
    while produced < total:
        config = SyntheticConfig(users=users, days=SYNTHETIC_DAYS, seed=seed, end=SYNTHETIC_END)
        for event in islice(generate_events(config), total - produced):
            produced += 1
            yield event
        seed += 1000


def segment_item(event: CanonicalEvent) -> dict[str, Any]:
    """A CanonicalEvent as a Segment client would send it (identify carries traits, track an event name)."""
    item: dict[str, Any] = {
        "type": event.type,
        "messageId": event.message_id,
        "timestamp": event.timestamp.isoformat(),
        "context": event.context,
    }
    if event.user_id is not None:
        item["userId"] = event.user_id
    if event.anonymous_id is not None:
        item["anonymousId"] = event.anonymous_id
    if event.type == "identify":
        item["traits"] = event.properties
    else:
        item["event"] = event.name
        item["properties"] = event.properties
    return item


def encode_batches(events: Sequence[CanonicalEvent], batch_events: int) -> list[bytes]:
    """Request bodies serialised before the clock starts, so the client spends its CPU on sending only."""
    return [
        json.dumps({"batch": [segment_item(e) for e in events[i : i + batch_events]]}).encode()
        for i in range(0, len(events), batch_events)
    ]


# --------------------------------------------------------------------------------------------------------------
# Machine facts and small helpers


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def sqlite_event_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])


def create_schema(url: str) -> None:
    """The product's own migrations, so the raw baseline gets the same table, unique key and indexes."""
    Database(url).dispose()


# --------------------------------------------------------------------------------------------------------------
# 1. Bulk path vs raw sqlite3


def time_bulk_path(events: Sequence[CanonicalEvent], url: str, chunk_events: int) -> float:
    """Seconds for `ingest_stream` alone: schema creation and persona loading happen before the clock starts."""
    database = Database(url)
    try:
        ingestor = EventIngestor(database)
        gc.collect()
        started = time.perf_counter()
        summary = ingestor.ingest_stream(events, chunk_events=chunk_events)
        seconds = time.perf_counter() - started
    finally:
        database.dispose()
    if summary.accepted != len(events):
        raise RuntimeError(f"bulk path stored {summary.accepted} of {len(events)} events")
    return seconds


def _sqlite_time_text(value: datetime) -> str:
    # Same text as the product writes (SQLAlchemy's SQLite DateTime format), so the work is the same.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _raw_rows(chunk: Sequence[CanonicalEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            e.message_id,
            e.type,
            e.name,
            e.user_id,
            e.anonymous_id,
            _sqlite_time_text(e.timestamp),
            _sqlite_time_text(e.received_at),
            _json_text(e.properties),
            _json_text(e.context),
        )
        for e in chunk
    ]


def _raw_connection(path: Path) -> sqlite3.Connection:
    """Tuned like the product's engine: WAL, synchronous=NORMAL, explicit transactions."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def time_raw_sqlite(events: Sequence[CanonicalEvent], path: Path, chunk_events: int) -> tuple[float, float]:
    """The floor: plain sqlite3 executemany, one BEGIN IMMEDIATE … COMMIT per chunk, rows converted in the loop.

    It stores the events only; the product also dedupes within the chunk and upserts users, and that extra work
    is exactly what the ratio is meant to expose. Returns (total seconds, of which converting rows), so a reader
    can see how much of the floor is Python and how much is SQLite.
    """
    create_schema(f"sqlite:///{path}")
    placeholders = ", ".join("?" * len(EVENT_COLUMNS))
    statement = (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (message_id) DO NOTHING"
    )
    with contextlib.closing(_raw_connection(path)) as connection:
        gc.collect()
        convert_seconds = 0.0
        started = time.perf_counter()
        for start in range(0, len(events), chunk_events):
            converting = time.perf_counter()
            rows = _raw_rows(events[start : start + chunk_events])
            convert_seconds += time.perf_counter() - converting
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(statement, rows)
            connection.execute("COMMIT")
        seconds = time.perf_counter() - started
    stored = sqlite_event_count(path)
    if stored != len(events):
        raise RuntimeError(f"raw sqlite3 stored {stored} of {len(events)} events")
    return seconds, convert_seconds


def warm_up(events: Sequence[CanonicalEvent], params: Parameters, workdir: Path) -> None:
    """One small untimed run per side: first-use costs (imports, statement caches) are not what we measure."""
    sample = events[: params.warmup_events]
    time_bulk_path(sample, f"sqlite:///{workdir / 'warmup-ours.db'}", params.chunk_events)
    time_raw_sqlite(sample, workdir / "warmup-raw.db", params.chunk_events)
    _remove_sqlite_files(workdir / "warmup-ours.db")
    _remove_sqlite_files(workdir / "warmup-raw.db")


def run_bulk_sqlite(events: Sequence[CanonicalEvent], params: Parameters, workdir: Path) -> dict[str, Any]:
    """Alternate ours/raw (ABBA order across rounds) on fresh files, so drift on the machine hits both alike."""
    warm_up(events, params, workdir)
    ours_seconds: list[float] = []
    raw_seconds: list[float] = []
    raw_convert_seconds: list[float] = []
    for round_number in range(params.rounds):
        order = ("ours", "raw") if round_number % 2 == 0 else ("raw", "ours")
        for side in order:
            path = workdir / f"bulk-{side}-{round_number}.db"
            if side == "ours":
                seconds = time_bulk_path(events, f"sqlite:///{path}", params.chunk_events)
                ours_seconds.append(seconds)
            else:
                seconds, convert_seconds = time_raw_sqlite(events, path, params.chunk_events)
                raw_seconds.append(seconds)
                raw_convert_seconds.append(convert_seconds)
            log(
                f"bulk round {round_number + 1}/{params.rounds} {side:>4}: {len(events) / seconds:,.0f} events/s"
            )
            _remove_sqlite_files(path)
    summary = _bulk_summary(len(events), ours_seconds, raw_seconds)
    summary["raw_convert_seconds"] = [round(s, 4) for s in raw_convert_seconds]
    summary["raw_convert_median_seconds"] = round(statistics.median(raw_convert_seconds), 4)
    return summary


def _bulk_summary(count: int, ours_seconds: list[float], raw_seconds: list[float]) -> dict[str, Any]:
    ours_median = statistics.median(ours_seconds)
    raw_median = statistics.median(raw_seconds)
    return {
        "events": count,
        "ours_seconds": [round(s, 4) for s in ours_seconds],
        "raw_seconds": [round(s, 4) for s in raw_seconds],
        "ours_median_seconds": round(ours_median, 4),
        "raw_median_seconds": round(raw_median, 4),
        "ours_events_per_second": round(count / ours_median),
        "raw_events_per_second": round(count / raw_median),
        "ratio_of_raw": round(raw_median / ours_median, 4),
        "ratio_of_raw_per_round": [round(r / o, 4) for o, r in zip(ours_seconds, raw_seconds, strict=True)],
    }


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".migrate.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_base_url() -> str | None:
    """FEEDBACKLOOP_TEST_POSTGRES_URL, else a local server on 127.0.0.1:5432 (database `test`), else None."""
    configured = os.environ.get("FEEDBACKLOOP_TEST_POSTGRES_URL")
    if configured:
        return configured
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _psycopg_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[tuple[str, str]]:
    """A throwaway schema and a URL whose search_path points at it; dropped afterwards whatever happens."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"bench_{secrets.token_hex(4)}"
    conninfo = _psycopg_conninfo(base_url)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False), schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_event_count(base_url: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(_psycopg_conninfo(base_url)) as connection:
        row = connection.execute(f"SELECT count(*) FROM {schema}.events").fetchone()
    return int(row[0]) if row else 0


def postgres_server_version(base_url: str) -> str:
    import psycopg

    with psycopg.connect(_psycopg_conninfo(base_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "unknown"  # "15.20 (Debian …)" → "15.20"


def run_bulk_postgres(events: Sequence[CanonicalEvent], params: Parameters, base_url: str) -> dict[str, Any]:
    """The bulk path (COPY into staging, INSERT … ON CONFLICT) on a fresh schema per round."""
    seconds_per_round: list[float] = []
    for round_number in range(params.rounds):
        with postgres_schema(base_url) as (url, _schema):
            seconds = time_bulk_path(events, url, params.chunk_events)
        seconds_per_round.append(seconds)
        log(f"postgres round {round_number + 1}/{params.rounds}: {len(events) / seconds:,.0f} events/s")
    median = statistics.median(seconds_per_round)
    return {
        "events": len(events),
        "server_version": postgres_server_version(base_url),
        "seconds": [round(s, 4) for s in seconds_per_round],
        "median_seconds": round(median, 4),
        "events_per_second": round(len(events) / median),
    }


# --------------------------------------------------------------------------------------------------------------
# 2. HTTP /v1/batch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_command(port: int, workers: int) -> list[str]:
    script = Path(sys.executable).with_name("feedbackloop")
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "feedbackloop.cli.root"]
    return [*prefix, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


def _server_environment(database_url: str) -> dict[str, str]:
    """Only the database URL from us: no write keys or .env of the developer leak into the measurement.

    Authentication off: the server listens on loopback only, and the clients send no key (the check is one hashed
    lookup per request; these figures measure ingestion and assignment, not it).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACKLOOP_")}
    env["FEEDBACKLOOP_DATABASE_URL"] = database_url
    env["FEEDBACKLOOP_AUTH"] = "off"
    return env


def _wait_healthy(port: int, process: subprocess.Popen[bytes], timeout_seconds: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before /healthz answered")
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout_seconds:.0f}s")


@contextlib.contextmanager
def running_server(database_url: str, workers: int, workdir: Path) -> Iterator[tuple[int, int]]:
    """`feedbackloop serve` in its own process group (cwd = workdir, so no .env is read); yields (port, pid)."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            _server_command(port, workers),
            cwd=workdir,
            env=_server_environment(database_url),
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_healthy(port, process)
            yield port, process.pid
        except BaseException:
            tail = log_path.read_text(errors="replace")[-2000:]
            log(f"server log tail:\n{tail}")
            raise
        finally:
            _stop_server(process)


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # only the group we started
            process.wait(timeout=10)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User+system CPU of a process and its live descendants (the uvicorn workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat_path.read_text().rsplit(")", 1)[1].split()
            pid = int(stat_path.parent.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {root_pid}
    changed = True
    while changed:
        grown = tree | {pid for pid, parent in parents.items() if parent in tree}
        changed, tree = grown != tree, grown
    return sum(cpu.get(pid, 0.0) for pid in tree)


@dataclass
class _ClientTally:
    """What the client threads saw; one lock guards it and the shared position in the body list."""

    next_index: int = 0
    latencies_seconds: list[float] = field(default_factory=list)
    events_sent: int = 0
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_thread(
    port: int, bodies: list[bytes], events_per_body: list[int], tally: _ClientTally, deadline: float
) -> None:
    """One keep-alive connection posting bodies until they run out or the deadline passes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        while time.monotonic() < deadline:
            with tally.lock:
                index = tally.next_index
                tally.next_index += 1
            if index >= len(bodies):
                return
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/batch", body=bodies[index], headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with tally.lock:
                    tally.failures.append(f"batch {index}: {error!r}")
                continue
            elapsed = time.perf_counter() - started
            with tally.lock:
                tally.latencies_seconds.append(elapsed)
                tally.events_sent += events_per_body[index]
                if response.status == 200:
                    tally.accepted += int(json.loads(payload)["accepted"])
                else:
                    tally.failures.append(f"batch {index}: HTTP {response.status} {payload[:200]!r}")
    finally:
        connection.close()


def post_batches(
    port: int, bodies: list[bytes], events_per_body: list[int], threads: int, time_limit_seconds: float
) -> tuple[_ClientTally, float]:
    """Concurrent keep-alive clients; returns the tally and the wall time from first send to last answer."""
    tally = _ClientTally()
    deadline = time.monotonic() + time_limit_seconds
    workers = [
        threading.Thread(target=_client_thread, args=(port, bodies, events_per_body, tally, deadline))
        for _ in range(threads)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return tally, time.perf_counter() - started


def _latency_ms(latencies_seconds: list[float]) -> dict[str, float]:
    if len(latencies_seconds) < 2:
        return {}
    cuts = statistics.quantiles(latencies_seconds, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies_seconds) * 1000, 1),
    }


def run_http(
    events: Sequence[CanonicalEvent],
    params: Parameters,
    database_url: str,
    workdir: Path,
    count_stored: Any,
) -> dict[str, Any]:
    """Time the batches against a fresh store, then check the store holds every event that was sent."""
    bodies = encode_batches(events, params.http_batch_events)
    events_per_body = [
        min(params.http_batch_events, len(events) - i)
        for i in range(0, len(events), params.http_batch_events)
    ]
    with running_server(database_url, params.http_server_workers, workdir) as (port, pid):
        server_cpu_before = process_tree_cpu_seconds(pid)
        client_cpu_before = time.process_time()
        tally, wall_seconds = post_batches(
            port, bodies, events_per_body, params.http_client_threads, params.http_time_limit_seconds
        )
        client_cpu_seconds = time.process_time() - client_cpu_before
        server_cpu_seconds = process_tree_cpu_seconds(pid) - server_cpu_before
    stored = count_stored()
    events_per_second = tally.events_sent / wall_seconds if wall_seconds > 0 else 0.0
    log(f"http: {tally.events_sent:,} events in {wall_seconds:.1f}s = {events_per_second:,.0f} events/s")
    return {
        "events_planned": len(events),
        "events_sent": tally.events_sent,
        "events_accepted": tally.accepted,
        "events_stored": stored,
        "stored_matches_sent": stored == tally.events_sent == len(events),
        "requests": len(tally.latencies_seconds),
        "failures": tally.failures[:20],
        "failure_count": len(tally.failures),
        "hit_time_limit": tally.events_sent < len(events) and not tally.failures,
        "wall_seconds": round(wall_seconds, 3),
        "events_per_second": round(events_per_second),
        "latency": _latency_ms(tally.latencies_seconds),
        "server_cpu_seconds": round(server_cpu_seconds, 2),
        "client_cpu_seconds": round(client_cpu_seconds, 2),
        "cpu_seconds_available": round(wall_seconds * (os.cpu_count() or 1), 2),
        "cpu_note": "server = uvicorn supervisor and workers; a PostgreSQL server's own processes are not counted",
    }


def run_http_sqlite(events: Sequence[CanonicalEvent], params: Parameters, workdir: Path) -> dict[str, Any]:
    path = workdir / "http.db"
    result = run_http(events, params, f"sqlite:///{path}", workdir, lambda: sqlite_event_count(path))
    _remove_sqlite_files(path)
    return result


def run_http_postgres(
    events: Sequence[CanonicalEvent], params: Parameters, workdir: Path, base_url: str
) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, schema):
        create_schema(url)
        return run_http(events, params, url, workdir, lambda: postgres_event_count(base_url, schema))


# --------------------------------------------------------------------------------------------------------------
# 3. Peak RSS for 1M events


def peak_rss_mb() -> float:
    """VmHWM, the high-water RSS of this process image.

    Not ru_maxrss alone: on Linux a child's ru_maxrss starts at its parent's RSS at fork and survives exec, so
    a child of a big parent would report the parent's memory. Both are recorded; VmHWM is the figure.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return ru_maxrss_mb()


def rss_parts_mb() -> dict[str, float]:
    """The current RSS split: RssAnon (the process's own memory) and RssFile (file pages mapped into it: with
    SQLite's mmap_size, the database file's pages it has read, which the kernel can drop at any time)."""
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            name, kilobytes = line.split()[:2]
            parts[name.rstrip(":")] = int(kilobytes) / 1024
    return parts


def _rss_split(rss: dict[str, Any]) -> str:
    if "peak_anon_rss_mb" not in rss:
        return ""
    return (f"; sampled per chunk, at most {rss['peak_anon_rss_mb']:.0f} MB of the process's own memory "
            f"(RssAnon) and {rss['peak_file_rss_mb']:.0f} MB of the database file's pages mapped by SQLite's "
            "mmap (RssFile, which the kernel can reclaim)")  # fmt: skip


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def rss_child(total: int, database_path: Path) -> None:
    """Runs in its own process so the peak is this import alone, not the parent's materialised events."""
    database = Database(f"sqlite:///{database_path}")
    ingestor = EventIngestor(database)
    baseline_rss_mb = peak_rss_mb()
    done = 0
    peaks = {"RssAnon": 0.0, "RssFile": 0.0}

    def progress(count: int) -> None:
        nonlocal done
        for name, megabytes in rss_parts_mb().items():  # sampled once per chunk (5,000 events)
            peaks[name] = max(peaks[name], megabytes)
        before, done = done, done + count
        if done // 100_000 != before // 100_000:
            log(f"rss child: {done:,} events")

    started = time.perf_counter()
    summary = ingestor.ingest_stream(synthetic_events(total, RSS_SEED), on_progress=progress)
    seconds = time.perf_counter() - started
    database.dispose()
    answer = {
        "events": total,
        "accepted": summary.accepted,
        "seconds": round(seconds, 2),
        "events_per_second": round(total / seconds),
        "baseline_rss_mb": round(baseline_rss_mb, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "ru_maxrss_mb": round(ru_maxrss_mb(), 1),
        "peak_anon_rss_mb": round(peaks["RssAnon"], 1),
        "peak_file_rss_mb": round(peaks["RssFile"], 1),
    }
    print(json.dumps(answer), flush=True)


def run_rss(params: Parameters, workdir: Path) -> dict[str, Any]:
    """Start the child, bounded by a hard time limit; a run over the budget is reported, not shortened."""
    path = workdir / "rss.db"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        str(params.rss_events),
        str(path),
    ]
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, timeout=params.rss_time_limit_seconds, check=True, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {
            "events": params.rss_events,
            "error": f"did not finish in {params.rss_time_limit_seconds:.0f}s",
        }
    result: dict[str, Any] = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    result["stored"] = sqlite_event_count(path)
    result["over_time_budget"] = result["seconds"] > params.rss_time_budget_seconds
    _remove_sqlite_files(path)
    log(f"rss: peak {result['peak_rss_mb']} MB, {result['seconds']}s for {params.rss_events:,} events")
    return result


# --------------------------------------------------------------------------------------------------------------
# Targets, JSON and the README table


@dataclass(frozen=True)
class Row:
    figure: str
    result: str
    target: str = "—"
    status: str = "info"


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Pass/fail per target of the issue; a figure that was not measured is `skipped`, never a pass."""
    bulk = results.get("bulk_sqlite") or {}
    http = results.get("http_sqlite") or {}
    rss = results.get("rss") or {}
    http_ok = http.get("stored_matches_sent") is True and not http.get("failure_count")
    rss_ok = "peak_rss_mb" in rss and rss.get("stored") == rss.get("events")
    return [
        _target("bulk_ratio_of_raw_sqlite", f"≥ {TARGET_RATIO_OF_RAW:.0%}", bulk.get("ratio_of_raw"),
                lambda v: v >= TARGET_RATIO_OF_RAW),
        _target("http_events_per_second_sqlite", f"≥ {TARGET_HTTP_EVENTS_PER_SECOND:,.0f} events/s on 2 cores",
                http.get("events_per_second") if http_ok else None, lambda v: v >= TARGET_HTTP_EVENTS_PER_SECOND),
        _target("peak_rss_mb_1m_events", f"< {TARGET_PEAK_RSS_MB:.0f} MB",
                rss.get("peak_rss_mb") if rss_ok else None, lambda v: v < TARGET_PEAK_RSS_MB),
    ]  # fmt: skip


def _target(name: str, target: str, value: float | None, check: Any) -> dict[str, Any]:
    status = "skipped" if value is None else ("pass" if check(value) else "fail")
    return {"name": name, "target": target, "value": value, "status": status}


def build_rows(results: dict[str, Any]) -> list[Row]:
    """One row per measured figure, in the order of the issue."""
    params = results["parameters"]
    status = {t["name"]: t["status"] for t in results["targets"]}
    rows = _bulk_rows(results, params, status)
    rows += _http_rows(results, params, status)
    rows += _rss_rows(results, status)
    for section in ("bulk_sqlite", "bulk_postgres", "http_sqlite", "http_postgres"):
        if "error" in (results.get(section) or {}):
            rows.append(Row(f"`{section}` did not complete", results[section]["error"], status="error"))
    return rows


def _bulk_rows(results: dict[str, Any], params: dict[str, Any], status: dict[str, str]) -> list[Row]:
    bulk = results.get("bulk_sqlite")
    if not bulk or "error" in bulk:
        return []
    runs = f"{bulk['events']:,} events, median of {params['rounds']}"
    convert_share = bulk["raw_convert_median_seconds"] / bulk["raw_median_seconds"]
    rows = [
        Row(f"Python bulk path (`ingest_stream`), SQLite ({runs})", f"{bulk['ours_events_per_second']:,} events/s"),
        Row(f"Raw `sqlite3` executemany of the same rows ({runs})",
            f"{bulk['raw_events_per_second']:,} events/s ({convert_share:.0%} of its time converting rows)"),
        Row("Bulk path ÷ raw sqlite3", f"{bulk['ratio_of_raw']:.0%}", f"≥ {TARGET_RATIO_OF_RAW:.0%}",
            status["bulk_ratio_of_raw_sqlite"]),
    ]  # fmt: skip
    postgres = results.get("bulk_postgres") or {}
    if "events_per_second" in postgres:
        rows.append(
            Row(
                f"Python bulk path, PostgreSQL {postgres['server_version']} "
                f"({postgres['events']:,} events, median of {params['rounds']})",
                f"{postgres['events_per_second']:,} events/s",
            )
        )
    return rows


def _http_rows(results: dict[str, Any], params: dict[str, Any], status: dict[str, str]) -> list[Row]:
    rows = []
    for key, store in (("http_sqlite", "SQLite"), ("http_postgres", "PostgreSQL")):
        http = results.get(key) or {}
        if "events_per_second" not in http:
            continue
        label = (
            f"HTTP `/v1/batch`, {params['http_batch_events']}-event batches, {store} "
            f"({http['events_sent']:,} events, {params['http_client_threads']} clients, "
            f"{params['http_server_workers']} workers)"
        )
        stored = "" if http["stored_matches_sent"] else f" — stored {http['events_stored']:,}, MISMATCH"
        target = (
            f"≥ {TARGET_HTTP_EVENTS_PER_SECOND:,.0f} events/s on 2 cores" if key == "http_sqlite" else "—"
        )
        row_status = status["http_events_per_second_sqlite"] if key == "http_sqlite" else "info"
        rows.append(Row(label, f"{http['events_per_second']:,} events/s{stored}", target, row_status))
        latency = http["latency"]
        if latency:
            rows.append(
                Row(
                    f"HTTP request latency p50 / p99, {store}",
                    f"{latency['p50_ms']} / {latency['p99_ms']} ms",
                )
            )
        rows.append(_cpu_row(http, store))
    return rows


def _cpu_row(http: dict[str, Any], store: str) -> Row:
    """Shows whether the HTTP figure was CPU-bound: far below 100% busy means the limit is elsewhere."""
    available = http["cpu_seconds_available"] or 1.0
    server, client = http["server_cpu_seconds"] / available, http["client_cpu_seconds"] / available
    return Row(
        f"CPU busy during the HTTP run, {store} (share of all cores × wall time)",
        f"server {server:.0%}, client {client:.0%}",
    )


def _rss_rows(results: dict[str, Any], status: dict[str, str]) -> list[Row]:
    rss = results.get("rss")
    if not rss:
        return []
    if "error" in rss:
        return [
            Row(
                f"Peak RSS, {results['parameters']['rss_events']:,} events",
                rss["error"],
                f"< {TARGET_PEAK_RSS_MB:.0f} MB",
                "error",
            )
        ]
    budget = "over the ~4 min budget" if rss["over_time_budget"] else "within the ~4 min budget"
    return [
        Row(f"Peak RSS, {rss['events']:,} events through `ingest_stream` (SQLite)",
            f"{rss['peak_rss_mb']:.0f} MB (before the first event: {rss['baseline_rss_mb']:.0f} MB){_rss_split(rss)}",
            f"< {TARGET_PEAK_RSS_MB:.0f} MB", status["peak_rss_mb_1m_events"]),
        Row(f"Time for those {rss['events']:,} events (generation included)",
            f"{rss['seconds']:.0f} s ({rss['events_per_second']:,} events/s), {budget}"),
    ]  # fmt: skip


def markdown_table(results: dict[str, Any]) -> str:
    machine = machine_label(results["machine"])
    date = results["machine"]["date_utc"][:10]
    lines = ["| Figure | Result | Target | Status | Machine | Date |", "|---|---|---|---|---|---|"]
    for row in build_rows(results):
        lines.append(f"| {row.figure} | {row.result} | {row.target} | {row.status} | {machine} | {date} |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    replace_readme_block("ingest", table, heading="Ingestion")


def write_results(results: dict[str, Any]) -> None:
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    temporary = RESULTS_PATH.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(RESULTS_PATH)


# --------------------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ingestion benchmark (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="small counts; print results, write nothing")
    parser.add_argument("--skip-http", action="store_true", help="skip the HTTP /v1/batch figures")
    parser.add_argument("--skip-rss", action="store_true", help="skip the 1M-event peak RSS figure")
    parser.add_argument(
        "--skip-postgres", action="store_true", help="skip PostgreSQL even if a server answers"
    )
    parser.add_argument("--rss-child", nargs=2, metavar=("EVENTS", "DB_PATH"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def guarded(section: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A failing section is recorded as an error row instead of losing the figures of the others."""
    try:
        return measure()
    except Exception as error:
        log(f"{section} failed: {error!r}")
        return {"error": f"{type(error).__name__}: {error}"[:300]}


def run_all(args: argparse.Namespace, params: Parameters, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"benchmark": "ingest", "machine": machine_facts(), "parameters": vars(params)}
    postgres_url = None if args.skip_postgres else postgres_base_url()
    results["postgres"] = "not available" if postgres_url is None else "used"
    if not args.skip_rss:  # first, while this process is small (see peak_rss_mb on ru_maxrss)
        results["rss"] = guarded("rss", partial(run_rss, params, workdir))
    log(f"generating {params.bulk_events:,} synthetic events")
    events = list(synthetic_events(params.bulk_events, BULK_SEED))
    results["bulk_sqlite"] = guarded("bulk_sqlite", partial(run_bulk_sqlite, events, params, workdir))
    if postgres_url is not None:
        results["bulk_postgres"] = guarded(
            "bulk_postgres", partial(run_bulk_postgres, events, params, postgres_url)
        )
    del events
    if not args.skip_http:
        http_events = list(synthetic_events(params.http_events, HTTP_SEED))
        results["http_sqlite"] = guarded(
            "http_sqlite", partial(run_http_sqlite, http_events, params, workdir)
        )
        if postgres_url is not None:
            results["http_postgres"] = guarded(
                "http_postgres", partial(run_http_postgres, http_events, params, workdir, postgres_url)
            )
    results["targets"] = evaluate_targets(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(int(args.rss_child[0]), Path(args.rss_child[1]))
        return 0
    params = QUICK if args.quick else Parameters()
    with tempfile.TemporaryDirectory(prefix="feedbackloop-bench-") as tmp:
        results = run_all(args, params, Path(tmp))
    results["total_seconds"] = round(time.perf_counter() - _STARTED, 1)
    table = markdown_table(results)
    print(table)
    if params.quick:
        log(
            "quick run: results printed only; bench/results/ingest.json and bench/README.md left as they were"
        )
    else:
        write_results(results)
        write_readme(table)
        log(f"wrote {RESULTS_PATH.relative_to(ROOT)} and the table in {'bench/README.md'}")
    log(f"done in {results['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
