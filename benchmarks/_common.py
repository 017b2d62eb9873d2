"""Helpers shared by the benchmark scripts: where the real data is, and game positions from it.

The shared data is ``../shared/data`` beside the project, or ``$CONCEPTCHESS_TEST_DATA``
(:func:`conceptchess.paths.test_data_dir`). A benchmark
that needs it and does not find it stops with a one-line message and exit status 1 (``make bench``
stops there): a benchmark that "skips" with status 0 is a figure silently lost.

>>> boards = game_positions(DATA / "pgn" / "lichess_2021-10_games_a.pgn", 100)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import chess
import chess.pgn
from typer.testing import CliRunner

from conceptchess.cli.main import app
from conceptchess.paths import test_data_dir

DATA = test_data_dir()
GAMES = DATA / "pgn" / "lichess_2021-10_games_a.pgn"
MAIA1100 = DATA / "weights" / "maia-1100.pb.gz"


def need(path: Path, what: str = "the shared test data") -> Path:
    """``path``, or exit with status 1 and a message saying what is missing and where it was looked for."""
    if not path.exists():
        sys.exit(f"error: {path} not found: this benchmark needs {what} "
                 "(set CONCEPTCHESS_TEST_DATA or provide ../shared/data); nothing was measured")
    return path


def run_cli(*args: object) -> None:
    """``conceptchess args…`` in this process (the command as a user runs it, without the interpreter's
    start-up); a failure stops the benchmark with the command's message and exit status 1."""
    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        sys.exit(f"error: conceptchess {' '.join(map(str, args))} exited {r.exit_code}: {r.output.strip() or repr(r.exception)}")


def machine_load() -> str:
    """How busy the machine was, for the figures' caption: load averages and core count."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def read_games(limit: int | None = None, path: Path = GAMES):
    """The first ``limit`` games (all if None) of a PGN file (default: the shared Lichess games)."""
    with open(need(path), encoding="utf-8", errors="replace") as f:
        n = 0
        while limit is None or n < limit:
            game = chess.pgn.read_game(f)
            if game is None:
                return
            n += 1
            yield game


def game_positions(path: Path = GAMES, limit: int = 5000) -> list[chess.Board]:
    """Every position (after each ply, game ends included) of the file's first games, up to ``limit``;
    boards without their move stacks."""
    boards: list[chess.Board] = []
    for game in read_games(path=path):
        b = game.board()
        for move in game.mainline_moves():
            b.push(move)
            boards.append(b.copy(stack=False))
            if len(boards) >= limit:
                return boards
    return boards
