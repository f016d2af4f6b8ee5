"""A venv of its own for GrowthBook's gbstats 0.8.0, and calls into it: the reference our stats engine is checked
against.

gbstats pins numpy<2, pandas<2 and scipy<2, which the project's own .venv cannot take, so it lives in
`/work/main/.venv-gbstats` (any path via FEEDBACKLOOP_GBSTATS_VENV) and is driven as a subprocess running
`gbstats_runner.py`: JSON on stdin, JSON on stdout. Standard library only: this module runs under the project's
Python (tests, bench/stats.py).

    python = ensure_gbstats_venv()          # None when it cannot be had; gbstats_unavailable_reason() says why
    results = run_gbstats(cases)            # one {"variants": [...], "error": ...} per case
    seconds = time_gbstats(cases, repeat=5)  # wall-clock per repetition, measured inside the runner

Schemas and the gbstats conventions are in tests/reference/README.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VENV_VARIABLE = "FEEDBACKLOOP_GBSTATS_VENV"
DISABLE_VARIABLE = "FEEDBACKLOOP_GBSTATS_DISABLE"
DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-gbstats"
RUNNER = Path(__file__).resolve().with_name("gbstats_runner.py")

# gbstats 0.8.0 asks for numpy>=1.23.4,<2, pandas>=1.5.1,<2, scipy>=1.9.2,<2, pydantic>=2.5.3,<3 and nbformat<6.
# Pinned to releases with CPython 3.11 wheels, so the install never compiles and the numbers never drift.
REQUIREMENTS = (
    "gbstats==0.8.0",
    "numpy==1.26.4",
    "scipy==1.13.1",
    "pandas==1.5.3",
    "pydantic==2.7.4",
)
MARKER_NAME = ".feedbackloop-gbstats-ready"
VENV_TIMEOUT_SECONDS = 120
INSTALL_TIMEOUT_SECONDS = 600
IMPORT_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 600

_python: Path | None = None
_unavailable_reason: str | None = None


class GbstatsUnavailableError(RuntimeError):
    """The gbstats venv cannot be had here; the message says why (for pytest.skip)."""


def venv_path() -> Path:
    configured = os.environ.get(VENV_VARIABLE)
    return Path(configured).expanduser().resolve() if configured else DEFAULT_VENV


def _marker_text(python_version: str) -> str:
    return json.dumps({"python": python_version, "requirements": list(REQUIREMENTS)}, sort_keys=True)


def _base_python() -> str:
    """The interpreter that makes the venv: the real CPython behind the running one (not its venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


@contextlib.contextmanager
def _lock(venv: Path) -> Iterator[None]:
    """One creator at a time across processes (pytest workers, bench) for the same venv path."""
    digest = hashlib.sha256(str(venv).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"feedbackloop-gbstats-{digest}.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _child_env() -> dict[str, str]:
    """Our environment minus what would point a child Python at the project's venv or packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(command: list[str], timeout: float, what: str) -> None:
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=_child_env()
        )
    except subprocess.TimeoutExpired as error:
        raise GbstatsUnavailableError(f"{what} took more than {timeout:.0f} s") from error
    except OSError as error:
        raise GbstatsUnavailableError(f"{what} could not start: {error}") from error
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
        raise GbstatsUnavailableError(f"{what} failed (exit {completed.returncode}):\n{tail}")


def _create(venv: Path, python_version: str) -> Path:
    python = venv / "bin" / "python"
    marker = venv / MARKER_NAME
    if venv.exists() and any(venv.iterdir()) and not (venv / "pyvenv.cfg").exists():
        raise GbstatsUnavailableError(f"{venv} exists and is not a venv; refusing to overwrite it")
    if venv.exists():
        shutil.rmtree(venv)  # a stale or half-built venv of ours: start clean
    _run([_base_python(), "-m", "venv", str(venv)], VENV_TIMEOUT_SECONDS, f"python -m venv {venv}")
    # Keep the venv out of git even though .gitignore names only .venv/.
    (venv / ".gitignore").write_text("*\n")
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *REQUIREMENTS,
        ],
        INSTALL_TIMEOUT_SECONDS,
        "pip install " + " ".join(REQUIREMENTS),
    )
    _run(
        [
            str(python),
            "-I",
            "-c",
            "import gbstats.gbstats, gbstats.frequentist.tests, gbstats.bayesian.tests",
        ],
        IMPORT_TIMEOUT_SECONDS,
        "import gbstats in the new venv",
    )
    marker.write_text(_marker_text(python_version))
    return python


def ensure_gbstats_venv() -> Path | None:
    """The gbstats venv's python, created on first use (about 20 s, cached by a marker file); None if it cannot be.

    Never raises. After None, `gbstats_unavailable_reason()` says why. A failure is remembered for the rest of
    the process, so a test session pays for at most one attempt.
    """
    global _python, _unavailable_reason
    if _python is not None and (_python.parent.parent / MARKER_NAME).exists():
        return _python
    if _unavailable_reason is not None:
        return None
    if os.environ.get(DISABLE_VARIABLE):
        _unavailable_reason = f"gbstats reference disabled by {DISABLE_VARIABLE}"
        return None
    venv = venv_path()
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    expected = _marker_text(python_version)
    marker = venv / MARKER_NAME
    python = venv / "bin" / "python"
    try:
        if marker.exists() and marker.read_text() == expected and python.exists():
            _python = python
            return python
        with _lock(venv):  # re-check: another process may have built it while we waited
            if marker.exists() and marker.read_text() == expected and python.exists():
                _python = python
            else:
                _python = _create(venv, python_version)
        return _python
    except Exception as error:
        _unavailable_reason = f"gbstats venv at {venv} unavailable: {error}"
        return None


def gbstats_unavailable_reason() -> str | None:
    """Why the last `ensure_gbstats_venv()` returned None (None if it has not failed)."""
    return _unavailable_reason


def _call_runner(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    python = ensure_gbstats_venv()
    if python is None:
        raise GbstatsUnavailableError(gbstats_unavailable_reason() or "gbstats venv unavailable")
    try:
        completed = subprocess.run(
            [str(python), "-I", str(RUNNER)],
            input=json.dumps(request, allow_nan=True),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_child_env(),
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"gbstats runner took more than {timeout:.0f} s") from error
    if completed.returncode != 0:
        raise RuntimeError(
            f"gbstats runner failed (exit {completed.returncode}):\n{completed.stderr.strip()}"
        )
    try:
        output: dict[str, Any] = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise RuntimeError(
            f"gbstats runner printed no JSON ({error}):\nstdout: {completed.stdout[:2000]}\n"
            f"stderr: {completed.stderr.strip()[-2000:]}"
        ) from error
    return output


def run_gbstats(cases: list[dict[str, Any]], timeout: float = RUN_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
    """gbstats' analysis of each case: [{"variants": [entry per treatment], "error": null | str}, …].

    Raises GbstatsUnavailableError (a RuntimeError) when the venv cannot be had, RuntimeError with the runner's
    stderr when the runner fails as a whole. A bad case does not raise: its entries carry "error".
    """
    results: list[dict[str, Any]] = _call_runner({"mode": "analyze", "repeat": 1, "cases": cases}, timeout)[
        "results"
    ]
    if len(results) != len(cases):
        raise RuntimeError(f"gbstats runner returned {len(results)} results for {len(cases)} cases")
    return results


def time_gbstats(
    cases: list[dict[str, Any]], repeat: int, timeout: float = RUN_TIMEOUT_SECONDS
) -> list[float]:
    """Seconds to analyse all `cases` once, for each of `repeat` repetitions, timed inside the runner.

    Process start-up, imports and JSON are outside the timed region; one case of each configuration is analysed
    once untimed first.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be ≥ 1, got {repeat}")
    seconds: list[float] = _call_runner({"mode": "time", "repeat": repeat, "cases": cases}, timeout)[
        "seconds_per_repeat"
    ]
    return seconds


def gbstats_versions() -> dict[str, str]:
    """Versions in the gbstats venv (python, gbstats, numpy, scipy, pandas, pydantic), for benchmark records."""
    return {str(k): str(v) for k, v in _call_runner({"mode": "info"}, IMPORT_TIMEOUT_SECONDS).items()}


if __name__ == "__main__":  # `python tests/reference/gbstats_env.py`: build the venv and print its versions
    started = time.perf_counter()
    found = ensure_gbstats_venv()
    if found is None:
        print(gbstats_unavailable_reason(), file=sys.stderr)
        sys.exit(1)
    print(f"{found} ready in {time.perf_counter() - started:.1f} s: {gbstats_versions()}")
