"""The deterministic synthesiser: insights and backlog drafts from signals and their theory mappings, with no LLM.

It is the default when no LLM is configured and the safety net when one is (tools.retro.grounding.merge_with_rules),
so its output always passes the grounding validator: every number it writes comes from tools.retro.numbers'
formatters applied to a signal the insight cites.

Grouping: signals about the same problem form one insight — same persona, same journey stage and same polarity
(improvements apart from everything else); each experiment result stands alone; a deployment joins every group
holding a signal `attributed_to` its version (or stands alone when nothing is attributed to it).

Impact of a signal (`signal_impact`); an insight takes the highest impact of its signals:
- High: worsened, significant and |relative change| ≥ 0.20; or worsened, significant, ≥ 0.05 and attributed to a
  deployment; or an escalation of severity high/critical (one level lower once resolved).
- Medium: worsened and significant with |relative change| ≥ 0.05 (or no change to measure); a survey shift that
  worsened significantly (never High: scores near zero make relative changes meaningless); an experiment whose
  variant won (direction "improved"): ship the winner; an escalation of severity medium.
- Low: everything else — improvements, tiny or non-significant changes, deployments, survey themes (text alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from tools.journey import map_signal
from tools.retro.model import (
    BacklogDraft,
    Impact,
    InsightDraft,
    Signal,
    Synthesis,
    TheoryMapping,
)
from tools.retro.numbers import (
    change_is_relative,
    format_change,
    format_number,
    format_p_value,
    format_percent,
    relative_effect,
)

IMPACTS: tuple[Impact, ...] = get_args(Impact)  # High, Medium, Low: rank = index
HIGH_CHANGE = 0.20
GROUPED_KINDS = frozenset({"metric_change", "kpi_change", "survey_shift"})
MATERIAL_CHANGE = 0.05
FULL_CONFIDENCE_N = 100
MAX_INSIGHTS = 12
MAX_BACKLOG_ITEMS = 10
MAX_LIST = 5
MAX_TITLE_CHARS = 160
MAX_SUMMARY_CHARS = 1200
# How a unit is written after a value ("" = not written: the number says it).
UNIT_NAMES = {"ratio": "", "score": "", "count": "", "x": "", "nps_points": "", "usd": "USD"}
_VERBS = {"worsened": "worsened", "improved": "improved"}


# ---------------------------------------------------------------- per signal


def signal_impact(signal: Signal) -> Impact:
    if not signal.quantitative:
        return "Low"
    if signal.kind == "experiment_result":
        return "Medium" if signal.direction == "improved" else "Low"
    regression = signal.direction == "worsened" and signal.significant
    effect = relative_effect(signal)
    material = regression and (effect is None or effect >= MATERIAL_CHANGE)
    if signal.kind == "survey_shift":
        return "Medium" if material else "Low"
    levels = [2]
    if material:
        high = effect is not None and (effect >= HIGH_CHANGE or signal.attributed_to is not None)
        levels.append(0 if high else 1)
    if signal.kind == "escalation":
        levels.append(_escalation_level(signal))
    return IMPACTS[min(levels)]


def _escalation_level(signal: Signal) -> int:
    """By severity; one level lower once resolved; Low when it only resolved in the window (improved)."""
    if signal.direction == "improved":
        return 2
    severity = str(signal.facts.get("severity", "")).lower()
    level = {"critical": 0, "high": 0, "medium": 1}.get(severity, 2)
    resolved = str(signal.facts.get("status", "")).lower() == "resolved"
    return min(level + 1, 2) if resolved else level


def signal_confidence(signal: Signal) -> float:
    """How sure the finding is, 0–1: 1 − p (an experiment: its chance to win, or to lose), clipped to 0.05–0.99,
    scaled down linearly to half when n is below 100; 0.6 for a number without a test, 0.3 for text or a
    deployment."""
    chance = signal.facts.get("chance_to_win")
    if (
        signal.kind == "experiment_result"
        and isinstance(chance, int | float)
        and not isinstance(chance, bool)
    ):
        confidence = max(float(chance), 1 - float(chance))
    elif signal.p_value is not None:
        confidence = 1 - signal.p_value
    else:
        confidence = 0.6 if signal.quantitative else 0.3
    confidence = min(max(confidence, 0.05), 0.99)
    if signal.n is not None and signal.n < FULL_CONFIDENCE_N:
        confidence *= 0.5 + 0.5 * max(signal.n, 0) / FULL_CONFIDENCE_N
    return round(confidence, 2)


def _rank(signal: Signal, index: int) -> tuple[int, float, int]:
    return (IMPACTS.index(signal_impact(signal)), -(relative_effect(signal) or 0.0), index)


# ---------------------------------------------------------------- grouping


def group_signals(signals: Sequence[Signal], mappings: dict[str, TheoryMapping]) -> list[list[Signal]]:
    """Signals about the same problem, each group in detection order (see the module docstring)."""
    groups: dict[tuple[str, ...], list[Signal]] = {}
    drivers = _persona_drivers(signals)
    for signal in signals:
        if signal.kind == "deployment":
            continue
        # An overall change driven by one persona's joins that persona's group: one problem, one insight.
        anchor = drivers.get(signal.id, signal)
        if signal.kind == "experiment_result":
            key: tuple[str, ...] = ("experiment", signal.subject or signal.id)
        else:
            polarity = "improved" if anchor.direction == "improved" else "other"
            key = ("signal", polarity, anchor.persona or "", mappings[anchor.id].journey_stage)
        groups.setdefault(key, []).append(signal)
    order = {signal.id: index for index, signal in enumerate(signals)}
    for deployment in (s for s in signals if s.kind == "deployment"):
        version = deployment.subject
        joined = [g for g in groups.values() if version and any(s.attributed_to == version for s in g)]
        for group in joined:
            group.append(deployment)
            group.sort(key=lambda s: order[s.id])
        if not joined:
            groups[("deployment", deployment.id)] = [deployment]
    return list(groups.values())


def _persona_drivers(signals: Sequence[Signal]) -> dict[str, Signal]:
    """An overall change (no persona) joins the persona change of the same metric and direction that drives it —
    the one with the largest relative effect — instead of being a second insight about the same problem."""
    drivers: dict[str, Signal] = {}
    for overall in signals:
        if overall.persona is not None or overall.kind not in GROUPED_KINDS or not overall.metric:
            continue
        same = [
            s for s in signals
            if s.persona is not None and s.kind in GROUPED_KINDS and s.metric == overall.metric
            and s.direction == overall.direction and s.significant
        ]  # fmt: skip
        if same:
            drivers[overall.id] = max(same, key=lambda s: abs(relative_effect(s) or 0.0))
    return drivers


# ---------------------------------------------------------------- writing


def ident(name: str | None) -> str:
    """An identifier as text: in backticks when it holds a digit, so it is never read as a number."""
    if not name:
        return ""
    return f"`{name}`" if any(c.isdigit() for c in name) else name


def _who(signal: Signal) -> str:
    return ident(signal.persona) if signal.persona else "all personas"


def _metric(signal: Signal) -> str:
    return ident(signal.metric) if signal.metric else "the metric"


def _change(signal: Signal) -> str | None:
    """A relative change as "+200.0%", a difference as "+4.2 points" (in the signal's own points)."""
    if change_is_relative(signal):
        return format_change(signal.change)
    written = format_change(signal.change, relative=False)
    return f"{written} points" if written else None


def _figures(signal: Signal) -> str:
    """The signal's figures in parentheses, whatever it has: "(+200.0%, p<0.001, n=1,234, 310 users affected)"."""
    parts = [_change(signal), format_p_value(signal.p_value)]
    chance = signal.facts.get("chance_to_win")
    if isinstance(chance, int | float) and not isinstance(chance, bool):
        parts.append(f"{format_percent(chance)} chance to win")
    if signal.n is not None:
        parts.append(f"n={format_number(signal.n)}")
    if signal.affected_users is not None:
        parts.append(f"{format_number(signal.affected_users)} users affected")
    shown = [part for part in parts if part]
    return f" ({', '.join(shown)})" if shown else ""


def _from_to(signal: Signal) -> str:
    value, baseline = format_number(signal.value), format_number(signal.baseline)
    shown = UNIT_NAMES.get(signal.unit, signal.unit) if signal.unit else None
    unit = f" {ident(shown)}" if shown else ""
    if value and baseline:
        return f" from {baseline} to {value}{unit}"
    return f" to {value}{unit}" if value else ""


def signal_sentence(signal: Signal) -> str:
    """One deterministic sentence stating the signal's numbers, ending with its id."""
    verb = _VERBS.get(signal.direction or "", "changed")
    if signal.kind == "deployment":
        name = f"Deployment {ident(signal.subject)}" if signal.subject else "A deployment"
        return f"{name} shipped in the window ({signal.id})."
    if signal.kind == "survey_theme":
        theme = _theme(signal) or "one theme"
        count = _mentions(signal)
        return (
            f"Survey answers from {_who(signal)} return to {theme}{count} ({signal.id}); this is text only, "
            "to be confirmed with a metric."
        )
    if signal.kind == "experiment_result":
        variant = _variant(signal)
        which = f"variant {ident(str(variant))}" if variant else "the variant"
        subject = ident(signal.subject) or "the experiment"
        figures = f"{_from_to(signal)}{_figures(signal)}"
        return f"In experiment {subject}, {which} {verb} {_metric(signal)}{figures} ({signal.id})."
    lead = f"Escalation {ident(signal.subject)}: " if signal.kind == "escalation" and signal.subject else ""
    after = f", starting after deployment {ident(signal.attributed_to)}" if signal.attributed_to else ""
    figures = f"{_from_to(signal)}{_figures(signal)}{after}"
    return f"{lead}{_metric(signal)} for {_who(signal)} {verb}{figures} ({signal.id})."


def _theme(signal: Signal) -> str:
    """A survey theme's term (tools.retro.themes puts it in facts["theme"])."""
    term = signal.facts.get("theme")
    return ident(term if isinstance(term, str) and term else signal.subject or signal.metric)


def _mentions(signal: Signal) -> str:
    mentions, comments = signal.facts.get("mentions"), signal.facts.get("comments")
    if isinstance(mentions, int | float) and isinstance(comments, int | float):
        return f" (in {format_number(mentions)} of {format_number(comments)} comments)"
    return f" (n={format_number(signal.n)})" if signal.n is not None else ""


def _variant(signal: Signal) -> str | None:
    """The winning (or shipped) variant of an experiment result, else the variant it is about."""
    for name in ("winning_variant", "winner", "variant"):
        value = signal.facts.get(name)
        if value not in (None, "", "none"):
            return str(value)
    return None


def _title(lead: Signal) -> str:
    if lead.kind == "deployment":
        return f"Deployment {ident(lead.subject) or lead.id} shipped with no change attributed to it"
    if lead.kind == "survey_theme":
        return f"Recurring survey theme from {_who(lead)}: {_theme(lead) or 'free text'}"
    change = _change(lead)
    if lead.kind == "experiment_result":
        subject = ident(lead.subject) or lead.id
        if lead.direction == "improved":
            return f"Ship the winner of experiment {subject}" + (
                f": {_metric(lead)} {change}" if change else ""
            )
        if lead.direction == "worsened":
            return f"Experiment {subject}: the variant did worse on {_metric(lead)}" + (
                f" ({change})" if change else ""
            )
        return f"Experiment {subject} shows no winner on {_metric(lead)}"
    verb = _VERBS.get(lead.direction or "", "changed")
    title = (
        f"{_metric(lead)} {verb} {change} for {_who(lead)}"
        if change
        else f"{_metric(lead)} {verb} for {_who(lead)}"
    )
    return f"{title} after {ident(lead.attributed_to)}" if lead.attributed_to else title


def _clip(text: str, limit: int) -> str:
    """Cut at a space, never inside a number or a quoted identifier."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    if cut.count("`") % 2:
        cut = cut[: cut.rindex("`")]
    return cut.rstrip(",:;( ") + "…"


def _summary(group: Sequence[Signal], lead: Signal) -> str:
    sentences = [signal_sentence(lead)] + [signal_sentence(s) for s in group if s is not lead]
    summary = ""
    for sentence in sentences:
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > MAX_SUMMARY_CHARS - 60:
            return _clip(summary + " Further signals are listed in the evidence.", MAX_SUMMARY_CHARS)
        summary = candidate
    return _clip(summary, MAX_SUMMARY_CHARS)


def _recommendations(group: Sequence[Signal], lead: Signal, mappings: dict[str, TheoryMapping]) -> list[str]:
    texts: list[str] = []
    versions = {s.attributed_to for s in group if s.attributed_to and s.direction == "worsened"}
    for version in sorted(versions):
        texts.append(
            f"Review the changes shipped in {ident(version)} that touch {_metric(lead)} and fix or roll them back"
        )
    for signal in [lead, *group]:
        texts += mappings[signal.id].interventions
    return list(dict.fromkeys(texts))[:MAX_LIST]


def _principles(group: Sequence[Signal], lead: Signal, mappings: dict[str, TheoryMapping]) -> list[str]:
    keys = [key for signal in [lead, *group] for key in mappings[signal.id].principles]
    return list(dict.fromkeys(keys))[:MAX_LIST]


# ---------------------------------------------------------------- backlog


def _criteria(group: Sequence[Signal]) -> list[str]:
    criteria: list[str] = []
    for signal in group:
        if not signal.quantitative or signal_impact(signal) == "Low":
            continue
        who, metric = _who(signal), _metric(signal)
        if signal.kind == "experiment_result":
            criteria.append(
                f"The winning variant of experiment {ident(signal.subject) or signal.id} serves {who}"
            )
            value = format_number(signal.value)
            if value:
                bound = "≥" if (signal.change or 0) >= 0 else "≤"
                criteria.append(f"{metric} for {who} holds at {bound} {value} after the rollout")
            continue
        baseline = format_number(signal.baseline)
        if baseline and signal.value is not None and signal.baseline is not None:
            bound = "≤" if signal.value > signal.baseline else "≥"
            criteria.append(f"{metric} for {who} back to {bound} {baseline} (the baseline window)")
        else:
            criteria.append(f"{metric} for {who} no longer significantly worse than the baseline window")
        if signal.kind == "escalation" and signal.subject:
            criteria.append(f"Escalation {ident(signal.subject)} resolved")
    lead = next((s for s in group if s.quantitative), None)
    if lead is not None:
        criteria.append(f"The next retro shows no significant worsening of {_metric(lead)} for {_who(lead)}")
    return list(dict.fromkeys(criteria))[:6]


def _backlog_title(lead: Signal) -> str:
    who, metric = _who(lead), _metric(lead)
    if lead.kind == "experiment_result":
        return f"Ship the winning variant of experiment {ident(lead.subject) or lead.id}"
    if lead.kind == "escalation" and lead.subject:
        return _clip(f"Resolve escalation {ident(lead.subject)}: {metric} for {who}", MAX_TITLE_CHARS)
    title = f"Fix the {metric} regression for {who}"
    if lead.attributed_to:
        title += f" after {ident(lead.attributed_to)}"
    return _clip(title, MAX_TITLE_CHARS)


def _backlog_draft(insight: InsightDraft, group: Sequence[Signal], lead: Signal) -> BacklogDraft:
    proposal = "\n".join(f"- {text}" for text in insight.recommendations) or f"- Investigate {_metric(lead)}"
    return BacklogDraft(
        title=_backlog_title(lead),
        problem=insight.summary,
        proposal=proposal,
        acceptance_criteria=_criteria(group) or [f"{_metric(lead)} for {_who(lead)} back to its baseline"],
        insight_ids=[insight.id],
    )


# ---------------------------------------------------------------- the synthesiser


def synthesise_rules(signals: Sequence[Signal], mappings: Sequence[TheoryMapping]) -> Synthesis:
    """Insights (High first, then by |relative change|, then detection order; ids I1, I2, …) and one backlog
    draft per High/Medium insight that stands on a quantitative signal. Same input, same output."""
    by_id = {mapping.signal_id: mapping for mapping in mappings}
    by_id |= {s.id: map_signal(s) for s in signals if s.id not in by_id}
    order = {signal.id: index for index, signal in enumerate(signals)}
    ranked = []
    for group in group_signals(signals, by_id):
        lead = min(group, key=lambda s: _rank(s, order[s.id]))
        ranked.append((_rank(lead, order[lead.id]), group, lead))
    ranked.sort(key=lambda item: item[0])
    insights: list[InsightDraft] = []
    drafts: list[BacklogDraft] = []
    for number, (rank, group, lead) in enumerate(ranked[:MAX_INSIGHTS], start=1):
        mapping = by_id[lead.id]
        insight = InsightDraft(
            id=f"I{number}",
            title=_clip(_title(lead), MAX_TITLE_CHARS),
            summary=_summary(group, lead),
            journey_stage=mapping.journey_stage,
            canvas_block=mapping.canvas_block,
            principles=_principles(group, lead, by_id),
            impact=IMPACTS[rank[0]],
            confidence=signal_confidence(lead),
            evidence_ids=[lead.id] + [s.id for s in group if s is not lead],
            recommendations=_recommendations(group, lead, by_id),
        )
        insights.append(insight)
        if insight.impact != "Low" and lead.quantitative and len(drafts) < MAX_BACKLOG_ITEMS:
            drafts.append(_backlog_draft(insight, group, lead))
    return Synthesis(insights=insights, backlog_items=drafts)
