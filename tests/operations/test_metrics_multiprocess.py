"""Several API processes, one PROMETHEUS_MULTIPROC_DIR: /metrics on any process counts every process's requests.
Two processes answer requests at the same time, a third scrapes; nothing leaves the machine (the processes answer
in-process, without sockets). Also: serve's directory handling, and the processes' JSON log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedbackloop.serving import MULTIPROC_VARIABLE, metrics_directory
from store.database import Database

SCRIPT = Path(__file__).with_name("metrics_process.py")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 120


def process(
    database_url: str, directory: Path, requests: int, prefix: str, *, scrape: bool = False
) -> subprocess.Popen[str]:
    environment = {**os.environ, MULTIPROC_VARIABLE: str(directory), "PYTHONPATH": str(ROOT)}
    arguments = [
        sys.executable,
        str(SCRIPT),
        database_url,
        str(requests),
        prefix,
        *(["--scrape"] if scrape else []),
    ]
    return subprocess.Popen(
        arguments, env=environment, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(running: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        stdout, stderr = running.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        running.kill()
        raise
    assert running.returncode == 0, stderr[-3000:]
    return stdout, stderr


def test_two_processes_count_into_one_directory(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/feedbackloop.db"
    Database(database_url).dispose()  # schema first, so the processes do not race to create it
    directory = tmp_path / "metrics"
    directory.mkdir()
    first, second = process(database_url, directory, 5, "one"), process(database_url, directory, 7, "two")
    (_, first_log), (_, second_log) = finish(first), finish(second)
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process id

    scraped, _ = finish(process(database_url, directory, 0, "three", scrape=True))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    health = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert samples[("feedbackloop_http_requests_total", health)] == 12
    assert samples[("feedbackloop_http_request_duration_seconds_count", health[:2])] == 12
    assert samples[("feedbackloop_store_up", ())] == 1

    # Each process logged one JSON object per line; every access line carries its own request id.
    for log, prefix, requests in ((first_log, "one", 5), (second_log, "two", 7)):
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        access = [line for line in lines if line["logger"] == "feedbackloop.http"]
        assert [line["request_id"] for line in access] == [f"{prefix}-{n}" for n in range(requests)]
        assert all(line["route"] == "/healthz" and line["status"] == 200 for line in access)


def test_serve_makes_a_fresh_directory_and_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    with metrics_directory() as directory:
        assert directory.is_dir() and os.environ[MULTIPROC_VARIABLE] == str(directory)
        (directory / "counter_123.db").write_bytes(b"x")
    assert not directory.exists() and MULTIPROC_VARIABLE not in os.environ


def test_serve_empties_a_configured_directory_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "prometheus"
    configured.mkdir()
    (configured / "counter_99.db").write_bytes(b"old run")
    (configured / "README").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(configured))
    with metrics_directory() as directory:
        assert directory == configured and not list(configured.glob("*.db"))
    assert (configured / "README").exists() and os.environ[MULTIPROC_VARIABLE] == str(configured)
