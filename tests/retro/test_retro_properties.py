"""Properties over generated signal sets: the rules synthesiser's output always passes the grounding validator
(also after merging with any valid part of it), and every formatter's output reads back as its own value."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.journey import map_signals
from tools.retro.grounding import merge_with_rules, validate
from tools.retro.model import Signal, Synthesis
from tools.retro.numbers import (
    extract_numbers,
    format_change,
    format_number,
    format_p_value,
    format_percent,
    is_grounded,
)
from tools.retro.rules import synthesise_rules

METRICS = [None, "error_rate", "time_to_value", "nps", "renewal_success", "cac", "ltv_cac_ratio", "custom_3",
           "30d_retention", "p90_latency", "support_incidents", "completion_rate"]  # fmt: skip
PERSONAS = [None, "podcast_network", "agency", "solo_podcaster", "tier2", "brand_sponsor"]
SUBJECTS = [None, "v1.4.0", "42", "2024-onboarding", "exp 7 b", "release-2.0", "pricing-page"]
UNITS = [None, "ratio", "seconds", "per_user_30d", "score", "usd", "x", "pp", "30d", "nps_points"]
KINDS = [
    "metric_change",
    "kpi_change",
    "experiment_result",
    "escalation",
    "survey_shift",
    "survey_theme",
    "deployment",
]

finite = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, allow_infinity=False)
fraction = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
counts = st.none() | st.integers(min_value=0, max_value=2_000_000)


@st.composite
def signal_sets(draw: st.DrawFn) -> list[Signal]:
    size = draw(st.integers(min_value=0, max_value=16))
    signals = []
    for index in range(1, size + 1):
        kind = draw(st.sampled_from(KINDS))
        facts: dict[str, float | int | str] = draw(st.dictionaries(
            st.sampled_from(["chance_to_win", "lift", "severity", "experiment_type", "winning_variant", "status",
                             "ci_low", "theme", "mentions", "comments", "opened_at", "change_unit"]),
            st.one_of(fraction, finite, st.integers(-10, 10**6), st.sampled_from(
                ["high", "critical", "medium", "onboarding", "B", "7", "resolved", "pricing", "none", "exports",
                 "2026-05-20T10:00:00+00:00", "S1,S3", "points"])),
            max_size=5,
        ))  # fmt: skip
        signals.append(Signal(
            id=f"S{index}", kind=kind, metric=draw(st.sampled_from(METRICS)), persona=draw(st.sampled_from(PERSONAS)),
            value=draw(st.none() | finite), baseline=draw(st.none() | finite), change=draw(st.none() | finite),
            p_value=draw(st.none() | fraction), detail="generated", unit=draw(st.sampled_from(UNITS)),
            n=draw(counts), baseline_n=draw(counts),
            direction=draw(st.sampled_from([None, "improved", "worsened", "neutral"])),
            significant=draw(st.booleans()), affected_users=draw(counts), facts=facts,
            attributed_to=draw(st.sampled_from(SUBJECTS)), subject=draw(st.sampled_from(SUBJECTS)),
        ))  # fmt: skip
    return signals


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signal_sets(), st.data())
def test_rules_output_is_always_grounded(signals: list[Signal], data: st.DataObject) -> None:
    rules = synthesise_rules(signals, map_signals(signals))
    result = validate(rules, signals)
    assert result.issues == (), result.issues
    assert not any(i.impact == "High" and not any(s.quantitative for s in signals if s.id in i.evidence_ids)
                   for i in rules.insights)  # fmt: skip
    # any valid subset of it (what a weak LLM might keep), merged back, is still grounded and loses no problem
    kept = data.draw(st.lists(st.sampled_from(rules.insights), unique_by=lambda i: i.id) if rules.insights
                     else st.just([]))  # fmt: skip
    kept_ids = {i.id for i in kept}
    drafts = [d for d in rules.backlog_items if set(d.insight_ids) <= kept_ids]
    merged = merge_with_rules(Synthesis(insights=kept, backlog_items=drafts), rules, signals)
    assert validate(merged, signals).issues == ()
    for insight in rules.insights:
        if insight.impact != "Low":
            assert any(set(insight.evidence_ids) <= set(m.evidence_ids) for m in merged.insights)


@settings(max_examples=200, deadline=None)
@given(finite, fraction)
def test_formatters_read_back_as_their_own_value(value: float, p_value: float) -> None:
    signal = Signal(id="S1", kind="metric_change", metric="m", persona=None, value=value, baseline=None,
                    change=value, p_value=p_value, detail="")  # fmt: skip
    texts = [format_number(value), format_change(value), format_change(value, relative=False),
             format_percent(value), format_p_value(p_value)]  # fmt: skip
    for text in texts:
        assert text is not None
        numbers = extract_numbers(f"stated {text} here")
        assert len(numbers) == 1, (text, numbers)
        assert is_grounded(numbers[0], [signal]), (text, numbers)
