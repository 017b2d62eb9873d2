"""What every command shares: the error boundary, the console and the progress bars.

Errors: :func:`guarded` turns the library's :class:`~conceptchess.errors.ConceptChessError` into one
line and exit status 2; :func:`options_named` first says an
:class:`~conceptchess.errors.ArgumentError` with the options that set the arguments it names;
:func:`fail_usage` says typer's own usage errors (a bad option, a missing argument) the same way.
Every refusal is ``error: …`` on one line of stderr, exit status 2.

Progress: the library reports in the shapes of :mod:`conceptchess.progress` — a one-stage job takes a
``progress(done, total)`` callback (:class:`~conceptchess.progress.Progress`; ``total`` None while
unknown), a staged job a ``progress_for(stage)`` that returns the callback of each named stage
(:data:`~conceptchess.progress.ProgressFor`). :func:`stage_bar` is the rich display and
:func:`stage_callback` the adapter: ``stage_callback(bar)`` is a ``ProgressFor`` that adds one bar per
stage to ``bar`` when that stage first reports (after the job has checked its inputs), and
``stage_callback(bar)(name)`` a single ``Progress``. Where the display is no terminal (a log file, a
pipe), rich draws nothing until the end, so :class:`Bars` prints a line per stage instead when it
starts, every :data:`LOG_EVERY_S` seconds (``$CONCEPTCHESS_PROGRESS_EVERY``) and when it ends:
``probing: 12/40 (30%), 0:01:05 elapsed, ETA 0:02:31``.

>>> with stage_bar() as bar:                                                    # doctest: +SKIP
...     run_sweep(plan, progress_for=stage_callback(bar))
...     verify_collection(db, "fork", progress=stage_callback(bar)("verifying fork"))
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.progress import Progress, ProgressFor

#: The help of every ``--db`` option.
DB_HELP = "Database: an SQLAlchemy URL or a SQLite file path (default: $CONCEPTCHESS_DB, else db/conceptchess.sqlite)"

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """Print one line naming the problem and exit with status 2."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "error"
    print(f"error: {first}", file=sys.stderr)
    raise typer.Exit(2)


def fail_usage(error) -> None:
    """Say typer's usage error (its click ``UsageError``: an unknown option, a missing argument, a bad
    value …) as :func:`fail` does, with the command whose ``--help`` lists what it takes."""
    message = error.format_message().strip().rstrip(".")
    if message[1:2].islower():
        message = message[0].lower() + message[1:]
    ctx = getattr(error, "ctx", None)
    fail(message + (f" (see `{ctx.command_path} --help`)" if ctx is not None else ""))


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


#: Seconds between two progress lines of a stage where the display is no terminal; ``$CONCEPTCHESS_PROGRESS_EVERY`` overrides it.
LOG_EVERY_S = 30.0
PROGRESS_EVERY_ENV = "CONCEPTCHESS_PROGRESS_EVERY"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _log_every() -> float:
    text = os.environ.get(PROGRESS_EVERY_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else LOG_EVERY_S
    except ValueError:
        return LOG_EVERY_S


class Bars(RichProgress):
    """rich progress bars that also report where nothing is drawn live.

    On an interactive terminal: the bars. Elsewhere (output to a log or a pipe, where rich shows
    nothing until the end): one line per task when it first reports, then every ``log_every`` seconds
    — also while no report comes (a cell of a sweep can take minutes) — and when it is done: units
    done / total, elapsed time, and an ETA from the rate since the task's first report.
    """

    def __init__(self, *columns, log_every: float | None = None, **kwargs):
        super().__init__(*columns, **kwargs)
        if not self.drawn:  # rich's live display would only add a blank line to a log at its end
            self.disable = True
        self.log_every = _log_every() if log_every is None else log_every
        self._lines: dict[int, tuple[float, float, float, bool]] = {}  # task → (first report, done then, last line, finished)
        self._said = threading.Lock()  # reports and the ticker print lines from two threads
        self._stop_ticker = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        if not self.drawn and self.log_every > 0:
            self._stop_ticker.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress-lines", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._stop_ticker.set()
            self._ticker.join()
            self._ticker = None
        super().stop()

    def _tick(self) -> None:
        """Lines for the tasks that stopped reporting, every ``log_every`` seconds."""
        while not self._stop_ticker.wait(min(1.0, self.log_every / 4)):
            for task_id in list(self._lines):
                self._log(task_id)

    @property
    def drawn(self) -> bool:
        """Whether rich draws the bars live (an interactive terminal)."""
        return self.console.is_interactive and self.console.is_terminal

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        if not self.drawn:
            self._log(task_id)

    def _log(self, task_id) -> None:
        with self._said:
            with self._lock:
                task = self._tasks[task_id]
                now, done, total, elapsed = time.monotonic(), float(task.completed), task.total, task.elapsed
            first = task_id not in self._lines
            start, done0, last, said = self._lines.get(task_id, (now, done, now, False))
            finished = total is not None and done >= total
            if said or not (first or finished or now - last >= self.log_every):
                return
            spent = now - start
            rate = (done - done0) / spent if spent > 0 else 0.0
            eta = 0.0 if finished else (total - done) / rate if total is not None and rate > 0 else None
            count = f"{int(done):,}/{int(total):,} ({100 * done / total:.0f}%)" if total else f"{int(done):,}"
            self.console.print(f"{task.description}: {count}, {_clock(elapsed or spent)} elapsed, ETA {_clock(eta)}",
                               highlight=False, markup=False, soft_wrap=True)
            self._lines[task_id] = (start, done0, now, finished)


def stage_bar(transient: bool = True) -> Bars:
    """A rich progress display with one bar per stage (see :func:`stage_callback`), on stderr; progress
    lines where stderr is no terminal (see :class:`Bars`)."""
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
