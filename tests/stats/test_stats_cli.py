"""`feedbackloop stats analyze`: documented JSON in and out; bad input → exit 2 naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from feedbackloop.cli import app

runner = CliRunner()

CONVERSION: dict[str, Any] = {
    "metric": {"name": "conversion", "kind": "binomial", "cuped": False},
    "variants": [
        {"name": "control", "weight": 0.5, "n": 10000, "sum": 1000, "sum_squares": 1000},
        {"name": "B", "weight": 0.5, "n": 10000, "sum": 1100, "sum_squares": 1100},
    ],
    "analysis": {
        "engine": "frequentist",
        "difference": "relative",
        "alpha": 0.05,
        "sequential": False,
        "sequential_tuning": 5000,
        "one_sided": False,
        "prior": None,
    },
}
REVENUE: dict[str, Any] = {
    "metric": {"name": "revenue", "kind": "mean"},
    "variants": [
        {"name": "control", "n": 5000, "sum": 250000, "sum_squares": 40000000},
        {"name": "B", "n": 5000, "sum": 262000, "sum_squares": 42000000},
    ],
    "analysis": {"engine": "bayesian", "prior": {"mean": 0, "stddev": 0.3}},
}


def analyze(document: Any, *arguments: str) -> tuple[int, str]:
    result = runner.invoke(app, ["stats", "analyze", "-", *arguments], input=json.dumps(document))
    return result.exit_code, result.output


def test_single_metric_round_trip() -> None:
    code, output = analyze(CONVERSION)
    assert code == 0, output
    body = json.loads(output)
    assert set(body) == {"srm_p_value", "srm", "variants"}
    control, treatment = body["variants"]
    assert control == {"name": "control", "n": 10000, "mean": 0.1}
    assert set(treatment) == {
        "name",
        "n",
        "mean",
        "effect",
        "se",
        "ci",
        "p_value",
        "chance_to_win",
        "risk",
        "error",
    }
    assert (
        treatment["effect"] == pytest.approx(0.1)
        and treatment["p_value"] < 0.05
        and treatment["error"] is None
    )
    assert body["srm"] is False and body["srm_p_value"] == pytest.approx(1.0)


def test_bayesian_with_prior_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "revenue.json"
    path.write_text(json.dumps(REVENUE), encoding="utf-8")
    result = runner.invoke(app, ["stats", "analyze", str(path)])
    assert result.exit_code == 0, result.output
    treatment = json.loads(result.output)["variants"][1]
    assert (
        treatment["p_value"] is None and 0.5 < treatment["chance_to_win"] < 1 and len(treatment["risk"]) == 2
    )
    assert json.loads(result.output)["srm_p_value"] is None  # no weights given: no SRM check


def test_several_metrics_with_correction_and_table_format() -> None:
    document = {
        "metrics": [CONVERSION, {**CONVERSION, "metric": {"name": "activation", "kind": "binomial"}}],
        "correction": "holm",
    }
    code, output = analyze(document)
    assert code == 0, output
    body = json.loads(output)
    assert body["correction"] == "holm" and [m["metric"] for m in body["metrics"]] == [
        "conversion",
        "activation",
    ]
    single = json.loads(analyze(CONVERSION)[1])["variants"][1]
    corrected = body["metrics"][0]["variants"][1]
    assert corrected["p_value"] == pytest.approx(min(1.0, 2 * single["p_value"]))
    assert corrected["ci"][0] < single["ci"][0]  # wider interval at α/2
    code, table = analyze(document, "--format", "table")
    assert code == 0 and "conversion" in table and "activation" in table


def test_cannot_compute_is_reported_not_crashed() -> None:
    document = {
        **CONVERSION,
        "variants": [{"name": "control", "n": 100, "sum": 0}, {"name": "B", "n": 100, "sum": 0}],
    }
    code, output = analyze(document)
    assert code == 0
    assert json.loads(output)["variants"][1]["error"].startswith("cannot compute:")


def _with_variant(index: int, **changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(CONVERSION))
    document["variants"][index].update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"variants": []}, "metric: Field required"),
        (_with_variant(1, n=-5), "variants[1].n"),
        (_with_variant(0, weight=0.6), "variants[*].weight: weights sum to 1.1"),
        (_with_variant(1, sum=20000), "variants[1].sum"),
        (_with_variant(1, sum_squares=5), "variants[1].sum_squares"),
        (_with_variant(1, name="control"), "variants[*].name"),
        (_with_variant(1, colour="red"), "variants[1].colour: Extra inputs are not permitted"),
        ({**CONVERSION, "metric": {"name": "m", "kind": "median"}}, "metric.kind"),
        ({**CONVERSION, "metric": {"name": "r", "kind": "ratio"}}, "variants[0].denominator_sum: required"),
        ({**CONVERSION, "analysis": {"alpha": 2}}, "analysis.alpha"),
        ({"metrics": [CONVERSION], "correction": "bonferroni"}, "correction"),
        ({"metrics": []}, "metrics: List should have at least 1 item"),
        ([1, 2], "document"),
    ],
)
def test_bad_documents_exit_2_naming_the_field(document: Any, fragment: str) -> None:
    code, output = analyze(document)
    assert code == 2
    assert fragment in output
    assert "Traceback" not in output


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["stats", "analyze", str(tmp_path / "missing.json")]).exit_code == 2
    broken = runner.invoke(app, ["stats", "analyze", "-"], input="{nope")
    assert broken.exit_code == 2 and "not valid JSON" in broken.output
    bad_format = runner.invoke(app, ["stats", "analyze", "-", "--format", "xml"], input="{}")
    assert bad_format.exit_code == 2 and "--format" in bad_format.output


@pytest.mark.parametrize(
    "text", ['{"a": ' * 3000 + "1" + "}" * 3000, '{"n": ' + "9" * 5000 + "}", '{"metric": NaN}'],
    ids=["deep", "digits", "NaN"],
)  # fmt: skip
def test_json_python_cannot_parse_exits_2(text: str) -> None:
    result = runner.invoke(app, ["stats", "analyze", "-"], input=text)
    assert result.exit_code == 2 and "not valid JSON" in result.output and "Traceback" not in result.output
