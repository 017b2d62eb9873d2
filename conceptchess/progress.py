"""The one shape of a progress report, for every long job of the library.

A job takes ``progress: Progress | None`` and calls ``progress(done, total)`` with the units finished so
far (positions, cells, candidates, bytes…) and the total, or ``None`` while the total is unknown (a PGN
stream). A job of several stages takes ``progress_for: ProgressFor | None`` and asks it for the
callback of each named stage. The library never draws anything: the CLI turns the calls into rich bars
(:func:`conceptchess.cli.common.stage_bar`), a web page into whatever it shows.

>>> seen = []
>>> report = counter(lambda done, total: seen.append((done, total)), total=10)
>>> report(4); report(6)
>>> seen
[(4, 10), (10, 10)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """``progress(done, total)``: units finished so far, out of ``total`` (None when not known yet)."""

    def __call__(self, done: int, total: int | None) -> None: ...


#: A named stage → the :class:`Progress` callback of that stage.
ProgressFor = Callable[[str], Progress]


def counter(progress: Progress | None, total: int | None = None) -> Callable[[int], None]:
    """An ``add(n)`` callback for loops that count increments, reporting the running sum to ``progress``."""
    done = 0

    def add(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    return add
