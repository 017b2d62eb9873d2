"""What every command shares: the error boundary, the console and the progress bars.

Errors: :func:`guarded` turns the library's :class:`~conceptchess.errors.ConceptChessError` into one
line and exit status 2; :func:`options_named` first says an
:class:`~conceptchess.errors.ArgumentError` with the options that set the arguments it names.

Progress: the library reports in the shapes of :mod:`conceptchess.progress` — a one-stage job takes a
``progress(done, total)`` callback (:class:`~conceptchess.progress.Progress`; ``total`` None while
unknown), a staged job a ``progress_for(stage)`` that returns the callback of each named stage
(:data:`~conceptchess.progress.ProgressFor`). :func:`stage_bar` is the rich display and
:func:`stage_callback` the adapter: ``stage_callback(bar)`` is a ``ProgressFor`` that adds one bar per
stage to ``bar`` when that stage first reports (after the job has checked its inputs), and
``stage_callback(bar)(name)`` a single ``Progress``:

>>> with stage_bar() as bar:                                                    # doctest: +SKIP
...     run_sweep(plan, progress_for=stage_callback(bar))
...     verify_collection(db, "fork", progress=stage_callback(bar)("verifying fork"))
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bars

from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.progress import Progress, ProgressFor

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


def options_named(options: Mapping[str, str]):
    """A decorator saying a refusal that names the library's arguments with the options that set them
    (``options``: library argument → option, e.g. ``{"seed": "--seed"}``); put it under :func:`guarded`."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ArgumentError as e:
                fail(e.naming(options))

        return wrapper

    return decorate


def stage_bar(transient: bool = True) -> Bars:
    """A rich progress display with one bar per stage (see :func:`stage_callback`), on stderr."""
    return Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                console=err_console, transient=transient)


def stage_callback(bar: Bars) -> ProgressFor:
    """The :data:`~conceptchess.progress.ProgressFor` of ``bar``: ``stage_callback(bar)(stage)`` is the
    ``progress(done, total)`` of that stage, whose bar is added the first time it reports."""
    tasks: dict[str, int] = {}

    def for_stage(stage: str) -> Progress:
        def progress(done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return progress

    return for_stage
