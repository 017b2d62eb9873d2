"""Helpers shared by the benchmark scripts: where the real data is, and game positions from it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import chess.pgn

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CONCEPTCHESS_TEST_DATA", ROOT.parent / "shared" / "data"))


def need(path: Path) -> Path:
    if not path.exists():
        print(f"skipped: {path} not found (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
        sys.exit(0)
    return path


def read_games(limit: int | None = None):
    with open(need(DATA / "pgn" / "lichess_2021-10_games_a.pgn")) as f:
        n = 0
        while limit is None or n < limit:
            game = chess.pgn.read_game(f)
            if game is None:
                return
            n += 1
            yield game
