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
