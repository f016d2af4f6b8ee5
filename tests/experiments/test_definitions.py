"""Experiment definitions: the seed's shape parses; every invalid input is refused with an error naming its field."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tools.experiments.errors import ExperimentInputError
from tools.experiments.metrics import known_metric_names
from tools.experiments.model import (
    ExperimentMode,
    ExperimentSpec,
    ExperimentType,
    parse_spec,
    with_weights,
)
from tools.experiments.service import spec_from_document

SEED_DEFINITION: dict[str, Any] = {
    "name": "Onboarding Flow Test",
    "experiment_type": ExperimentType.ONBOARDING,
    "variants": [
        {"name": "Control", "traffic_percentage": 0.5, "configuration": {"flow": "standard"}},
        {"name": "Variant A", "traffic_percentage": 0.5, "configuration": {"flow": "guided"}},
    ],
    "success_metrics": ["time_to_value", "completion_rate"],
    "duration_days": 14,
}


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Pricing prompt",
        "variants": [{"name": "control", "weight": 0.5}, {"name": "prompt", "weight": 0.5}],
        "primary_metrics": ["conversion_rate"],
    }
    return data | overrides


def refused(data: Any) -> ExperimentInputError:
    with pytest.raises(ExperimentInputError) as caught:
        parse_spec(data)
    error = caught.value
    assert str(error).startswith(f"{error.field}: "), str(error)  # the message leads with the field
    return error


def test_the_seeds_shape_parses() -> None:
    spec = parse_spec(SEED_DEFINITION)
    assert spec.key == "onboarding-flow-test" and spec.name == "Onboarding Flow Test"
    assert spec.type is ExperimentType.ONBOARDING and spec.mode is ExperimentMode.AB
    assert [(v.name, v.weight, v.configuration) for v in spec.variants] == [
        ("Control", 0.5, {"flow": "standard"}),
        ("Variant A", 0.5, {"flow": "guided"}),
    ]
    assert [m.name for m in spec.primary_metrics] == ["time_to_value", "completion_rate"]
    completion = spec.primary_metrics[1]
    assert completion.kind == "conversion" and completion.event == "onboarding_completed"
    assert spec.primary_metrics[0].lower_is_better and spec.duration_days == 14
    assert parse_spec({**SEED_DEFINITION, "experiment_type": "onboarding"}) == spec


def test_defaults_follow_growthbook() -> None:
    spec = parse_spec(base())
    assert (spec.hash_version, spec.seed, spec.coverage, spec.alpha) == (2, "", 1.0, 0.05)
    assert spec.type is ExperimentType.OTHER and spec.completion_event == "task_completed"
    assert parse_spec(base(type="pricing")).completion_event == "subscription_started"


def test_a_stored_definition_reads_back_equal() -> None:
    spec = parse_spec(
        base(
            key="full", type="report_template", hypothesis="templates help", coverage=0.4, seed="s-1",
            personas=["agency"], secondary_metrics=["time_to_value_p90", {"name": "spend", "kind": "mean",
            "event": "payment_succeeded", "property": "amount", "window_hours": 24}],
            guardrails=[{"metric": "error_rate", "margin": 0.02}], engine="bayesian", cuped=False,
        )
    )  # fmt: skip
    row = {"key": spec.key, "name": spec.name, "type": spec.type.value, "mode": spec.mode.value,
           "hypothesis": spec.hypothesis, "definition": spec.as_document()}  # fmt: skip
    assert spec_from_document(row) == spec
    multivariate = parse_spec(
        base(mode="multivariate", variants=None, factors={"a": ["x", "y"], "b": ["p", "q"]})
    )
    row = {"key": multivariate.key, "name": multivariate.name, "type": "other", "mode": "multivariate",
           "hypothesis": "", "definition": multivariate.as_document()}  # fmt: skip
    assert spec_from_document(row) == multivariate


@pytest.mark.parametrize("variants", [[], [{"name": "only", "weight": 1.0}]])
def test_fewer_than_two_variants(variants: list[dict[str, Any]]) -> None:
    error = refused(base(variants=variants))
    assert error.field == "variants" and "at least 2 variants" in error.message


@pytest.mark.parametrize("variants", [None, "a,b", {"name": "a"}])
def test_variants_must_be_a_list(variants: Any) -> None:
    assert refused(base(variants=variants)).field == "variants"


@pytest.mark.parametrize("weights", [[0.5, 0.4], [0.5, 0.5 + 2e-6], [0.2, 0.2, 0.2]])
def test_weights_must_sum_to_one(weights: list[float]) -> None:
    variants = [{"name": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    error = refused(base(variants=variants))
    assert error.field == "variants" and "sum to 1 ± 1e-6" in error.message
    assert f"{math.fsum(weights):g}" in error.message


def test_weights_within_the_tolerance_pass() -> None:
    thirds = [{"name": f"v{i}", "weight": 1 / 3} for i in range(3)]
    assert len(parse_spec(base(variants=thirds)).variants) == 3
    nearly = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5 + 5e-7}]
    assert parse_spec(base(variants=nearly)).weights == [0.5, 0.5 + 5e-7]


@pytest.mark.parametrize("key", ["weight", "traffic_percentage"])
def test_percentages_get_the_hint(key: str) -> None:
    error = refused(base(variants=[{"name": "a", key: 50}, {"name": "b", key: 50}]))
    assert error.field == "variants[0].weight"
    assert "not percentages" in error.message


def test_a_weight_above_one_that_is_not_a_percentage_gets_no_hint() -> None:
    error = refused(base(variants=[{"name": "a", "weight": 2}, {"name": "b", "weight": 0.5}]))
    assert error.field == "variants[0].weight" and "percentages" not in error.message


def test_duplicate_variant_names() -> None:
    error = refused(base(variants=[{"name": "same", "weight": 0.5}, {"name": "same", "weight": 0.5}]))
    assert error.field == "variants" and "'same'" in error.message


@pytest.mark.parametrize(
    ("variant", "field"),
    [
        ("control", "variants[1]"),
        ({"name": "b", "weight": 0.5, "colour": "red"}, "variants[1].colour"),
        ({"name": "b"}, "variants[1].weight"),
        ({"name": "b", "weight": -0.5}, "variants[1].weight"),
        ({"name": "b", "weight": float("nan")}, "variants[1].weight"),
        ({"name": "b", "weight": True}, "variants[1].weight"),
        ({"name": "b", "weight": 0.5, "configuration": ["x"]}, "variants[1].configuration"),
        ({"name": "b", "weight": 0.5, "configuration": {"x": "y" * 30_000}}, "variants[1].configuration"),
        ({"name": " ", "weight": 0.5}, "variants[1].name"),
        ({"name": "b" * 101, "weight": 0.5}, "variants[1].name"),
    ],
)
def test_bad_variant_fields(variant: Any, field: str) -> None:
    assert refused(base(variants=[{"name": "a", "weight": 0.5}, variant])).field == field


@pytest.mark.parametrize("field", ["primary_metrics", "success_metrics"])
def test_unknown_metric_lists_the_known_names(field: str) -> None:
    data = base(**{field: ["conversion_rate", "happiness"]})
    if field == "success_metrics":
        del data["primary_metrics"]
    error = refused(data)
    assert error.field == f"{field}[1]" and "'happiness'" in error.message
    for name in known_metric_names():
        assert name in error.message


def test_metric_lists() -> None:
    assert refused({**base(), "primary_metrics": []}).field == "primary_metrics"
    no_metrics = base()
    del no_metrics["primary_metrics"]
    assert refused(no_metrics).field == "primary_metrics"
    assert refused(base(primary_metrics="conversion_rate")).field == "primary_metrics"
    assert refused(base(secondary_metrics=["revenue", "nope"])).field == "secondary_metrics[1]"
    assert refused(base(primary_metrics=[42])).field == "primary_metrics[0]"
    error = refused(base(secondary_metrics=["conversion_rate"]))
    assert error.field == "primary_metrics" and "more than once" in error.message


@pytest.mark.parametrize(
    ("metric", "field"),
    [
        ({"name": "m", "kind": "mean", "event": "e", "colour": 1}, ".colour"),
        ({"kind": "mean", "event": "e"}, ".name"),
        ({"name": "m", "kind": "median", "event": "e"}, ".kind"),
        ({"name": "m", "kind": "mean"}, ".event"),
        ({"name": "m", "kind": "mean", "event": ""}, ".event"),
        ({"name": "m", "kind": "ratio", "event": "e"}, ".denominator_event"),
        ({"name": "m", "kind": "quantile", "event": "e"}, ".property"),
        ({"name": "m", "kind": "quantile", "event": "e", "property": "p", "quantile": 1.5}, ".quantile"),
        ({"name": "m", "kind": "quantile", "event": "e", "property": "p", "quantile": True}, ".quantile"),
        ({"name": "m", "kind": "mean", "event": "e", "quantile": 0.5}, ".quantile"),
        ({"name": "m", "kind": "mean", "event": "e", "window_hours": 0}, ".window_hours"),
        ({"name": "m", "kind": "mean", "event": "e", "window_hours": float("inf")}, ".window_hours"),
        ({"name": "m", "kind": "mean", "event": "e", "window_hours": "72h"}, ".window_hours"),
        ({"name": "m", "kind": "mean", "event": "e", "window_hours": 24 * 400}, ".window_hours"),
        ({"name": "m", "kind": "mean", "event": "e", "lower_is_better": "yes"}, ".lower_is_better"),
        ({"name": "m", "kind": "mean", "event": "e", "property": 7}, ".property"),
    ],
)
def test_bad_metric_definitions(metric: dict[str, Any], field: str) -> None:
    assert refused(base(secondary_metrics=["revenue", metric])).field == f"secondary_metrics[1]{field}"


def test_metric_definitions_parse() -> None:
    spec = parse_spec(base(secondary_metrics=[
        {"name": "p90_load", "kind": "quantile", "event": "page_loaded", "property": "ms", "quantile": 0.9,
         "lower_is_better": True, "window_hours": 24},
        {"name": "spend_per_order", "kind": "ratio", "event": "payment_succeeded", "property": "amount",
         "denominator_event": "order_placed"},
        {"name": "ttv", "kind": "time_to_value"},
    ]))  # fmt: skip
    quantile, ratio, ttv = spec.secondary_metrics
    assert (quantile.quantile, quantile.window_hours, quantile.lower_is_better) == (0.9, 24.0, True)
    assert (ratio.denominator_event, ratio.property) == ("order_placed", "amount")
    assert (ttv.event, ttv.quantile) == (None, 0.5)


@pytest.mark.parametrize(
    ("guardrails", "field"),
    [
        ("error_rate", "guardrails"),
        ([{"margin": 0.1}], "guardrails[0]"),
        ([{"metric": "error_rate", "margin": 1.5}], "guardrails[0].margin"),
        ([{"metric": "error_rate", "margin": -0.1}], "guardrails[0].margin"),
        ([{"metric": "error_rate", "margin": "2%"}], "guardrails[0].margin"),
        ([{"metric": "crashes", "margin": 0.1}], "guardrails[0].metric"),
    ],
)
def test_bad_guardrails(guardrails: Any, field: str) -> None:
    assert refused(base(guardrails=guardrails)).field == field
    seed_field = field.replace("guardrails", "guardrail_metrics")
    assert refused(base(guardrail_metrics=guardrails)).field == seed_field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("coverage", 1.5), ("coverage", -0.1), ("coverage", "half"), ("coverage", float("nan")),
        ("alpha", 0), ("alpha", 1), ("alpha", 1.2), ("alpha", None),
        ("duration_days", 0), ("duration_days", 366), ("duration_days", 1.5), ("duration_days", True),
        ("hash_version", 3), ("engine", "bootstrap"), ("correction", "bonferroni"), ("cuped", "yes"),
        ("cuped_lookback_days", 0), ("min_units_per_variant", 1), ("minimum_detectable_effect", 0),
        ("type", "marketing"), ("mode", "bandit"), ("key", "-leading-dash"), ("key", "has space"),
        ("name", ""), ("name", None), ("hypothesis", 42), ("seed", ["s"]), ("personas", "agency"),
        ("completion_event", ""),
    ],
)  # fmt: skip
def test_bad_settings_name_their_field(field: str, value: Any) -> None:
    assert refused(base(**{field: value})).field == field


def test_bad_persona_entry_and_body() -> None:
    assert refused(base(personas=["agency", ""])).field == "personas[1]"
    assert refused(["not", "an", "object"]).field == "body"


def test_the_seeds_experiment_type_is_named_as_given() -> None:
    error = refused({**SEED_DEFINITION, "experiment_type": "marketing"})
    assert error.field == "experiment_type" and "onboarding" in error.message


def test_unknown_top_level_field_lists_the_allowed_ones() -> None:
    error = refused(base(colour="blue"))
    assert error.field == "colour"
    for allowed in ("variants", "primary_metrics", "success_metrics", "coverage", "duration_days"):
        assert allowed in error.message


def test_multivariate_needs_factors_and_ab_refuses_them() -> None:
    error = refused(base(mode="multivariate"))
    assert error.field == "factors" and "needs factors" in error.message
    error = refused(base(factors={"layout": ["list", "grid"]}))
    assert error.field == "factors" and "only multivariate" in error.message


@pytest.mark.parametrize(
    ("factors", "field"),
    [
        ({"layout": ["list"]}, "factors.layout"),
        ({"layout": "list,grid"}, "factors.layout"),
        ({"layout": ["list", "list"]}, "factors.layout"),
        ({"layout": ["list", ""]}, "factors.layout"),
        ({f"f{i}": ["a", "b"] for i in range(5)}, "factors"),
        ({"a": list("abcdefgh"), "b": list("abcdefgh"), "c": ["x", "y"]}, "factors"),
        (["layout"], "factors"),
    ],
)
def test_bad_factors(factors: Any, field: str) -> None:
    assert refused(base(mode="multivariate", factors=factors, variants=None)).field == field


def test_multivariate_cells_are_the_full_factorial_with_control_first() -> None:
    data = base(mode="multivariate", factors={"layout": ["list", "grid"], "copy": ["short", "long", "emoji"]})
    del data["variants"]
    spec = parse_spec(data)
    assert len(spec.variants) == 6 and math.isclose(math.fsum(spec.weights), 1.0)
    assert spec.variants[0].configuration == {"layout": "list", "copy": "short"}
    assert spec.variants[0].name == "layout=list|copy=short"
    assert {tuple(v.configuration.values()) for v in spec.variants} == {
        (a, b) for a in ("list", "grid") for b in ("short", "long", "emoji")
    }


def test_explicit_multivariate_variants_must_be_cells_of_the_factors() -> None:
    factors = {"layout": ["list", "grid"]}
    good = [{"name": "l", "weight": 0.5, "configuration": {"layout": "list"}},
            {"name": "g", "weight": 0.5, "configuration": {"layout": "grid"}}]  # fmt: skip
    assert [
        v.name for v in parse_spec(base(mode="multivariate", factors=factors, variants=good)).variants
    ] == ["l", "g"]
    bad = [good[0], {"name": "g", "weight": 0.5, "configuration": {"layout": "carousel"}}]
    error = refused(base(mode="multivariate", factors=factors, variants=bad))
    assert error.field == "variants[1].configuration.layout" and "list, grid" in error.message


def test_new_weights_and_coverage_are_validated() -> None:
    spec: ExperimentSpec = parse_spec(base())
    assert with_weights(spec, [0.2, 0.8], 0.5).weights == [0.2, 0.8]
    assert with_weights(spec, None, 0.5).coverage == 0.5
    cases: list[tuple[Any, Any, str]] = [
        ([0.5], None, "weights"), ("0.5,0.5", None, "weights"), ([0.5, 0.6], None, "weights"),
        ([0.5, -0.1], None, "weights[1]"), ([50, 50], None, "weights[0]"), (None, 2, "coverage"),
    ]  # fmt: skip
    for weights, coverage, field in cases:
        with pytest.raises(ExperimentInputError) as caught:
            with_weights(spec, weights, coverage)
        assert caught.value.field == field
    with pytest.raises(ExperimentInputError, match="not percentages"):
        with_weights(spec, [50, 50], None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "bad\x00name"}, "name"),
        ({"hypothesis": "lone \ud800 surrogate"}, "hypothesis"),
        ({"variants": [{"name": "a", "weight": 0.5, "configuration": {"copy": "x\x00"}},
                       {"name": "b", "weight": 0.5}]}, "variants[0].configuration.copy"),
    ],
)  # fmt: skip
def test_text_a_database_cannot_store_is_refused_by_field(overrides: dict[str, Any], field: str) -> None:
    assert refused(base(**overrides)).field == field
