"""Bad input at the HTTP JSON doors (experiments, surveys, escalation rules and silences, retros, chat): every
malformed, oversized, wrong-typed, unicode-heavy, deeply nested or boundary body is refused with the documented
status (400 for a body that is not JSON, 413 over the size limit, 422 naming the field on the domain routes, 400
naming the field on /v1/chat), and the store is exactly as before (every table's rows and checksum).

Keys are on: each request carries a key of the scope its route needs (admin, ingest or read).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import pytest

from feedbackloop.api.chat import MAX_CHAT_BODY_BYTES
from feedbackloop.api.experiment_bodies import MAX_EXPERIMENT_BODY_BYTES
from tests.reliability.bad_input_support import (
    DEEP_LEVELS,
    HUGE_DIGITS,
    UNICODE_ID,
    Door,
    as_json,
    assert_refused,
    assert_unchanged,
    deeply_nested,
    door,
    door_database,
    gzip_bomb,
    nested_value,
    with_raw,
)
from tests.reliability.store_snapshot import store_snapshot

__all__ = ["door", "door_database"]  # the module-scoped fixtures, used by name

MAX_BATCH_BYTES = 500 * 1024  # Settings.max_batch_bytes' default: the survey, escalation and retro bodies


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    scope: str
    valid: dict[str, Any]
    limit_bytes: int
    field_status: int = 422  # a body of the wrong shape (chat: 400)


@dataclass(frozen=True)
class Case:
    route: Route
    name: str
    body: bytes
    status: int
    field: str
    headers: dict[str, str] = dataclass_field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.route.name}-{self.name}"


EXPERIMENT = Route(
    "experiments",
    "POST",
    "/v1/experiments",
    "admin",
    {
        "key": "new-experiment",
        "name": "New",
        "primary_metrics": ["onboarding_completion"],
        "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
    },
    MAX_EXPERIMENT_BODY_BYTES,
)
EXPERIMENT_TRACK = Route(
    "experiment-track",
    "POST",
    "/v1/experiments/seeded-checkout/track",
    "ingest",
    {
        "user_id": "seed-1",
        "event": "onboarding_completed",
        "timestamp": "2026-05-03T10:00:00Z",
        "messageId": "bad-input-track",
    },
    MAX_EXPERIMENT_BODY_BYTES,
)
SURVEY = Route(
    "surveys",
    "POST",
    "/v1/surveys",
    "admin",
    {
        "survey_id": "bad_input_survey",
        "survey_type": "custom",
        "trigger": "report_sent",
        "questions": [{"question_id": "q1", "type": "rating", "text": "How was it?"}],
    },
    MAX_BATCH_BYTES,
)
SURVEY_TRIGGER = Route(
    "survey-trigger",
    "POST",
    "/v1/surveys/trigger",
    "ingest",
    {"user_id": "seed-1", "trigger": "report_sent", "context": {"feature": "csv"}},
    MAX_BATCH_BYTES,
)
SURVEY_RESPONSE = Route(
    "survey-response",
    "POST",
    "/v1/surveys/nps/responses",
    "ingest",
    {"user_id": "seed-1", "responses": {"score": 9}},
    MAX_BATCH_BYTES,
)
RULE = Route(
    "escalation-rules",
    "POST",
    "/v1/escalation-rules",
    "admin",
    {
        "rule_id": "bad_input_rule",
        "escalation_type": "error_spike",
        "severity": "high",
        "condition": {"metric": "error_rate", "period_days": 7},
        "threshold": 5,
        "comparison": "greater_than",
    },
    MAX_BATCH_BYTES,
)
SILENCE = Route(
    "silences",
    "POST",
    "/v1/silences",
    "admin",
    {
        "matchers": [{"label": "rule", "value": "error_spike"}],
        "ends_at": "2026-07-01T00:00:00Z",
        "created_by": "ana",
    },
    MAX_BATCH_BYTES,
)
CHECK = Route(
    "escalation-check",
    "POST",
    "/v1/escalations/check",
    "admin",
    {"at": "2026-05-03T00:00:00Z", "days": 7},
    MAX_BATCH_BYTES,
)
RETRO = Route(
    "retros",
    "POST",
    "/v1/retros",
    "admin",
    {"kind": "sprint", "start": "2026-04-20", "end": "2026-05-03", "sprint_id": "s-1"},
    MAX_BATCH_BYTES,
)
CHAT = Route("chat", "POST", "/v1/chat", "read", {"text": "help", "user": "ana"}, MAX_CHAT_BODY_BYTES, 400)
ROUTES = (
    EXPERIMENT,
    EXPERIMENT_TRACK,
    SURVEY,
    SURVEY_TRIGGER,
    SURVEY_RESPONSE,
    RULE,
    SILENCE,
    CHECK,
    RETRO,
    CHAT,
)


def changed(route: Route, **fields: Any) -> bytes:
    return as_json({**route.valid, **fields})


def without(route: Route, name: str) -> bytes:
    return as_json({k: v for k, v in route.valid.items() if k != name})


def whole_body_cases(route: Route) -> list[Case]:
    """What every JSON door must refuse before it looks at a field."""
    first = next(iter(route.valid))
    oversized = as_json({**route.valid, "padding": "x" * route.limit_bytes})
    levels = min(DEEP_LEVELS, route.limit_bytes // 2 - 100)  # within the size limit, far beyond recursion's
    return [
        Case(route, "malformed", b'{"' + first.encode() + b'": ', 400, "body"),
        Case(route, "not-utf8", b'{"' + first.encode() + b'": "\xff\xfe"}', 400, "body"),
        Case(route, "not-an-object", b"[]", route.field_status, "body"),
        Case(route, f"nested-{levels}", deeply_nested(levels), 400, "body"),
        Case(route, "nan", with_raw(route.valid, first, "NaN"), 400, "NaN"),
        Case(route, "infinity", with_raw(route.valid, first, "-Infinity"), 400, "Infinity"),
        Case(route, "5000-digit-int", with_raw(route.valid, first, HUGE_DIGITS), 400, "body"),
        Case(route, "oversized", oversized, 413, "body"),
        Case(route, "gzip-bomb", _bomb(route), 413, "body", {"Content-Encoding": "gzip"}),
        Case(route, "broken-gzip", b"\x1f\x8b\x08\x00broken", 400, "body", {"Content-Encoding": "gzip"}),
        Case(
            route,
            "unknown-encoding",
            as_json(route.valid),
            400,
            "Content-Encoding",
            {"Content-Encoding": "br"},
        ),
    ]


def _bomb(route: Route) -> bytes:
    return gzip_bomb(route.limit_bytes * 4)


def field_cases() -> list[Case]:
    """Wrong types, missing fields, oversized items, unicode, nesting, numbers and dates: each names its field."""
    e, t, s, g, r, x, si, c, rt, ch = ROUTES
    deep = nested_value(40)
    return [
        Case(e, "name-wrong-type", changed(e, name=123), 422, "name"),
        Case(e, "name-missing", without(e, "name"), 422, "name"),
        Case(e, "name-100k-chars", changed(e, name="x" * 100_000), 422, "name"),
        Case(e, "name-nul", changed(e, name="a\x00b"), 422, "name"),
        Case(e, "key-unicode", changed(e, key=UNICODE_ID), 422, "key"),
        Case(e, "hypothesis-lone-surrogate", changed(e, hypothesis="\ud800"), 422, "hypothesis"),
        Case(
            e,
            "configuration-nested-40",
            changed(
                e,
                variants=[
                    {"name": "control", "weight": 0.5, "configuration": deep},
                    {"name": "treatment", "weight": 0.5},
                ],
            ),
            422,
            "variants[0].configuration",
        ),
        Case(e, "coverage-1e300", changed(e, coverage=1e300), 422, "coverage"),
        Case(e, "coverage-negative", changed(e, coverage=-0.5), 422, "coverage"),
        Case(e, "duration-10e20", changed(e, duration_days=10**20), 422, "duration_days"),
        Case(e, "duration-zero", changed(e, duration_days=0), 422, "duration_days"),
        Case(e, "variants-empty", changed(e, variants=[]), 422, "variants"),
        Case(t, "user-id-wrong-type", changed(t, user_id=["seed-1"]), 422, "user_id"),
        Case(t, "user-id-256-chars", changed(t, user_id="u" * 256), 422, "user_id"),
        Case(t, "timestamp-year-1", changed(t, timestamp="0001-01-01T00:00:00Z"), 422, "timestamp"),
        Case(t, "timestamp-year-9999", changed(t, timestamp="9999-12-31T23:59:59Z"), 422, "timestamp"),
        Case(t, "timestamp-naive", changed(t, timestamp="2026-05-03T10:00:00"), 422, "timestamp"),
        Case(t, "timestamp-feb-30", changed(t, timestamp="2026-02-30T10:00:00Z"), 422, "timestamp"),
        Case(t, "properties-nested-40", changed(t, properties=deep), 422, "properties"),
        Case(t, "properties-nul", changed(t, properties={"note": "\x00"}), 422, "properties.note"),
        Case(s, "survey-id-wrong-type", changed(s, survey_id=5), 422, "survey_id"),
        Case(s, "survey-id-unicode", changed(s, survey_id=UNICODE_ID), 422, "survey_id"),
        Case(s, "questions-missing", without(s, "questions"), 422, "questions"),
        Case(
            s,
            "questions-6",
            changed(s, questions=[{"question_id": f"q{n}", "type": "rating", "text": "?"} for n in range(6)]),
            422,
            "questions",
        ),
        Case(
            s,
            "question-text-501",
            changed(s, questions=[{"question_id": "q1", "type": "rating", "text": "x" * 501}]),
            422,
            "questions",
        ),
        Case(s, "name-nul", changed(s, name="\x00"), 422, "name"),
        Case(s, "delay-negative", changed(s, delay_seconds=-1), 422, "delay_seconds"),
        Case(s, "sampling-1e300", changed(s, sampling_percentage=1e300), 422, "sampling_percentage"),
        Case(s, "starts-at-naive", changed(s, starts_at="2026-06-01T00:00:00"), 422, "starts_at"),
        Case(s, "starts-at-feb-30", changed(s, starts_at="2026-02-30T00:00:00Z"), 422, "starts_at"),
        Case(
            s,
            "ends-before-starts",
            changed(s, starts_at="2026-06-02T00:00:00Z", ends_at="2026-06-01T00:00:00Z"),
            422,
            "ends_at",
        ),
        Case(s, "trigger-context-nested-40", changed(s, trigger_context=deep), 422, "trigger_context"),
        Case(g, "user-id-wrong-type", changed(g, user_id=5), 422, "user_id"),
        Case(g, "user-id-nul", changed(g, user_id="u\x00"), 422, "user_id"),
        Case(g, "trigger-emoji", changed(g, trigger="🎉"), 422, "trigger"),
        Case(g, "context-object-value", changed(g, context={"a": {"b": 1}}), 422, "context.a"),
        Case(g, "language-unicode", changed(g, language=UNICODE_ID), 422, "language"),
        Case(r, "responses-wrong-type", changed(r, responses=[9]), 422, "responses"),
        Case(r, "responses-missing", without(r, "responses"), 422, "responses"),
        Case(r, "answer-lone-surrogate", changed(r, responses={"score": "\udfff"}), 422, "responses.score"),
        Case(r, "answer-1e300", changed(r, responses={"score": 1e300}), 422, "responses.score"),
        Case(r, "display-id-unicode", changed(r, display_id=UNICODE_ID), 422, "display_id"),
        Case(x, "threshold-1e300", changed(x, threshold=1e300), 422, "threshold"),
        Case(x, "threshold-wrong-type", changed(x, threshold="five"), 422, "threshold"),
        Case(x, "rule-id-unicode", changed(x, rule_id=UNICODE_ID), 422, "rule_id"),
        Case(x, "comparison-missing", without(x, "comparison"), 422, "comparison"),
        Case(x, "condition-wrong-type", changed(x, condition="error_rate"), 422, "condition"),
        Case(x, "alpha-0.9", changed(x, alpha=0.9), 422, "alpha"),
        Case(x, "min-sample-zero", changed(x, min_sample=0), 422, "min_sample"),
        Case(x, "description-4001", changed(x, description="x" * 4001), 422, "description"),
        Case(si, "matchers-empty", changed(si, matchers=[]), 422, "matchers"),
        Case(
            si,
            "matcher-value-nul",
            changed(si, matchers=[{"label": "rule", "value": "\x00"}]),
            422,
            "matchers",
        ),
        Case(si, "ends-at-year-9999", changed(si, ends_at="9999-12-31T23:59:59Z"), 422, "ends_at"),
        Case(si, "ends-at-feb-30", changed(si, ends_at="2026-02-30T00:00:00Z"), 422, "ends_at"),
        Case(si, "ends-at-naive", changed(si, ends_at="2026-07-01T00:00:00"), 422, "ends_at"),
        Case(si, "starts-at-year-1", changed(si, starts_at="0001-01-01T00:00:00Z"), 422, "starts_at"),
        Case(si, "created-by-wrong-type", changed(si, created_by=None), 422, "created_by"),
        Case(c, "at-year-1", changed(c, at="0001-01-01T00:00:00+00:00"), 422, "at"),
        Case(c, "days-10e20", changed(c, days=10**20), 422, "days"),
        Case(c, "days-negative", changed(c, days=-1), 422, "days"),
        Case(c, "days-366", changed(c, days=366), 422, "days"),
        Case(rt, "kind-unknown", changed(rt, kind="weekly"), 422, "kind"),
        Case(rt, "start-year-1", changed(rt, start="0001-01-01"), 422, "start"),
        Case(rt, "end-year-9999", changed(rt, end="9999-12-31"), 422, "end"),
        Case(rt, "start-feb-30", changed(rt, start="2026-02-30"), 422, "start"),
        Case(rt, "sprint-id-nul", changed(rt, sprint_id="s\x00"), 422, "sprint_id"),
        Case(
            rt,
            "bake-hours-10e20",
            changed(rt, kind="deployment", version="v1", bake_hours=10**20),
            422,
            "bake_hours",
        ),
        Case(
            rt,
            "bake-hours-zero",
            changed(rt, kind="deployment", version="v1", bake_hours=0),
            422,
            "bake_hours",
        ),
        Case(rt, "unknown-field", changed(rt, approve_all=True), 422, "approve_all"),
        Case(ch, "text-wrong-type", changed(ch, text=5), 400, "text"),
        Case(ch, "text-missing", without(ch, "text"), 400, "text"),
        Case(ch, "text-1001-chars", changed(ch, text="k" * 1001), 400, "text"),
        Case(ch, "text-lone-surrogate", changed(ch, text="\ud800"), 400, "text"),
        Case(ch, "user-control-chars", changed(ch, user="ana\x1b[31m"), 400, "user"),
        Case(ch, "channel-101-chars", changed(ch, channel="#" * 101), 400, "channel"),
    ]


CASES = [case for route in ROUTES for case in whole_body_cases(route)] + field_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_http_json_doors_refuse_bad_bodies_naming_the_field_and_store_nothing(door: Door, case: Case) -> None:
    before = store_snapshot(door.database)
    headers = {"Content-Type": "application/json", **door.key(case.route.scope), **case.headers}
    answer = door.client.request(case.route.method, case.route.path, content=case.body, headers=headers)
    assert_refused(answer, case.status, case.field)
    assert_unchanged(door.database, before)


# ---- chat commands: text that is not a command is answered with the help, never an error ----------------------

CHAT_TEXTS = {
    "unicode-heavy": f"kpis {UNICODE_ID} مرحبا שלום",
    "zero-width-command": "k\u200bpis",
    "injection-experiment-key": "experiment ' OR 1=1 --",
    "injection-persona": 'kpis "; DROP TABLE events; --',
    "nul-in-sprint-id": "retro sprint s\x00",
    "retro-days-10e20": "retro last 100000000000000000000 days",
    "retro-days-negative": "retro last -3 days",
    "retro-deploy-unicode": f"retro deploy {UNICODE_ID}",
    "emoji-only": "🎉🎉🎉",
    "control-characters": "\x1b[2Jhelp\x07",
}


@pytest.mark.parametrize("text", list(CHAT_TEXTS.values()), ids=list(CHAT_TEXTS))
def test_chat_text_that_is_not_a_command_is_answered_with_the_help_and_stores_nothing(
    door: Door, text: str
) -> None:
    before = store_snapshot(door.database)
    # An admin key: a text that did parse as a retro would start one, and the unchanged store would show it.
    answer = door.client.post("/v1/chat", json={"text": text}, headers=door.key("admin"))
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["command"] == "help" and "The commands:" in reply["markdown"], reply
    assert_unchanged(door.database, before)
