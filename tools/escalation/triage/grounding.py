"""Grounding of a triage draft (the retro's rule: the LLM writes words, tools write numbers).

A probable cause is rejected when it cites an unknown evidence id, cites only free text (survey comments never
make a cause), states a number none of its cited records holds, or names nothing (a title of evidence ids, as a
small model writes). The summary and the next steps may state only numbers that some evidence record of the
incident holds, and a step must say something (words, not ids or digits). `merge_with_rules` keeps what is valid,
takes the rest from the rules triage, and never lets an answer drop the deterministic correlation: a deployment or
experiment the rules name as a probable cause stays one, first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tools.escalation.triage.model import ProbableCause, TriageDraft
from tools.retro.model import Signal
from tools.retro.numbers import ungrounded_numbers

RECORDED_CHANGES = (
    "deployment",
    "experiment",
)  # evidence kinds the deterministic correlation names as causes
MAX_CAUSES = 5  # TriageDraft.probable_causes' limit
MIN_WORDS = 2  # in a next step ("Roll back", "Diff v1.4.0 against v1.3.9"); a cause's title needs one
WORD = re.compile(r"[^\W\d_]{2,}\d*")
EVIDENCE_ID = re.compile(r"[A-Z]\d+")


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
        elif len(_words(step)) < MIN_WORDS:
            issues.append(f"next_steps[{index}]: says nothing ({step[:40]!r})")
        else:
            steps.append(step)
    return DraftCheck(not loose, tuple(causes), tuple(steps), tuple(issues))


def _cause_issues(cause: ProbableCause, by_id: dict[str, Signal]) -> list[str]:
    unknown = [e for e in cause.evidence_ids if e not in by_id]
    if unknown:
        return [f"cites unknown evidence {', '.join(unknown)}"]
    if not _words(cause.title):
        return [f"its title names no cause ({cause.title[:40]!r})"]
    cited = [by_id[e] for e in cause.evidence_ids]
    if all(signal.kind == "survey_theme" for signal in cited):
        return ["cites only survey comments; a cause needs a measured or recorded event"]
    loose = ungrounded_numbers(f"{cause.title}\n{cause.explanation}", cited)
    return [f"numbers {', '.join(loose)} match none of its cited evidence"] if loose else []


def merge_with_rules(
    check: DraftCheck, draft: TriageDraft, rules: TriageDraft, evidence: Sequence[Signal] = ()
) -> TriageDraft:
    """The valid parts of `draft`; the rules' summary, causes or steps where the draft's were invalid or empty.

    The rules' causes that stand on a recorded change (a deployment, an experiment in `evidence`) come first
    whatever the draft says: that correlation is deterministic, and an answer that leaves it out is incomplete."""
    recorded = {signal.id for signal in evidence if signal.kind in RECORDED_CHANGES}
    answered = list(check.valid_causes)
    cited = {e for cause in answered for e in cause.evidence_ids}
    kept = [c for c in rules.probable_causes if (set(c.evidence_ids) & recorded) - cited]
    causes = (kept + answered)[:MAX_CAUSES] if answered else list(rules.probable_causes)
    return TriageDraft(
        summary=draft.summary if check.summary_ok else rules.summary,
        probable_causes=causes,
        next_steps=list(check.valid_steps) or list(rules.next_steps),
    )


def _words(text: str) -> list[str]:
    """The words of `text` that are words: letters, not evidence ids (E1) or digits."""
    return [word for word in WORD.findall(text) if not EVIDENCE_ID.fullmatch(word)]
