"""Helpers shared by the puzzle and evaluation tests (no tests here).

Stockfish tests skip when the binary is missing; node counts stay small (20k per check) so each check
takes a fraction of a second on a busy 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chess
import pytest

ROOT = Path(__file__).resolve().parent.parent
LICHESS_CSV = ROOT / "tests" / "data" / "lichess_puzzles.csv"
NODES = 20_000

# Hand-made positions (White to move)
ONE_WINNER = "6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/6K1 w - - 0 1"  # only Nxd4 wins the queen
TWO_WINNERS = "6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/3R2K1 w - - 0 1"  # Nxd4 and Rxd4 both win it
MATES = "7k/3pp1pp/8/8/8/8/3qrPPP/RR4K1 w - - 0 1"  # Ra8# and Rb8#; anything else loses
MATES_BUT_ALL_WIN = "7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1"  # Ra8#/Rb8#, but every move wins anyway
FORK = "r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 w - - 0 1"  # Nc7+ and Nxa8; the network here plays Nxa7
MATE_IN_2 = "3qr1k1/5ppp/8/8/8/8/4RPPP/4R1K1 w - - 0 1"  # Rxe8+ Qxe8 Rxe8#


def stockfish_or_skip() -> str:
    from conceptchess.concepts.stockfish import find_stockfish

    path = find_stockfish()
    if path is None:
        pytest.skip("Stockfish not installed (apt-get install stockfish, or set $CONCEPTCHESS_STOCKFISH)")
    return path


def network_or_skip() -> Path:
    from conceptchess.networks import default_network

    net = default_network()
    if net is None or not Path(net).is_file():
        pytest.skip("no network in engines/ (and $CONCEPTCHESS_NET unset)")
    return Path(net)


def sqlite_db(tmp_path: Path, name: str = "t.sqlite"):
    from conceptchess.store import connect

    return connect(f"sqlite:///{tmp_path / name}")


def imported_db(tmp_path: Path, collection: str = "lichess"):
    from conceptchess.puzzles.lichess import import_lichess

    db = sqlite_db(tmp_path)
    import_lichess(db, LICHESS_CSV, collection)
    return db


def run_cli(module: str, *args: str, env: dict | None = None, input: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m conceptchess.cli.<module> args`` (the typer apps the main CLI mounts)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", f"conceptchess.cli.{module}", *args], capture_output=True, text=True,
                          env=e, input=input, timeout=timeout, cwd=ROOT)


def board(fen: str) -> chess.Board:
    return chess.Board(fen)


def invoke(module: str, *args: str, env: dict | None = None, input: str | None = None):
    """Run a CLI group in-process (typer's CliRunner; stdout and stderr kept apart)."""
    import importlib

    from typer.testing import CliRunner

    app = importlib.import_module(f"conceptchess.cli.{module}").app
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, input=input)
