"""The body of `feedbackloop stats analyze`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from feedbackloop.stats_document import StatsDocumentError, analyze_document, results_for_table
from tools.stats import MetricResult


def _read(file: str) -> Any:
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def run_stats_analyze(file: str, output_format: str, *, console: Console, errors: Console) -> int:
    try:
        data = _read(file)
    except OSError as exc:
        errors.print(f"[red]error:[/] FILE {file}: {exc.strerror}")
        return 2
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        errors.print(f"[red]error:[/] FILE {file}: not valid JSON ({exc})")
        return 2
    except RecursionError:
        errors.print(f"[red]error:[/] FILE {file}: not valid JSON (nested too deeply)")
        return 2
    except ValueError as exc:  # NaN/Infinity, integers beyond Python's digit limit
        errors.print(f"[red]error:[/] FILE {file}: not valid JSON ({exc})")
        return 2
    try:
        if output_format == "json":
            print(json.dumps(analyze_document(data), indent=2))
        else:
            for result in results_for_table(data):
                console.print(_table(result))
    except StatsDocumentError as exc:
        errors.print(f"[red]error:[/] {exc}")
        return 2
    return 0


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _table(result: MetricResult) -> Table:
    srm = f"SRM p = {_number(result.srm_p_value)}" + (
        " [red](sample-ratio mismatch!)[/]" if result.srm else ""
    )
    table = Table(
        "variant", "n", "mean", "effect", "interval", "p-value", "chance to win", "risk (ctrl, var)",
        title=f"{result.metric}   {srm if result.srm_p_value is not None else ''}",
    )  # fmt: skip
    table.add_row(
        result.control.name, f"{result.control.n:,}", _number(result.control.mean), "control", "", "", "", ""
    )
    for v in result.variants:
        if v.error:
            table.add_row(v.name, f"{v.n:,}", _number(v.mean), f"[yellow]{v.error}[/]", "", "", "", "")
            continue
        interval = f"[{_number(v.ci[0]) if v.ci else '—'}, {_number(v.ci[1]) if v.ci else '—'}]"
        risk = f"{_number(v.risk[0], 3)}, {_number(v.risk[1], 3)}" if v.risk else "—"
        table.add_row(
            v.name, f"{v.n:,}", _number(v.mean), _number(v.effect), interval, _number(v.p_value),
            _number(v.chance_to_win, 3), risk,
        )  # fmt: skip
    return table
