"""What the load and fault tests share: `feedbackloop serve` as a subprocess with JSON access logs, databases made
for one test (a SQLite file; a PostgreSQL database created on the shared server and dropped after), an ingest key
created in that database, the real Segment client sending from spawned processes, and the figures read back from
the store and the access log.

Every wait has a deadline and every process started here is stopped in a `finally` (its whole process group).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from store.database import Database
from store.models import EventRow
from store.repositories import api_keys

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL_VARIABLE = "FEEDBACKLOOP_TEST_POSTGRES_URL"
# A directory each test writes its figures to as JSON. Not a FEEDBACKLOOP_ name: the session fixture clears those.
FIGURES_VARIABLE = "RELIABILITY_FIGURES_DIR"
HEALTHY_WITHIN_SECONDS = 120.0  # two workers each import the app (langgraph and all) on a busy machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def feedbackloop_command(*arguments: str) -> list[str]:
    script = Path(sys.executable).with_name("feedbackloop")
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "feedbackloop.cli.root"]
    return [*prefix, *arguments]


def clean_environment(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any FEEDBACKLOOP_ setting but the database URL and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACKLOOP_")}
    env["FEEDBACKLOOP_DATABASE_URL"] = database_url
    env.update({f"FEEDBACKLOOP_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def stop_group(process: subprocess.Popen[Any], grace_seconds: float = 20.0) -> None:
    """SIGTERM to the process group we started, SIGKILL when it outlives `grace_seconds`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# ---- databases -------------------------------------------------------------------------------------------------


def postgres_base_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A new database on the server of `base_url` (a subprocess sees it whole, search_path and all), dropped
    afterwards with every connection to it."""
    name = f"fbl_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def load_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL for a subprocess: a SQLite file in `tmp_path`, or a PostgreSQL database of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/load.db"
        return
    base_url = postgres_base_url()
    if base_url is None:
        import pytest

        pytest.skip(f"PostgreSQL half skipped: set {POSTGRES_URL_VARIABLE}")
    with postgres_database(base_url) as url:
        yield url


def create_ingest_key(database_url: str) -> str:
    """Migrate the database and create an ingest-scope key in it (what `feedbackloop keys create` does)."""
    database = Database(database_url)
    try:
        with database.write() as connection:
            created = api_keys.create(connection, scope="ingest", name="reliability", now=datetime.now(UTC))
        return created.key
    finally:
        database.dispose()


def stored_message_ids(database_url: str, prefix: str) -> tuple[int, set[str]]:
    """(rows, distinct message ids) of the events whose messageId starts with `prefix`."""
    database = Database(database_url, upgrade=False)
    try:
        with database.read() as connection:
            rows = connection.execute(
                select(func.count()).select_from(EventRow).where(EventRow.message_id.startswith(prefix))
            ).scalar_one()
            ids = set(
                connection.execute(
                    select(EventRow.message_id).where(EventRow.message_id.startswith(prefix))
                ).scalars()
            )
        return int(rows), ids
    finally:
        database.dispose()


# ---- the server ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]


def wait_healthy(server: Server, timeout_seconds: float = HEALTHY_WITHIN_SECONDS) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"serve exited with {server.process.returncode}:\n{server.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout_seconds:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running_server(database_url: str, workdir: Path, *, workers: int = 2) -> Iterator[Server]:
    """`feedbackloop serve` with keys required and JSON logs at INFO (one access-log line per request), in its own
    process group, cwd `workdir` (no developer .env is read)."""
    port = free_port()
    log_path = workdir / f"serve-{port}.log"
    env = clean_environment(database_url, auth="on", log_format="json", log_level="info")
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            feedbackloop_command("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            cwd=workdir, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        server = Server(process, port, log_path)
        try:
            wait_healthy(server)
            yield server
        finally:
            stop_group(process)


@dataclass
class AccessLog:
    """The serve process's access log (logger feedbackloop.http): statuses of every request, latencies of the
    ingest requests."""

    statuses: Counter[int] = field(default_factory=Counter)
    ingest_durations_ms: list[float] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.ingest_durations_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def read_access_log(path: Path, ingest_route: str = "/v1/batch") -> AccessLog:
    figures = AccessLog()
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("logger") != "feedbackloop.http" or "status" not in record:
            continue
        figures.statuses[int(record["status"])] += 1
        if record.get("route") == ingest_route:
            figures.ingest_durations_ms.append(float(record["duration_ms"]))
    return figures


def write_figures(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures (`pytest -s` shows them) and, when RELIABILITY_FIGURES_DIR names a
    directory, write them there as `<name>.json` for docs/reliability.md."""
    document = json.dumps(figures, indent=2, sort_keys=True, default=str)
    print(f"\n{name}: {document}")
    directory = os.environ.get(FIGURES_VARIABLE)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / f"{name}.json").write_text(document + "\n")


