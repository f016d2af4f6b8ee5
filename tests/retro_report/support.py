"""Retro results for the report tests, built from the shared model so their shape is the agent's own."""

from __future__ import annotations

from typing import Any

from tools.retro.model import BacklogItem, Priority, Signal, TicketRef
from tools.retro.numbers import format_number

HOSTILE_THEME = "<script>alert(1)</script> *bold* <!channel> & [click](https://evil.example) | pipe"
WINDOW = {"start": "2026-02-16T00:00:00+00:00", "end": "2026-03-02T00:00:00+00:00"}
# The planted items' priority as the report writes it (numbers as tools.retro.numbers writes them).
RICE_LINE = (
    f"RICE 1,250 = reach 1,840 × impact 2 × confidence 85.0% ÷ effort {format_number(2.5)} person-weeks"
)
BASELINE = {"start": "2026-02-02T00:00:00+00:00", "end": "2026-02-16T00:00:00+00:00"}


def planted_signals() -> list[dict[str, Any]]:
    """A planted onboarding problem for solo podcasters, shipped with v2.4.0, plus noise and a survey theme."""
    return [
        Signal(
            id="S1",
            kind="metric_change",
            metric="onboarding_completion",
            persona="solo_podcaster",
            value=0.412,
            baseline=0.587,
            change=-0.2981,
            p_value=0.00002,
            detail="onboarding completion rate vs the previous 14 days",
            unit="ratio",
            n=1840,
            baseline_n=1795,
            direction="worsened",
            significant=True,
            affected_users=1840,
            facts={"ci_low": -0.33, "ci_high": -0.26},
            attributed_to="v2.4.0",
        ).as_dict(),
        Signal(
            id="S2",
            kind="kpi_change",
            metric="time_to_value_minutes",
            persona="solo_podcaster",
            value=38.5,
            baseline=21.0,
            change=0.8333,
            p_value=0.0031,
            detail="median minutes from signup to the first sponsor report",
            unit="minutes",
            n=612,
            baseline_n=640,
            direction="worsened",
            significant=True,
            affected_users=612,
        ).as_dict(),
        Signal(
            id="S3",
            kind="deployment",
            metric=None,
            persona=None,
            value=None,
            baseline=None,
            change=None,
            p_value=None,
            detail="v2.4.0 deployed 2026-02-20 14:05 UTC; S1 started within its 48 h bake window",
            subject="v2.4.0",
        ).as_dict(),
        Signal(
            id="S4",
            kind="survey_theme",
            metric=None,
            persona="solo_podcaster",
            value=None,
            baseline=None,
            change=None,
            p_value=None,
            detail="theme 'confusing setup' in 14 of 52 answers",
            n=52,
            text=(HOSTILE_THEME, "the RSS step is confusing"),
        ).as_dict(),
        Signal(
            id="S5",
            kind="survey_shift",
            metric="nps",
            persona="agency",
            value=41.0,
            baseline=38.0,
            change=0.0789,
            p_value=0.41,
            detail="NPS vs the previous 14 days",
            unit="score",
            n=210,
            baseline_n=198,
            direction="improved",
            significant=False,
        ).as_dict(),
    ]


def planted_insights() -> list[dict[str, Any]]:
    return [
        {
            "id": "I1",
            "title": "Solo podcasters stall in onboarding since v2.4.0",
            "summary": f"Completion fell from 58.7% to 41.2% (S1); a survey theme says: {HOSTILE_THEME}",
            "journey_stage": "onboarding",
            "canvas_block": "customer_relationships",
            "principles": ["friction / ability"],
            "impact": "High",
            "confidence": 0.85,
            "evidence_ids": ["S1", "S3", "S4"],
            "recommendations": ["Restore the one-step RSS import"],
        },
        {
            "id": "I2",
            "title": "First sponsor report takes longer",
            "summary": "Time to value rose from 21.0 to 38.5 minutes (S2).",
            "journey_stage": "first_value",
            "canvas_block": "value_propositions",
            "principles": ["goal gradient"],
            "impact": "Medium",
            "confidence": 0.7,
            "evidence_ids": ["S2"],
            "recommendations": [],
        },
        {
            "id": "I3",
            "title": "Agencies' NPS drifted up",
            "summary": "NPS 41 vs 38, not significant (S5).",
            "journey_stage": "advocacy",
            "canvas_block": "customer_segments",
            "principles": [],
            "impact": "Low",
            "confidence": 0.3,
            "evidence_ids": ["S5"],
            "recommendations": [],
        },
    ]


