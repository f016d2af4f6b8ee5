"""Grounding of a triage draft (the retro's rule: the LLM writes words, tools write numbers).

A probable cause is rejected when it cites an unknown evidence id, cites only free text (survey comments never
make a cause), or states a number none of its cited records holds. The summary and the next steps may state only
numbers that some evidence record of the incident holds. `merge_with_rules` keeps what is valid and takes the rest
from the rules triage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tools.escalation.triage.model import ProbableCause, TriageDraft
from tools.retro.model import Signal
from tools.retro.numbers import ungrounded_numbers


@dataclass(frozen=True, slots=True)
class DraftCheck:
    summary_ok: bool
    valid_causes: tuple[ProbableCause, ...]
    valid_steps: tuple[str, ...]
    issues: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.issues


def check_draft(draft: TriageDraft, evidence: Sequence[Signal]) -> DraftCheck:
    by_id = {signal.id: signal for signal in evidence}
    issues: list[str] = []
    loose = ungrounded_numbers(draft.summary, evidence)
    if loose:
        issues.append(f"summary: numbers {', '.join(loose)} match no evidence")
    causes: list[ProbableCause] = []
    for index, cause in enumerate(draft.probable_causes):
        found = _cause_issues(cause, by_id)
        issues += [f"probable_causes[{index}]: {issue}" for issue in found]
        if not found:
            causes.append(cause)
    steps: list[str] = []
    for index, step in enumerate(draft.next_steps):
        numbers = ungrounded_numbers(step, evidence)
        if numbers:
            issues.append(f"next_steps[{index}]: numbers {', '.join(numbers)} match no evidence")
        else:
            steps.append(step)
    return DraftCheck(not loose, tuple(causes), tuple(steps), tuple(issues))


def _cause_issues(cause: ProbableCause, by_id: dict[str, Signal]) -> list[str]:
    unknown = [e for e in cause.evidence_ids if e not in by_id]
    if unknown:
        return [f"cites unknown evidence {', '.join(unknown)}"]
    cited = [by_id[e] for e in cause.evidence_ids]
    if all(signal.kind == "survey_theme" for signal in cited):
        return ["cites only survey comments; a cause needs a measured or recorded event"]
    loose = ungrounded_numbers(f"{cause.title}\n{cause.explanation}", cited)
    return [f"numbers {', '.join(loose)} match none of its cited evidence"] if loose else []


def merge_with_rules(check: DraftCheck, draft: TriageDraft, rules: TriageDraft) -> TriageDraft:
    """The valid parts of `draft`; the rules' summary, causes or steps where the draft's were invalid or empty."""
    return TriageDraft(
        summary=draft.summary if check.summary_ok else rules.summary,
        probable_causes=list(check.valid_causes) or list(rules.probable_causes),
        next_steps=list(check.valid_steps) or list(rules.next_steps),
    )
