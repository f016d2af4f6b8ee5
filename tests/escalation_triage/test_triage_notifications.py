"""Notifications carry the escalation agent's triage: the check queues a group's message, the agent triages, and
the message that goes out (file, Slack, e-mail, PagerDuty) holds the incident's summary, probable cause with its
evidence, owner and next steps. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from slack_sdk.models.blocks import Block

from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from tests.escalation_triage.planted import CHECK_AT, plant_incident
from tests.notify.support import firing
from tools.notify.channels.email import email_message
from tools.notify.channels.pagerduty import pagerduty_event
from tools.notify.channels.slack import slack_message
from tools.notify.message import CauseLine, IncidentBrief, Notification


def _sent(tmp_path: Path, database: Database) -> list[Notification]:
    plant_incident(database, check=False)
    settings = Settings(database_url=database.url, notification_file=tmp_path / "sent.jsonl",
                        tickets_jsonl_path=tmp_path / "backlog.jsonl", alert_group_wait_seconds=0)  # fmt: skip
    worker = Worker(database, settings, clock=lambda: CHECK_AT)
    worker.run_once(CHECK_AT)
    worker.deliver(CHECK_AT + timedelta(seconds=1))
    lines = (tmp_path / "sent.jsonl").read_text().splitlines()
    return [Notification.from_dict(json.loads(line)["notification"]) for line in lines]


def test_the_sent_notification_carries_the_incident_and_its_probable_cause(
    database: Database, tmp_path: Path
) -> None:
    [notification] = _sent(tmp_path, database)
    [incident] = notification.incidents
    assert incident.source == "rules"
    # the incident groups both escalations of the persona, whichever of them this group's message carries
    assert {alert.escalation_id for alert in notification.alerts} <= set(incident.escalation_ids)
    assert len(incident.escalation_ids) == 2
    cause = incident.probable_causes[0]
    assert cause.title == "deployment v1.4.0"
    assert cause.evidence and all(line.split(":")[0] in cause.evidence_ids for line in cause.evidence)
    assert any("v1.4.0" in line for line in cause.evidence)
    assert incident.owner_team == "on-call" and incident.owner_channel == "#incidents"
    assert incident.next_steps

    blocks = slack_message(notification)["blocks"]
    for block in blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    triage_text = blocks[2]["text"]["text"]
    assert "*Probable cause:* deployment v1.4.0" in triage_text and "owner: on-call" in triage_text

    mail = email_message(notification, sender="fl@example.com", recipients=("oncall@example.com",))
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Probable cause: deployment v1.4.0" in plain and "deployment v1.4.0" in html

    event = pagerduty_event(notification, "routing-key")
    assert event["payload"]["summary"].endswith("probable cause: deployment v1.4.0")
    assert event["payload"]["custom_details"]["incidents"][0]["incident_id"] == incident.incident_id


def test_a_payload_queued_before_triage_existed_still_loads_and_sends_without_a_brief() -> None:
    payload = firing().as_dict()
    del payload["incidents"]
    notification = Notification.from_dict(payload)
    assert notification.incidents == []
    assert len(slack_message(notification)["blocks"]) == len(slack_message(firing())["blocks"])


def test_triage_text_is_escaped_for_slack_and_html() -> None:
    brief = IncidentBrief(
        incident_id="inc-1", source="llm", summary="<!channel> & <https://evil.example|click>",
        probable_causes=[CauseLine("<b>bold</b>", "low", ["E1"], ["E1: a & b"])],
        owner_team="growth", owner_channel="#growth", next_steps=["<script>x</script>"], escalation_ids=["e1"],
    )  # fmt: skip
    notification = replace(firing(), incidents=[brief])
    text = json.dumps(slack_message(notification))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    mail = email_message(notification, sender="fl@example.com", recipients=("oncall@example.com",))
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;bold" in html
