"""How a retro writes numbers, and how the grounding validator reads them back: the formatters and the parser
live together because the validator must accept exactly what the formatters produce.

Writing (the rules synthesiser, the LLM prompt's signal rows):
- `format_number`: integers exactly, with thousands separators ("1,234"); any other value rounded to 3
  significant digits, trailing zeros after the point dropped, never an exponent ("0.362", "0.12", "12.3", "1,230").
- `format_change`: a relative change as a signed percent with 1 decimal ("+200.0%", "-12.5%"); a change in a
  difference unit (`change_is_relative` is False) as a signed number ("+4.2").
- `format_percent`: a fraction as a percent with 1 decimal (0.97 → "97.0%").
- `format_p_value`: "p=0.003" (3 decimals), "p<0.001" below that.

Reading (`extract_numbers`, `is_grounded`): every number in a text must match a number of a cited signal
(`Signal.citable_numbers`, plus value − baseline and value ÷ baseline) within the precision it is printed with:
"12.3" stands for 12.25–12.35; trailing zeros of an integer count as significant up to the third significant
digit, so "1,230" stands for 1,225–1,235 and "200" for 199.5–200.5. Units: "25.3%" means 0.253; "-0.4 pp" or
"percentage points" a rate difference of -0.004; "points" a difference in the value's own unit; "3.0x" or "3×"
a multiple (value ÷ baseline, 1 + change, or a cited number); "1.2k" is 1,200. "p=0.003" must match a cited
p-value, and "p<0.05" must hold for one. A written sign must match the sign of the evidence; an unsigned number
matches either. Not numbers: identifiers (S3, v1.4.0, sprint-2024-01, p90, error_rate, 30d_retention), semantic
versions, ISO dates, and the identifiers of cited signals (metric, persona, subject, attributed_to, unit, string
facts) — bare when they contain a letter, in backticks always (so a version "42" is written `42`). Everything
else counts, including list ordinals ("1)" is the number 1) and ordinals like "3rd": prefer bullets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tools.retro.model import Signal

DIFFERENCE_UNITS = frozenset({"pp", "points", "difference"})
PERCENT_UNITS = frozenset({"percent", "pct", "%"})
POINTS_SCALE = 100.0


# ---------------------------------------------------------------- writing


def _finite(value: float | int | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_number(value: float | int | None) -> str | None:
    """Integers exactly with thousands separators; otherwise 3 significant digits, never an exponent."""
    number = _finite(value)
    if number is None:
        return None
    if number.is_integer():
        return f"{int(number):,}"
    places = 2 - math.floor(math.log10(abs(number)))
    written = f"{round(number, places):,.{max(places, 0)}f}"
    return written.rstrip("0").rstrip(".") if "." in written else written


def format_change(change: float | None, *, relative: bool = True) -> str | None:
    """A relative change as a signed percent with 1 decimal (0.25 → "+25.0%"); a difference as a signed number."""
    number = _finite(change)
    if number is None:
        return None
    if relative:
        return f"{number * 100:+,.1f}%"
    written = format_number(number)
    return written if number < 0 else f"+{written}"


def format_percent(fraction: float | None) -> str | None:
    """A fraction as a percent with 1 decimal: 0.97 → "97.0%"."""
    number = _finite(fraction)
    return None if number is None else f"{number * 100:,.1f}%"


def format_p_value(p_value: float | None) -> str | None:
    number = _finite(p_value)
    if number is None:
        return None
    return "p<0.001" if number < 0.001 else f"p={number:.3f}"


def change_is_relative(signal: Signal) -> bool:
    """`Signal.change` is relative unless its unit is a difference unit: "pp", "points" or "difference", or a name
    ending in "_points" / "_pp" (tools.retro.signals writes NPS changes in "nps_points"); facts["change_unit"]
    may say so too."""
    return not any(_is_difference_unit(u) for u in (signal.unit, signal.facts.get("change_unit")))


def _is_difference_unit(unit: object) -> bool:
    return isinstance(unit, str) and (unit in DIFFERENCE_UNITS or unit.endswith(("_points", "_pp")))


def relative_effect(signal: Signal) -> float | None:
    """The size of a change as a fraction, for impact thresholds: |change| when relative; a difference in points
    or percentage points ÷ 100 (a score spans 100 points: tools.retro.signals' NPS effect floor is
    effect_floor × 100 points); any other difference |value − baseline| ÷ |baseline| when computable."""
    if signal.change is not None and math.isfinite(signal.change):
        if change_is_relative(signal):
            return abs(signal.change)
        units = (signal.unit, signal.facts.get("change_unit"))
        if any(isinstance(u, str) and u.endswith(("points", "pp")) for u in units):
            return abs(signal.change) / POINTS_SCALE
    if signal.value is not None and signal.baseline:
        effect = abs(signal.value - signal.baseline) / abs(signal.baseline)
        return effect if math.isfinite(effect) else None
    return None


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class WrittenNumber:
    """A number as a text states it. `value` and `tolerance` are in the written unit (percent for "%", "pp")."""

    text: str
    value: float
    tolerance: float
    kind: str  # plain | percent | pp | points | multiple | p_equals | p_below | p_above
    signed: bool = False


_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_SEMVER = re.compile(r"(?<![\w.])[vV]?\d+(?:\.\d+){2,}(?:[-+][0-9A-Za-z][0-9A-Za-z.-]*)?(?![\w])(?!\.\d)")
_P_VALUE = re.compile(rf"(?<![\w.])[pP]\s*(?P<op><=|>=|≤|≥|=|<|>)\s*(?P<num>{_NUM})(?P<exp>[eE][+\-−]?\d+)?")
_WORD_WITH_DIGIT = re.compile(r"(?<![\w.])[A-Za-z_](?=[\w.-]*\d)\w*(?:[-.]\w+)*")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(
    rf"(?P<sign>(?<![\w)\]])[+\-−–])?(?<![\w.])\$?(?P<num>{_NUM})(?P<exp>[eE][+\-−]?\d+)?"
    r"(?P<suffix>\s?%|\s?(?:pp|percentage\s+points?|percent|per\s+cent|points?|pts)(?![\w])|\s?×"
    r"|[xX](?![\w])|[kK](?![\w]))?(?P<glued>[A-Za-z_]\w*)?"
)
_SUFFIX_KIND = {"%": "percent", "percent": "percent", "per cent": "percent", "pp": "pp", "percentage point": "pp",
                "percentage points": "pp", "point": "points", "points": "points", "pts": "points",
                "×": "multiple", "x": "multiple"}  # fmt: skip
_MASK = " ID "


def extract_numbers(text: str, identifiers: Iterable[str] = ()) -> list[WrittenNumber]:
    """Every number `text` states (see the module docstring for what is not a number)."""
    if not _DIGIT.search(text):
        return []
    text = _mask_identifiers(text, identifiers)
    text = _SEMVER.sub(_MASK, _ISO_DATE.sub(_MASK, text))
    found: list[WrittenNumber] = []
    for match in _P_VALUE.finditer(text):
        value, tolerance = _parse(match.group("num"), match.group("exp"))
        op = match.group("op")
        kind = "p_equals" if op == "=" else ("p_below" if op in {"<", "<=", "≤"} else "p_above")
        found.append(WrittenNumber(match.group(0), value, tolerance, kind))
    text = _P_VALUE.sub(_MASK, text)
    text = _WORD_WITH_DIGIT.sub(_MASK, text)
    for match in _NUMBER.finditer(text):
        glued = match.group("glued")
        if glued and ("_" in glued or any(c.isdigit() for c in glued)):
            continue  # "30d_retention": an identifier that starts with digits
        value, tolerance = _parse(match.group("num"), match.group("exp"))
        suffix = " ".join((match.group("suffix") or "").split()).lower()
        if suffix == "k":
            value, tolerance = value * 1000, tolerance * 1000
        sign = match.group("sign")
        if sign and sign != "+":
            value = -value
        kind = _SUFFIX_KIND.get(suffix, "plain")
        found.append(WrittenNumber(match.group(0).strip(), value, tolerance, kind, signed=bool(sign)))
    return found


def _mask_identifiers(text: str, identifiers: Iterable[str]) -> str:
    for identifier in sorted({i for i in identifiers if i and i.strip()}, key=len, reverse=True):
        if identifier not in text:
            continue
        text = text.replace(f"`{identifier}`", _MASK)
        if any(c.isalpha() for c in identifier):
            text = _mask_bare(text, identifier)
    return text


def _mask_bare(text: str, identifier: str) -> str:
    """`identifier` replaced where it stands alone: not inside a longer word, version or hyphenated name."""
    parts: list[str] = []
    start = 0
    while (found := text.find(identifier, start)) >= 0:
        end = found + len(identifier)
        before = text[found - 1] if found else " "
        after = text[end : end + 2]
        glued = _is_word(before) or before in ".-" or (after[:1] and _is_word(after[0]))
        glued = glued or (len(after) == 2 and after[0] in ".-" and _is_word(after[1]))
        parts.append(text[start:found] + (identifier if glued else _MASK))
        start = end
    return "".join(parts) + text[start:]


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _parse(number: str, exponent: str | None) -> tuple[float, float]:
    """The value and the half-width of the interval its printed precision stands for."""
    digits = number.replace(",", "")
    value = float(digits)
    if "." in digits:
        tolerance = 0.5 * 10 ** -len(digits.split(".")[1])
    else:  # trailing zeros are read as significant up to the third significant digit: "1,230" is 1225–1235
        trailing_zeros = len(digits) - len(digits.rstrip("0")) if value else 0
        tolerance = 0.5 * 10 ** min(trailing_zeros, max(len(digits.lstrip("0")) - 3, 0))
    if exponent:
        scale = 10 ** int(exponent[1:].replace("−", "-"))
        value, tolerance = value * scale, tolerance * scale
    return value, tolerance + 1e-9 * max(1.0, abs(value))


def identifiers_of(signals: Iterable[Signal]) -> set[str]:
    """Names a text may mention without them being read as numbers: the cited signals' own identifiers."""
    names: set[str] = set()
    for signal in signals:
        own = (signal.id, signal.metric, signal.persona, signal.subject, signal.attributed_to, signal.unit)
        names.update(x for x in own if x)
        names.update(x for x in signal.facts.values() if isinstance(x, str) and x)
    return names