def backlog_item(
    item_id: str = "B1",
    *,
    evidence_ids: tuple[str, ...] = ("S1", "S3"),
    tickets: tuple[TicketRef, ...] = (),
    duplicate_of: str | None = None,
    title: str = "Restore the one-step RSS import in onboarding",
) -> dict[str, Any]:
    return BacklogItem(
        id=item_id,
        title=title,
        problem="Solo podcasters abandon onboarding at the RSS step since v2.4.0.",
        proposal="Bring back the one-step import and measure completion for two weeks.",
        acceptance_criteria=("Import works from a pasted feed URL", "Completion back above 55%"),
        labels=("retro", "onboarding"),
        priority=Priority(score=1251.2, reach=1840, impact=2.0, confidence=0.85, effort=2.5),
        insight_ids=("I1",),
        evidence_ids=evidence_ids,
        fingerprint=f"fp-{item_id}",
        tickets=tickets,
        duplicate_of=duplicate_of,
    ).as_dict()


def planted_result(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "retro_id": "retro-2026-03-02-s14",
        "kind": "sprint",
        "sprint_id": "2026-S14",
        "window": WINDOW,
        "baseline": BASELINE,
        "synthesis": "llm",
        "model": "gpt-4o-mini",
        "signals": planted_signals(),
        "insights": planted_insights(),
        "backlog_items": [
            backlog_item(tickets=(TicketRef("github", "42", "https://github.com/acme/app/issues/42", True),)),
            backlog_item("B2", evidence_ids=("S2",), duplicate_of="B-17", title="Shorten the first report"),
            backlog_item(
                "B3", evidence_ids=("S2",), tickets=(TicketRef("file", "7", "javascript:alert(1)", False),)
            ),
        ],
        "usage": {"llm_calls": 2, "input_tokens": 10412, "output_tokens": 1873},
        "warnings": ["experiments: 1 experiment without enough data skipped"],
        "grounding": {
            "repaired": True,
            "issues": [{"path": "insights[1].summary", "message": "number 39 is not in cited evidence S2"}],
            "dropped_insights": [{"id": "I9", "title": "Unsupported claim <img src=x>"}],
            "dropped_backlog_items": [],
        },
        "status": "completed",
    }
    result.update(overrides)
    return result


def empty_result() -> dict[str, Any]:
    return planted_result(
        kind="deployment",
        sprint_id=None,
        version="v2.4.1",
        synthesis="rules",
        model=None,
        signals=[],
        insights=[],
        backlog_items=[],
        usage={"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        warnings=[],
        grounding={"repaired": False, "issues": [], "dropped_insights": [], "dropped_backlog_items": []},
    )


def awaiting_result(items: int = 2) -> dict[str, Any]:
    return planted_result(
        status="awaiting_approval",
        backlog_items=[backlog_item(f"B{i + 1}") for i in range(items)],
    )


def huge_result(signals: int = 200, insights: int = 30, items: int = 40) -> dict[str, Any]:
    long_text = "x" * 5000
    many_signals = [
        Signal(
            id=f"S{i + 1}",
            kind="metric_change",
            metric=f"metric_{i}",
            persona="agency",
            value=float(i),
            baseline=float(i + 1),
            change=-1 / (i + 1),
            p_value=0.01,
            detail=long_text,
            unit="count",
            n=100 + i,
            significant=True,
            text=("<&>" * 2000,),
        ).as_dict()
        for i in range(signals)
    ]
    many_insights = [
        {
            "id": f"I{i + 1}",
            "title": "T&" * 200,
            "summary": "<&>" * 1500,
            "journey_stage": "adoption",
            "canvas_block": "channels",
            "principles": [],
            "impact": ("High", "Medium", "Low")[i % 3],
            "confidence": 0.5,
            "evidence_ids": [f"S{j + 1}" for j in range(signals)],
            "recommendations": [],
        }
        for i in range(insights)
    ]
    return planted_result(
        status="awaiting_approval",
        signals=many_signals,
        insights=many_insights,
        backlog_items=[backlog_item(f"B{i + 1}", title="&" * 300) for i in range(items)],
        retro_id="r" * 100,
    )
