"""RICE priority and a stable fingerprint for the grounded backlog drafts of a retro.

reach      = the largest `affected_users` of the quantitative signals an item stands on (their `n` when unknown)
impact     = from the largest |relative change|: ≥ 0.5 → 3, ≥ 0.2 → 2, ≥ 0.1 → 1, else 0.5; a High insight ≥ 2
confidence = the best-supported signal's confidence (tools.retro.rules.signal_confidence) held to 0.5–1.0
effort     = `effort_weeks_default` person-weeks (the retro cannot estimate effort)
score      = reach × impact × confidence ÷ effort, rounded to 1 decimal; items are B1, B2, … by score.

The fingerprint names the problem, not this retro's wording or numbers: the sorted (kind, metric, persona,
journey stage) of the quantitative signals — plus the experiment key for experiment results, so two experiments
on one metric stay two items — so the same problem next sprint dedupes against the open item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

from tools.journey import canonical_metric, map_signal
from tools.retro.model import BacklogDraft, BacklogItem, InsightDraft, Priority, Signal
from tools.retro.numbers import relative_effect
from tools.retro.rules import signal_confidence

FINGERPRINT_CHARS = 32


class UngroundedDraftError(ValueError):
    """A draft reached prioritisation without grounded evidence: run tools.retro.grounding.validate first."""


def prioritise(
    drafts: Sequence[BacklogDraft],
    insights: Sequence[InsightDraft],
    signals: Sequence[Signal],
    *,
    effort_weeks_default: float = 2.0,
    retro_id: str,
) -> list[BacklogItem]:
    """Backlog items with RICE priority, highest score first (ties: fingerprint, then title), ids B1, B2, …

    `retro_id` only has to be non-empty: a BacklogItem has no field for it (the ticket body names the retro)."""
    if effort_weeks_default <= 0:
        raise ValueError(
            f"effort_weeks_default is {effort_weeks_default}; it must be more than 0 person-weeks"
        )
    if not retro_id:
        raise ValueError("retro_id is empty; pass the id of the retro the backlog items come from")
    insights_by_id = {insight.id: insight for insight in insights}
    signals_by_id = {signal.id: signal for signal in signals}
    unnumbered: list[BacklogItem] = []
    for draft in drafts:
        own = [insights_by_id[i] for i in dict.fromkeys(draft.insight_ids) if i in insights_by_id]
        evidence = list(
            dict.fromkeys(e for insight in own for e in insight.evidence_ids if e in signals_by_id)
        )
        quantitative = [signals_by_id[e] for e in evidence if signals_by_id[e].quantitative]
        if not own or not quantitative:
            raise UngroundedDraftError(
                f"backlog draft {draft.title!r} stands on no known insight with a quantitative signal; "
                "validate the synthesis (tools.retro.grounding.validate) before prioritising it"
            )
        unnumbered.append(
            BacklogItem(
                id="",
                title=draft.title,
                problem=draft.problem,
                proposal=draft.proposal,
                acceptance_criteria=tuple(draft.acceptance_criteria),
                labels=_labels(own, quantitative),
                priority=rice(quantitative, own, effort_weeks_default),
                insight_ids=tuple(insight.id for insight in own),
                evidence_ids=tuple(evidence),
                fingerprint=fingerprint(quantitative),
            )
        )
    unnumbered.sort(key=lambda item: (-item.priority.score, item.fingerprint, item.title))
    return [replace(item, id=f"B{number}") for number, item in enumerate(unnumbered, start=1)]


def rice(signals: Sequence[Signal], insights: Sequence[InsightDraft], effort_weeks: float) -> Priority:
    quantitative = [signal for signal in signals if signal.quantitative]
    reach = max((_reach(signal) for signal in quantitative), default=0)
    effect = max((relative_effect(signal) or 0.0 for signal in quantitative), default=0.0)
    impact = 3.0 if effect >= 0.5 else 2.0 if effect >= 0.2 else 1.0 if effect >= 0.1 else 0.5
    if any(insight.impact == "High" for insight in insights):
        impact = max(impact, 2.0)
    confidence = max((signal_confidence(signal) for signal in quantitative), default=0.5)
    confidence = round(min(max(confidence, 0.5), 1.0), 2)
    score = round(reach * impact * confidence / effort_weeks, 1)
    return Priority(score=score, reach=reach, impact=impact, confidence=confidence, effort=effort_weeks)


def _reach(signal: Signal) -> int:
    users = signal.affected_users if signal.affected_users is not None else signal.n
    return max(int(users or 0), 0)


def fingerprint(signals: Iterable[Signal]) -> str:
    """sha256 (hex, 32 characters) over the sorted problem keys of the quantitative signals."""
    keys = sorted({_problem_key(signal) for signal in signals if signal.quantitative})
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:FINGERPRINT_CHARS]


def _problem_key(signal: Signal) -> tuple[str, ...]:
    key = (
        signal.kind,
        canonical_metric(signal.metric) or "",
        signal.persona or "",
        map_signal(signal).journey_stage,
    )
    return (*key, signal.subject or "") if signal.kind == "experiment_result" else key


def _labels(insights: Sequence[InsightDraft], signals: Sequence[Signal]) -> tuple[str, ...]:
    labels = ["feedbackloop", "retro"]
    labels += [insight.journey_stage for insight in insights]
    labels += [signal.persona for signal in signals if signal.persona]
    best = min((insight.impact for insight in insights), key=("High", "Medium", "Low").index)
    labels.append(f"impact-{best.lower()}")
    return tuple(dict.fromkeys(labels))
