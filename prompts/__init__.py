"""Jinja2 templates (*.j2): LLM prompts, reports, ticket bodies, chat and e-mail messages — plus this loader.

Templates are data; `render` is the one way code turns them into text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).parent


@lru_cache(maxsize=1)
def environment() -> Environment:
    # StrictUndefined: a missing variable is an error, never a silently empty hole in a message.
    return Environment(  # nosec B701  # LLM prompts and markdown, not HTML; HTML templates autoescape
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(name: str, **variables: Any) -> str:
    """Render `prompts/<name>` (e.g. "demo_next_steps.txt.j2")."""
    return environment().get_template(name).render(**variables)


def template_names() -> list[str]:
    return sorted(path.name for path in TEMPLATE_DIR.glob("*.j2"))


@lru_cache(maxsize=1)
def _sandbox() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


def render_string(template: str, **variables: Any) -> str:
    """Render a template a user wrote (e.g. a rule's description) in Jinja2's sandbox: data, not code."""
    return _sandbox().from_string(template).render(**variables)
