"""The triage's grounding rules on answers a small model really gives (tests/cassettes/test_recorded_triage_call
shows Gemma 3 270M naming causes "E1" and next steps "0", "1"): a cause must name something, a step must say
something, and the deterministic deployment cause stays first whatever a valid answer leaves out."""

from __future__ import annotations

from tools.escalation.triage.grounding import check_draft, merge_with_rules
from tools.escalation.triage.model import ProbableCause, TriageDraft
from tools.retro.model import Signal

ERRORS = Signal(id="E1", kind="escalation", metric="error_rate", persona="podcast_network", value=0.04,
                baseline=0.0, change=None, p_value=0.0004, detail="Error rate spike (high, firing)", n=240)  # fmt: skip
NPS = Signal(id="E2", kind="escalation", metric="nps", persona="podcast_network", value=2.0, baseline=35.0,
             change=-33.0, p_value=0.01, detail="NPS drop (high, firing)", n=251, unit="nps_points")  # fmt: skip
DEPLOY = Signal(id="E3", kind="deployment", metric=None, persona=None, value=None, baseline=None, change=None,
                p_value=None, detail="deployment v1.4.0 (api, production)", subject="v1.4.0")  # fmt: skip
EVIDENCE = [ERRORS, NPS, DEPLOY]
RULES = TriageDraft(
    summary="Two escalations for podcast_network began after deployment v1.4.0.",
    probable_causes=[
        ProbableCause(
            title="deployment v1.4.0",
            explanation="shipped the day the change began",
            evidence_ids=["E3", "E1", "E2"],
            confidence="high",
        )
    ],
    next_steps=["Diff v1.4.0 against the release before it"],
)


def _cause(title: str, evidence_ids: list[str]) -> ProbableCause:
    return ProbableCause(title=title, explanation="because", evidence_ids=evidence_ids, confidence="high")


def test_a_cause_named_by_evidence_ids_and_steps_of_digits_are_dropped() -> None:
    answer = TriageDraft(summary="An incident.", probable_causes=[_cause("E1", ["E1"]), _cause("E1 E2", ["E2"])],
                         next_steps=["0", "1", "E3"])  # fmt: skip
    check = check_draft(answer, EVIDENCE)
    assert check.valid_causes == () and check.valid_steps == ()
    assert "names no cause" in check.issues[0] and any("says nothing" in issue for issue in check.issues)
    assert merge_with_rules(check, answer, RULES, EVIDENCE).probable_causes == RULES.probable_causes


def test_the_deployment_cause_stays_first_when_a_valid_answer_leaves_it_out() -> None:
    """The error spike may well explain the NPS drop — a valid cause — but the correlation found v1.4.0."""
    answer = TriageDraft(summary="Errors drive the NPS drop.",
                         probable_causes=[_cause("report errors frustrate users", ["E1", "E2"])],
                         next_steps=["Look at the failing report exports"])  # fmt: skip
    merged = merge_with_rules(check_draft(answer, EVIDENCE), answer, RULES, EVIDENCE)
    assert [cause.title for cause in merged.probable_causes] == [
        "deployment v1.4.0",
        "report errors frustrate users",
    ]
    assert merged.next_steps == answer.next_steps and merged.summary == answer.summary


def test_an_answer_that_cites_the_deployment_itself_is_kept_as_written() -> None:
    answer = TriageDraft(summary="v1.4.0 broke report exports.",
                         probable_causes=[_cause("the v1.4.0 export change", ["E3", "E1"])],
                         next_steps=["Roll back the export change"])  # fmt: skip
    merged = merge_with_rules(check_draft(answer, EVIDENCE), answer, RULES, EVIDENCE)
    assert [cause.title for cause in merged.probable_causes] == ["the v1.4.0 export change"]
