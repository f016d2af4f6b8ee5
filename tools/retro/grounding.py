"""The grounding validator: the LLM writes words, tools write numbers.

`validate` keeps only the insights and backlog drafts that stand on their evidence:
- an insight is rejected when its id is not unique, when it cites an id that is not a signal, when it claims
  High or Medium impact with no quantitative signal, or when its title, summary or a recommendation states a
  number that none of its cited signals holds (tools.retro.numbers says how numbers are read and matched);
- a backlog draft is rejected when it names an unknown or rejected insight, when none of its insights is High or
  Medium, when its insights cite no quantitative signal (text alone never makes a ticket), or when its title,
  problem, proposal or an acceptance criterion states a number that the signals of its insights do not hold.

`repair_feedback` turns the issues into the bullet list of the one repair round; `merge_with_rules` then puts
back, from the deterministic synthesis, every High/Medium problem the LLM's valid answer does not cover.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tools.retro.model import BacklogDraft, GroundingIssue, InsightDraft, Signal, Synthesis
from tools.retro.numbers import ungrounded_numbers
from tools.retro.rules import IMPACTS, MAX_BACKLOG_ITEMS, MAX_INSIGHTS, signal_confidence, signal_impact

MAX_FEEDBACK_LINES = 20
QUOTE_WORDS = 6  # this many consecutive words of a survey comment in a synthesis count as quoting it
WORD = re.compile(r"[a-z0-9']+")
_INSIGHT_ID = re.compile(r"I(\d+)")


@dataclass(frozen=True, slots=True)
class GroundingResult:
    synthesis: Synthesis  # only the valid insights and backlog drafts
    issues: tuple[GroundingIssue, ...]
    dropped_insight_ids: tuple[str, ...]
    dropped_backlog_titles: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.issues


def validate(synthesis: Synthesis, signals: Sequence[Signal]) -> GroundingResult:
    by_id = {signal.id: signal for signal in signals}
    untrusted = _shingles(" ".join(text for signal in signals for text in signal.text))
    counts = Counter(insight.id for insight in synthesis.insights)
    issues: list[GroundingIssue] = []
    valid: list[InsightDraft] = []
    dropped: list[str] = []
    for index, insight in enumerate(synthesis.insights):
        found = _insight_issues(insight, f"insights[{index}]", by_id, counts[insight.id], untrusted)
        issues += found
        if found:
            dropped.append(insight.id)
        else:
            valid.append(insight)
    valid_by_id = {insight.id: insight for insight in valid}
    drafts: list[BacklogDraft] = []
    dropped_titles: list[str] = []
    for index, draft in enumerate(synthesis.backlog_items):
        found = _draft_issues(draft, f"backlog_items[{index}]", valid_by_id, set(counts), by_id, untrusted)
        issues += found
        if found:
            dropped_titles.append(draft.title)
        else:
            drafts.append(draft)
    return GroundingResult(
        synthesis=Synthesis(insights=valid, backlog_items=drafts),
        issues=tuple(issues),
        dropped_insight_ids=tuple(dict.fromkeys(dropped)),
        dropped_backlog_titles=tuple(dropped_titles),
    )


def _insight_issues(
    insight: InsightDraft, path: str, by_id: dict[str, Signal], uses: int, untrusted: frozenset[str]
) -> list[GroundingIssue]:
    issues: list[GroundingIssue] = []
    if uses > 1:
        issues.append(GroundingIssue(f"{path}.id", f"id {insight.id} is used by more than one insight"))
    unknown = [evidence for evidence in insight.evidence_ids if evidence not in by_id]
    if unknown:
        message = f"cites {', '.join(unknown)}, which are not signals; cite only the ids of the signals given"
        issues.append(GroundingIssue(f"{path}.evidence_ids", message))
    cited = [by_id[evidence] for evidence in dict.fromkeys(insight.evidence_ids) if evidence in by_id]
    if insight.impact != "Low" and not any(signal.quantitative for signal in cited):
        message = (
            f"impact {insight.impact} needs a quantitative signal; survey text or a deployment alone is Low"
        )
        issues.append(GroundingIssue(f"{path}.impact", message))
    elif cited and IMPACTS.index(insight.impact) < min(IMPACTS.index(signal_impact(s)) for s in cited):
        strongest = IMPACTS[min(IMPACTS.index(signal_impact(s)) for s in cited)]
        message = f"impact {insight.impact} is more than its evidence supports ({strongest} at most)"
        issues.append(GroundingIssue(f"{path}.impact", message))
    texts = [("title", insight.title), ("summary", insight.summary)]
    texts += [(f"recommendations[{k}]", text) for k, text in enumerate(insight.recommendations)]
    issues += _number_issues(path, texts, cited)
    return issues + _quoting_issues(path, texts, untrusted)


def _draft_issues(
    draft: BacklogDraft,
    path: str,
    valid: dict[str, InsightDraft],
    known: set[str],
    by_id: dict[str, Signal],
    untrusted: frozenset[str],
) -> list[GroundingIssue]:
    unknown = [i for i in draft.insight_ids if i not in known]
    rejected = [i for i in draft.insight_ids if i in known and i not in valid]
    if unknown or rejected:
        parts = [f"{', '.join(unknown)} not insights of this synthesis"] if unknown else []
        parts += [f"{', '.join(rejected)} rejected"] if rejected else []
        return [GroundingIssue(f"{path}.insight_ids", f"names {'; '.join(parts)}")]
    insights = [valid[i] for i in dict.fromkeys(draft.insight_ids)]
    issues: list[GroundingIssue] = []
    if all(insight.impact == "Low" for insight in insights):
        issues.append(GroundingIssue(path, "a backlog item needs a High or Medium insight"))
    evidence = dict.fromkeys(e for insight in insights for e in insight.evidence_ids)
    cited = [by_id[e] for e in evidence if e in by_id]
    quantitative = [signal for signal in cited if signal.quantitative]
    if not quantitative:
        message = (
            "its insights cite no quantitative signal; survey text alone can never create a backlog item"
        )
        issues.append(GroundingIssue(path, message))
    elif not _names_its_evidence(f"{draft.title} {draft.problem}", quantitative):
        names = sorted({name for s in quantitative for name in _names(s)})
        message = f"title or problem must name what it fixes: one of {', '.join(names)}"
        issues.append(GroundingIssue(f"{path}.title", message))
    texts = [("title", draft.title), ("problem", draft.problem), ("proposal", draft.proposal)]
    texts += [(f"acceptance_criteria[{k}]", text) for k, text in enumerate(draft.acceptance_criteria)]
    return issues + _number_issues(path, texts, cited) + _quoting_issues(path, texts, untrusted)


def _number_issues(path: str, texts: list[tuple[str, str]], cited: Sequence[Signal]) -> list[GroundingIssue]:
    issues = []
    ids = ", ".join(signal.id for signal in cited) or "none"
    for field, text in texts:
        bad = ungrounded_numbers(text, cited)
        if bad:
            message = (
                f"states {', '.join(repr(b) for b in bad)}, which no cited signal ({ids}) holds; copy numbers "
                "exactly as the cited signals give them, or leave them out"
            )
            issues.append(GroundingIssue(f"{path}.{field}", message))
    return issues


def _names_its_evidence(text: str, signals: Sequence[Signal]) -> bool:
    """A ticket says what it is about in the evidence's own words (a metric, an experiment key, an escalation),
    so a real signal cannot carry an unrelated request ("grant admin access") into the backlog."""
    lowered = text.lower()
    names = {name.lower() for s in signals for name in _names(s)}
    return not names or any(name in lowered or name.replace("_", " ") in lowered for name in names)


def _names(signal: Signal) -> list[str]:
    """What a signal is about, as a ticket would say it: its metric; an experiment's key; an escalation's id."""
    subject = signal.subject if signal.kind in ("experiment_result", "escalation") else None
    return [name for name in (signal.metric, subject) if name]


def with_tool_confidence(synthesis: Synthesis, signals: Sequence[Signal]) -> Synthesis:
    """Confidence is a number, so a tool sets it: each insight gets the best confidence of its cited signals
    (tools.retro.rules.signal_confidence), whatever the LLM wrote."""
    by_id = {signal.id: signal for signal in signals}
    insights = []
    for insight in synthesis.insights:
        cited = [by_id[e] for e in insight.evidence_ids if e in by_id]
        confidence = max((signal_confidence(s) for s in cited), default=insight.confidence)
        insights.append(insight.model_copy(update={"confidence": round(confidence, 2)}))
    return synthesis.model_copy(update={"insights": insights})


def _shingles(text: str) -> frozenset[str]:
    """Every run of QUOTE_WORDS consecutive words (lower case, punctuation dropped)."""
    words = WORD.findall(text.lower())
    return frozenset(" ".join(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1))


def _quoting_issues(
    path: str, texts: list[tuple[str, str]], untrusted: frozenset[str]
) -> list[GroundingIssue]:
    """Survey comments are untrusted data to summarise: a synthesis that repeats one verbatim (how an injected
    instruction would travel into a report or ticket) is rejected."""
    if not untrusted:
        return []
    message = "repeats survey text verbatim; describe what respondents report in your own words instead"
    return [
        GroundingIssue(f"{path}.{field}", message) for field, text in texts if _shingles(text) & untrusted
    ]


def repair_feedback(issues: Sequence[GroundingIssue]) -> str:
    """The issues as a short bullet list for the one repair round ("" when there are none)."""
    lines = [f"- {issue.path}: {issue.message}" for issue in issues[:MAX_FEEDBACK_LINES]]
    if len(issues) > MAX_FEEDBACK_LINES:
        lines.append("- … and more problems of the same kinds")
    return "\n".join(lines)


# ---------------------------------------------------------------- merging


def merge_with_rules(valid: Synthesis, rules: Synthesis, signals: Sequence[Signal]) -> Synthesis:
    """The valid synthesis plus every rules insight (and its backlog drafts) standing on a High/Medium-worthy
    signal that the valid synthesis does not cover. A signal is covered when a valid insight cites it with at
    least its impact (`rules.signal_impact`) and, for a quantitative signal, when a valid backlog draft stands on
    such an insight — so a weak LLM can neither hide nor downgrade a planted problem. Added insights get fresh ids
    (I<n> after the highest in use). With no valid insight at all, the rules synthesis is the answer. Over the
    schema's caps, insights are kept by impact (valid before added at equal impact) and a draft goes with any
    insight it names."""
    if not valid.insights:
        return rules
    by_id = {signal.id: signal for signal in signals}
    ticketed = {i for draft in valid.backlog_items for i in draft.insight_ids}

    def covered(signal: Signal) -> bool:
        needed = IMPACTS.index(signal_impact(signal))
        covering = [
            insight.id
            for insight in valid.insights
            if signal.id in insight.evidence_ids and IMPACTS.index(insight.impact) <= needed
        ]
        return bool(covering) and (not signal.quantitative or any(i in ticketed for i in covering))

    used = {insight.id for insight in valid.insights}
    next_number = max((int(m.group(1)) for i in used if (m := _INSIGHT_ID.fullmatch(i))), default=0) + 1
    renamed: dict[str, str] = {}
    added: list[InsightDraft] = []
    for insight in rules.insights:
        worthy = [by_id[e] for e in insight.evidence_ids if e in by_id and signal_impact(by_id[e]) != "Low"]
        if not worthy or all(covered(signal) for signal in worthy):
            continue
        while f"I{next_number}" in used:
            next_number += 1
        renamed[insight.id] = f"I{next_number}"
        used.add(renamed[insight.id])
        added.append(insight.model_copy(update={"id": renamed[insight.id]}))
    added_drafts = [
        draft.model_copy(update={"insight_ids": [renamed[i] for i in draft.insight_ids]})
        for draft in rules.backlog_items
        if all(i in renamed for i in draft.insight_ids)
    ]
    return _capped(list(valid.insights) + added, list(valid.backlog_items) + added_drafts)


def _capped(insights: list[InsightDraft], drafts: list[BacklogDraft]) -> Synthesis:
    if len(insights) > MAX_INSIGHTS:
        keep = sorted(range(len(insights)), key=lambda k: (IMPACTS.index(insights[k].impact), k))[
            :MAX_INSIGHTS
        ]
        insights = [insights[k] for k in sorted(keep)]
    kept = {insight.id for insight in insights}
    drafts = [draft for draft in drafts if all(i in kept for i in draft.insight_ids)]
    if len(drafts) > MAX_BACKLOG_ITEMS:
        rank = {insight.id: IMPACTS.index(insight.impact) for insight in insights}
        order = sorted(range(len(drafts)), key=lambda k: (min(rank[i] for i in drafts[k].insight_ids), k))
        drafts = [drafts[k] for k in sorted(order[:MAX_BACKLOG_ITEMS])]
    return Synthesis(insights=insights, backlog_items=drafts)