# ---- a PostgreSQL cluster of the test's own ---------------------------------------------------------------------


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, run by the `postgres` OS user (initdb and postgres refuse
    root), listening on 127.0.0.1:`port` only, trust authentication."""

    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        sockets = f"-c unix_socket_directories={self.directory}"
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 {sockets} -c fsync=off"
        self.pg_ctl("-o", options, "start")

    def pg_ctl(self, *arguments: str, timeout_seconds: float = 60.0) -> None:
        # -l: a server started here writes to the log file, not to our pipes (run() would wait for them to close)
        log = str(self.directory / "server.log")
        command = [*as_postgres(), "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "30", *arguments]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout_seconds)


def as_postgres() -> list[str]:
    """The prefix that runs a command as the postgres OS user (nothing when we are that user already)."""
    import pwd

    if os.geteuid() == pwd.getpwnam("postgres").pw_uid:
        return []
    return ["runuser", "-u", "postgres", "--"]


def cluster_unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot be made here, or None when it can."""
    import pwd
    import shutil

    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if shutil.which(tool) is None]
    if missing:
        return f"PostgreSQL server binaries not on PATH: {', '.join(missing)}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` OS user to run initdb and the server as"
    if os.geteuid() != 0 and os.geteuid() != pwd.getpwnam("postgres").pw_uid:
        return "needs root (to run the server as `postgres`) or to run as `postgres`"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser not on PATH"
    return None


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    import pwd
    import shutil
    import tempfile

    account = pwd.getpwnam("postgres")
    directory = Path(tempfile.mkdtemp(prefix="feedbackloop-pg-"))
    os.chown(directory, account.pw_uid, account.pw_gid)
    cluster = ThrowawayCluster(directory, free_port())
    started = False
    try:
        subprocess.run(
            [*as_postgres(), "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync",
             "-E", "UTF8", "--locale", "C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        cluster.start()
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


# ---- the app in a thread of the test process --------------------------------------------------------------------


class StatusRecorder(logging.Handler):
    """Counts the statuses the access log (logger feedbackloop.http) reports."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.statuses: Counter[int] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        status = getattr(record, "status", None)
        if isinstance(status, int):
            self.statuses[status] += 1


@contextlib.contextmanager
def app_in_thread(database: Database, write_key: str) -> Iterator[tuple[str, StatusRecorder]]:
    """The app (keys on, `write_key` accepted) under uvicorn in a thread on a free loopback port, with the statuses
    it answered counted; yields (base URL, recorder)."""
    import threading

    import uvicorn

    from feedbackloop.api.app import create_app
    from feedbackloop.settings import Settings

    settings = Settings(database_url=database.url, write_keys=write_key, auth="on")
    recorder = StatusRecorder()
    access_log = logging.getLogger("feedbackloop.http")
    previous_level = access_log.level
    access_log.setLevel(logging.INFO)
    access_log.addHandler(recorder)
    port = free_port()
    config = uvicorn.Config(create_app(settings, database), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not answer /healthz within 30 s")
            time.sleep(0.05)
        yield base_url, recorder
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        access_log.removeHandler(recorder)
        access_log.setLevel(previous_level)