def candidates(signal: Signal, kind: str) -> list[float]:
    """The numbers a written number of `kind` may stand for, in the written unit."""
    base = [x for x in signal.citable_numbers() if math.isfinite(x)]
    difference = (
        [signal.value - signal.baseline] if signal.value is not None and signal.baseline is not None else []
    )
    if kind in {"plain", "points"}:
        return base + difference
    if kind in {"percent", "pp"}:
        scaled = [100 * x for x in base + difference]
        return scaled + base if kind == "percent" and signal.unit in PERCENT_UNITS else scaled
    if kind == "multiple":
        multiples = list(base)
        if signal.value is not None and signal.baseline:
            multiples.append(signal.value / signal.baseline)
        if signal.change is not None and change_is_relative(signal):
            multiples.append(1 + signal.change)
        return multiples
    return [signal.p_value] if signal.p_value is not None else []


def is_grounded(written: WrittenNumber, signals: Sequence[Signal]) -> bool:
    """Whether a cited signal has a number that `written` states (within its printed precision)."""
    if written.kind in {"p_below", "p_above"}:
        p_values = [s.p_value for s in signals if s.p_value is not None]
        if written.kind == "p_below":  # a bound is exact: "p<0.001" does not stand for 0.0012
            return any(p <= written.value for p in p_values)
        return any(p >= written.value for p in p_values)
    for signal in signals:
        for candidate in candidates(signal, written.kind):
            target = candidate if written.signed else abs(candidate)
            stated = written.value if written.signed else abs(written.value)
            if abs(stated - target) <= written.tolerance:
                return True
    return False


def ungrounded_numbers(text: str, signals: Sequence[Signal]) -> list[str]:
    """The numbers in `text` that no signal in `signals` stands for, as written."""
    numbers = extract_numbers(text, identifiers_of(signals))
    return [n.text for n in numbers if not is_grounded(n, signals)]
