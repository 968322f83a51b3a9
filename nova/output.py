"""Where every `nova` command writes: results to stdout, one-line reasons to stderr."""

from __future__ import annotations

import sys

import typer
import typer.rich_utils
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Piped output (files, CI logs, tests) gets wide lines rather than tables wrapped at 80 columns.
PIPED_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
if typer.rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
    # `--help` too: at 80 columns rich cuts long option names (`--exhaustion-hor…`) to fit the table.
    typer.rich_utils.MAX_WIDTH = PIPED_WIDTH
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print the one-line reason and leave with a non-zero code."""
    err.print(f"nova: {message}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code)


def counted_progress() -> Progress:
    """A transient bar for work counted in items (files, scenarios): description, bar, n of N, time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
