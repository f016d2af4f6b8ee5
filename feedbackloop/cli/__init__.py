"""The `feedbackloop` command line (Typer): operators and CI pipelines."""

from feedbackloop.cli.root import app, main

__all__ = ["app", "main"]
