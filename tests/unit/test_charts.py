"""tools.charts: the SVG must parse as XML, hold one line per run of data, escape every text and never leak
NaN into a coordinate — whatever the series look like (empty, one point, all None, flat, gappy, hostile names)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.charts import DASHES, PALETTE, format_day, format_value, line_chart, sparkline

SVG = "{http://www.w3.org/2000/svg}"
DAY0 = date(2026, 2, 1)
HOSTILE = "<script>alert(1)</script> & \"quotes\" 'too'"


def days(values: list[float | None], start: date = DAY0) -> list[tuple[date, float | None]]:
    return [(start + timedelta(days=index), value) for index, value in enumerate(values)]


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # raises on anything that is not well-formed XML (unescaped text included)


def find(root: ET.Element, tag: str, css_class: str | None = None) -> list[ET.Element]:
    found = root.iter(SVG + tag)
    return [e for e in found if css_class is None or css_class in (e.get("class") or "").split()]


def series_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {group.get("data-series", ""): group for group in find(root, "g", "series")}


def legend_texts(root: ET.Element) -> list[str]:
    return [item.findtext(SVG + "text") or "" for item in find(root, "g", "legend-item")]


def coordinates(root: ET.Element) -> list[float]:
    """Every number that places something: polyline points and the position/size attributes of all elements."""
    numbers: list[float] = []
    for element in root.iter():
        if element.tag == SVG + "polyline":
            numbers += [float(n) for pair in element.get("points", "").split() for n in pair.split(",")]
        for attribute in ("cx", "cy", "r", "x", "y", "x1", "x2", "y1", "y2", "width", "height"):
            if element.get(attribute) is not None:
                numbers.append(float(element.get(attribute, "")))
    return numbers


def assert_coordinates_inside(markup: str) -> None:
    root = parse(markup)
    width, height = float(root.get("width", "")), float(root.get("height", ""))
    for number in coordinates(root):
        assert math.isfinite(number)
        assert -1 <= number <= max(width, height) + 1


# ---------------------------------------------------------------- line chart structure


def test_one_polyline_and_one_legend_entry_per_series() -> None:
    series = {
        name: days([0.4 + i * 0.01 for i in range(30)]) for name in ("solo", "network", "agency", "brand")
    }
    root = parse(line_chart(series, unit="ratio", y_label="Renewal success"))

    groups = series_groups(root)
    assert list(groups) == ["solo", "network", "agency", "brand"]
    assert [len(find(group, "polyline")) for group in groups.values()] == [1, 1, 1, 1]
    assert legend_texts(root) == ["solo", "network", "agency", "brand"]


def test_colours_and_dashes_follow_series_order_and_cycle_past_the_palette() -> None:
    names = [f"p{i}" for i in range(len(PALETTE) + 2)]
    root = parse(line_chart({name: days([1.0, 2.0]) for name in names}))

    strokes = [find(group, "polyline")[0].get("stroke") for group in series_groups(root).values()]
    assert strokes == [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    first_dash = find(series_groups(root)["p1"], "polyline")[0].get("stroke-dasharray")
    assert first_dash == DASHES[1]


def test_none_values_leave_gaps_and_a_lone_day_is_drawn_as_a_dot() -> None:
    values: list[float | None] = [1.0, 2.0, None, 3.0, 4.0, 5.0, None, 6.0, None]
    group = series_groups(parse(line_chart({"a": days(values)})))["a"]

    polylines = find(group, "polyline")
    assert [len(p.get("points", "").split()) for p in polylines] == [2, 3]
    lone_dots = [c for c in find(group, "circle") if c.get("r") == "3"]
    assert len(lone_dots) == 1  # the 6.0 between two gaps


def test_empty_mapping_renders_a_no_data_chart() -> None:
    markup = line_chart({}, title="Error rate per day")
    root = parse(markup)
    assert find(root, "polyline") == []
    assert find(root, "g", "legend") == []
    assert "No data in this window" in [t.text for t in find(root, "text", "no-data")]
    assert root.get("aria-label") == "Error rate per day"


def test_all_none_series_shows_no_data_and_says_so_in_the_legend() -> None:
    root = parse(line_chart({"agency": days([None, None, None]), "empty": []}))
    assert find(root, "polyline") == []
    assert find(root, "text", "no-data")
    assert legend_texts(root) == ["agency (no data)", "empty (no data)"]


def test_single_point_is_centred_without_dividing_by_zero() -> None:
    markup = line_chart({"only": [(DAY0, 42.0)]}, unit="minutes", width=400)
    assert_coordinates_inside(markup)
    dots = [c for c in find(series_groups(parse(markup))["only"], "circle") if c.get("r") == "3"]
    assert len(dots) == 1
    x_axis = find(parse(markup), "g", "x-axis")[0]
    assert [t.text for t in find(x_axis, "text")] == ["Feb 1"]


def test_constant_values_get_a_band_and_a_flat_line() -> None:
    for value in (0.0, 0.5, -3.0, 1e9):
        markup = line_chart({"flat": days([value] * 10)}, unit="ratio")
        assert_coordinates_inside(markup)
        points = find(parse(markup), "polyline")[0].get("points", "").split()
        assert len({pair.split(",")[1] for pair in points}) == 1


def test_points_are_drawn_in_day_order_and_duplicate_days_do_not_break_the_chart() -> None:
    shuffled = [(DAY0 + timedelta(days=2), 3.0), (DAY0, 1.0), (DAY0 + timedelta(days=1), 2.0), (DAY0, None)]
    root = parse(line_chart({"a": shuffled}))
    xs = [float(pair.split(",")[0]) for pair in find(root, "polyline")[0].get("points", "").split()]
    assert xs == sorted(xs)
    assert root.findtext(SVG + "desc", "").endswith("a: latest 3.00.")


def test_ticks_crossing_zero_have_no_negative_zero() -> None:
    y_axis = find(parse(line_chart({"a": days([-0.3, 0.6])}, unit="ratio")), "g", "y-axis")[0]
    labels = [t.text for t in find(y_axis, "text")]
    assert "0%" in labels and "-0%" not in labels


def test_nan_and_infinity_are_gaps_not_coordinates() -> None:
    markup = line_chart({"a": days([1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, 4.0])})
    assert_coordinates_inside(markup)
    assert len(find(parse(markup), "polyline")) == 0  # every defined value is alone between gaps
    assert len([c for c in find(parse(markup), "circle") if c.get("r") == "3"]) == 4


# ---------------------------------------------------------------- text, ticks, accessibility


def test_every_text_is_escaped() -> None:
    markup = line_chart({HOSTILE: days([1.0, 2.0])}, y_label=HOSTILE, title=HOSTILE, unit="hours")
    root = parse(markup)

    assert "<script>" not in markup
    assert legend_texts(root) == [HOSTILE[:31] + "…"]  # long names are shortened on screen…
    assert find(root, "g", "legend-item")[0].findtext(SVG + "title") == HOSTILE  # …and whole in the tooltip
    assert list(series_groups(root)) == [HOSTILE]
    assert root.get("aria-label") == HOSTILE
    assert root.findtext(SVG + "title") == HOSTILE


def test_control_characters_are_dropped_so_the_svg_stays_valid_xml() -> None:
    root = parse(line_chart({"bell\x07 persona\x00": days([1.0, 2.0])}))
    assert legend_texts(root) == ["bell persona"]


def test_accessible_title_label_and_description() -> None:
    root = parse(line_chart({"solo": days([0.5, 0.6])}, unit="ratio", title="Renewal success per day"))
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Renewal success per day"
    assert root[0].tag == SVG + "title"
    assert root.findtext(SVG + "desc") == "Daily values from Feb 1 to Feb 2. solo: latest 60.0%."


def test_points_carry_a_hover_title_with_the_formatted_value() -> None:
    group = series_groups(parse(line_chart({"solo": days([0.5, 0.625])}, unit="ratio")))["solo"]
    assert [c.findtext(SVG + "title") for c in find(group, "circle")] == [
        "solo · Feb 1: 50.0%",
        "solo · Feb 2: 62.5%",
    ]


@pytest.mark.parametrize(
    ("unit", "values", "expected_ticks"),
    [
        ("ratio", [0.41, 0.69], ["40%", "50%", "60%", "70%"]),
        ("usd", [1000.0, 2900.0], ["$1,000", "$1,500", "$2,000", "$2,500", "$3,000"]),
        ("hours", [1.2, 2.9], ["1.0 h", "1.5 h", "2.0 h", "2.5 h", "3.0 h"]),
        ("seconds", [600.0, 1500.0], ["10 min", "15 min", "20 min", "25 min"]),  # plotted in minutes
        ("ratio", [0.0, 0.0], ["0%", "25%", "50%", "75%", "100%"]),  # flat zero: a band above, none below
    ],
)
def test_value_ticks_are_round_and_formatted_by_unit(
    unit: str, values: list[float], expected_ticks: list[str]
) -> None:
    y_axis = find(parse(line_chart({"a": days(list(values))}, unit=unit)), "g", "y-axis")[0]
    assert [t.text for t in find(y_axis, "text") if t.get("text-anchor") == "end"] == expected_ticks


def test_date_ticks_are_weekly_over_a_month() -> None:
    x_axis = find(parse(line_chart({"a": days([1.0] * 30)})), "g", "x-axis")[0]
    assert [t.text for t in find(x_axis, "text")] == ["Feb 1", "Feb 8", "Feb 15", "Feb 22", "Mar 1"]


def test_legend_wraps_onto_rows_inside_the_chart() -> None:
    names = [f"persona with a long name {i}" for i in range(6)]
    markup = line_chart({name: days([1.0, 2.0]) for name in names}, width=480, height=320)
    assert_coordinates_inside(markup)
    rows = {item.get("transform", "").split(",")[1] for item in find(parse(markup), "g", "legend-item")}
    assert len(rows) > 1


def test_same_input_same_output() -> None:
    series = {"a": days([0.1, None, 0.3]), "b": days([0.2, 0.25, 0.2])}
    assert line_chart(series, unit="ratio") == line_chart(dict(series), unit="ratio")
    assert sparkline([1.0, 2.0, None, 3.0]) == sparkline([1.0, 2.0, None, 3.0])


def test_no_script_or_external_reference_in_the_markup() -> None:
    markup = line_chart({"a": days([1.0, 2.0])}) + sparkline([1.0, 2.0])
    assert (
        "<script" not in markup
        and "href" not in markup
        and "url(" not in markup
        and "on" + "load" not in markup
    )


@pytest.mark.parametrize(
    "values",
    [[0.0, 5e-324], [1e-310, 2e-310], [0.1, 0.1 + 1e-17], [-1e15, 1e15], [1e300, 2e300], [1e-12, 3e-12]],
)
def test_extreme_magnitudes_keep_the_axis_computable(values: list[float]) -> None:
    assert_coordinates_inside(line_chart({"a": days(list(values))}))
    assert_coordinates_inside(sparkline(values))


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=40),
        st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=40),
        max_size=5,
    )
)
def test_any_series_gives_valid_svg_with_finite_coordinates(raw: dict[str, list[float | None]]) -> None:
    assert_coordinates_inside(line_chart({name: days(values) for name, values in raw.items()}, unit="ratio"))


# ---------------------------------------------------------------- sparkline


def test_sparkline_draws_runs_and_marks_the_latest_value() -> None:
    root = parse(sparkline([1.0, 2.0, None, 3.0, 4.0, None], unit="hours", label="Resolution time"))
    assert len(find(root, "polyline")) == 2
    assert root.get("aria-label") == "Resolution time: 1.0 h to 4.0 h"
    latest = find(root, "circle")[-1]
    last_point = find(root, "polyline")[-1].get("points", "").split()[-1]
    assert f"{latest.get('cx')},{latest.get('cy')}" == last_point


@pytest.mark.parametrize("values", [[], [None, None], [5.0], [2.0, 2.0, 2.0], [math.nan, 1.0]])
def test_sparkline_edge_cases_are_valid_and_finite(values: list[float | None]) -> None:
    markup = sparkline(values, label="<b>x</b>")
    assert_coordinates_inside(markup)
    assert parse(markup).get("aria-label", "").startswith("<b>x</b>: ")


def test_sparkline_without_data_says_so() -> None:
    root = parse(sparkline([None]))
    assert root.get("aria-label") == "Trend: no data"
    assert find(root, "polyline") == []


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.4234, "ratio", "42.3%"),
        (1.012, "ratio", "101.2%"),
        (2340.0, "usd", "$2,340"),
        (0.42, "usd", "$0.42"),
        (-12.5, "usd", "-$12.50"),
        (14.25, "hours", "14.2 h"),
        (18.5, "minutes", "18.5 min"),
        (45.0, "seconds", "45 s"),
        (1110.0, "seconds", "18.5 min"),
        (9000.0, "seconds", "2.5 h"),
        (32.0, "score", "32"),
        (0.183, "per_user_30d", "0.18"),
        (5.44, "x", "5.4×"),
        (1234.5678, "something_new", "1,234.57"),
        (None, "ratio", "—"),
        (math.nan, "usd", "—"),
        (math.inf, "hours", "—"),
    ],
)
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


def test_format_day_does_not_depend_on_the_locale() -> None:
    assert format_day(date(2026, 3, 7)) == "Mar 7"
