"""POST /v1/chat on SQLite and PostgreSQL: every command, the body's validation, scopes (read for questions, admin
for retros), and free-form questions routed by a fake LLM — or answered with the help when there is none."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from feedbackloop.chat.routing import llm_router
from feedbackloop.worker import escalation_service
from store.database import Database
from tests.agents.fake_chat import ScriptedChatModel, tool_answer
from tests.chat.conftest import FAKE_LLM, chat_settings, frozen_services
from tests.retro_doors.support import END
from tools.experiments.demo_traffic import ONBOARDING_EXPERIMENT
from tools.experiments.service import ExperimentService


def chat(client: TestClient, key: str | None, text: str, **fields: Any) -> Any:
    headers = {"Authorization": key} if key else {}
    return client.post(
        "/v1/chat", json={"text": text, "user": "ana", "channel": "#growth", **fields}, headers=headers
    )


def test_help_and_unknown_text_answer_with_the_commands(client: TestClient, keys: dict[str, str]) -> None:
    helped = chat(client, keys["read"], "help")
    assert helped.status_code == 200, helped.text
    assert helped.json()["command"] == "help" and "- `retro sprint <id>` — " in helped.json()["markdown"]
    unknown = chat(client, keys["read"], "what is *this*?")
    assert unknown.status_code == 200, unknown.text
    body = unknown.json()
    assert body["command"] == "help" and body["routed_from"] is None
    assert body["markdown"].startswith("**`what` is not a command. The commands:**")
    bad = chat(client, keys["read"], "retro last 0 days")
    assert "a retro covers 1 to 366 days, not 0" in bad.json()["markdown"]


def test_the_body_is_validated_naming_the_field(client: TestClient, keys: dict[str, str]) -> None:
    read = {"Authorization": keys["read"]}
    cases: list[tuple[Any, str]] = [
        ({"user": "ana"}, "text"),
        ({"text": ""}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"text": "help", "channel": "c" * 101}, "channel"),
        ({"text": "help", "user": "a\nb"}, "user"),
        ({"text": "help", "extra": 1}, "extra"),
        (["help"], "body"),
    ]
    for payload, field in cases:
        answer = client.post("/v1/chat", json=payload, headers=read)
        assert answer.status_code == 400 and answer.json()["message"].startswith(field), (
            payload,
            answer.text,
        )
    not_json = client.post("/v1/chat", content=b"{text", headers=read)
    assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_json"
    too_big = client.post("/v1/chat", content=b" " * (17 * 1024), headers=read)
    assert too_big.status_code == 413


def test_scopes_read_for_questions_admin_for_retros(client: TestClient, keys: dict[str, str]) -> None:
    assert chat(client, None, "help").status_code == 401
    assert chat(client, keys["ingest"], "help").status_code == 403
    refused = chat(client, keys["read"], "retro last 14 days")
    assert refused.status_code == 403 and "admin" in refused.json()["message"], refused.text


def test_a_retro_starts_and_answers_with_the_url_to_poll(
    app: FastAPI, client: TestClient, product: Database, keys: dict[str, str]
) -> None:
    started = chat(client, keys["admin"], "retro sprint s-22")
    assert started.status_code == 200, started.text
    body = started.json()
    retro_id = body["retro_id"]
    assert body["command"] == "retro" and body["status"] == "running"
    assert body["links"]["self"] == f"/v1/retros/{retro_id}"
    assert "Running the sprint retro s-22" in body["markdown"]
    assert "no dates in chat: the last 14 days, 2026-05-18 00:00 → 2026-06-01 00:00 UTC" in body["markdown"]
    result = app.state.chat_services.runner.result(retro_id)  # the test client ran the background task
    assert result["status"] == "awaiting_approval" and result["sprint_id"] == "s-22"
    assert result["insights"]

    refused = chat(client, keys["admin"], "retro deploy v9.9.9")
    assert (
        refused.status_code == 200
        and refused.json()["command"] == "retro"
        and "retro_id" not in refused.json()
    )
    assert "could not start: version:" in refused.json()["markdown"]


def test_escalations_experiment_and_kpis(client: TestClient, product: Database, keys: dict[str, str]) -> None:
    read = keys["read"]
    assert "No open escalations." in chat(client, read, "escalations").json()["markdown"]
    settings = chat_settings(product)
    escalation_service(product, settings, clock=lambda: END).check(at=END, days=7)
    listed = chat(client, read, "escalations").json()
    assert listed["command"] == "escalations"
    open_ones = [
        e for e in escalation_service(product, settings).escalations() if e.status.value != "resolved"
    ]
    assert open_ones, "the planted regression opens escalations"
    assert f"**{len(open_ones)} open escalation" in listed["markdown"]
    for escalation in open_ones:
        assert escalation.escalation_id in listed["markdown"]

    experiments = ExperimentService(product, clock=lambda: END)
    experiments.create(ONBOARDING_EXPERIMENT)
    missing = chat(client, read, "experiment no-such-test").json()
    assert "No experiment has the key `no-such-test`." in missing["markdown"]
    draft = chat(client, read, "experiment onboarding-flow").json()
    assert "is a draft" in draft["markdown"]
    experiments.start("onboarding-flow")
    experiments.assign_many("onboarding-flow", [f"chat-user-{number}" for number in range(40)])
    results = chat(client, read, "experiment onboarding-flow").json()
    assert results["command"] == "experiment"
    assert results["markdown"].startswith("**Experiment Guided onboarding (running) — no winner**")
    assert "units: standard" in results["markdown"]

    kpis = chat(client, read, "kpis podcast_network").json()
    assert kpis["command"] == "kpis"
    assert "KPIs of the last 30 days for podcast_network" in kpis["markdown"]
    assert "- nps: " in kpis["markdown"] and "; previous 30 days: " in kpis["markdown"]
    overall = chat(client, read, "KPIS").json()["markdown"]
    assert "for all personas" in overall and "2026-05-02 → 2026-06-01 00:00 UTC" in overall
    assert "is not a persona; known: solo_podcaster" in chat(client, read, "kpis pirates").json()["markdown"]


# ---- free-form questions -------------------------------------------------------------------------------------------


def routed_app(app: FastAPI, model: ScriptedChatModel) -> None:
    services = app.state.chat_services
    services.router = llm_router(FAKE_LLM, personas=services.personas, experiment_keys=lambda: ["onboarding-flow"],
                                 client=model)  # fmt: skip


def test_an_llm_routes_a_free_form_question_to_a_command(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    model = ScriptedChatModel(replies=[tool_answer({"command": "kpis", "argument": "podcast_network"},
                                                   name="RoutedCommand")])  # fmt: skip
    routed_app(app, model)
    answer = chat(client, keys["read"], "why did NPS drop for networks? mail me at ana@example.com")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["command"] == "kpis" and body["routed_from"] == "kpis podcast_network"
    assert body["markdown"].startswith("_Read as `kpis podcast_network`._")
    assert "KPIs of the last 30 days for podcast_network" in body["markdown"]
    [call] = model.calls
    system, question = (message.content for message in call["messages"])
    assert "podcast_network" in system and "onboarding-flow" in system
    assert question.startswith("<<<UNTRUSTED_CHAT_MESSAGE\n") and "[email]" in question
    assert "ana@example.com" not in question

    # a command word is never guessed at: the grammar's help answers, and the LLM is not asked
    assert chat(client, keys["read"], "kpis a b").json()["command"] == "help" and len(model.calls) == 1


def test_an_unusable_llm_pick_is_answered_with_the_help(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    model = ScriptedChatModel(replies=[
        tool_answer({"command": "retro_last_days", "argument": "9999"}, name="RoutedCommand"),
        tool_answer({"command": "launch_rockets", "argument": ""}, name="RoutedCommand"),
        RuntimeError("connection refused"),
    ])  # fmt: skip
    routed_app(app, model)
    for _ in range(3):
        body = chat(client, keys["read"], "how are we doing lately?").json()
        assert body["command"] == "help" and body["routed_from"] is None
        assert "`how` is not a command" in body["markdown"]
    assert len(model.calls) == 3


def test_a_routed_retro_still_needs_an_admin_key(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    model = ScriptedChatModel(replies=[tool_answer({"command": "retro_last_days", "argument": "7"},
                                                   name="RoutedCommand")])  # fmt: skip
    routed_app(app, model)
    refused = chat(client, keys["read"], "can we look back at the past week?")
    assert refused.status_code == 403, refused.text


def test_a_ticket_sink_that_cannot_be_built_is_a_503_naming_the_setting(
    retro_database: Database, keys: dict[str, str]
) -> None:
    from feedbackloop.api.app import create_app

    settings = chat_settings(retro_database, ticket_sinks=["github"], tickets_github_repo=None)
    with TestClient(create_app(settings, retro_database)) as broken:
        answer = chat(broken, keys["admin"], "retro last 14 days")
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["code"] == "invalid_configuration" and body["field"].startswith("FEEDBACKLOOP_TICKETS_GITHUB")


def test_escalations_name_the_escalation_agents_probable_cause(database: Database, tmp_path: Any) -> None:
    from datetime import timedelta

    from feedbackloop.api.app import create_app
    from feedbackloop.escalation_triage import run_triage_agent
    from tests.escalation_triage.planted import CHECK_AT, plant_incident

    opened = plant_incident(database)
    settings = chat_settings(database, auth="off", tickets_jsonl_path=tmp_path / "backlog.jsonl")
    run_triage_agent(database, settings, opened, clock=lambda: CHECK_AT + timedelta(minutes=1))
    app = create_app(settings, database)
    app.state.chat_services = frozen_services(database, settings, CHECK_AT)
    with TestClient(app) as client:
        answer = chat(client, None, "escalations")
    assert answer.status_code == 200, answer.text
    markdown = answer.json()["markdown"]
    assert (
        markdown.count("probable cause: deployment v1.4.0 (") == 2 and "owner on-call #incidents" in markdown
    )
