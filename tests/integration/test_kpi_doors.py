"""KPIs, metrics and the dashboard through every door (HTTP, CLI, Python API) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from feedbackloop import KPICategory, KPIDashboardAggregator
from feedbackloop.api.app import create_app
from feedbackloop.cli import app as cli
from feedbackloop.settings import Settings
from store.database import Database
from tools.events.ingest import EventIngestor
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.synthetic import SyntheticConfig, generate_events

END = datetime(2026, 6, 1, tzinfo=UTC)
END_TEXT = "2026-06-01T00:00:00Z"
KPI_NAMES = {kpi.name for kpi in KPI_DEFINITIONS}
runner = CliRunner()


@pytest.fixture
def demo_data(database: Database) -> Database:
    EventIngestor(database).ingest_stream(
        generate_events(SyntheticConfig(users=250, days=60, seed=4, end=END))
    )
    return database


@pytest.fixture
def client(demo_data: Database) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_data.url), demo_data)) as test_client:
        yield test_client


def test_kpis_json_has_every_kpi_with_n_and_reason(client: TestClient) -> None:
    body = client.get(f"/v1/kpis?days=30&end={END_TEXT}").json()
    assert body["window"] == {"start": "2026-05-02T00:00:00+00:00", "end": "2026-06-01T00:00:00+00:00"}
    assert set(body["overall"]) == KPI_NAMES
    for kpi in body["overall"].values():
        assert {"value", "n", "reason"} <= set(kpi)
        assert (kpi["value"] is None) == (kpi["reason"] is not None)
    assert {"solo_podcaster", "podcast_network", "agency", "brand_sponsor"} <= set(body["personas"])
    only = client.get(f"/v1/kpis?days=30&end={END_TEXT}&persona=agency").json()
    assert list(only["personas"]) == ["agency"]


def test_persona_comparison_route(client: TestClient) -> None:
    body = client.get(f"/v1/kpis/personas?category=user_success&days=30&end={END_TEXT}").json()
    assert body["category"] == "user_success"
    assert "task_completion_rate" in body["kpis"]
    ranking = body["kpis"]["task_completion_rate"]["ranking"]
    values = [r["value"] for r in ranking if r["value"] is not None]
    assert values == sorted(values, reverse=True)  # higher is better: best first


def test_metrics_route(client: TestClient) -> None:
    body = client.get(f"/v1/metrics/time_to_value?days=30&end={END_TEXT}").json()
    assert body["metric"] == "time_to_value" and body["higher_is_better"] is False
    for persona in body["personas"].values():
        assert {"n", "mean", "p50", "p90", "rate", "previous", "change", "p_value", "daily"} <= set(persona)
    assert len(body["overall"]["daily"]) == 30


def test_dashboard_route_is_self_contained_html(client: TestClient) -> None:
    response = client.get(f"/dashboard?days=30&end={END_TEXT}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert response.text.count('data-testid="kpi-card"') == len(KPI_NAMES)
    assert response.text.count('data-testid="metric-chart"') == 5
    assert "<script" not in response.text


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("days=0", "query.days"),
        ("days=abc", "query.days"),
        ("end=2026-01-01T00:00:00", "no UTC offset"),
        ("end=yesterday", "end"),
    ],
)
def test_bad_windows_are_400_naming_the_field(client: TestClient, query: str, fragment: str) -> None:
    for path in ("/v1/kpis", "/v1/metrics/error_rate", "/dashboard"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, response.text)
        assert fragment in response.json()["message"]


def test_cli_kpis_metrics_and_dashboard(demo_data: Database, tmp_path: Path) -> None:
    common = ["--days", "30", "--end", END_TEXT, "--database-url", demo_data.url]
    kpis = runner.invoke(cli, ["kpis", *common, "--format", "json"])
    assert kpis.exit_code == 0, kpis.output
    assert set(json.loads(kpis.output)["overall"]) == KPI_NAMES
    table = runner.invoke(cli, ["kpis", *common, "--persona", "agency"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "conversion_rate" in table.output and "agency" in table.output
    metrics = runner.invoke(cli, ["metrics", "report_accuracy", *common, "--format", "json"])
    assert metrics.exit_code == 0 and json.loads(metrics.output)["metric"] == "report_accuracy"
    out = tmp_path / "dash.html"
    page = runner.invoke(cli, ["dashboard", *common, "--out", str(out)])
    assert page.exit_code == 0, page.output
    assert out.read_text(encoding="utf-8").count('data-testid="kpi-card"') == len(KPI_NAMES)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["kpis", "--days", "0"], "--days"),
        (["kpis", "--end", "2026-01-01"], "--end"),
        (["kpis", "--format", "xml"], "--format"),
        (["kpis", "--persona", "pirates"], "--persona"),
        (["metrics", "error_rate", "--format", "csv"], "--format"),
        (["dashboard", "--out", "/nonexistent-dir/x.html"], "--out"),
    ],
)
def test_cli_bad_options_exit_2(demo_data: Database, arguments: list[str], fragment: str) -> None:
    result = runner.invoke(cli, [*arguments, "--database-url", demo_data.url])
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_seed_snippets_run_as_written(demo_data: Database) -> None:
    kpi_dashboard = KPIDashboardAggregator(settings=Settings(database_url=demo_data.url))

    async def snippet() -> tuple[object, object]:
        # Generate dashboard
        dashboard = await kpi_dashboard.generate_dashboard(days=30)

        # Compare personas
        comparison = await kpi_dashboard.compare_personas(kpi_category=KPICategory.BUSINESS_SUCCESS, days=30)
        return dashboard, comparison

    dashboard, comparison = asyncio.run(snippet())
    assert len(dashboard.cards) == len(KPI_NAMES)  # type: ignore[attr-defined]
    assert {r.kpi for r in comparison.rankings} == {  # type: ignore[attr-defined]
        k.name for k in KPI_DEFINITIONS if k.category == "business_success"
    }


@pytest.mark.parametrize(
    "command", [["kpis"], ["metrics", "error_rate"], ["dashboard", "--out", "/tmp/x.html"]]
)
def test_cli_read_commands_refuse_bad_database_urls_and_windows(command: list[str]) -> None:
    bad_url = runner.invoke(cli, [*command, "--database-url", "mysql://root@localhost/x"])
    assert bad_url.exit_code == 2 and "not supported" in bad_url.output
    bad_end = runner.invoke(cli, [*command, "--end", "garbage"])
    assert bad_end.exit_code == 2 and "--end:" in bad_end.output and "----end" not in bad_end.output
    old = runner.invoke(cli, [*command, "--end", "0001-01-01T00:00:00Z"])
    assert old.exit_code == 2 and "--end:" in old.output


def test_cli_metrics_unknown_persona_exits_2(demo_data: Database) -> None:
    result = runner.invoke(
        cli, ["metrics", "error_rate", "--persona", "pirates", "--database-url", demo_data.url]
    )
    assert result.exit_code == 2 and "--persona" in result.output


def test_year_one_windows_are_400(client: TestClient) -> None:
    for path in ("/v1/kpis?end=0001-01-01T00:00:00Z", "/v1/metrics/x?end=0001-01-05T00:00:00Z&days=2",
                 "/dashboard?end=9999-12-31T00:00:00Z"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 400 and response.json()["code"] == "invalid_window", path
