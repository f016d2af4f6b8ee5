"""Experiments through the HTTP and CLI doors, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from feedbackloop.api.app import create_app
from feedbackloop.cli import app as cli
from feedbackloop.settings import Settings
from store.database import Database
from store.models import EventRow, ExperimentAssignmentRow
from tests.access.support import bearer, create_key
from tests.helpers import store_snapshot
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.experiments.assignment import assign_variant_index
from tools.experiments.service import EXPOSURE_EVENT, ExperimentService

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def definition(key: str = "guided-onboarding", **changes: Any) -> dict[str, Any]:
    return {
        "key": key, "name": "Guided onboarding", "type": "onboarding", "hypothesis": "a guide helps",
        "variants": [{"name": "standard", "weight": 0.5, "configuration": {"flow": "standard"}},
                     {"name": "guided", "weight": 0.5, "configuration": {"flow": "guided"}}],
        "primary_metrics": ["onboarding_completion"], "guardrails": [{"metric": "error_rate", "margin": 0.05}],
        **changes,
    }  # fmt: skip


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database.url), database)) as test_client:
        yield test_client


def assignment_rows(database: Database) -> int:
    with database.read() as connection:
        return int(connection.execute(select(func.count()).select_from(ExperimentAssignmentRow)).scalar_one())


def exposure_events(database: Database) -> list[str]:
    with database.read() as connection:
        statement = select(EventRow.user_id).where(EventRow.name == EXPOSURE_EVENT).order_by(EventRow.user_id)
        return [str(user) for user in connection.execute(statement).scalars()]


@dataclass(frozen=True)
class Planted:
    """An onboarding experiment where guided converts 60 % of its users and standard 30 % (by list position)."""

    key: str
    variants: dict[str, str]
    converted: set[str]

    def rate(self, variant: str) -> float:
        users = [u for u, v in self.variants.items() if v == variant]
        return sum(u in self.converted for u in users) / len(users)


@pytest.fixture
def planted(database: Database) -> Planted:
    service = ExperimentService(database)
    service.create(definition())
    service.start("guided-onboarding")
    users = [f"user-{i:04d}" for i in range(600)]
    variants = {a.user_id: str(a.variant) for a in service.assign_many("guided-onboarding", users)}
    share = {"guided": 6, "standard": 3}  # of every ten users
    converted = {u for i, u in enumerate(users) if i % 10 < share[variants[u]]}
    now = datetime.now(UTC)  # after every exposure
    EventIngestor(database).ingest([
        CanonicalEvent(message_id=f"done-{u}", type="track", name="onboarding_completed", timestamp=now,
                       received_at=now, user_id=u)
        for u in sorted(converted)
    ])  # fmt: skip
    return Planted("guided-onboarding", variants, converted)


# ---- HTTP ---------------------------------------------------------------------------------------------------


def test_full_lifecycle_over_http(client: TestClient, database: Database) -> None:
    created = client.post("/v1/experiments", json=definition())
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/experiments/guided-onboarding"
    body = created.json()
    assert body["status"] == "draft" and body["phase"] is None and body["type"] == "onboarding"
    assert [v["name"] for v in body["variants"]] == ["standard", "guided"]
    assert body["primary_metrics"][0]["event"] == "onboarding_completed"
    assert body["guardrails"][0]["margin"] == 0.05

    edited = client.patch(
        "/v1/experiments/guided-onboarding", json={"name": "Guided v2", "weights": [0.4, 0.6]}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Guided v2" and [v["weight"] for v in edited.json()["variants"]] == [
        0.4,
        0.6,
    ]
    assert [e["key"] for e in client.get("/v1/experiments?status=draft").json()["experiments"]] == [
        "guided-onboarding"
    ]
    assert client.get("/v1/experiments?status=running").json() == {"experiments": []}

    started = client.post("/v1/experiments/guided-onboarding/start").json()
    assert started["status"] == "running" and started["started_at"] is not None
    assert started["phase"]["index"] == 0 and started["phase"]["seed"] == "guided-onboarding"
    assert started["phase"]["weights"] == [0.4, 0.6]
    first = client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "ana"}).json()
    expected = assign_variant_index("guided-onboarding", "ana", [0.4, 0.6])
    assert first["variant_index"] == expected and first["first_exposure"] is True and first["in_experiment"]
    assert first["configuration"] == {"flow": ["standard", "guided"][expected or 0]}

    assert client.post("/v1/experiments/guided-onboarding/pause").json()["status"] == "paused"
    newcomer = client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "ben"}).json()
    assert newcomer["in_experiment"] is False and newcomer["reason"] == "paused"
    assert newcomer["variant"] == "standard"  # control's configuration while paused
    known = client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "ana"}).json()
    assert known["variant_index"] == expected and known["first_exposure"] is False
    assert client.post("/v1/experiments/guided-onboarding/resume").json()["status"] == "running"

    tracked = client.post("/v1/experiments/guided-onboarding/track",
                          json={"user_id": "ana", "event": "Onboarding Completed", "messageId": "m-1"})  # fmt: skip
    assert tracked.json() == {"accepted": 1, "duplicates": 0, "rejected": [], "surveys": []}
    again = client.post("/v1/experiments/guided-onboarding/track",
                        json={"user_id": "ana", "event": "Onboarding Completed", "messageId": "m-1"})  # fmt: skip
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": [], "surveys": []}
    with database.read() as connection:
        name, properties = connection.execute(
            select(EventRow.name, EventRow.properties).where(EventRow.message_id == "m-1")
        ).one()
    assert name == "onboarding_completed" and properties["experiment"] == "guided-onboarding"

    stopped = client.post("/v1/experiments/guided-onboarding/stop",
                          json={"decision": "ship:guided", "notes": "clear win"}).json()  # fmt: skip
    assert (stopped["status"], stopped["decision"], stopped["decision_notes"]) == (
        "stopped",
        "ship:guided",
        "clear win",
    )
    assert stopped["stopped_at"] is not None
    assert client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "ana"}).status_code == 409
    assert client.delete("/v1/experiments/guided-onboarding").status_code == 204
    assert client.get("/v1/experiments/guided-onboarding").status_code == 404
    assert client.get("/v1/experiments").json() == {"experiments": []}


def test_bulk_assignment_is_sticky_and_exposes_once(client: TestClient, database: Database) -> None:
    client.post("/v1/experiments", json=definition())
    client.post("/v1/experiments/guided-onboarding/start")
    users = [f"u-{i}" for i in range(400)] + ["Zoë", "用户-7"]
    first = client.post("/v1/experiments/guided-onboarding/assignments", json={"user_ids": users})
    assert first.status_code == 200, first.text
    assignments = first.json()["assignments"]
    assert [a["user_id"] for a in assignments] == users  # request order
    assert all(a["first_exposure"] and a["in_experiment"] and a["phase"] == 0 for a in assignments)
    for a in assignments:  # the GrowthBook-compatible hash decides
        assert a["variant_index"] == assign_variant_index("guided-onboarding", a["user_id"], [0.5, 0.5])
        assert a["variant"] == ["standard", "guided"][a["variant_index"]]
    assert 150 < sum(a["variant"] == "guided" for a in assignments) < 252

    second = client.post("/v1/experiments/guided-onboarding/assignments", json={"user_ids": users[::-1]})
    again = {a["user_id"]: a for a in second.json()["assignments"]}
    assert {u: again[u]["variant"] for u in users} == {a["user_id"]: a["variant"] for a in assignments}
    assert not any(a["first_exposure"] for a in again.values())
    single = client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "Zoë"}).json()
    assert single["variant"] == again["Zoë"]["variant"] and single["first_exposure"] is False
    assert assignment_rows(database) == len(users)
    assert exposure_events(database) == sorted(users)


def test_more_than_10000_ids_is_422_naming_user_ids_and_writes_nothing(
    client: TestClient, database: Database
) -> None:
    client.post("/v1/experiments", json=definition())
    client.post("/v1/experiments/guided-onboarding/start")
    before = store_snapshot(database)
    response = client.post(
        "/v1/experiments/guided-onboarding/assignments", json={"user_ids": [f"u{i}" for i in range(10_001)]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_experiment_request"
    assert response.json()["message"].startswith("user_ids:") and "10000" in response.json()["message"]
    assert store_snapshot(database) == before and assignment_rows(database) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"primary_metrics": ["time_to_delight"]}, "primary_metrics[0]"),
        ({"guardrails": [{"metric": "nope", "margin": 0.1}]}, "guardrails[0].metric"),
        ({"variants": [{"name": "only", "weight": 1.0}]}, "variants"),
        ({"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]}, "variants"),
        ({"variants": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]}, "variants"),
        ({"coverage": "all"}, "coverage"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_definitions_are_422_naming_the_field(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/experiments", json=definition(**changes))
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.json()
    assert client.get("/v1/experiments").json() == {"experiments": []}


def test_bad_bodies_are_4xx_naming_the_field_and_change_nothing(
    client: TestClient, database: Database
) -> None:
    client.post("/v1/experiments", json=definition())
    client.post("/v1/experiments/guided-onboarding/start")
    client.post("/v1/experiments/guided-onboarding/assign", json={"user_id": "ana"})
    before = (store_snapshot(database), assignment_rows(database))
    base = "/v1/experiments/guided-onboarding"
    cases = [
        (f"{base}/assign", {"user_id": 42}, 422, "user_id:"),
        (f"{base}/assign", {"user_id": "  "}, 422, "user_id:"),
        (f"{base}/assign", {"user": "ana"}, 422, "user"),
        (f"{base}/assignments", {"user_ids": ["a", 7]}, 422, "user_ids[1]:"),
        (f"{base}/assignments", {"user_ids": "a,b"}, 422, "user_ids:"),
        (f"{base}/assignments", [], 422, "body:"),
        (f"{base}/track", {"user_id": "ana", "event": "x", "timestamp": "yesterday"}, 422, "timestamp:"),
        (f"{base}/track", {"user_id": "ana", "event": ""}, 422, "event:"),
        (f"{base}/track", {"user_id": "ana", "event": "x", "properties": {"v": 1e300}}, 422, "properties.v:"),
        (f"{base}/stop", {"decision": "ship:turbo"}, 422, "decision:"),
        (f"{base}/stop", {"decision": "keep_control", "notes": 5}, 422, "notes:"),
    ]
    for path, body, status, fragment in cases:
        response = client.post(path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["message"].startswith(fragment), (path, body, response.json())
    broken = client.post(
        f"{base}/assign", content=b'{"user_id": NaN}', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_json"
    unstorable = [  # PostgreSQL cannot store NUL or lone surrogates: a 422 naming the field, never a 500
        ("assignments", b'{"user_ids": ["ok", "a\\u0000"]}', "user_ids[1]:"),
        ("assign", b'{"user_id": "\\ud800"}', "user_id:"),
        ("stop", b'{"notes": "x\\u0000"}', "notes:"),
        ("track", b'{"user_id": "ana", "event": "x", "properties": {"k": "\\udfff"}}', "properties.k:"),
    ]
    for action, raw, fragment in unstorable:
        response = client.post(f"{base}/{action}", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["message"].startswith(fragment), response.text
    nul_name = json.dumps(definition("other", name="a\u0000b")).encode()
    created = client.post("/v1/experiments", content=nul_name, headers={"content-type": "application/json"})
    assert created.status_code == 422 and created.json()["message"].startswith("name:")
    assert client.get("/v1/experiments/not%20a%20key").status_code == 400  # cannot be a key
    assert (store_snapshot(database), assignment_rows(database)) == before
    assert client.get(base).json()["status"] == "running"


def test_state_conflicts_are_409(client: TestClient, database: Database) -> None:
    client.post("/v1/experiments", json=definition())
    base = "/v1/experiments/guided-onboarding"
    on_draft = client.post(f"{base}/assign", json={"user_id": "ana"})
    assert on_draft.status_code == 409 and on_draft.json()["code"] == "experiment_state_conflict"
    assert "draft" in on_draft.json()["message"]
    assert client.post(f"{base}/assignments", json={"user_ids": ["ana"]}).status_code == 409
    assert client.get(f"{base}/results").status_code == 409
    assert client.post(f"{base}/start").status_code == 200
    twice = client.post(f"{base}/start")
    assert twice.status_code == 409 and "already running" in twice.json()["message"]
    variants = client.patch(
        f"{base}", json={"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}
    )
    assert variants.status_code == 409 and variants.json()["message"].startswith("variants:")
    assert client.delete(base).status_code == 409
    assert client.post(f"{base}/resume").status_code == 409  # running, not paused
    reweighted = client.patch(f"{base}", json={"weights": [0.2, 0.8]}).json()
    assert reweighted["phase"]["index"] == 1 and reweighted["phase"]["seed"] == "guided-onboarding:phase-1"
    assert [v["name"] for v in client.get(base).json()["variants"]] == ["standard", "guided"]
    assert assignment_rows(database) == 0


def test_persona_targeting_uses_the_persona_in_the_request(client: TestClient, database: Database) -> None:
    client.post("/v1/experiments", json=definition("agency-only", personas=["agency"]))
    client.post("/v1/experiments/agency-only/start")
    agency = client.post(
        "/v1/experiments/agency-only/assign", json={"user_id": "a1", "persona": "agency"}
    ).json()
    assert agency["in_experiment"] is True and agency["first_exposure"] is True
    solo = client.post(
        "/v1/experiments/agency-only/assign", json={"user_id": "s1", "persona": "solo_podcaster"}
    )
    assert solo.json()["in_experiment"] is False and solo.json()["reason"] == "persona_not_targeted"
    assert solo.json()["configuration"] == {"flow": "standard"}
    assert exposure_events(database) == ["a1"]
    stopped = client.post("/v1/experiments/agency-only/stop").json()  # no body: inconclusive
    assert (stopped["status"], stopped["decision"]) == ("stopped", "inconclusive")


def test_unknown_key_is_404_everywhere(client: TestClient) -> None:
    calls = [
        ("GET", "", None), ("GET", "/results", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None),
        ("POST", "/start", None), ("POST", "/pause", None), ("POST", "/stop", {}),
        ("POST", "/assign", {"user_id": "ana"}), ("POST", "/assignments", {"user_ids": ["ana"]}),
        ("POST", "/track", {"user_id": "ana", "event": "x"}),
    ]  # fmt: skip
    for method, suffix, body in calls:
        response = client.request(method, f"/v1/experiments/no-such-test{suffix}", json=body)
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.json() == {
            "code": "experiment_not_found",
            "message": "experiment 'no-such-test' does not exist",
        }


def test_results_endpoint_names_the_planted_winner(client: TestClient, planted: Planted) -> None:
    response = client.get(f"/v1/experiments/{planted.key}/results")
    assert response.status_code == 200, response.text
    results = response.json()
    assert results["winner"] == "guided" and results["confidence_level"] > 0.999
    assert "significant" in results["winner_reason"] and results["srm"] is False
    counts = {v: list(planted.variants.values()).count(v) for v in ("standard", "guided")}
    assert results["units"] == counts
    primary = next(m for m in results["metrics"] if m["role"] == "primary")
    control, guided = primary["variants"]
    assert control["mean"] == pytest.approx(planted.rate("standard"), abs=1e-12)
    assert guided["mean"] == pytest.approx(planted.rate("guided"), abs=1e-12)
    assert guided["effect"] == pytest.approx(planted.rate("guided") / planted.rate("standard") - 1, rel=1e-9)
    assert guided["ci"][0] > 0 and guided["p_value"] < 0.001
    guardrail = next(m for m in results["metrics"] if m["role"] == "guardrail")
    assert guardrail["metric"] == "error_rate" and set(guardrail["guardrail_status"]) == {"guided"}
    assert results["power"]["metric"] == "onboarding_completion" and results["power"]["message"]


def test_routes_ask_for_keys_of_their_scope(database: Database) -> None:
    settings = Settings(database_url=database.url, write_keys=[SecretStr("sekrit")], auth="on")
    with TestClient(create_app(settings, database)) as client:
        refused = client.post("/v1/experiments", json=definition())
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        # a write key (FEEDBACKLOOP_WRITE_KEYS) is an ingest key
        basic = {"authorization": "Basic " + base64.b64encode(b"sekrit:").decode()}
        assert client.post("/v1/experiments", json=definition(), headers=basic).status_code == 403
        admin = bearer(create_key(database, "admin").key)
        assert client.post("/v1/experiments", json=definition(), headers=admin).status_code == 201
        assert client.post("/v1/experiments/guided-onboarding/start").status_code == 401
        assert client.post("/v1/experiments/guided-onboarding/start", headers=admin).status_code == 200
        assigned = client.post(
            "/v1/experiments/guided-onboarding/assign", json={"user_id": "ana"}, headers=basic
        )
        assert assigned.status_code == 200, assigned.text  # assignment is what an ingest key is for
        assert client.get("/v1/experiments/guided-onboarding").status_code == 401
        read = bearer(create_key(database, "read").key)
        assert client.get("/v1/experiments/guided-onboarding", headers=read).json()["status"] == "running"


def test_experiment_routes_are_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/experiments"]) == {"get", "post"}
    assert set(paths["/v1/experiments/{key}"]) == {"get", "patch", "delete"}
    for action in ("start", "pause", "resume", "stop", "assign", "assignments", "track"):
        assert "post" in paths[f"/v1/experiments/{{key}}/{action}"], action
    bulk = paths["/v1/experiments/{key}/assignments"]["post"]["requestBody"]["content"]["application/json"]
    assert bulk["schema"]["properties"]["user_ids"]["maxItems"] == 10_000
    assert "422" in paths["/v1/experiments"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


# ---- CLI ----------------------------------------------------------------------------------------------------


def test_cli_list_show_and_analyze(planted: Planted, database: Database) -> None:
    url = ["--database-url", database.url]
    listed = runner.invoke(cli, ["experiments", "list", *url], env=WIDE)
    assert listed.exit_code == 0, listed.output
    assert (
        "guided-onboarding" in listed.output and "running" in listed.output and "guided 50%" in listed.output
    )
    as_json = json.loads(runner.invoke(cli, ["experiments", "list", "--format", "json", *url]).output)
    assert [e["key"] for e in as_json["experiments"]] == [planted.key]
    assert json.loads(
        runner.invoke(cli, ["experiments", "list", "--status", "draft", "--format", "json", *url]).output
    ) == {"experiments": []}

    shown = runner.invoke(cli, ["experiments", "show", planted.key, *url], env=WIDE)
    assert (
        shown.exit_code == 0
        and "onboarding_completion" in shown.output
        and '{"flow": "guided"}' in shown.output
    )
    detail = json.loads(
        runner.invoke(cli, ["experiments", "show", planted.key, "--format", "json", *url]).output
    )
    assert detail["status"] == "running" and detail["phase"]["index"] == 0

    table = runner.invoke(cli, ["experiments", "analyze", planted.key, *url], env=WIDE)
    assert table.exit_code == 0, table.output
    assert "winner: guided" in table.output and "no sample ratio mismatch" in table.output
    assert (
        f"{planted.rate('guided'):.1%}" in table.output and f"{planted.rate('standard'):.1%}" in table.output
    )
    assert "guardrail: error_rate" in table.output and "power (onboarding_completion)" in table.output
    results = json.loads(
        runner.invoke(cli, ["experiments", "analyze", planted.key, "--format", "json", *url]).output
    )
    assert results["winner"] == "guided" and results["units"]["guided"] + results["units"]["standard"] == 600


def test_cli_lifecycle_from_a_definition_file(database: Database, tmp_path: Any) -> None:
    url = ["--database-url", database.url]
    path = tmp_path / "pricing.json"
    path.write_text(
        json.dumps(definition("annual-nudge", type="pricing", primary_metrics=["conversion_rate"]))
    )
    created = runner.invoke(cli, ["experiments", "create", "--file", str(path), *url])
    assert created.exit_code == 0, created.output
    assert "annual-nudge created as a draft" in created.output
    for command, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        result = runner.invoke(cli, ["experiments", command, "annual-nudge", *url])
        assert result.exit_code == 0 and f"status {status}" in result.output, result.output
    stopped = runner.invoke(cli, ["experiments", "stop", "annual-nudge", "--decision", "keep_control",
                                  "--notes", "no lift", *url])  # fmt: skip
    assert stopped.exit_code == 0 and "stopped: keep_control" in stopped.output
    experiment = ExperimentService(database).get("annual-nudge")
    assert (experiment.status.value, experiment.decision, experiment.decision_notes) == (
        "stopped",
        "keep_control",
        "no lift",
    )


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["show", "no-such-test"], "experiment 'no-such-test' does not exist"),
        (["analyze", "no-such-test"], "experiment 'no-such-test' does not exist"),
        (["start", "no-such-test"], "experiment 'no-such-test' does not exist"),
        (["list", "--status", "finished"], "--status: must be one of"),
        (["list", "--format", "xml"], "--format"),
        (["analyze", "guided-onboarding", "--format", "csv"], "--format"),
        (["start", "guided-onboarding"], "already running"),
        (["stop", "guided-onboarding", "--decision", "ship:turbo"], "--decision: must be one of"),
        (["create", "--file", "/nonexistent/def.json"], "--file /nonexistent/def.json"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(
    planted: Planted, database: Database, arguments: list[str], fragment: str
) -> None:
    result = runner.invoke(cli, ["experiments", *arguments, "--database-url", database.url], env=WIDE)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_cli_create_with_a_bad_definition_names_the_field(database: Database, tmp_path: Any) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition(primary_metrics=["time_to_delight"])))
    result = runner.invoke(
        cli, ["experiments", "create", "--file", str(path), "--database-url", database.url]
    )
    assert result.exit_code == 2 and f"--file {path}: primary_metrics[0]: unknown metric" in result.output
    not_json = runner.invoke(
        cli, ["experiments", "create", "--file", "-", "--database-url", database.url], input="{"
    )
    assert not_json.exit_code == 2 and "--file -: not valid JSON" in not_json.output
    nul = runner.invoke(cli, ["experiments", "create", "--file", "-", "--database-url", database.url],
                        input=json.dumps(definition(hypothesis="x\u0000")))  # fmt: skip
    assert nul.exit_code == 2 and "--file -: hypothesis: contains a NUL character" in nul.output
    assert ExperimentService(database).experiments() == []
