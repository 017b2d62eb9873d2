"""What every command shares: the error boundary and the console."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from conceptchess.errors import ConceptChessError

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """Print one line naming the problem and exit with status 2."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "error"
    print(f"error: {first}", file=sys.stderr)
    raise typer.Exit(2)


def guarded(fn):
    """Turn the project's errors into a one-line message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConceptChessError as e:
            fail(str(e))

    return wrapper


def stage_bar(transient: bool = True):
    """A rich progress display with one bar per stage (see :func:`stage_callback`), on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=transient)


def stage_callback(bar):
    """A ``progress(stage, done, total)`` callback that adds a bar the first time a stage reports."""
    tasks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return progress
