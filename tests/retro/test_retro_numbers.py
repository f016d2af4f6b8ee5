"""The formatters, and the reader the grounding validator uses: what counts as a number and what it may mean."""

from __future__ import annotations

import pytest

from tests.retro.support import metric_change, signal
from tools.retro.numbers import (
    extract_numbers,
    format_change,
    format_number,
    format_p_value,
    format_percent,
    ungrounded_numbers,
)

ERRORS = metric_change(
    "S1", "error_rate", "podcast_network", 0.36, 0.12, 0.0002, n=1234, attributed_to="v1.4.0"
)
ACCURACY = metric_change("S2", "report_accuracy", "agency", 0.912, 0.916, 0.03, n=15230)


@pytest.mark.parametrize(
    ("value", "written"),
    [(0.12, "0.12"), (0.1204, "0.12"), (0.36123, "0.361"), (12.345, "12.3"), (1234.5, "1,230"), (1234.0, "1,234"),
     (2.0, "2"), (123456.7, "123,000"), (0.000123456, "0.000123"), (-3.14159, "-3.14"), (9.996, "10"),
     (1e-7, "0.0000001"), (0, "0"), (None, None), (float("nan"), None)],
)  # fmt: skip
def test_format_number(value: float | None, written: str | None) -> None:
    assert format_number(value) == written


def test_other_formatters() -> None:
    assert format_change(2.0) == "+200.0%"
    assert format_change(-0.125) == "-12.5%"
    assert format_change(4.2, relative=False) == "+4.2"
    assert format_change(None) is None
    assert format_percent(0.97) == "97.0%"
    assert format_p_value(0.0031) == "p=0.003"
    assert format_p_value(0.0002) == "p<0.001"
    assert format_p_value(0.5) == "p=0.500"


def test_identifiers_dates_and_versions_are_not_numbers() -> None:
    text = "S3 and I2 after v1.4.0 (1.4.0) in sprint-2024-01 on 2024-01-15T10:00:00Z: p90, 30d_retention, Q3"
    assert extract_numbers(text) == []


def test_what_counts_and_how_it_is_read() -> None:
    found = {n.text: (n.kind, n.value, n.signed) for n in extract_numbers(
        "rose 57% (+200.0%, p=0.003, n=1,234), 3.0x, 3×, -0.4 pp, 12 points, 1.2k users, 10–20%, 1e-4, 3rd, $1,240"
    )}  # fmt: skip
    assert found["57%"] == ("percent", 57.0, False)
    assert found["+200.0%"] == ("percent", 200.0, True)
    assert found["p=0.003"] == ("p_equals", 0.003, False)
    assert found["1,234"] == ("plain", 1234.0, False)
    assert found["3.0x"][0] == found["3×"][0] == "multiple"
    assert found["-0.4 pp"] == ("pp", -0.4, True)
    assert found["12 points"][0] == "points"
    assert found["1.2k"][1] == 1200.0
    assert found["10"][0] == "plain" and found["20%"][0] == "percent"
    assert found["1e-4"][1] == pytest.approx(0.0001)
    assert found["3rd"][1] == 3.0  # ordinals count: strict
    assert found["$1,240"][1] == 1240.0


@pytest.mark.parametrize(
    "text",
    ["error_rate rose +200.0% from 0.12 to 0.36", "errors rose 200%", "errors tripled to 3.0x (3×)",
     "error_rate 0.360 vs 0.120, p<0.001, p=0.0002, n=1,234 (1.23k) after v1.4.0", "up 0.24 (+24.0 pp)",
     "310 users affected", "error rate up +0.24 points", "a 2x rise"],
)  # fmt: skip
def test_grounded_statements(text: str) -> None:
    assert ungrounded_numbers(text, [ERRORS]) == []


@pytest.mark.parametrize(
    ("text", "bad"),
    [("errors rose 57%", ["57%"]), ("errors rose -200.0%", ["-200.0%"]), ("p=0.01", ["p=0.01"]),
     ("p<0.0001", ["p<0.0001"]), ("1. fix it", ["1"]), ("error_rate rose to 0.5", ["0.5"]),
     ("n=1,200", ["1,200"]), ("4x more errors", ["4x"]), ("since 2023", ["2023"])],
)  # fmt: skip
def test_invented_numbers(text: str, bad: list[str]) -> None:
    assert ungrounded_numbers(text, [ERRORS]) == bad


def test_percentage_points_for_rate_differences() -> None:
    assert ungrounded_numbers("accuracy fell 0.4 pp (-0.4 pp) to 91.2% from 91.6%", [ACCURACY]) == []
    assert ungrounded_numbers("accuracy fell +0.4 pp", [ACCURACY]) == ["+0.4 pp"]
    assert ungrounded_numbers("accuracy fell 4 pp", [ACCURACY]) == ["4 pp"]


def test_identifiers_of_cited_signals_are_masked() -> None:
    build = signal("S1", "deployment", subject="42")
    experiment = signal("S2", "experiment_result", subject="2024-onboarding", change=0.1, value=1.0)
    assert ungrounded_numbers("deployment `42` shipped", [build]) == []
    assert ungrounded_numbers("deployment 42 shipped", [build]) == ["42"]  # a bare number stays a number
    assert ungrounded_numbers("experiment 2024-onboarding won (+10.0%)", [experiment]) == []
    assert ungrounded_numbers("`57%`", [build]) == ["57%"]  # backticks hide only a cited identifier
