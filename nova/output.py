"""Where every `nova` command writes: results to stdout, one-line reasons to stderr."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

# Piped output (files, CI logs, tests) gets wide lines rather than tables wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print the one-line reason and leave with a non-zero code."""
    err.print(f"nova: {message}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code)
